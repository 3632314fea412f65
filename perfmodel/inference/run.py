"""End-to-end inference: a generation (prefill, then decode with the KV cache growing) or one
forward pass, on one GPU or a tensor- / pipeline- / expert- / data-parallel group, through an
engine, with its memory checked.

For a language model, a batch of B sequences of ``input_len`` prompt tokens generating
``output_len`` tokens each, per data-parallel replica (b = B / dp sequences):

* prefill: the prompt in chunks of the engine's ``chunked_prefill_tokens`` (whole if 0),
  chunk i attending to the (i + 1) c tokens so far; the prefill yields the first token.
* decode: ``output_len - 1`` steps, step j attending to input_len + j tokens, each priced
  (perfmodel.inference.timing.AffinePass: the sum over steps, not n times one step).
* every pass: its kernels behind the launch queue (the engine's host time per kernel, per
  graph node where the engine captures CUDA graphs), plus the engine's serial time per step
  (scheduler, sampling, detokenization); tensor-parallel all-reduces (2 per layer, of the
  pass's tokens x hidden at the activation width) and expert-parallel all-to-alls (dispatch
  and combine of tokens x top-k x hidden per MoE layer) priced on the system's links by
  perfmodel.analytic.network; pipeline stages (llama.cpp's layer split) run one after the
  other for a batch, each boundary a send of tokens x hidden.
* speculative decoding (Leviathan et al., "Fast inference from transformers via speculative
  decoding", ICML 2023, eq. 1): a draft model proposes k tokens per round, the target checks
  them in one pass of k + 1 tokens, and (1 - a^(k+1)) / (1 - a) tokens are accepted per
  round in expectation at acceptance rate a.

TTFT = the prefill (all chunks) and its step; TPOT = the decode's mean step; end-to-end =
TTFT + the decode. A batch past what fits (the engine's share of device memory, the one
memory model perfmodel.analytic.memory) runs in waves of the largest batch that fits, one
after another, stated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.capacity import Extras, largest_fitting
from perfmodel.analytic.memory import COMPONENTS, check_memory_plan
from perfmodel.analytic.network import predict_collective
from perfmodel.analytic.roofline import FUSION_NOTES, roofline
from perfmodel.errors import PlanError, ShapeError
from perfmodel.graph.costs import COST_RULES
from perfmodel.graph.model_graph import LAYER_SCOPE, ModelGraph
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.hardware.system import SystemSpec, list_systems, load_system
from perfmodel.inference.engine import EngineProfile, load_engine
from perfmodel.inference.iteration import IterationCost, attention_terms
from perfmodel.inference.shard import EXPERT_PART, shard
from perfmodel.inference.timing import COMM_BEFORE, AffinePass, Kernels, kernels_of, queue_time
from perfmodel.units import dtype as lookup_dtype
from perfmodel.workload.build import build_workload, fusible_flags, model_context
from perfmodel.workload.job import Job, check_positive
from perfmodel.workload.plan import ParallelPlan, check_plan

__all__ = ["infer", "InferencePrediction", "Speculation", "system_for", "BREAKDOWN",
           "precision_path", "iteration_cost", "prepare"]

BREAKDOWN = ("compute", "memory", "communication", "host")
QUANT_FORMATS = ("fp8", "int8", "int4")
HALF = ("bf16", "fp16")


@dataclass(frozen=True)
class Speculation:
    """Speculative decoding: a ``draft`` model proposes ``tokens`` per round, each accepted
    with probability ``acceptance``."""

    draft: ModelGraph
    tokens: int = 4
    acceptance: float = 0.7

    def __post_init__(self) -> None:
        check_positive("draft_tokens", self.tokens, PlanError, "--draft-tokens", 64)
        if not 0.0 <= self.acceptance < 1.0:
            raise PlanError(f"acceptance rate must be in [0, 1), got {self.acceptance}",
                            "pass --acceptance 0.6 (a share of drafted tokens)")

    @property
    def tokens_per_round(self) -> float:
        """Expected tokens one round yields (Leviathan et al. 2023, eq. 1)."""
        a, k = self.acceptance, self.tokens
        return (1 - a ** (k + 1)) / (1 - a)


@dataclass(frozen=True)
class InferencePrediction:
    """One inference run: its summary (seconds, tokens/s, bytes), the per-GPU memory by
    component, the time by kind, each pass's time, and the assumptions."""

    summary: dict[str, Any]
    memory: dict[str, float]
    breakdown: dict[str, float]
    passes: pd.DataFrame = field(repr=False)
    assumptions: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def fits(self) -> bool:
        return bool(self.summary["fits"])

    def summary_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.summary])

    def memory_frame(self) -> pd.DataFrame:
        cap = self.summary["usable_bytes"]
        return pd.DataFrame({"component": list(self.memory),
                             "bytes": list(self.memory.values()),
                             "share_of_usable": [v / cap if cap else np.nan
                                                 for v in self.memory.values()]})

    def breakdown_frame(self) -> pd.DataFrame:
        total = sum(self.breakdown.values())
        return pd.DataFrame({"component": list(self.breakdown),
                             "seconds": list(self.breakdown.values()),
                             "share": [v / total if total else 0.0
                                       for v in self.breakdown.values()]})

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every table, as a notebook wants them."""
        return {"summary": self.summary_frame(), "memory": self.memory_frame(),
                "breakdown": self.breakdown_frame(), "passes": self.passes}

    def to_dict(self) -> dict[str, Any]:
        return {"warnings": list(self.warnings), "summary": self.summary,
                "memory_bytes": self.memory, "breakdown_s": self.breakdown,
                "assumptions": self.assumptions}


def system_for(device: DeviceSpec, gpus: int) -> SystemSpec:
    """A shipped system of ``device`` with at least ``gpus`` per node (the smallest such);
    PlanError naming --system if there is none."""
    found = _systems_of(device.name, gpus)
    if not found:
        raise PlanError(f"no shipped system has {gpus} x {device.name} in a node, and "
                        f"{gpus} GPUs need links to price their communication",
                        "pass --system NAME_OR_FILE (perfmodel hw --systems) or --gpus 1")
    return min(found, key=lambda f: (f[0], f[1]))[2]


@lru_cache(maxsize=64)
def _systems_of(device: str, gpus: int) -> tuple[tuple[int, str, SystemSpec], ...]:
    """(devices per node, name, system) of the shipped systems of ``device`` that hold
    ``gpus`` in a node."""
    found = []
    for name in list_systems():
        s = load_system(name)
        if s.device == device and s.devices_per_node >= gpus:
            found.append((s.devices_per_node, name, s))
    return tuple(found)


def precision_path(dtype: str, device: DeviceSpec, engine: EngineProfile
                   ) -> tuple[str, str, str | None, str]:
    """(activation dtype, weight dtype, GEMM dtype or None, note) for a requested dtype.

    16- and 32-bit dtypes run as they are. fp8 / int8 / int4 take the engine's kernel path:
    ``native`` runs the GEMMs with both operands narrow where the device has that tensor
    unit, and falls back to weight-only where it does not (stated); ``weight_only`` stores
    weights narrow and runs the GEMM in 16 bits; ``none`` is an error."""
    dt = lookup_dtype(dtype).name
    if dt not in QUANT_FORMATS:
        return dt, dt, None, ""
    path = engine.quant_path(dt)
    # what the GEMMs compute in when the weights alone are narrow: 16 bits where the
    # device has them, else its default (a CPU's fp32)
    half = next((d for d in ("bf16", "fp16") if d in device.dtypes), device.default_dtype)
    if path == "none":
        raise PlanError(f"engine {engine.display_name} has no {dt} kernel path",
                        f"pick another --engine (perfmodel infer --list-engines) or --dtype "
                        f"{half}")
    native = path == "native" and ("tensor", dt) in device.peak_flops
    if native:
        return half, dt, dt, (f"{dt}: GEMMs in {dt} (weights and activations), attention "
                              f"and the other ops in {half}; {engine.display_name}'s "
                              f"native {dt} path")
    why = ("the engine runs it weight-only" if path == "weight_only" else
           f"{device.name} has no {dt} tensor unit: weight-only fallback")
    return half, dt, None, (f"{dt}: weights stored in {dt}, dequantized in the GEMM and "
                            f"computed in {half} ({why})")


def _group(system: SystemSpec, size: int, stride: int) -> tuple[int, int]:
    """(nodes, per node) of a group of ``size`` ranks ``stride`` apart (TP ranks adjacent)."""
    k = system.devices_per_node
    per = max(1, min(size, k // stride)) if stride < k else 1
    return math.ceil(size / per), per


@lru_cache(maxsize=1024)
def _collective(system: SystemSpec, primitive: str, size: float, nodes: int, per: int
                ) -> float:
    if nodes * per < 2 or size <= 0:
        return 0.0
    t = predict_collective(system, primitive, [size], nodes=nodes, per_node=per)
    return float(t.table["time_us"].iloc[0]) * 1e-6


@dataclass(frozen=True)
class _Setup:
    graph: ModelGraph
    device: DeviceSpec
    system: SystemSpec | None
    engine: EngineProfile
    plan: ParallelPlan
    act: str
    weight: str
    kv: str
    gemm: str | None
    imbalance: float


class _Same:
    """A value compared and hashed by identity (a DeviceSpec holds mappings, so it has no
    hash; a cache entry keeps the object alive, so its id is not reused meanwhile)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj


@dataclass(frozen=True)
class _PriceKey:
    graph: ModelGraph
    device: _Same
    system: SystemSpec | None
    fusion: str
    tp_overlap: float
    plan: ParallelPlan
    act: str
    weight: str
    kv: str
    gemm: str | None
    imbalance: float


@lru_cache(maxsize=32)
def _residuals(graph: ModelGraph) -> tuple[np.ndarray, np.ndarray]:
    """Per op of the graph, in order: is it a residual add (COMM_BEFORE), and is it the
    residual add after a mixture-of-experts block."""
    last = np.array([op.name.rsplit(".", 1)[-1] for op in graph.ops], dtype=object)
    layers = np.array([op.layer for op in graph.ops], dtype=object)
    experts = np.array([EXPERT_PART in op.name for op in graph.ops], dtype=bool)
    residual = np.isin(last, COMM_BEFORE)
    moe = residual & (last == "mlp_residual") & np.isin(layers, list(set(layers[experts])))
    return residual, moe


def _comm_rows(table: pd.DataFrame, k: _PriceKey, tokens: float) -> np.ndarray:
    """Seconds of communication to insert before each row (the rows are the graph's ops, in
    order): the TP all-reduce before every residual add (its share not overlapped), plus
    the EP dispatch and combine before the residual add of each MoE layer."""
    plan, shape, system = k.plan, k.graph.shape, k.system
    out = np.zeros(len(table))
    if shape is None or system is None:
        return out
    residual, moe = _residuals(k.graph)
    act_b = lookup_dtype(k.act).nbytes
    tp, ep = plan.tensor_parallel, plan.expert_parallel
    if tp > 1:
        n, per = _group(system, tp, 1)
        ar = _collective(system, "all_reduce", tokens * shape.hidden_size * act_b, n, per)
        out += np.where(residual, ar * (1.0 - k.tp_overlap), 0.0)
    if ep > 1 and shape.is_moe:
        n, per = _group(system, ep, tp)
        size = tokens / tp * shape.num_experts_per_tok * shape.hidden_size * act_b
        out += np.where(moe, 2 * _collective(system, "all_to_all", size, n, per), 0.0)
    return out


def _p2p(s: _Setup, tokens: float) -> float:
    """Seconds of the pipeline boundaries one pass crosses: (pp - 1) sends of tokens x
    hidden activations (/tp: each TP rank sends its share)."""
    pp = s.plan.pipeline_parallel
    if pp == 1 or s.system is None or s.graph.shape is None:
        return 0.0
    size = tokens * s.graph.shape.hidden_size * lookup_dtype(s.act).nbytes \
        / s.plan.tensor_parallel
    n, per = _group(s.system, 2, s.plan.tensor_parallel)
    return (pp - 1) * _collective(s.system, "send_recv", size, n, per)


def _price(s: _Setup, graph: ModelGraph, phase: str, batch: int, seq: int,
           context: int | None = None) -> Kernels:
    """The kernels of one pass on one GPU (all pipeline stages' layers: a batch visits the
    stages in turn) at ``batch`` sequences of ``seq`` new tokens. Cached on what sets them
    (not the engine's host figures: a fit of those re-prices nothing)."""
    return _price_cached(_PriceKey(graph, _Same(s.device), s.system, s.engine.fusion,
                                   s.engine.tp_overlap, s.plan, s.act, s.weight, s.kv,
                                   s.gemm, s.imbalance), phase, batch, seq, context)


def _layer_of(op_layer: str) -> str:
    """``layers.N`` of an op's scope (``""`` for ops outside the blocks)."""
    if not op_layer.startswith(LAYER_SCOPE):
        return ""
    return LAYER_SCOPE + op_layer[len(LAYER_SCOPE):].split(".", 1)[0]


@lru_cache(maxsize=32)
def _distinct_layers(graph: ModelGraph) -> tuple[ModelGraph, np.ndarray, np.ndarray]:
    """The graph with one block of each distinct kind (the first of its kind; blocks are
    alike when their ops match, in order, in kind, shapes, weights and attributes), for
    each op of the whole graph, in order, the index of the op that prices it in the
    reduced graph, and the whole graph's epilogue-fusion flags (a block's last op fuses
    differently at the end of the model). An 80-layer Llama prices 1 block, not 80."""
    keys = [_layer_of(op.layer) for op in graph.ops]
    blocks: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key:
            blocks.setdefault(key, []).append(i)
    first_of: dict[tuple, str] = {}
    rep: dict[str, str] = {}
    for key, idx in blocks.items():
        sig = tuple((op.kind, op.inputs, op.outputs, op.weights, op.tied,
                     tuple(sorted((k, repr(v)) for k, v in op.attrs.items())))
                    for op in (graph.ops[i] for i in idx))
        rep[key] = first_of.setdefault(sig, key)
    kept = [i for i, key in enumerate(keys) if rep.get(key, "") == key]
    names = {graph.ops[i].name for i in kept}
    edges = tuple(e for e in graph.edges if e[0] in names and e[1] in names)
    reduced = ModelGraph(graph.name, tuple(graph.ops[i] for i in kept), edges, graph.inputs,
                         graph.meta, graph.shape)
    position = {i: j for j, i in enumerate(kept)}
    index = np.empty(len(graph.ops), dtype=np.int64)
    for i, key in enumerate(keys):
        if not key:
            index[i] = position[i]
    for key, idx in blocks.items():
        for i, r in zip(idx, blocks[rep[key]], strict=True):
            index[i] = position[r]
    flags = fusible_flags(graph, graph.ops, [op.kind in COST_RULES for op in graph.ops])
    return reduced, index, np.asarray(flags, dtype=bool)


@lru_cache(maxsize=512)
def _price_cached(k: _PriceKey, phase: str, batch: int, seq: int, context: int | None
                  ) -> Kernels:
    reduced, index, fusible = _distinct_layers(k.graph)
    wl = build_workload(reduced, batch=batch, seq=seq, dtype=k.act, phase=phase,
                        weight_dtype=k.weight, kv_dtype=k.kv, context=context)
    tokens = float(batch * (1 if phase == "decode" else seq))
    table = shard(wl.table, reduced.shape, k.plan.tensor_parallel, k.plan.expert_parallel,
                  tokens, k.imbalance)
    if k.gemm:
        table = table.copy()
        table.loc[table["kind"].astype(str) == "linear", "dtype"] = k.gemm
    if len(index) != len(table):  # every op of the whole graph, in order
        table = table.iloc[index].reset_index(drop=True)
        table["fusible"] = fusible
    ops = roofline(table, k.device.obj, dtype_fallback=True, fusion=k.fusion)
    return kernels_of(ops, _comm_rows(ops, k, tokens))


def _host(s: _Setup, graphs: bool) -> float:
    return s.engine.graph_per_kernel_s if graphs else s.engine.host_per_kernel_s


@dataclass
class _Timeline:
    """Passes as they run: (kind, context, seconds, gpu seconds, compute, memory, comm,
    kernels launched, their launch floor in seconds)."""

    rows: list[tuple[str, float, float, float, float, float, float, int, float]] = field(
        default_factory=list)
    waves: list[str] = field(default_factory=list)

    def label(self, wave: str) -> None:
        """Mark the rows added since the last label as belonging to ``wave``."""
        self.waves += [wave] * (len(self.rows) - len(self.waves))

    def add(self, kind: str, lengths: np.ndarray, ap: AffinePass, host: float,
            extra: float, p2p: float) -> float:
        """Passes of ``ap`` at ``lengths``; each adds ``extra`` serial seconds (the step's
        CPU work, a graph launch) and ``p2p`` (pipeline sends)."""
        each, comp, mem, comm = ap.run(lengths, host)
        total = float(each.sum())
        gpu = comp + mem + comm
        n, floor = len(ap.at0), float(ap.at0.floor.sum())
        for t, e, g, c, m, k in zip(lengths, each, gpu, comp, mem, comm, strict=True):
            self.rows.append((kind, float(t), float(e + extra + p2p), float(g), float(c),
                              float(m), float(k + p2p), n, floor))
        return total + len(lengths) * (extra + p2p)

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=["pass", "context", "seconds", "gpu_s",
                                              "compute_s", "memory_s", "communication_s",
                                              "kernels", "floor_s"])
        df["host_s"] = (df["seconds"] - df["gpu_s"]).clip(lower=0.0)
        df["wave"] = self.waves + ["full"] * (len(df) - len(self.waves))
        return df


def _affine(s: _Setup, graph: ModelGraph, phase: str, batch: int, seq: int,
            lo: int, hi: int) -> AffinePass:
    """A pass priced at contexts lo and hi (decode: KV length; prefill: attended length)."""
    def at(t: int) -> Kernels:
        return (_price(s, graph, "decode", batch, t) if phase == "decode"
                else _price(s, graph, "prefill", batch, seq, context=t))
    k0 = at(lo)
    return AffinePass(k0, at(hi) if hi > lo else k0, float(lo), float(hi))


def _prefill(s: _Setup, tl: _Timeline, b: int, length: int, chunk: int) -> float:
    c = min(chunk or length, length)
    full, rest = divmod(length, c)
    eng = s.engine
    host, extra = _host(s, eng.prefill_graphs), eng.per_step_s + (
        eng.host_per_kernel_s if eng.prefill_graphs else 0.0)
    total = 0.0
    if full:
        ap = _affine(s, s.graph, "prefill", b, c, c, c * full)
        total += tl.add("prefill", c * np.arange(1, full + 1), ap, host, extra,
                        _p2p(s, b * c))
    if rest:
        ap = _affine(s, s.graph, "prefill", b, rest, length, length)
        total += tl.add("prefill", np.array([length]), ap, host, extra, _p2p(s, b * rest))
    return total


def _decode(s: _Setup, tl: _Timeline, b: int, length: int, steps: int) -> float:
    if steps <= 0:
        return 0.0
    eng = s.engine
    host, extra = _host(s, eng.decode_graphs), eng.per_step_s + (
        eng.host_per_kernel_s if eng.decode_graphs else 0.0)
    ap = _affine(s, s.graph, "decode", b, 1, length + 1, length + steps)
    return tl.add("decode", length + np.arange(1, steps + 1), ap, host, extra, _p2p(s, b))


def _speculative(s: _Setup, tl: _Timeline, b: int, length: int, steps: int,
                 spec: Speculation) -> float:
    """Rounds of k draft decodes and one target pass of k + 1 tokens until ``steps`` tokens
    are out (expected tokens per round: Speculation.tokens_per_round)."""
    if steps <= 0:
        return 0.0
    k, per = spec.tokens, spec.tokens_per_round
    rounds = math.ceil(steps / per)
    starts = length + per * np.arange(rounds)
    eng = s.engine
    host, extra = _host(s, eng.decode_graphs), eng.per_step_s + (
        eng.host_per_kernel_s if eng.decode_graphs else 0.0)
    hi = int(length + steps + k + 1)
    verify = _affine(s, s.graph, "prefill", b, k + 1, length + k + 1, hi)
    total = tl.add("verify", starts + k + 1, verify, host, extra, _p2p(s, b * (k + 1)))
    draft = _affine(s, spec.draft, "decode", b, 1, length + 1, hi)
    for i in range(k):
        total += tl.add("draft", starts + i + 1, draft, host,
                        eng.host_per_kernel_s if eng.decode_graphs else 0.0, 0.0)
    return total


def _forward(s: _Setup, tl: _Timeline, b: int, length: int) -> float:
    """A non-generative model's one forward pass (of ``length`` tokens for an encoder)
    behind the launch queue, plus the engine's per-call time."""
    ks = _price(s, s.graph, "inference", b, length)
    eng = s.engine
    gpu = ks.gpu
    t = float(queue_time(gpu, _host(s, eng.prefill_graphs))) + eng.per_call_s
    roof = np.maximum(ks.compute, ks.memory) + ks.floor
    comp = float(np.where(ks.compute >= ks.memory, roof, 0).sum())
    mem = float(np.where(ks.compute < ks.memory, roof, 0).sum())
    tl.rows.append(("forward", float(length), t, float(gpu.sum()), comp, mem,
                    float(ks.comm.sum()), len(ks), float(ks.floor.sum())))
    return t


def _largest_batch(graph: ModelGraph, plan: ParallelPlan, job: Job, usable: float,
                   extras: Extras) -> int | None:
    """The largest batch that fits (analytic.capacity.largest_fitting's answer): at
    inference the footprint is A + B x sequences per replica (KV cache and workspace grow
    with them, nothing else does), so two evaluations give the candidate and two more
    check it; the search runs where the check fails."""
    dp = plan.data_parallel

    def total(b: int) -> float:
        return float(extras.total(graph, plan, replace(job, batch=b)))

    one, two = total(dp), total(2 * dp)
    if one > usable:
        return None
    slope = two - one
    if slope > 0:
        per = int((usable - one) // slope) + 1  # sequences per replica
        cand = per * dp
        if per < 1 << 24 and total(cand) <= usable < total(cand + 1):
            return cand
    return largest_fitting(graph, plan, job, usable, "batch", extras)


def _memory(s: _Setup, job: Job) -> tuple[dict[str, float], Extras, float]:
    """Bytes per GPU by component, the footprint's extras, and the bytes the engine lets
    the run use (EngineProfile.usable_bytes, from what weights and overhead take)."""
    extras = Extras(overhead_bytes=s.engine.memory_overhead_bytes, device=s.device)
    fp = extras.footprint(s.graph, s.plan, job)
    mem = {k: float(fp[k]) for k in (*COMPONENTS, "total")}
    usable = s.engine.usable_bytes(s.device.memory_capacity, mem["weights"] + mem["overhead"])
    return mem, extras, usable


# the software stack a device's vendor runs (EngineProfile.stack)
VENDOR_STACKS = {"nvidia": ("cuda",), "amd": ("rocm",), "intel": ("habana",),
                 "habana": ("habana",), "google": ("tpu",)}


def _stack_warnings(engine: EngineProfile, device: DeviceSpec) -> list[str]:
    """A warning when the profile is for another vendor's stack (vLLM's CUDA profile on an
    AMD GPU: its figures are for the wrong software)."""
    want = VENDOR_STACKS.get(device.vendor.lower())
    if not want or engine.stack in (*want, "any"):
        return []
    return [f"engine profile {engine.name!r} is for the {engine.stack} stack and "
            f"{device.name} ({device.vendor}) runs {want[0]}: its host figures may not hold "
            f"(perfmodel infer --list-engines shows the {want[0]} profiles)"]


def _check(graph: ModelGraph, plan: ParallelPlan, system: SystemSpec | None) -> None:
    shape = graph.shape
    if shape is None and (plan.tensor_parallel > 1 or plan.pipeline_parallel > 1
                          or plan.expert_parallel > 1):
        raise PlanError(f"{graph.name}: tensor, pipeline and expert parallel inference is "
                        "modelled for transformers", "use --tp 1 --pp 1 --ep 1 (replicas "
                        "with --dp work for any model)")
    if plan.context_parallel > 1 or plan.sequence_parallel or plan.zero_stage:
        raise PlanError("context parallelism, sequence parallelism and ZeRO are training "
                        "splits", "use --tp, --pp, --ep and --dp for inference")
    if plan.expert_parallel > 1 and shape is not None and not shape.is_moe:
        raise PlanError(f"expert parallelism needs a mixture-of-experts model, and "
                        f"{graph.name} is dense", "use --ep 1")
    check_plan(plan, shape=shape, name=graph.name,
               devices_per_node=system.devices_per_node if system else None)


def infer(graph: ModelGraph, device: DeviceSpec, *, engine: EngineProfile | str = "pytorch",
          batch: int | str = 1, input_len: int | None = None, output_len: int = 1,
          dtype: str | None = None, kv_dtype: str | None = None,
          plan: ParallelPlan | None = None, system: SystemSpec | None = None,
          chunk_tokens: int | None = None, imbalance: float = 1.0,
          speculation: Speculation | None = None) -> InferencePrediction:
    """Predict one inference run (see the module docstring).

    ``batch`` is the sequences (or samples) served together over all replicas, or ``"max"``
    for the largest that fits. ``input_len`` / ``output_len``: prompt and generated tokens
    (a language model; others run one forward of their default input). ``plan``: tp, pp,
    ep, dp (perfmodel.workload.plan); several GPUs need a ``system`` for their links
    (``system_for`` picks a shipped one). ``chunk_tokens`` overrides the engine's prefill
    chunk; ``imbalance`` (>= 1) is the busiest expert-parallel rank's load over the mean.
    """
    s, note = prepare(graph, device, engine=engine, dtype=dtype, kv_dtype=kv_dtype,
                      plan=plan, system=system, imbalance=imbalance)
    eng, plan, act, weight, kv = s.engine, s.plan, s.act, s.weight, s.kv
    if chunk_tokens is not None:
        check_positive("chunk_tokens", chunk_tokens, ShapeError, "--chunk-tokens")
    llm = bool(graph.meta.get("is_llm", False))
    out = int(output_len) if llm else 0
    length = input_len if input_len is not None else graph.default_seq  # prompt / encoder
    check_positive("input_len", length, ShapeError, "--input-len")
    if llm:
        check_positive("output_len", out, ShapeError, "--output-len")
    job = Job(phase="decode" if llm else "inference", batch=1,
              seq=length + out if llm else length, dtype=act,
              weight_dtype=weight, kv_dtype=kv)
    check_memory_plan(graph, plan, job)
    _, extras, usable = _memory(s, job)
    max_batch = _largest_batch(graph, plan, job, usable, extras)
    warnings: list[str] = _stack_warnings(eng, device)
    if batch == "max":
        if max_batch is None:
            raise PlanError(f"{graph.name} does not fit on {plan.devices} x {device.name} "
                            f"with {eng.display_name} even at batch 1",
                            "add GPUs (--tp / --pp), or a narrower --dtype")
        batch = max_batch
    if isinstance(batch, str):
        raise ShapeError(f"batch must be a positive integer or 'max', got {batch!r}",
                         "pass --batch 8 or --batch max")
    check_positive("batch", batch, ShapeError, "--batch")
    if batch < plan.data_parallel:
        raise PlanError(f"batch {batch} leaves data-parallel replicas idle (dp "
                        f"{plan.data_parallel})", f"pass --batch {plan.data_parallel} or more")
    wave = min(batch, max_batch) if max_batch else batch
    waves = math.ceil(batch / wave)
    mem, _, _ = _memory(s, replace(job, batch=wave))
    if speculation is not None:
        draft_mem = Extras(device=device).footprint(speculation.draft, plan,
                                                    replace(job, batch=wave))
        for k in ("weights", "kv_cache", "workspace"):
            mem[k] += float(draft_mem[k])
        mem["total"] = sum(mem[k] for k in COMPONENTS)
    fits = mem["total"] <= usable
    if not fits:
        warnings.append(
            f"DOES NOT FIT: {mem['total'] / 1e9:.1f} GB per GPU > {usable / 1e9:.1f} GB "
            f"usable ({eng.memory_fraction:g} of {device.memory_capacity / 1e9:.1f} GB"
            f"{' free after the weights' if eng.memory_fraction_of == 'free' else ''} under "
            f"{eng.display_name}); the times below are for a run that cannot happen")
    elif waves > 1:
        warnings.append(f"batch {batch} does not fit at once: it runs in {waves} waves of "
                        f"up to {wave} sequences, one after another")
    tl = _Timeline()
    full, rest = divmod(batch, wave)
    first_ttft = first_e2e = total = 0.0
    for count, w in ((full, wave), (1 if rest else 0, rest)):
        if not count:
            continue
        b = math.ceil(w / plan.data_parallel)  # sequences per replica; priced once a size
        if llm:
            chunk = chunk_tokens if chunk_tokens is not None else eng.chunked_prefill_tokens
            ttft = _prefill(s, tl, b, length, chunk)
            dec = (_speculative(s, tl, b, length, out - 1, speculation) if speculation
                   else _decode(s, tl, b, length, out - 1))
            e2e = ttft + dec
        else:
            ttft = e2e = _forward(s, tl, b, length)
        if not first_e2e:
            first_ttft, first_e2e = ttft, e2e
        total += count * e2e
        tl.label("full" if w == wave and full else "last")
    passes = tl.frame()
    summary = _summary(s, batch, length, out, first_ttft, first_e2e, total, waves, wave,
                       max_batch, mem, usable, fits, llm)
    breakdown = _breakdown(passes, full)
    assumptions = _assumptions(s, note, chunk_tokens, speculation, waves)
    return InferencePrediction(summary, mem, breakdown, passes, assumptions, tuple(warnings))


def _breakdown(passes: pd.DataFrame, full_waves: int) -> dict[str, float]:
    """Seconds of the whole run by kind: the passes of one full wave (priced once) count
    ``full_waves`` times, a smaller last wave's once."""
    wave = passes["wave"].to_numpy() == "full"
    weight = np.where(wave, max(full_waves, 1), 1.0)
    return {"compute": float(passes["compute_s"] @ weight),
            "memory": float(passes["memory_s"] @ weight),
            "communication": float(passes["communication_s"] @ weight),
            "host": float(passes["host_s"] @ weight)}


def _summary(s: _Setup, batch: int, length: int, out: int, ttft: float, e2e: float,
             total: float, waves: int, wave: int, max_batch: int | None,
             mem: dict[str, float], usable: float, fits: bool, llm: bool) -> dict[str, Any]:
    plan = s.plan
    tpot = (e2e - ttft) / (out - 1) if llm and out > 1 else float("nan")
    return {
        "model": s.graph.name, "device": s.device.name,
        "system": s.system.name if s.system else None, "engine": s.engine.name,
        "gpus": plan.devices, "tp": plan.tensor_parallel, "pp": plan.pipeline_parallel,
        "ep": plan.expert_parallel, "dp": plan.data_parallel,
        "batch": batch, "input_len": length if llm else None,
        "output_len": out if llm else None, "dtype": s.act, "weight_dtype": s.weight,
        "gemm_dtype": s.gemm or s.act, "kv_dtype": s.kv,
        "ttft_s": ttft if llm else float("nan"), "tpot_s": tpot,
        "latency_s": e2e, "total_s": total,
        "input_tokens_per_s": batch * length / total if llm else float("nan"),
        "output_tokens_per_s": batch * out / total if llm else float("nan"),
        "total_tokens_per_s": batch * (length + out) / total if llm else float("nan"),
        "requests_per_s": batch / total,
        "waves": waves, "wave_batch": wave, "max_batch": max_batch,
        "memory_per_gpu_bytes": mem["total"], "usable_bytes": usable,
        "capacity_bytes": s.device.memory_capacity, "fits": fits,
    }


def _assumptions(s: _Setup, note: str, chunk: int | None, spec: Speculation | None,
                 waves: int) -> dict[str, Any]:
    eng = s.engine
    free = eng.memory_fraction_of == "free"
    out: dict[str, Any] = {
        "method": "per pass: roofline kernels (perfmodel.analytic.roofline) behind a launch "
                  "queue (host time per kernel), plus the engine's serial time per step; "
                  "decode summed step by step with the KV cache growing",
        "engine": eng.describe(),
        "fusion": FUSION_NOTES[eng.fusion],
        "host_per_kernel": ("CUDA/HIP graph node" if eng.decode_graphs else "eager launch")
        + " in decode; " + ("graph node" if eng.prefill_graphs else "eager launch")
        + " in prefill",
        "precision": note or f"{s.act} throughout",
        "prefill_chunk_tokens": chunk if chunk is not None else eng.chunked_prefill_tokens,
        "tensor_parallel": "2 all-reduces per layer of tokens x hidden, before the residual "
                           f"adds; {eng.tp_overlap:.0%} hidden under compute"
        if s.plan.tensor_parallel > 1 else "none",
        "pipeline": "stages run one after another for a batch (one batch in flight); "
                    "(pp - 1) sends of tokens x hidden / tp per pass"
        if s.plan.pipeline_parallel > 1 else "none",
        "expert_parallel": f"experts over {s.plan.expert_parallel} ranks carved out of the "
                           "data-parallel replicas (Megatron-Core); dispatch and combine "
                           "all-to-all per MoE layer; busiest rank at "
                           f"{s.imbalance:g} x the mean load"
        if s.plan.expert_parallel > 1 else "none",
        "memory": f"the one memory model (perfmodel.analytic.memory) at the end of the "
                  f"generation, against {eng.memory_fraction:g} of the device's memory"
                  f"{' free after weights and overhead' if free else ''} "
                  f"({eng.display_name}); engine overhead "
                  f"{eng.memory_overhead_bytes / 1e9:g} GB",
        "waves": f"{waves} waves of the largest batch that fits" if waves > 1 else "one wave",
        "system": s.system.display_name if s.system else "one device",
    }
    if spec is not None:
        out["speculative"] = (f"draft {spec.draft.name} proposes {spec.tokens} tokens per "
                              f"round, acceptance {spec.acceptance:g}: "
                              f"{spec.tokens_per_round:.2f} tokens per round (Leviathan et "
                              "al. 2023, eq. 1); the draft runs on the same GPUs and plan")
    return out


def prepare(graph: ModelGraph, device: DeviceSpec, *, engine: EngineProfile | str = "pytorch",
            dtype: str | None = None, kv_dtype: str | None = None,
            plan: ParallelPlan | None = None, system: SystemSpec | None = None,
            imbalance: float = 1.0) -> tuple[_Setup, str]:
    """The checked setup of a run (engine, plan, system, precision path) and the
    precision note, as ``infer`` makes it; for callers that price passes themselves
    (``iteration_cost``)."""
    eng = load_engine(engine) if isinstance(engine, str) else engine
    plan = plan or ParallelPlan()
    if plan.devices > 1 and system is None:
        system = system_for(device, plan.devices)
    _check(graph, plan, system)
    if not 1.0 <= float(imbalance) <= 64.0:
        raise PlanError(f"expert load imbalance must be in [1, 64], got {imbalance}",
                        "pass --imbalance 1.0 (balanced) to 2.0")
    act, weight, gemm, note = precision_path(dtype or device.default_dtype, device, eng)
    device.check_dtype(act)
    kv = lookup_dtype(kv_dtype).name if kv_dtype else act
    return _Setup(graph, device, system, eng, plan, act, weight, kv, gemm,
                  float(imbalance)), note


def iteration_cost(s: _Setup, *, max_tokens: int = 8192, lengths: tuple[int, ...] = (),
                   context: int = 4096, max_seqs: int = 256) -> IterationCost:
    """The cost of a serving iteration on one replica (perfmodel.inference.iteration) from
    the same pricing as ``infer``: the kernels but attention and the LM head at token
    counts 1, 2, 4, ..., ``max_tokens`` and at ``lengths`` (prompt lengths priced exactly),
    the LM head at 1, 2, 4, ..., ``max_seqs`` sequences, attention from two decode passes
    (KV 1 and ``context``) and two prompt passes (a chunk of the median of ``lengths`` at
    its own length and at ``context``)."""
    graph = s.graph
    check_positive("max_tokens", max_tokens, ShapeError, "--max-tokens")
    grid = sorted({*(1 << i for i in range(int(math.log2(max_tokens)) + 1)), max_tokens,
                   *(n for n in lengths if 0 < n <= max_tokens)})
    limit = model_context(graph) or max_tokens
    linear = []
    for n in grid:  # n tokens as b sequences of n / b within the trained context
        b = max(1, math.ceil(n / limit))
        k = _price(s, graph, "prefill", b, n // b, context=n // b)
        other = ~k.is_attention & ~k.is_head
        linear.append(float(k.gpu[other].sum()) * n / (b * (n // b)))
    kernels = len(k)
    head_grid = sorted({*(1 << i for i in range(int(math.log2(max_seqs)) + 1)), max_seqs})
    head = []
    for b in head_grid:
        k = _price(s, graph, "decode", b, 1)
        head.append(float(k.gpu[k.is_head].sum()))
    d0, d1 = _price(s, graph, "decode", 1, 1), _price(s, graph, "decode", 1, context)
    decode = attention_terms(d0, d1, (1.0, float(context)), (1.0, float(context)))
    c = int(np.median(lengths)) if lengths else min(512, context)
    c = max(1, min(c, context))
    hi = max(context, c + 1)
    p0 = _price(s, graph, "prefill", 1, c, context=c)
    p1 = _price(s, graph, "prefill", 1, c, context=hi)
    causal = bool(graph.shape.is_decoder) if graph.shape is not None else True
    pairs = (IterationCost.chunk_pairs(c, c, causal), IterationCost.chunk_pairs(c, hi, causal))
    prefill = attention_terms(p0, p1, pairs, (float(2 * c), float(hi + c)))
    eng = s.engine
    return IterationCost(np.asarray(grid, float), np.asarray(linear),
                         np.asarray(head_grid, float), np.asarray(head), kernels, decode,
                         prefill,
                         eng.host_per_kernel_s, eng.graph_per_kernel_s, eng.per_step_s,
                         eng.decode_graphs, causal=causal)
