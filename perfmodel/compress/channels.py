"""Channel groups: which output channels can be removed together, and what else shrinks.

Removing output channels (filters) of a conv or output features of a linear layer also
removes the matching input channels of every layer that reads them (Li et al., "Pruning
filters for efficient ConvNets", ICLR 2017, sec. 3.2). A *channel group* is the set of
layers that must shrink together: the producers that write a channel space, the ops that
carry it unchanged (batch norm, activations, pooling, depthwise convs, elementwise add and
mul, which also tie the spaces of their inputs together: a residual add ties a block's
output to its input), and the absorbers that reduce over it (the next conv or linear).

A group is prunable only if every path from its producers ends in an absorber. Anything
else ends it: a reshape, a concat, attention, an embedding, a model input or output (a
flatten of C x 1 x 1 maps, after global pooling, carries the channels to the classifier).
This is dependency-graph pruning (Fang et al., "DepGraph: towards any structural
pruning", CVPR 2023): in a ResNet the channels inside each block and a whole stage's
residual stream (its conv3s, its projection shortcut and the next convs that read it) are
pruned together, so at ratio r every conv keeps (1 - r) of its input and output channels,
except the stem's image input and the classifier's outputs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from perfmodel.graph.kinds import ACTIVATION_KINDS, OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import Op, TensorSpec

__all__ = ["ChannelGroup", "channel_groups", "shrink_groups"]

_CHANNEL_DIM_1 = frozenset({OpKind.BATCHNORM, OpKind.MAXPOOL, OpKind.AVGPOOL,
                            OpKind.ADAPTIVE_AVGPOOL})
_ELEMENTWISE = frozenset({*ACTIVATION_KINDS, OpKind.DROPOUT, OpKind.IDENTITY, OpKind.ADD,
                          OpKind.MUL})


@dataclass(frozen=True)
class ChannelGroup:
    """Layers sharing one channel space of ``channels`` along tensor dim ``dim``."""

    producers: tuple[str, ...]
    carriers: tuple[str, ...]
    absorbers: tuple[str, ...]
    channels: int
    dim: int
    blocked_by: str = ""  # why the group cannot be pruned ("" when it can)

    @property
    def prunable(self) -> bool:
        return not self.blocked_by


def _is_layer(op: Op) -> bool:
    """A conv or linear that owns its output channels (not depthwise/grouped, MoE, tied)."""
    if op.tied or not op.weights:
        return False
    if op.kind == OpKind.CONV2D:
        return op.attr("groups", 1) == 1
    return op.kind == OpKind.LINEAR and not op.attr("experts", 0)


def _out_dim(op: Op) -> int:
    return 1 if op.kind == OpKind.CONV2D else len(op.outputs[0].shape) - 1


def _carries(op: Op, dim: int, channels: int) -> bool:
    """Does ``op`` pass a channel space at ``dim`` through unchanged?"""
    out = op.outputs[0].shape
    if len(out) <= dim or out[dim] != channels:
        return False
    if op.kind == OpKind.CONV2D:  # depthwise: one filter per channel, out == in
        return dim == 1 and op.attr("groups", 1) == channels and op.inputs[0].shape[1] == channels
    if op.kind in _CHANNEL_DIM_1:
        return dim == 1
    if op.kind == OpKind.FLATTEN:  # (N, C, 1, 1) -> (N, C): channels stay channels
        return dim == 1 and all(d == 1 for d in op.inputs[0].shape[2:])
    return op.kind in _ELEMENTWISE and all(len(t.shape) == len(out) for t in op.inputs)


def _absorbs(op: Op, dim: int) -> bool:
    return _is_layer(op) and dim == (1 if op.kind == OpKind.CONV2D
                                     else len(op.inputs[0].shape) - 1)


class _Search:
    """Breadth-first walk over one channel space starting at a producer."""

    def __init__(self, graph: ModelGraph, start: Op) -> None:
        self.g = graph.graph
        self.graph = graph
        self.dim, self.channels = _out_dim(start), int(start.outputs[0].shape[_out_dim(start)])
        self.producers: list[str] = []
        self.carriers: list[str] = []
        self.absorbers: list[str] = []
        self.blocked = ""
        self.queue: deque[tuple[str, str]] = deque([("back", start.name)])
        self.seen: set[tuple[str, str]] = set()

    def run(self) -> ChannelGroup:
        while self.queue:
            item = self.queue.popleft()
            if item not in self.seen:
                self.seen.add(item)
                self._visit(*item)
        return ChannelGroup(tuple(self.producers), tuple(self.carriers),
                            tuple(self.absorbers), self.channels, self.dim, self.blocked)

    def _block(self, why: str) -> None:
        self.blocked = self.blocked or why

    def _forward(self, name: str) -> None:
        succ = list(self.g.successors(name))
        if not succ:
            self._block(f"{name} is a model output")
        self.queue.extend(("in", s) for s in succ)

    def _visit(self, how: str, name: str) -> None:
        op = self.graph.op(name)
        if how == "in" and _absorbs(op, self.dim):
            self.absorbers.append(name)
        elif how == "back" and _is_layer(op) and _out_dim(op) == self.dim \
                and op.outputs[0].shape[self.dim] == self.channels:
            self.producers.append(name)
            self._forward(name)
        elif _carries(op, self.dim, self.channels):
            if name not in self.carriers:
                self.carriers.append(name)
            preds = list(self.g.predecessors(name))
            if len(preds) < len(op.inputs):
                self._block(f"{name} reads a model input")
            self._forward(name)
            self.queue.extend(("back", p) for p in preds)
        else:
            self._block(f"{name} ({op.kind})")


def channel_groups(graph: ModelGraph) -> list[ChannelGroup]:
    """Every channel group of the graph, in the order of their first producer."""
    groups, covered = [], set()
    for op in graph.ops:
        if _is_layer(op) and op.name not in covered:
            group = _Search(graph, op).run()
            covered |= set(group.producers)
            groups.append(group)
    return groups


def _resize(t: TensorSpec, dim: int, old: int, new: int) -> TensorSpec:
    if len(t.shape) <= dim or t.shape[dim] != old:
        return t
    shape = list(t.shape)
    shape[dim] = new
    return TensorSpec(tuple(shape), t.role)


def _shrink_op(op: Op, group: ChannelGroup, keep: int, role: str) -> Op:
    c, d = group.channels, group.dim
    if role == "producer":
        return replace(op, outputs=(_resize(op.outputs[0], d, c, keep),),
                       weights=tuple(_resize(w, 0, c, keep) for w in op.weights))
    if role == "absorber":
        w0 = op.weights[0]
        return replace(op, inputs=(_resize(op.inputs[0], d, c, keep), *op.inputs[1:]),
                       weights=(_resize(w0, 1, c, keep), *op.weights[1:]))
    rank = len(op.outputs[0].shape)
    per_channel = op.kind in (OpKind.CONV2D, OpKind.BATCHNORM)  # weights (C, ...)
    weights = tuple(w if (j := 0 if per_channel else d - (rank - len(w.shape))) < 0
                    else _resize(w, j, c, keep) for w in op.weights)  # else broadcast
    attrs: dict[str, Any] = dict(op.attrs)
    if op.kind == OpKind.CONV2D:
        attrs["groups"] = keep
    return replace(op, inputs=tuple(_resize(t, d, c, keep) for t in op.inputs),
                   outputs=tuple(_resize(t, d, c, keep) for t in op.outputs),
                   weights=weights, attrs=attrs)


def shrink_groups(graph: ModelGraph, groups: Iterable[tuple[ChannelGroup, int]]) -> dict[str, Op]:
    """New versions of every op touched when each group keeps ``keep`` channels."""
    new: dict[str, Op] = {}
    for group, keep in groups:
        for role, names in (("producer", group.producers), ("absorber", group.absorbers),
                            ("carrier", group.carriers)):
            for name in names:
                new[name] = _shrink_op(new.get(name, graph.op(name)), group, keep, role)
    return new
