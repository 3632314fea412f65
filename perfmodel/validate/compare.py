"""Join each measurement with perfmodel's prediction for the same work.

Per family (a registry, PRICERS):

- gemm, conv, attention, elementwise, reduction: a one-op Workload (the schema of
  perfmodel.workload.schema) priced by ``analytic.roofline`` on the row's device, so the
  prediction is exactly what the roofline charges such an op inside a model:
  max(flops / (peak x compute efficiency), bytes / (bandwidth x memory efficiency)) + launch
  overhead. GEMM rows count FLOP = 2 m n k and bytes = (m k + k n) x dtype + m n x output
  dtype; the others take the row's flops and bytes.
- membw, l2 (``_price_resident``): bytes at the last-level cache's bandwidth when the
  working set fits the cache (and the spec gives its bandwidth), else at main memory's, at
  the kernel's write fraction, plus one launch.
- launch: the spec's launch overhead.
- inference: ``predict(build_workload(models(model), ...))``; LLM rows of phase
  ``generate`` are the forward passes of their stack (GENERATE_PASSES): for a serving engine
  one prefill of ``seq`` tokens plus ``out_seq - 1`` decode steps, each priced at the mean
  KV length ``seq + out_seq / 2`` (decode time is linear in KV length per op); for
  llama.cpp's llama-bench one sequence whose prompt runs in micro-batches of ``batch``;
  rows of phase ``prefill`` or ``decode`` (``perfmodel bench --backend torch``) are priced as
  that phase, a decode row's ``seq`` being its KV-cache length. Each row is priced with the
  fusion mode of its ``framework`` (FRAMEWORK_FUSION; ``compare(..., fusion=...)`` forces one).
- latency, collective, and rows on several devices: not predicted (predicted_s empty, the
  reason in ``predict_note``); a single-device roofline has no figure for them.

Model names in the rows become graphs through the ``models`` resolver the caller passes
(``perfmodel.load_model``, or a dict's ``__getitem__`` for models of one's own): names are
resolved at the API edge, not here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from perfmodel.analytic.roofline import predict, roofline
from perfmodel.errors import MeasurementError
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.load import load_device
from perfmodel.hardware.spec import DeviceSpec, Efficiency
from perfmodel.units import dtype_bytes
from perfmodel.validate.engines import engine_of_row, price_row
from perfmodel.workload.build import build_workload
from perfmodel.workload.schema import COLUMNS as WORKLOAD_COLUMNS

__all__ = ["compare", "one_op_workload", "gemm_workload", "PRICERS", "COMPARE_COLUMNS",
           "with_efficiency", "FRAMEWORK_FUSION", "fusion_of", "GENERATE_PASSES",
           "generate_passes", "ModelResolver", "micro_workload"]

# Builds the model a measurement row names (perfmodel.load_model is one)
ModelResolver = Callable[[str], ModelGraph]

COMPARE_COLUMNS = ("hw_used", "engine", "predicted_s", "overhead_s", "priced_ops", "error",
                   "abs_error", "predict_note")
OUTPUT_DTYPE = {"int8": "int32", "int4": "int32", "fp8": "bf16"}
UNIT = {"gemm": "tensor", "conv": "tensor", "attention": "tensor", "elementwise": "vector",
        "reduction": "vector", "membw": "vector", "l2": "vector"}


def one_op_workload(flops: np.ndarray, input_bytes: np.ndarray, weight_bytes: np.ndarray,
                    output_bytes: np.ndarray, unit: str | np.ndarray,
                    dtype: str | np.ndarray) -> pd.DataFrame:
    """A Workload table with one row per measured op (columns of workload.schema)."""
    n = len(flops)
    total = input_bytes + weight_bytes + output_bytes
    with np.errstate(divide="ignore", invalid="ignore"):
        intensity = np.where(total > 0, flops / np.where(total > 0, total, 1), np.inf)
    df = pd.DataFrame({
        "model": "measured", "name": [f"op{i}" for i in range(n)], "kind": "measured",
        "layer": "", "phase": "inference", "unit": unit, "dtype": dtype,
        "macs": flops / 2, "flops": flops, "params": 0.0, "weight_bytes": weight_bytes,
        "input_bytes": input_bytes, "output_bytes": output_bytes, "bytes": total,
        "intensity": intensity, "costed": True}, columns=list(WORKLOAD_COLUMNS))
    return df


def gemm_workload(m: np.ndarray, n: np.ndarray, k: np.ndarray,
                  dtypes: np.ndarray) -> pd.DataFrame:
    """One matmul row per GEMM C[m, n] = A[m, k] B[k, n]: FLOP = 2 m n k."""
    m, n, k = (np.asarray(v, dtype=float) for v in (m, n, k))
    width = np.array([dtype_bytes(d) for d in dtypes])
    out_w = np.array([dtype_bytes(OUTPUT_DTYPE.get(d, d)) for d in dtypes])
    wl = one_op_workload(2 * m * n * k, m * k * width, k * n * width, m * n * out_w,
                         "tensor", np.asarray(dtypes, dtype=object))
    wl["gemm_batch"], wl["gemm_m"], wl["gemm_n"] = 1.0, m, n
    return wl


# Fusion mode (perfmodel.analytic.roofline) of the inference stack named in a row's
# ``framework`` column: the first key contained in the string wins (order matters:
# "Paddle-TRT" before "PaddlePaddle"). Anything not listed runs one kernel per op.
FRAMEWORK_FUSION: tuple[tuple[str, str], ...] = (
    # TensorRT builder: vertical fusion of conv/GEMM + bias + scale (BN) + activation and
    # element-wise sums (NVIDIA TensorRT developer guide, "Layer Fusion").
    ("Paddle-TRT", "epilogue"),
    # TensorRT-LLM: GEMM plugins with fused bias/activation epilogues, fused residual +
    # norm kernels (TensorRT-LLM docs, "Best practices: gemm plugin, fused MLP").
    ("TensorRT-LLM", "epilogue"),
    # vLLM: fused SiLU-and-mul, fused add + RMSNorm custom ops (vllm/csrc layernorm_kernels,
    # activation_kernels).
    ("vLLM", "epilogue"),
    # DeepSpeed-MII / FastGen: DeepSpeed-Inference kernels fuse bias + activation and
    # residual + layer norm (DeepSpeed-Inference paper, Aminabadi et al. 2022, sec. III-B).
    ("Deepspeed-MII", "epilogue"),
    # Not listed, so one kernel per op: eager PyTorch, TF 1.x/2 graphs, MXNet, plain
    # PaddlePaddle, llama.cpp's ggml CUDA backend. TF "+ XLA" too: XLA's GPU backend fuses
    # elementwise ops with each other (loop fusion) but calls cuDNN/cuBLAS for convs and
    # GEMMs as separate library kernels (XLA docs, "Operation semantics: CustomCall";
    # only conv + bias + activation is rewritten into a fused cuDNN call), which is not
    # the epilogue model; mapped to epilogue, the A100 held-out MAPE of those 18 rows
    # rose from 10-16 % to 26-29 %.
)


def fusion_of(framework: str) -> str:
    """The fusion mode of an inference stack (FRAMEWORK_FUSION), ``none`` if unlisted."""
    return next((mode for key, mode in FRAMEWORK_FUSION if key in str(framework)), "none")


Priced = tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]  # time, overhead, ops, notes

# Written / moved bytes of a streaming kernel, by the benchmark's name after "stream_"
# (perfmodel's membw.cu, gpu-benches gpu-stream, BabelStream): init writes one array; read
# and dot only read; copy, scale, mul and cudaMemcpy read one and write one (so do the
# gpu-stream stencils 1pt/3pt/5pt: neighbours come from cache); add and triad read two and
# write one. Unknown kernels: a copy.
STREAM_WRITE_FRACTION = {"init": 1.0, "read": 0.0, "dot": 0.0, "copy": 0.5, "scale": 0.5,
                         "mul": 0.5, "cudamemcpy": 0.5, "1pt": 0.5, "3pt": 0.5, "5pt": 0.5,
                         "add": 1 / 3, "triad": 1 / 3}


def write_fraction(benchmark: pd.Series) -> np.ndarray:
    """Write fraction of each row's kernel (STREAM_WRITE_FRACTION; 0.5 where unknown)."""
    kernel = benchmark.astype(str).str.lower().str.replace("stream_", "", regex=False)
    return kernel.map(STREAM_WRITE_FRACTION).fillna(0.5).to_numpy(float)


def micro_workload(rows: pd.DataFrame, family: str) -> pd.DataFrame:
    """The one-op Workload table of micro-benchmark rows of one ``family``: a GEMM's
    m n k, else the row's FLOP and bytes (a streaming kernel's split into reads and writes
    by its write fraction)."""
    dtypes = rows["dtype"].replace("", "fp32").to_numpy(dtype=object)
    if family == "gemm":
        return gemm_workload(rows["m"], rows["n"], rows["k"], dtypes)
    nbytes = rows["bytes"].fillna(0).to_numpy(float)
    flops = rows["flops"].fillna(0).to_numpy(float)
    written = nbytes * write_fraction(rows["benchmark"]) if family == "membw" \
        else np.zeros(len(rows))
    return one_op_workload(flops, nbytes - written, np.zeros(len(rows)), written,
                           UNIT[family], dtypes)


def _price_roofline(rows: pd.DataFrame, device: DeviceSpec, family: str) -> Priced:
    ops = roofline(micro_workload(rows, family), device)
    n = len(rows)
    return (ops["time_s"].to_numpy(), ops["overhead_s"].to_numpy(), np.ones(n),
            [""] * n)


def _price_resident(rows: pd.DataFrame, device: DeviceSpec, family: str) -> Priced:
    """A streaming or cache kernel moving ``bytes`` in all over a ``working_set_bytes`` data
    set (perfmodel's membw.cu and l2bw.cu, gpu-benches' gpu-stream and gpu-l2-cache): the
    hierarchical roofline's level is the last-level cache where the data set fits it and
    the spec gives the cache's bandwidth, else main memory; one launch. The memory
    efficiency at the kernel's write fraction (STREAM_WRITE_FRACTION; an l2 row only reads)
    applies to a peak bandwidth, not to one given as achieved (a measured L2 figure is
    already what a kernel gets: discounting it again priced the A100's L2 rows 12 % slow).
    A streaming sweep's small sizes run from the cache, above the DRAM peak."""
    nbytes = rows["bytes"].fillna(0).to_numpy(float)
    ws = rows["working_set_bytes"].fillna(rows["bytes"]).to_numpy(float)
    cache = device.cache
    n = len(rows)
    if cache is None:
        if family == "membw":
            return _price_roofline(rows, device, family)
        return _price_roofline(rows, device, "membw")[:3] + (
            ["spec gives no cache with capacity and bandwidth: priced at main memory"] * n,)
    wf = write_fraction(rows["benchmark"]) if family == "membw" else np.zeros(n)
    fits = ws <= float(cache.capacity_bytes or 0)
    main_eff = device.efficiency.memory_at(nbytes, wf)
    cache_eff = np.ones(n) if cache.achieved else main_eff
    rate = np.where(fits, float(cache.bandwidth_Bps or 0) * cache_eff,
                    device.memory_bandwidth * main_eff)
    o = np.full(n, device.efficiency.launch_overhead_s)
    return nbytes / rate + o, o, np.ones(n), [""] * n


def _price_launch(rows: pd.DataFrame, device: DeviceSpec, family: str) -> Priced:
    n = len(rows)
    o = np.full(n, device.efficiency.launch_overhead_s)
    return o, o, np.ones(n), [""] * n


@functools.lru_cache(maxsize=64)
def _resolve(models: ModelResolver, name: str) -> ModelGraph:
    """The resolver's graph, built once per resolver and name (calibration's folds price
    the same models many times)."""
    return models(name)


def _latency(graph: ModelGraph, device: DeviceSpec, batch: int, seq: int, dtype: str,
             phase: str, fusion: str, memo: dict[tuple, tuple[float, float, int]]
             ) -> tuple[float, float, int]:
    """(latency, launch overhead in it, kernels launched) of one forward pass (memoized)."""
    key = (graph, batch, seq, dtype, phase, fusion)  # the graph, not its name: two
    # models of one name (shapes built unnamed) must not share a price
    if key not in memo:
        memo[key] = _forward(graph, device, batch, seq, dtype, phase, fusion)
    return memo[key]


def _forward(graph: ModelGraph, device: DeviceSpec, batch: int, seq: int, dtype: str,
             phase: str, fusion: str) -> tuple[float, float, int]:
    wl = build_workload(graph, batch=batch, seq=seq if graph.meta.get("default_seq") else None,
                        dtype=dtype, phase=phase)
    s = predict(wl, device, fusion=fusion).summary
    return s["latency_s"], s["overhead_s"], int(s["num_kernels"])


Pass = tuple[float, str, int, int]  # (how many times, phase, batch, seq) of one forward


def _generate_batched(batch: int, seq: int, out: int) -> list[Pass]:
    """A serving engine's generate run: ``batch`` sequences prefilled together, then
    ``out - 1`` decode steps (the prefill yields the first token), each priced at the mean
    KV length ``seq + out / 2`` (decode time is linear in KV length per op)."""
    return [(1.0, "prefill", batch, seq), (float(max(out - 1, 0)), "decode", batch,
                                           seq + out // 2)]


LLAMA_BENCH_UBATCH = 512  # llama-bench -ub/--ubatch-size default (tools/llama-bench/README.md)


def _generate_llama_bench(batch: int, seq: int, out: int) -> list[Pass]:
    """llama.cpp's ``llama-bench -p L -n N -pg L,N -b B`` (the command of every llama.cpp row
    of LLM-Inference-Bench: argonne-lcf/LLM-Inference-Bench llama.cpp/*/llama2-7b.sh). Its
    pg test runs ONE sequence: the L-token prompt in micro-batches of c = min(B, -ub 512)
    tokens (-b is the logical prompt batch, not concurrent sequences), then N tokens
    generated one at a time. A prompt micro-batch of c > 1 tokens is priced as a prefill of
    c tokens (its attention over earlier micro-batches left out: under 4 % of a 7B model's
    step at L = 2048), of c = 1 as a decode at the mean KV length L / 2."""
    c = max(1, min(batch, LLAMA_BENCH_UBATCH))
    prompt = ((float(seq), "decode", 1, max(seq // 2, 1)) if c == 1 else
              (float(-(-seq // c)), "prefill", 1, c))
    return [prompt, (float(out), "decode", 1, seq + out // 2)]


# How a stack runs a ``generate`` row (first key contained in ``framework`` wins);
# anything else is a batched serving engine (_generate_batched).
GENERATE_PASSES: tuple[tuple[str, Callable[[int, int, int], list[Pass]]], ...] = (
    ("llama.cpp", _generate_llama_bench),
)


def generate_passes(framework: str, batch: int, seq: int, out: int) -> list[Pass]:
    """The forward passes (count, phase, batch, seq) of a generate row (GENERATE_PASSES)."""
    rule = next((f for key, f in GENERATE_PASSES if key in str(framework)), _generate_batched)
    return rule(batch, seq, out)


def _price_inference(rows: pd.DataFrame, device: DeviceSpec, family: str,
                     fusion: str = "auto", models: ModelResolver | None = None) -> Priced:
    n = len(rows)
    time, over, ops = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    notes = [""] * n
    memo: dict[tuple, tuple[float, float, int]] = {}
    graphs: dict[str, ModelGraph] = {}
    for i, r in enumerate(rows.itertuples(index=False)):
        engine = engine_of_row(r.framework) if fusion == "auto" and r.phase in (
            "generate", "inference") else None
        if engine is not None:  # the run through its engine (perfmodel.inference)
            if models is None:
                raise MeasurementError("inference rows name models, and no resolver was "
                                       "given", "pass models=perfmodel.load_model")
            if r.model not in graphs:
                graphs[r.model] = _resolve(models, r.model)
            time[i], over[i], ops[i], notes[i] = price_row(r, graphs[r.model], device, engine)
            notes[i] = "; ".join(x for x in (f"engine {engine.name}", notes[i]) if x)
            continue
        if pd.notna(r.num_devices) and r.num_devices > 1:
            notes[i] = (f"not predicted: {r.num_devices} devices and no engine profile "
                        f"claims {r.framework!r}")
            continue
        if models is None:
            raise MeasurementError("inference rows name models, and no resolver was given",
                                   "pass models=perfmodel.load_model (or a dict's "
                                   "__getitem__ for models of your own)")
        if r.model not in graphs:
            graphs[r.model] = _resolve(models, r.model)
        graph = graphs[r.model]
        dt = r.dtype or device.default_dtype
        fu = fusion_of(r.framework) if fusion == "auto" else fusion
        seq = int(r.seq) if pd.notna(r.seq) else 1
        if r.phase == "generate":
            out = int(r.out_seq) if pd.notna(r.out_seq) else 1
            passes = [(times, _latency(graph, device, b, s, dt, ph, fu, memo)) for
                      times, ph, b, s in generate_passes(r.framework, int(r.batch), seq, out)]
            parts = [sum(times * lat[j] for times, lat in passes) for j in range(3)]
        else:  # prefill / decode (torch rows; decode: seq is the KV length) or inference
            phase = r.phase if r.phase in ("prefill", "decode") else "inference"
            parts = list(_latency(graph, device, int(r.batch), seq, dt, phase, fu, memo))
        time[i], over[i], ops[i] = parts
    return time, over, ops, notes


def _not_predicted(reason: str) -> Callable[[pd.DataFrame, DeviceSpec, str], Priced]:
    def price(rows: pd.DataFrame, device: DeviceSpec, family: str) -> Priced:
        n = len(rows)
        nan = np.full(n, np.nan)
        return nan, nan, nan, [f"not predicted: {reason}"] * n
    return price


PRICERS: Mapping[str, Callable[[pd.DataFrame, DeviceSpec, str], Priced]] = {
    "gemm": _price_roofline, "conv": _price_roofline, "attention": _price_roofline,
    "elementwise": _price_roofline, "reduction": _price_roofline, "membw": _price_resident,
    "l2": _price_resident, "launch": _price_launch, "inference": _price_inference,
    "latency": _not_predicted("the spec has no per-level load latency"),
    "collective": _not_predicted("collectives need a system spec (links), not one device"),
}


def with_efficiency(device: DeviceSpec, efficiency: Efficiency,
                    provenance: Mapping[str, str] | None = None) -> DeviceSpec:
    """The device with another efficiency block (e.g. a calibrated one), sources merged."""
    prov = {k: v for k, v in device.provenance.items() if not k.startswith("efficiency.")}
    return dataclasses.replace(device, efficiency=efficiency,
                               provenance={**prov, **(provenance or {})})


def _devices(df: pd.DataFrame, device: DeviceSpec | None,
             efficiency: DeviceSpec | None) -> dict[str, DeviceSpec]:
    if device is not None:
        return {name: device for name in df["hw"].unique()}
    missing = df["hw"] == ""
    if missing.any():
        raise MeasurementError(f"{int(missing.sum())} measurement row(s) name no device spec "
                               "(column hw is empty)", "pass --hw NAME_OR_FILE")
    out = {name: load_device(name) for name in df["hw"].unique()}
    if efficiency is not None:
        out = {k: with_efficiency(d, efficiency.efficiency, efficiency.provenance)
               for k, d in out.items()}
    return out


def _engine_names(df: pd.DataFrame) -> list[str]:
    """The engine profile that prices each inference row ('' for other rows)."""
    names: dict[str, str] = {}
    out = []
    for fam, fw in zip(df["family"], df["framework"].fillna(""), strict=True):
        if fam != "inference":
            out.append("")
            continue
        if fw not in names:
            prof = engine_of_row(fw)
            names[fw] = prof.name if prof else ""
        out.append(names[fw])
    return out


def compare(measurements: pd.DataFrame, device: DeviceSpec | None = None, *,
            efficiency_from: DeviceSpec | None = None, fusion: str = "auto",
            models: ModelResolver | None = None) -> pd.DataFrame:
    """The measurement table plus COMPARE_COLUMNS: predicted_s, error = (predicted -
    measured) / measured, abs_error; rows not predicted keep them empty.

    ``device`` prices every row; without it each row's ``hw`` spec does, with the
    efficiency block of ``efficiency_from`` if given (a calibrated spec). ``fusion``:
    ``auto`` prices each inference row with its framework's fusion mode (fusion_of);
    ``none`` or ``epilogue`` forces one for every row. ``models`` builds the model an
    inference row names (``perfmodel.load_model``); rows of other families need none.
    """
    df = measurements.reset_index(drop=True).copy()
    devices = _devices(df, device, efficiency_from)
    pred, over, ops = (np.full(len(df), np.nan) for _ in range(3))
    notes = np.array([""] * len(df), dtype=object)
    for (hw, family), idx in df.groupby(["hw", "family"], sort=False).indices.items():
        pricer = PRICERS.get(family, _not_predicted(f"no pricer for family {family!r}"))
        if pricer is _price_inference:
            pricer = functools.partial(_price_inference, fusion=fusion, models=models)
        t, o, n, note = pricer(df.iloc[idx], devices[hw], family)
        pred[idx], over[idx], ops[idx], notes[idx] = t, o, n, note
    df["hw_used"] = [devices[h].name for h in df["hw"]]
    df["engine"] = _engine_names(df)
    df["predicted_s"] = pred
    df["overhead_s"] = over
    df["priced_ops"] = ops
    df["error"] = (pred - df["time_s"]) / df["time_s"]
    df["abs_error"] = df["error"].abs()
    df["predict_note"] = notes
    return df
