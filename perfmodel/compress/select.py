"""Which ops a compression step touches: layer kinds, skip first/last, a name pattern.

Standard practice keeps the first and the last layer of a network at full precision or
unpruned, because they are the most sensitive (Rastegari et al., "XNOR-Net", ECCV 2016,
sec. 4: first and last layers stay real-valued; Han et al., "Learning both weights and
connections", NeurIPS 2015, prune the first conv layer least). ``skip`` expresses that;
``layers`` restricts a step to op names matching a glob (``layer4.*``, ``*.mlp.*``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from perfmodel.errors import UnknownNameError, did_you_mean
from perfmodel.graph.kinds import TENSOR_KINDS, OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import Op

__all__ = ["Selection", "ALL", "SKIPS", "weighted_layers", "parse_skip"]

SKIPS = ("none", "first", "last", "ends")


def weighted_layers(graph: ModelGraph) -> list[Op]:
    """The model's layers in order: matrix-engine ops and embeddings that own weights."""
    return [op for op in graph.ops if op.weights and not op.tied
            and (op.kind in TENSOR_KINDS or op.kind == OpKind.EMBEDDING)]


@dataclass(frozen=True)
class Selection:
    """Skip the first and/or last layer; keep only op names matching ``layers``."""

    skip_first: bool = False
    skip_last: bool = False
    layers: str | None = None

    def pick(self, graph: ModelGraph, candidates: Iterable[Op]) -> list[Op]:
        """The candidates this selection keeps, in graph order."""
        ends = weighted_layers(graph)
        skipped = set()
        if ends and self.skip_first:
            skipped.add(ends[0].name)
        if ends and self.skip_last:
            skipped.add(ends[-1].name)
        return [op for op in candidates if op.name not in skipped
                and (self.layers is None or fnmatch.fnmatchcase(op.name, self.layers))]

    def describe(self) -> str:
        parts = [p for p, on in (("skip first", self.skip_first),
                                 ("skip last", self.skip_last)) if on]
        if self.layers:
            parts.append(f"layers {self.layers}")
        return ", ".join(parts)


ALL = Selection()


def parse_skip(value: str) -> tuple[bool, bool]:
    """``first``, ``last``, ``ends`` (both), ``none``; a comma list like ``first,last``."""
    first = last = False
    for part in filter(None, (p.strip() for p in value.split(","))):
        if part not in SKIPS:
            raise UnknownNameError(f"unknown skip {part!r}", did_you_mean(part, SKIPS))
        first |= part in ("first", "ends")
        last |= part in ("last", "ends")
    return first, last
