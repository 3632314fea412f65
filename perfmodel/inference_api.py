"""``pm.infer``: one inference run from names (a model, a device or a system, an engine), the
call ``perfmodel infer`` makes and a notebook makes.

This module sits at the API edge beside ``perfmodel/__init__.py`` and ``catalog.py``: it
turns names into records (``load_model`` from the zoo, ``load_device``, ``load_system``,
``load_engine``) and hands them to perfmodel.inference.run.infer, which takes records only.

    >>> from perfmodel.inference_api import infer
    >>> pred = infer("llama-2-7b", "h100", engine="vllm", batch=8, input_len=512,
    ...              output_len=64)
    >>> pred.fits, pred.summary["tp"], pred.summary["output_len"]
    (True, 1, 64)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # serving is imported when used: perfmodel infer does not load it
    import pandas as pd

    from perfmodel.serving.run import ServeResult

from perfmodel.errors import PlanError, ShapeError, UnknownNameError, did_you_mean
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.shape import ModelShape
from perfmodel.hardware.load import load_device
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.hardware.system import SystemSpec, load_system
from perfmodel.inference.engine import SPLITS, EngineProfile, load_engine
from perfmodel.inference.run import InferencePrediction, Speculation
from perfmodel.inference.run import infer as infer_run
from perfmodel.workload.build import check_context, model_context
from perfmodel.workload.job import check_positive
from perfmodel.workload.plan import ParallelPlan
from perfmodel.zoo.registry import load_model, trace_options

__all__ = ["infer", "serve", "serve_search", "resolve_split", "default_input_len"]

Model = str | Path | ModelShape | ModelGraph


def _graph(model: Model, batch: int | str, seq: int | None) -> ModelGraph:
    if isinstance(model, ModelGraph):
        return model
    opts = trace_options(str(model), batch if isinstance(batch, int) else None, seq) \
        if isinstance(model, str | Path) else {}
    return load_model(model, **opts)


def _where(hw: str | Path | DeviceSpec | None, system: str | Path | SystemSpec | None
           ) -> tuple[DeviceSpec, SystemSpec | None]:
    """(device, system): a device alone, or a system and its device; not both."""
    if hw is not None and system is not None:
        raise PlanError("pass a device or a system, not both (a system names its device)",
                        "pass --hw alone (the shipped system is picked for several GPUs) "
                        "or --system alone")
    if system is not None:
        sys_spec = system if isinstance(system, SystemSpec) else load_system(system)
        return load_device(sys_spec.device), sys_spec
    if hw is None:
        raise PlanError("an inference run needs a device or a system",
                        "pass --hw NAME (perfmodel hw) or --system NAME (perfmodel hw "
                        "--systems)")
    return (hw if isinstance(hw, DeviceSpec) else load_device(hw)), None


def resolve_split(engine: EngineProfile, gpus: int | None, split: str | None, tp: int,
                  pp: int, dp: int) -> tuple[int, int]:
    """(tp, pp) for ``gpus`` GPUs split by ``split`` (default: the engine's): ``tensor`` is
    tp = gpus / dp, ``layer`` is pp = gpus / dp (llama.cpp's --split-mode layer). Without
    ``gpus``, tp and pp as given. PlanError where they disagree.

    >>> from perfmodel.inference.engine import load_engine
    >>> resolve_split(load_engine("vllm"), 4, None, 1, 1, 1)
    (4, 1)
    >>> resolve_split(load_engine("vllm"), 4, "layer", 1, 1, 2)
    (1, 2)
    """
    if gpus is None:
        if split is not None:
            raise PlanError(f"--split {split} says how --gpus are shared, and --gpus is not "
                            "given", "pass --gpus N with --split, or --tp / --pp alone")
        return tp, pp
    check_positive("gpus", gpus, PlanError, "--gpus", 1 << 20)
    given = split is not None
    split = (split or engine.split).lower()
    if split not in SPLITS:
        raise UnknownNameError(f"unknown split {split!r}", did_you_mean(split, SPLITS))
    if tp == 1 and pp == 1:
        if gpus % dp:
            raise PlanError(f"--gpus {gpus} is not a multiple of --dp {dp}",
                            f"pass --gpus {dp * max(1, gpus // dp)} or another --dp")
        n = gpus // dp
        return (n, 1) if split == "tensor" else (1, n)
    if tp * pp * dp != gpus:
        raise PlanError(f"--gpus {gpus} does not match tp {tp} x pp {pp} x dp {dp} = "
                        f"{tp * pp * dp}", "pass --gpus N with --split alone, or --tp / --pp "
                        "/ --dp alone")
    if given and (pp if split == "tensor" else tp) > 1:
        raise PlanError(f"--split {split} puts the GPUs in "
                        + ("tensor-parallel groups" if split == "tensor" else
                           "pipeline stages") + f", but tp {tp} x pp {pp} was asked",
                        "pass --gpus N --split alone, or --tp / --pp alone")
    return tp, pp


def default_input_len(graph: ModelGraph, output_len: int) -> int:
    """A language model's prompt when none is given: its default sequence, shortened so
    that prompt + output stay within its trained context."""
    context = model_context(graph)
    room = context - output_len if context and isinstance(output_len, int) else 0
    return min(graph.default_seq, room) if room > 0 else graph.default_seq


def infer(model: Model, hw: str | Path | DeviceSpec | None = None, *,
          system: str | Path | SystemSpec | None = None,
          engine: str | Path | EngineProfile = "pytorch", batch: int | str = 1,
          input_len: int | None = None, output_len: int = 128, dtype: str | None = None,
          kv_dtype: str | None = None, tp: int = 1, pp: int = 1, ep: int = 1, dp: int = 1,
          gpus: int | None = None, split: str | None = None, chunk_tokens: int | None = None,
          imbalance: float = 1.0, draft: Model | None = None, draft_tokens: int = 4,
          acceptance: float = 0.7, allow_long_context: bool = False
          ) -> InferencePrediction:
    """Predict one inference run: ``model`` (anything ``load_model`` takes, or a graph) on
    ``hw`` (a device: one GPU, or ``gpus`` / tp x pp x dp of them in the shipped system of
    that device) or on ``system`` (its device), served by ``engine`` (a shipped profile's
    name, ``perfmodel infer --list-engines``, or a profile YAML).

    ``batch``: sequences served together (int, or ``"max"``: the largest that fits).
    ``input_len`` / ``output_len``: prompt and generated tokens of a language model (other
    models run one forward of their default input; ``input_len`` is an encoder's sequence).
    ``gpus`` with ``split`` (``tensor`` or ``layer``; default the engine's) is tp or pp of
    that size. ``draft``: a draft model for speculative decoding (``draft_tokens`` per round,
    each accepted with probability ``acceptance``). A prompt plus output past the model's
    trained context is refused unless ``allow_long_context``; without ``input_len`` a language
    model's prompt is its default sequence, less ``output_len`` where both would pass its
    trained context. Returns the perfmodel.inference.run.InferencePrediction (``.summary``,
    ``.frames()``, ``.fits``).
    """
    device, sys_spec = _where(hw, system)
    eng = engine if isinstance(engine, EngineProfile) else load_engine(engine)
    if input_len is not None:  # 0 is a bad size, not "the default"
        check_positive("input_len", input_len, ShapeError, "--input-len")
    graph = _graph(model, batch, input_len)
    if graph.meta.get("is_llm", False):
        input_len = default_input_len(graph, output_len) if input_len is None else input_len
        sizes = all(isinstance(v, int) and v > 0 for v in (input_len, output_len))
        try:  # bad sizes are refused below, each with its own message
            check_context(graph, input_len + output_len if sizes else None,
                          allow_long_context)
        except PlanError as exc:  # the same limit, told in this call's terms
            raise PlanError(f"{input_len} prompt + {output_len} output tokens: {exc.message}",
                            "pass a shorter --input-len / --output-len, or "
                            "--allow-long-context to price it anyway") from None
    shape = graph.shape
    if ep > 1 and shape is not None and not shape.is_moe:  # before the plan's dp rule
        raise PlanError(f"expert parallelism needs a mixture-of-experts model, and "
                        f"{graph.name} is dense", "use --ep 1")
    tp, pp = resolve_split(eng, gpus, split, tp, pp, dp)
    plan = ParallelPlan(data_parallel=dp, tensor_parallel=tp, pipeline_parallel=pp,
                        expert_parallel=ep)
    spec = None if draft is None else Speculation(_graph(draft, batch, input_len),
                                                  draft_tokens, acceptance)
    return infer_run(graph, device, engine=eng, batch=batch, input_len=input_len,
                     output_len=output_len, dtype=dtype, kv_dtype=kv_dtype, plan=plan,
                     system=sys_spec, chunk_tokens=chunk_tokens, imbalance=imbalance,
                     speculation=spec)


def serve(model: Model, hw: str | Path | DeviceSpec | None = None, *,
          system: str | Path | SystemSpec | None = None,
          engine: str | Path | EngineProfile = "vllm", rate: float = 1.0,
          requests_n: int = 1000, input_len: str | int = 1024,
          output_len: str | int = 256, arrival: str = "poisson", seed: int = 0,
          trace: str | Path | None = None, tp: int = 1, pp: int = 1, gpus: int | None = None,
          split: str | None = None, replicas: int = 1, router: str = "round-robin",
          policy: str = "continuous", max_num_seqs: int = 256,
          max_batched_tokens: int | None = None, chunked_prefill: bool | None = None,
          block_size: int = 16, prefix_hit: float = 0.0, preemption: str = "recompute",
          dtype: str | None = None, kv_dtype: str | None = None,
          slo_ttft: float | None = None,
          slo_tpot: float | None = None, allow_long_context: bool = False,
          disaggregate: str | None = None) -> ServeResult:
    """Simulate serving ``model`` under load (perfmodel.serving): ``requests_n`` requests at
    ``rate`` per second (``arrival`` poisson or gamma:CV; lengths fixed or
    ``lognormal:MEAN,SIGMA`` / ``uniform:LO,HI`` / ``exponential:MEAN``; or a ``trace``
    CSV), on ``replicas`` copies of a tp x pp group of ``hw`` (or the ``system``'s device),
    through ``engine``; the scheduler's settings default to the engine's (chunked prefill
    where its profile chunks, that chunk as the token budget, else 8,192 tokens).
    ``disaggregate`` (``prefill=2x8,decode=1x16``) serves prompts and generation on
    separate pools, moving each KV cache between them (perfmodel.serving.run).
    Returns the ServeResult (``.summary``, ``.requests``, ``.iterations``, ``.frames()``)."""
    from perfmodel.serving.requests import read_trace, requests
    from perfmodel.serving.run import parse_pools, serve_disaggregated
    from perfmodel.serving.run import serve as serve_run
    from perfmodel.serving.simulate import Scheduler
    device, sys_spec = _where(hw, system)
    eng = engine if isinstance(engine, EngineProfile) else load_engine(engine)
    reqs = read_trace(trace) if trace is not None else requests(
        requests_n, rate, input_len, output_len, seed=seed, process=arrival)
    graph = _graph(model, 1, None)
    longest = int((reqs["input_len"] + reqs["output_len"]).max())
    try:
        check_context(graph, longest, allow_long_context)
    except PlanError as exc:
        raise PlanError(f"the longest request ({longest:,} tokens): {exc.message}",
                        "shorten --input-len / --output-len, or --allow-long-context") from None
    tp, pp = resolve_split(eng, gpus, split, tp, pp, 1)
    chunk = eng.chunked_prefill_tokens
    chunked = chunk > 0 if chunked_prefill is None else chunked_prefill
    budget = max_batched_tokens or (chunk if chunk > 0 else 8192)
    sc = Scheduler(policy=policy, max_num_seqs=max_num_seqs, max_batched_tokens=budget,
                   chunked_prefill=chunked, block_size=block_size, prefix_hit=prefix_hit,
                   preemption=preemption)
    if disaggregate is not None:
        if replicas != 1 or tp != 1 or pp != 1 or gpus is not None:
            raise PlanError("--disaggregate sizes both pools itself",
                            "drop --replicas / --tp / --pp / --gpus, or --disaggregate")
        return serve_disaggregated(graph, device, reqs, parse_pools(disaggregate),
                                   engine=eng, system=sys_spec, dtype=dtype,
                                   kv_dtype=kv_dtype, scheduler=sc, slo_ttft=slo_ttft,
                                   slo_tpot=slo_tpot)
    return serve_run(graph, device, reqs, engine=eng,
                     plan=ParallelPlan(tensor_parallel=tp, pipeline_parallel=pp),
                     system=sys_spec, dtype=dtype, kv_dtype=kv_dtype, scheduler=sc,
                     replicas=replicas, router=router, slo_ttft=slo_ttft, slo_tpot=slo_tpot)


def serve_search(model: Model, hw: str | Path | DeviceSpec | None = None, *,
                 system: str | Path | SystemSpec | None = None, rate: float = 1.0,
                 requests_n: int = 1000, input_len: str | int = 1024,
                 output_len: str | int = 256, arrival: str = "poisson", seed: int = 0,
                 trace: str | Path | None = None, slo_ttft: float = 0.5,
                 slo_tpot: float = 0.05, percentile: float = 99.0,
                 engines: tuple[str, ...] = ("vllm",), tps: tuple[int, ...] = (1, 2, 4, 8),
                 max_num_seqs: tuple[int, ...] = (64, 128, 256),
                 budgets: tuple[int, ...] = (2048, 8192),
                 chunked: tuple[bool, ...] = (False, True), max_replicas: int = 64,
                 disaggregate: bool = False, dtype: str | None = None, workers: int = 1,
                 top: int | None = None) -> pd.DataFrame:
    """The cheapest deployments meeting ``slo_ttft`` / ``slo_tpot`` (at ``percentile``) for
    traffic at ``rate`` (perfmodel.serving.search), ranked: GPUs, then GPU-hours per million
    output tokens; ``disaggregate`` adds every prefill / decode pool split."""
    from perfmodel.serving.requests import read_trace, requests
    from perfmodel.serving.search import Space
    from perfmodel.serving.search import search as search_run
    device, sys_spec = _where(hw, system)
    reqs = read_trace(trace) if trace is not None else requests(
        requests_n, rate, input_len, output_len, seed=seed, process=arrival)
    if trace is not None:
        span = float(reqs["arrival_s"].max() - reqs["arrival_s"].min())
        rate = len(reqs) / span if span > 0 else float(len(reqs))
    for e in engines:
        load_engine(e)  # an unknown engine is an error, not a row
    space = Space(tuple(engines), tuple(tps), tuple(max_num_seqs), tuple(budgets),
                  tuple(chunked), max_replicas, disaggregate)
    return search_run(_graph(model, 1, None), device, reqs, rate=rate, slo_ttft=slo_ttft,
                      slo_tpot=slo_tpot, space=space, system=sys_spec,
                      percentile=percentile, dtype=dtype, workers=workers, top=top)
