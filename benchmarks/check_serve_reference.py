"""perfmodel serve beside the published vLLM runs on A100 (the shipped reference rows of
LLM-Inference-Bench, argonne-lcf: ``batch`` requests of ``seq`` prompt and ``out_seq``
generated tokens, all sent at once, their latency measured end to end):

    python benchmarks/check_serve_reference.py

Each row becomes a trace of ``batch`` requests arriving at 0 served by one replica of
``num_devices`` GPUs (tensor parallel) through the vllm profile; the prediction is when the
last request finishes. The vllm profile's host figures were fitted on these rows (through
``infer``), so this is in sample for the engine; it checks that the scheduler (prefill-first
iterations under the 8,192-token budget, then decode steps as sequences finish) keeps what
``infer`` gets right.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import perfmodel as pm
from perfmodel.errors import PerfModelError
from perfmodel.hardware.load import load_device
from perfmodel.serving.run import serve
from perfmodel.validate.reference import measurement_rows
from perfmodel.workload.plan import ParallelPlan


def main() -> None:
    df = measurement_rows(reference="a100", families=["inference"])
    df = df[df["framework"].str.contains("vLLM") & (df["phase"] == "generate")]
    rows = []
    for r in df.itertuples():
        n, length, out = int(r.batch), int(r.seq), int(r.out_seq)
        reqs = pd.DataFrame({"request_id": np.arange(n), "arrival_s": np.zeros(n),
                             "input_len": np.full(n, length), "output_len": np.full(n, out)})
        try:
            res = serve(pm.load_model(r.model), load_device(r.hw), reqs, engine="vllm",
                        plan=ParallelPlan(tensor_parallel=int(r.num_devices)))
            t, note = float(res.requests["finish_s"].max()), ""
        except PerfModelError as exc:
            t, note = np.nan, exc.message
        rows.append((r.model, int(r.num_devices), n, length, out, r.time_s, t, note))
    t = pd.DataFrame(rows, columns=["model", "gpus", "batch", "input", "output",
                                    "measured_s", "predicted_s", "note"])
    t["error"] = (t["predicted_s"] - t["measured_s"]) / t["measured_s"]
    by = t.groupby("gpus")["error"]
    print(pd.DataFrame({"rows": by.count(), "median_error": by.median(),
                        "mean_abs_error": by.apply(lambda e: e.abs().mean())}).round(3))
    print(f"all: {t['error'].count()} of {len(t)} rows priced, median error "
          f"{t['error'].median():+.1%}, mean |error| {t['error'].abs().mean():.1%}")
    for note, count in t.loc[t["error"].isna(), "note"].value_counts().items():
        print(f"  not priced ({count}): {note}")


if __name__ == "__main__":
    main()
