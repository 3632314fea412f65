"""Lightweight-architecture substitution: swap standard convs for cheaper structures.

Each is a known identity for parameters (DOMAIN.md section 2), the same per output pixel
for MACs:

* ``depthwise_separable`` (MobileNet, Howard et al. 2017): k x k Ci -> Co becomes a k x k
  depthwise conv plus a 1 x 1 pointwise conv: k*k*Ci*Co -> k*k*Ci + Ci*Co
  (3x3, 16 -> 32: 4608 -> 656).
* ``bottleneck`` (ResNet / Inception 1x1 reduction): a 1 x 1 conv to K channels first:
  (k*k + 1)*M*N -> (1 + 1)*M*K + (k*k + 1)*K*N with biases.
* ``factorize`` (Inception v3, Szegedy et al. 2016): k x k -> 1 x k then k x 1:
  k*k*Ci*Co -> k*Ci*Co + k*Co*Co.
* ``ghost`` (GhostNet, Han et al. CVPR 2020, eqs. 4-5): a primary conv makes Co/s
  intrinsic maps, a d x d depthwise "cheap operation" makes the other (s-1)*Co/s:
  ratio k*k*Ci*Co / ((Co/s)*k*k*Ci + (s-1)*(Co/s)*d*d) ~ s.
* ``reparameterize`` (RepVGG, Ding et al. CVPR 2021): parallel conv-BN branches and a BN
  identity that are summed fold into one conv with bias, and a BN after a conv folds into
  the conv's bias: the deploy-time form, fewer ops and the same outputs.

A substitution applies only where it shrinks the layer (it never makes one bigger).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from perfmodel.compress.lowrank import carry_attrs
from perfmodel.compress.rewrite import Replacement, renamed, rewrite, subgraph
from perfmodel.compress.select import ALL, Selection
from perfmodel.errors import ShapeError
from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import Op, TensorSpec

__all__ = ["depthwise_separable", "bottleneck", "factorize", "ghost", "reparameterize"]


def _plain(op: Op) -> bool:
    """A dense conv (groups 1, no dilation) that owns its weights."""
    return (op.kind == OpKind.CONV2D and not op.tied and op.attr("groups", 1) == 1
            and tuple(op.attr("dilation", (1, 1))) == (1, 1))


def _params(op: Op) -> int:
    return sum(w.numel for w in op.weights)


def _substitute(graph: ModelGraph, select: Selection, label: str,
                make: Callable[[Op], Replacement | None]) -> ModelGraph:
    """Apply ``make`` to each selected plain conv; keep the results that shrink it."""
    reps = []
    for op in select.pick(graph, [o for o in graph.ops if _plain(o)]):
        r = make(op)
        if r is not None and sum(_params(o) for o in r.ops) < _params(op):
            reps.append(carry_attrs(op, r))
    return rewrite(graph, reps, name=renamed(graph, label))


def _conv_args(op: Op) -> tuple[int, int, tuple[int, int], tuple[int, int], tuple[int, int],
                                bool]:
    ci, co = int(op.inputs[0].shape[1]), int(op.weights[0].shape[0])
    return ci, co, op.attr("kernel"), op.attr("stride"), op.attr("padding"), len(op.weights) > 1


def depthwise_separable(graph: ModelGraph, select: Selection = ALL) -> ModelGraph:
    """Every selected k x k conv (k > 1) as depthwise k x k + pointwise 1 x 1."""
    def make(op: Op) -> Replacement | None:
        ci, co, k, s, p, bias = _conv_args(op)
        if k == (1, 1):
            return None

        def build(b: GraphBuilder, x: Tensor) -> Tensor:
            y = b.conv2d(x, ci, k, s, p, groups=ci, bias=False, name=f"{op.name}.dw")
            return b.conv2d(y, co, 1, bias=bias, name=f"{op.name}.pw")
        return subgraph(op, build)
    return _substitute(graph, select, "dwsep", make)


def bottleneck(graph: ModelGraph, ratio: float, select: Selection = ALL) -> ModelGraph:
    """Every selected k x k conv (k > 1) behind a 1 x 1 reduction to K = ratio * Ci."""
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < 1:
        raise ShapeError(f"bottleneck ratio must be in (0, 1), got {ratio!r}",
                         "e.g. bottleneck:0.25 reduces to a quarter of the channels")

    def make(op: Op) -> Replacement | None:
        ci, co, k, s, p, bias = _conv_args(op)
        if k == (1, 1):
            return None
        mid = max(1, round(ratio * ci))

        def build(b: GraphBuilder, x: Tensor) -> Tensor:
            y = b.conv2d(x, mid, 1, bias=bias, name=f"{op.name}.reduce")
            return b.conv2d(y, co, k, s, p, bias=bias, name=f"{op.name}.conv")
        return subgraph(op, build)
    return _substitute(graph, select, f"bottleneck{ratio:g}", make)


def factorize(graph: ModelGraph, select: Selection = ALL) -> ModelGraph:
    """Every selected square k x k conv (k > 1) as 1 x k then k x 1."""
    def make(op: Op) -> Replacement | None:
        ci, co, (kh, kw), (sh, sw), (ph, pw), bias = _conv_args(op)
        if kh != kw or kh == 1:
            return None

        def build(b: GraphBuilder, x: Tensor) -> Tensor:
            y = b.conv2d(x, co, (1, kw), (1, sw), (0, pw), bias=False, name=f"{op.name}.1xk")
            return b.conv2d(y, co, (kh, 1), (sh, 1), (ph, 0), bias=bias, name=f"{op.name}.kx1")
        return subgraph(op, build)
    return _substitute(graph, select, "factorize", make)


def ghost(graph: ModelGraph, ratio: int = 2, cheap_kernel: int = 3,
          select: Selection = ALL) -> ModelGraph:
    """Every selected conv as a Ghost module: m = ceil(Co/s) primary maps, (s-1)*m cheap
    depthwise maps, concatenated (and sliced to Co, as GhostNet's ``out[:, :oup]``)."""
    if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 2:
        raise ShapeError(f"ghost ratio s must be an integer >= 2, got {ratio!r}",
                         "GhostNet uses s = 2")

    def make(op: Op) -> Replacement | None:
        _, co, k, s, p, bias = _conv_args(op)
        m = math.ceil(co / ratio)
        if m < 1 or co < ratio:
            return None

        def build(b: GraphBuilder, x: Tensor) -> Tensor:
            y = b.conv2d(x, m, k, s, p, bias=bias, name=f"{op.name}.primary")
            z = b.conv2d(y, (ratio - 1) * m, cheap_kernel, 1, cheap_kernel // 2, groups=m,
                         bias=False, name=f"{op.name}.cheap")
            out = b.concat([y, z], name=f"{op.name}.concat")
            return b.slice(out, 1, co, name=f"{op.name}.slice") if m * ratio > co else out
        return subgraph(op, build)
    return _substitute(graph, select, f"ghost{ratio}", make)


# --- RepVGG re-parameterization and BN folding ------------------------------------------

def _only_consumer(graph: ModelGraph, name: str) -> str | None:
    succ = list(graph.graph.successors(name))
    return succ[0] if len(succ) == 1 else None


def _source(graph: ModelGraph, name: str) -> str | None:
    preds = list(graph.graph.predecessors(name))
    return preds[0] if len(preds) == 1 else None


def _branches(graph: ModelGraph, add: Op) -> tuple[list[str], TensorSpec, str | None] | None:
    """(region, shared input, its producer) if ``add`` sums conv-BN / BN branches of x."""
    region, convs, sources, xs = [add.name], [], set(), set()
    for bn_name in graph.graph.predecessors(add.name):
        bn = graph.op(bn_name)
        if bn.kind != OpKind.BATCHNORM or _only_consumer(graph, bn_name) != add.name:
            return None
        region.append(bn_name)
        src = _source(graph, bn_name)
        conv = graph.op(src) if src else None
        if conv is not None and conv.kind == OpKind.CONV2D and _plain(conv) \
                and _only_consumer(graph, conv.name) == bn_name \
                and conv.attr("padding") == tuple(k // 2 for k in conv.attr("kernel")):
            region.append(conv.name)
            convs.append(conv)
            sources.add(_source(graph, conv.name))
            xs.add(conv.inputs[0])
        else:  # identity branch: BN of x itself
            sources.add(src)
            xs.add(bn.inputs[0])
    if not convs or len(sources) != 1 or len(xs) != 1 or len(region) < 4 \
            or len({c.attr("stride") for c in convs}) != 1:
        return None
    return region, xs.pop(), sources.pop()


def _fold_branches(graph: ModelGraph) -> ModelGraph:
    reps = []
    for add in (op for op in graph.ops if op.kind == OpKind.ADD):
        found = _branches(graph, add)
        if found is None:
            continue
        region, x, _ = found
        convs = [graph.op(n) for n in region if graph.op(n).kind == OpKind.CONV2D]
        k = max(max(c.attr("kernel")) for c in convs)
        co, stride = int(add.outputs[0].shape[1]), convs[0].attr("stride")
        name = f"{add.layer}.rbr_reparam" if add.layer else f"{add.name}.reparam"

        def build(b: GraphBuilder, t: Tensor, k: int = k, co: int = co, stride=stride,
                  name: str = name) -> Tensor:
            return b.conv2d(t, co, k, stride, k // 2, bias=True, name=name)
        reps.append(subgraph(add, build, region, Tensor(None, x)))
    return rewrite(graph, reps, name=graph.name)


def _fold_bn(graph: ModelGraph) -> ModelGraph:
    reps = []
    for conv in (op for op in graph.ops if op.kind == OpKind.CONV2D and not op.tied):
        bn = _only_consumer(graph, conv.name)
        if bn is None or graph.op(bn).kind != OpKind.BATCHNORM:
            continue
        co, k, s, p = (int(conv.weights[0].shape[0]), conv.attr("kernel"),
                       conv.attr("stride"), conv.attr("padding"))

        def build(b: GraphBuilder, x: Tensor, conv: Op = conv, co: int = co, k=k, s=s,
                  p=p) -> Tensor:
            return b.conv2d(x, co, k, s, p, conv.attr("dilation", 1), conv.attr("groups", 1),
                            bias=True, name=conv.name)
        reps.append(carry_attrs(conv, subgraph(graph.op(bn), build, (conv.name, bn),
                                               Tensor(None, conv.inputs[0]))))
    return rewrite(graph, reps, name=graph.name)


def reparameterize(graph: ModelGraph) -> ModelGraph:
    """Deploy form: fold summed conv-BN/BN branches into one conv, then fold every BN that
    follows a conv into the conv's bias (RepVGG sec. 3.3; BN folding)."""
    return replace(_fold_bn(_fold_branches(graph)), name=renamed(graph, "reparam"))
