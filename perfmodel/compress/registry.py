"""Strategy names -> transforms, and the ``--strategy`` mini-language that names them.

Grammar (documented in the README, section Compression)::

    strategy := step ("+" step)*          steps apply left to right
    step     := name (":" arg)*
    arg      := value | key "=" value     keys for every step: skip=first|last|ends,
                                          layers=<op-name glob>

Examples: ``int8``, ``w4a16:skip=ends``, ``prune:0.5:structured``, ``prune:2:4``,
``fp16+prune:2:4``, ``share:16``, ``lowrank:0.25:layers=layer4.*``,
``mixed:bits.yaml``, ``distill:mobilenet_v2``, ``gradsparse:0.999``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from perfmodel.compress import gradient, lowrank, prune, quantize, share, substitute
from perfmodel.compress.distill import distill
from perfmodel.compress.select import Selection, parse_skip
from perfmodel.errors import PlanError, UnknownNameError, did_you_mean
from perfmodel.graph.model_graph import ModelGraph

__all__ = ["Strategy", "StrategyDef", "STRATEGIES", "parse_strategy", "apply_strategy",
           "Transform", "ModelResolver"]

Transform = Callable[[ModelGraph], ModelGraph]
ModelResolver = Callable[[str], ModelGraph]


@dataclass(frozen=True)
class _Args:
    """One step's parsed arguments."""

    text: str
    positional: tuple[str, ...]
    select: Selection
    resolve_model: ModelResolver | None

    def bad(self, usage: str, why: str = "") -> PlanError:
        return PlanError(f"bad strategy {self.text!r}" + (f": {why}" if why else ""),
                         f"usage: {usage}")

    def number(self, i: int, usage: str, kind: type = float) -> Any:
        try:
            return kind(self.positional[i])
        except (IndexError, ValueError):
            raise self.bad(usage, f"argument {i + 1} must be a {kind.__name__}") from None

    def at_most(self, n: int, usage: str) -> None:
        if len(self.positional) > n:
            raise self.bad(usage, f"takes at most {n} argument(s)")


@dataclass(frozen=True)
class StrategyDef:
    """A strategy family: its usage line, one-line summary and argument parser."""

    usage: str
    summary: str
    build: Callable[[_Args], Transform]


def _quant(name: str) -> StrategyDef:
    qs = quantize.SCHEMES[name]
    act = f"activations {qs.act}" if qs.act else "activations unchanged"

    def build(a: _Args) -> Transform:
        a.at_most(0, name)
        return partial(quantize.quantize, qs=qs, select=a.select)
    return StrategyDef(name, f"weights {qs.weight}, {act}, compute {qs.compute or qs.act}",
                       build)


def _mixed(a: _Args) -> Transform:
    usage = "mixed:FILE.yaml | mixed:" + "|".join(quantize.PRESETS)
    a.at_most(1, usage)
    if not a.positional:
        raise a.bad(usage, "name a bit-width file or a preset")
    arg = a.positional[0]
    if arg in quantize.PRESETS:
        return quantize.PRESETS[arg]
    if not arg.endswith((".yaml", ".yml")):
        raise UnknownNameError(f"unknown mixed-precision preset {arg!r}",
                               did_you_mean(arg, quantize.PRESETS) + " or a .yaml file")
    plan, default = quantize.load_bit_widths(arg)
    return partial(quantize.mixed_precision, plan=plan, default=default, label="mixed")


def _kv(a: _Args) -> Transform:
    a.at_most(1, "kv:DTYPE")
    if not a.positional:
        raise a.bad("kv:DTYPE", "name the KV-cache dtype, e.g. kv:int8")
    return partial(quantize.quantize_kv, dtype=a.positional[0])


_PRUNE_USAGE = ("prune:FRACTION[:unstructured[:bitmap|:idxBITS]] | prune:FRACTION:structured"
                " | prune:FRACTION:layers | prune:2:4")


def _prune(a: _Args) -> Transform:
    pos, u = a.positional, _PRUNE_USAGE
    if pos[:2] == ("2", "4"):
        a.at_most(2, u)
        return partial(prune.prune_2_4, select=a.select)
    frac = a.number(0, u)
    if not 0 <= frac < 1:
        raise a.bad(u, f"FRACTION must be in [0, 1), got {pos[0]}")
    how = pos[1] if len(pos) > 1 else "unstructured"
    if how == "structured":
        a.at_most(2, u)
        return partial(prune.prune_structured, ratio=frac, select=a.select)
    if how == "layers":
        a.at_most(2, u)
        return partial(prune.prune_layers, ratio=frac)
    if how != "unstructured":
        raise UnknownNameError(f"unknown pruning kind {how!r}",
                               did_you_mean(how, ["unstructured", "structured", "layers"]))
    a.at_most(3, u)
    fmt = pos[2] if len(pos) > 2 else ""
    if fmt and fmt != "bitmap" and not (fmt.startswith("idx") and fmt[3:].isdigit()):
        raise a.bad(u, f"format {fmt!r} is neither bitmap nor idxBITS (e.g. idx16)")
    bits = int(fmt[3:]) if fmt.startswith("idx") else prune.DEFAULT_INDEX_BITS
    return partial(prune.prune_unstructured, sparsity=frac, index_bits=bits,
                   bitmap=fmt == "bitmap", select=a.select)


def _share(a: _Args) -> Transform:
    a.at_most(1, "share:CLUSTERS")
    return partial(share.share_weights, clusters=a.number(0, "share:CLUSTERS", int),
                   select=a.select)


def _lowrank(a: _Args) -> Transform:
    a.at_most(1, "lowrank:RATIO")
    return partial(lowrank.factorize_low_rank, ratio=a.number(0, "lowrank:RATIO"),
                   select=a.select)


def _distill(a: _Args) -> Transform:
    a.at_most(1, "distill:MODEL")
    if not a.positional:
        raise a.bad("distill:MODEL", "name the student model")
    if a.resolve_model is None:
        raise a.bad("distill:MODEL", "no model resolver given to parse_strategy")
    student = a.resolve_model(a.positional[0])
    return partial(distill, student=student)


def _plain(fn: Callable[..., ModelGraph], usage: str) -> Callable[[_Args], Transform]:
    def build(a: _Args) -> Transform:
        a.at_most(0, usage)
        return partial(fn, select=a.select)
    return build


def _bottleneck(a: _Args) -> Transform:
    a.at_most(1, "bottleneck:RATIO")
    return partial(substitute.bottleneck, ratio=a.number(0, "bottleneck:RATIO"),
                   select=a.select)


def _ghost(a: _Args) -> Transform:
    u = "ghost[:S[:D]]"
    a.at_most(2, u)
    s = a.number(0, u, int) if a.positional else 2
    d = a.number(1, u, int) if len(a.positional) > 1 else 3
    return partial(substitute.ghost, ratio=s, cheap_kernel=d, select=a.select)


def _reparam(a: _Args) -> Transform:
    a.at_most(0, "reparam")
    return substitute.reparameterize


def _gradsparse(a: _Args) -> Transform:
    u = "gradsparse:SPARSITY[:idxBITS]"
    a.at_most(2, u)
    bits = a.positional[1] if len(a.positional) > 1 else "idx16"
    if not (bits.startswith("idx") and bits[3:].isdigit()):
        raise a.bad(u, f"{bits!r} is not idxBITS (e.g. idx16)")
    return partial(gradient.sparsify_gradients, sparsity=a.number(0, u),
                   index_bits=int(bits[3:]))


# Filled in one readable place: name -> definition.
STRATEGIES: dict[str, StrategyDef] = {
    **{name: _quant(name) for name in quantize.SCHEMES},
    "mixed": StrategyDef("mixed:FILE.yaml|PRESET", "per-layer schemes from a file, or a "
                         "sensitivity-aware preset", _mixed),
    "kv": StrategyDef("kv:DTYPE", "KV cache stored in DTYPE", _kv),
    "prune": StrategyDef(_PRUNE_USAGE, "zero weights (unstructured, 2:4) or remove "
                         "channels or blocks (structured, layers)", _prune),
    "share": StrategyDef("share:CLUSTERS", "k-means weight sharing, one codebook per layer",
                         _share),
    "lowrank": StrategyDef("lowrank:RATIO", "m x n -> m x r + r x n, r = RATIO*min(m, n)",
                           _lowrank),
    "distill": StrategyDef("distill:MODEL", "deploy the student MODEL instead", _distill),
    "dwsep": StrategyDef("dwsep", "k x k conv -> depthwise k x k + pointwise 1 x 1",
                         _plain(substitute.depthwise_separable, "dwsep")),
    "bottleneck": StrategyDef("bottleneck:RATIO", "1 x 1 reduction to RATIO*Ci before k x k",
                              _bottleneck),
    "factorize": StrategyDef("factorize", "k x k conv -> 1 x k then k x 1",
                             _plain(substitute.factorize, "factorize")),
    "ghost": StrategyDef("ghost[:S[:D]]", "GhostNet module: 1/S primary maps + cheap DxD "
                         "depthwise maps", _ghost),
    "reparam": StrategyDef("reparam", "RepVGG deploy form: fold branches and BN into convs",
                           _reparam),
    "gradsparse": StrategyDef("gradsparse:SPARSITY[:idxBITS]", "send only the top "
                              "(1 - SPARSITY) of each gradient (training)", _gradsparse),
}


@dataclass(frozen=True)
class Strategy:
    """A parsed strategy: its text and its steps, applied in order."""

    text: str
    steps: tuple[Transform, ...]

    def __call__(self, graph: ModelGraph) -> ModelGraph:
        for step in self.steps:
            graph = step(graph)
        return graph


def _split_step(text: str, step: str) -> tuple[str, list[str], dict[str, str]]:
    parts = step.split(":")
    name, pos, kw = parts[0].strip().lower(), [], {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            if k.strip() not in ("skip", "layers"):
                raise PlanError(f"bad strategy {text!r}: unknown option {k!r}",
                                did_you_mean(k.strip(), ["skip", "layers"]))
            kw[k.strip()] = v.strip()
        else:
            pos.append(p.strip())
    return name, pos, kw


def parse_strategy(text: str, *, resolve_model: ModelResolver | None = None) -> Strategy:
    """Parse one ``--strategy`` value; ``resolve_model`` loads distillation students."""
    if not text or not text.strip():
        raise PlanError("empty strategy", "e.g. --strategy int8")
    steps = []
    for step in text.split("+"):
        name, pos, kw = _split_step(text, step)
        if name not in STRATEGIES:
            raise UnknownNameError(f"unknown strategy {name!r} in {text!r}",
                                   did_you_mean(name, STRATEGIES))
        first, last = parse_skip(kw.get("skip", "none"))
        args = _Args(text, tuple(pos), Selection(first, last, kw.get("layers")),
                     resolve_model)
        steps.append(STRATEGIES[name].build(args))
    return Strategy(text.strip(), tuple(steps))


def apply_strategy(graph: ModelGraph, text: str | Sequence[str], *,
                   resolve_model: ModelResolver | None = None) -> ModelGraph:
    """``graph`` compressed by one strategy (or several, composed in order)."""
    texts = [text] if isinstance(text, str) else list(text)
    for t in texts:
        graph = parse_strategy(t, resolve_model=resolve_model)(graph)
    return graph
