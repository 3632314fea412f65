"""Predicted vs published training runs on A100 (measurements/reference/training.csv).

Rows (copied verbatim, with their citation columns, from shared/reference/measurements/
training.csv):

* Korthikanti et al. 2022 ("Reducing activation recomputation in large transformer
  models", arXiv 2205.05198), Table 5: iteration times of 22B, 175B, 530B and 1T GPT models
  with full recomputation, and with sequence parallelism + selective recomputation, on
  A100 80GB (Selene, DGX A100), as transcribed with their tp / pp / interleaving / batch by
  Calculon's validation files (rows training-00520..00527). Model shapes from the rows;
  vocabulary 51,200 (Narayanan et al. 2021, sec. 5.1, the same Megatron-LM GPT setup).
* torchtitan docs/performance.md (rows training-00217..00224): FSDP2 on 64 A100 80GB,
  Llama 2 / 3 models of the zoo, tokens/s per GPU. The system is taken as DGX A100
  (200 Gb/s HDR per GPU): the rows do not state their network.

No per-row factor is fitted: every row is priced with the device spec's efficiency.
The Korthikanti rows run Megatron-LM's 2022 kernels: unfused attention (the model built with
``fused_attention=False``) with attention dropout (``ParallelPlan(attention_dropout=True)``;
FlashAttention reached Megatron-LM in 2023).

Names become graphs at the edge: each Case names its model (a zoo name, or a ModelShape for
the GPT shapes of the paper) and the functions here take a ``models`` resolver, e.g.
``perfmodel.load_model``, which builds it.

Layer-wise check (``validate_layer_times``): Korthikanti et al. 2022, Table 4, forward and
backward milliseconds of one layer of the 22B model (tp 8, micro-batch 4, seq 2048) for
five recompute / sequence-parallel settings, against the step model's per-layer times
(compute + exposed tensor-parallel communication).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from perfmodel.errors import SpecError
from perfmodel.files import data_dir
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.shape import ModelShape
from perfmodel.hardware.load import load_device
from perfmodel.hardware.system import load_system
from perfmodel.parallel.partition import layer_costs, stage_times
from perfmodel.parallel.step import predict_step, step_from_costs
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan

__all__ = ["Case", "load_cases", "validate_training", "VALIDATION_COLUMNS",
           "KORTHIKANTI_TABLE4", "validate_layer_times", "megatron_gpt", "ModelResolver"]

# Builds a case's model: a zoo name or a shape record, with builder options
# (perfmodel.load_model is one).
ModelResolver = Callable[..., ModelGraph]

VALIDATION_COLUMNS = ("row_id", "model", "gpus", "tp", "pp", "dp", "v", "recompute", "sp",
                      "metric", "published", "predicted", "error_pct", "mfu_pred", "source")
MEGATRON_VOCAB = 51200  # Narayanan et al. 2021, sec. 5.1
SYSTEM, DEVICE = "dgx-a100", "a100-sxm4-80gb"


@dataclass(frozen=True)
class Case:
    """One published run: its model (a zoo name or a shape, with builder ``options``), job
    and plan, and what was measured."""

    row_id: str
    label: str
    model: str | ModelShape
    job: Job
    plan: ParallelPlan
    metric: str  # step_s | tokens_per_s_per_gpu
    published: float
    source: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def graph(self, models: ModelResolver) -> ModelGraph:
        return models(self.model, **self.options)


def _reference_file() -> str:
    path = data_dir("measurements") / "reference" / "training.csv"
    if not path.is_file():
        raise SpecError(f"reference file not found: {path}",
                        "reinstall perfmodel: the wheel ships measurements/reference")
    return str(path)


def megatron_gpt(hidden: int, layers: int, heads: int, seq: int) -> ModelShape:
    """A Megatron-LM GPT of the given size: GPT-2's layer structure (pre-LayerNorm with
    biases, learned positions, GELU, a plain 4h MLP, LM head tied to the embedding; the
    structure of workloads/gpt3-175b.yaml) with the 51,200-token vocabulary of Narayanan et
    al. 2021, sec. 5.1."""
    return ModelShape(
        architecture="decoder", vocab_size=MEGATRON_VOCAB, hidden_size=hidden,
        intermediate_size=4 * hidden, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=heads, head_dim=hidden // heads, max_position_embeddings=seq,
        position_embedding="learned", norm="layernorm", norm_position="pre",
        activation="gelu", mlp="plain", attention_bias=True, mlp_bias=True,
        tie_word_embeddings=True)


def _korthikanti(r: pd.Series) -> Case:
    m = re.search(r"hidden (\d+), (\d+) layers, (\d+) heads, seq (\d+)", r["model"])
    opts = dict(kv.split("=") for kv in str(r["other_parallel"]).replace(" ", "").split(","))
    if m is None:
        raise SpecError(f"{r['row_id']}: cannot read the model shape from {r['model']!r}",
                        "expected 'hidden H, L layers, A heads, seq S'")
    h, layers, a, s = (int(x) for x in m.groups())
    v = int(opts["pipeline_interleaving"])
    plan = ParallelPlan(
        data_parallel=int(r["dp"]), tensor_parallel=int(r["tp"]),
        pipeline_parallel=int(r["pp"]), micro_batch=int(r["micro_batch"]),
        schedule="interleaved" if v > 1 else "1f1b", virtual_stages=v,
        recompute="full" if opts["activation_recompute"] == "full" else "selective",
        sequence_parallel=opts["tensor_par_comm_type"] == "rs_ag", attention_dropout=True)
    job = Job(phase="train", batch=int(r["global_batch"]), seq=s, dtype="bf16")
    name = r["model"].split(" ")[0]
    return Case(r["row_id"], f"{name} {opts['activation_recompute']}",
                megatron_gpt(h, layers, a, s), job, plan, "step_s", float(r["step_time_s"]),
                "Korthikanti et al. 2022 Table 5 (via Calculon)",
                {"name": name, "fused_attention": False})


# Korthikanti et al. 2022 (arXiv 2205.05198), Table 4: (experiment, recompute, sequence
# parallel, forward ms, backward ms) of one 22B layer; backward includes the recompute
KORTHIKANTI_TABLE4 = (
    ("baseline no recompute", "none", False, 7.7, 11.9),
    ("sequence parallelism", "none", True, 7.2, 11.8),
    ("baseline with recompute", "full", False, 7.7, 19.5),
    ("selective recompute", "selective", False, 7.7, 13.2),
    ("selective + sequence", "selective", True, 7.2, 13.1),
)


def validate_layer_times(models: ModelResolver) -> pd.DataFrame:
    """Korthikanti Table 4 vs the per-layer times of the step model, 22B on DGX A100."""
    system, device = load_system(SYSTEM), load_device(DEVICE)
    case = next(c for c in load_cases() if c.row_id == "training-00520")
    p, job = case.plan, case.job
    costs = layer_costs(case.graph(models), int(job.seq or 1), job.dtype, job.optimizer,
                        p.attention_dropout)
    rows = []
    for name, recompute, sp, fwd, bwd in KORTHIKANTI_TABLE4:
        plan = replace(p, recompute=recompute, sequence_parallel=sp)
        times = stage_times(costs, device, p.tensor_parallel, p.micro_batch_of(job.batch), sp,
                            recompute)
        st = step_from_costs(costs, times, plan, job, system, device)["stage"]
        f, b = st["layer_f"] * 1e3, st["layer_b"] * 1e3
        rows.append((name, recompute, sp, fwd, f, bwd, b, fwd + bwd, f + b,
                     100.0 * (f + b - fwd - bwd) / (fwd + bwd)))
    return pd.DataFrame(rows, columns=["experiment", "recompute", "sp", "forward_ms",
                                       "forward_pred_ms", "backward_ms", "backward_pred_ms",
                                       "combined_ms", "combined_pred_ms", "error_pct"])


# torchtitan's AC modes (parallelisms/parallelize_llama.py at the performance.md commit):
# "selective layer" = every 2nd block fully checkpointed (config_manager.py default
# selective_ac_option "2"; the table does not state n), "selective op" = op-level SAC
# FSDP2 MixedPrecisionPolicy(reduce_dtype=...) from torchtitan's
# --training.mixed_precision_reduce, default "float32" (config_manager.py)
TORCHTITAN_REDUCE_DTYPE = "fp32"
TORCHTITAN_RECOMPUTE = {"no": "none", "selective layer": "selective_layer",
                        "selective op": "selective_op", "full": "full"}


def _torchtitan(r: pd.Series) -> Case:
    ac = str(r["other_parallel"]).split("activation checkpointing:")[-1].strip()
    zoo = str(r["model"]).lower().replace(" ", "-")
    mb = int(r["micro_batch"])
    gpus = int(r["num_gpus"])
    plan = ParallelPlan(data_parallel=gpus, micro_batch=mb, zero_stage=3,
                        recompute=TORCHTITAN_RECOMPUTE[ac],
                        reduce_dtype=TORCHTITAN_REDUCE_DTYPE)
    job = Job(phase="train", batch=gpus * mb, seq=int(r["seq_len"]), dtype="bf16")
    return Case(r["row_id"], f"{zoo} AC {ac}", zoo, job, plan, "tokens_per_s_per_gpu",
                float(r["throughput"]), "torchtitan performance.md")


def load_cases() -> list[Case]:
    """The validation rows as Cases (Korthikanti first, then torchtitan)."""
    df = pd.read_csv(_reference_file())
    out = []
    for _, r in df.iterrows():
        fw = str(r["framework"])
        if "torchtitan" in fw:
            out.append(_torchtitan(r))
        elif "calculon" in str(r["source"]):
            out.append(_korthikanti(r))
    return sorted(out, key=lambda c: (c.metric, c.row_id))


def validate_training(models: ModelResolver, cases: list[Case] | None = None) -> pd.DataFrame:
    """One row per case: published vs predicted and the signed error in percent. ``models``
    builds each case's model (``perfmodel.load_model``)."""
    system, device = load_system(SYSTEM), load_device(DEVICE)
    rows = []
    for c in cases if cases is not None else load_cases():
        pred = predict_step(c.graph(models), c.job, c.plan, system, device)
        value = pred.step_s if c.metric == "step_s" else pred.tokens_per_s / c.plan.devices
        p = c.plan
        rows.append((c.row_id, c.label, p.devices, p.tensor_parallel, p.pipeline_parallel,
                     p.data_parallel, p.virtual_stages, p.recompute, p.sequence_parallel,
                     c.metric,
                     c.published, value, 100.0 * (value - c.published) / c.published,
                     pred.mfu, c.source))
    return pd.DataFrame(rows, columns=list(VALIDATION_COLUMNS))
