"""ModelGraph: a model as ops with their data dependencies, its shape record and metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from perfmodel.errors import PlanError
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.op import Op, TensorSpec
from perfmodel.graph.shape import ModelShape

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["ModelGraph", "StageParams", "stage_of", "LAYER_SCOPE", "FIRST_SCOPE",
           "ATTENTION_KERNELS"]

LAYER_SCOPE = "layers."      # the builder scope of the repeated blocks: layers.0, layers.1, ...
FIRST_SCOPE = "embeddings"   # what a pipeline's first stage holds besides its blocks
# How a graph computes attention: one fused, causal-aware kernel (FlashAttention, Dao et al.
# 2022; PyTorch SDPA) or scores, softmax and context as separate kernels over s x s scores.
ATTENTION_KERNELS = ("flash", "unfused")


def stage_of(layer: str) -> str:
    """Where pipeline parallelism puts an op of builder scope ``layer``: ``first`` (the
    embeddings), ``block`` (the first block, ``layers.0``),
    ``other`` (a later block) or ``last`` (final norm, heads, pooler)."""
    if layer == "layers.0" or layer.startswith("layers.0."):
        return "block"
    if layer.startswith(LAYER_SCOPE):
        return "other"
    return "first" if layer.startswith(FIRST_SCOPE) else "last"


class StageParams(NamedTuple):
    """Parameters of a layered model by where pipeline parallelism puts them: ``first``
    (embeddings, on the first stage), ``layer`` (the average block) and ``last``
    (final norm, LM head, pooler, on the last stage). Tied weights are counted once."""

    first: float
    layer: float
    last: float


@dataclass(frozen=True)
class ModelGraph:
    """A model: ops in execution order, their data dependencies, shape and metadata.

    ``ops`` are in the order they were added (a topological order); ``edges`` run from
    producer to consumer op name. ``graph`` is the same as a networkx DiGraph (node
    attribute ``op``), built on first use, so code that only prices ops never imports
    networkx. ``shape`` is the dimension record of a layered model (transformers; None for
    others). ``meta`` holds what the builder knows: ``family``, ``source`` (the reference
    implementation the architecture follows), ``default_batch``, ``default_seq``, ``is_llm``.
    """

    name: str
    ops: tuple[Op, ...] = field(repr=False)
    edges: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)
    inputs: tuple[TensorSpec, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)
    shape: ModelShape | None = field(default=None, compare=False)

    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def _hash(self) -> int:
        """Hashed once: the ops of a large model take milliseconds to hash, and graphs key
        the caches of the memory and step models."""
        return hash((self.name, self.ops, self.inputs))

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The ops and edges as a networkx DiGraph (imported here, on first use)."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from((op.name, {"op": op}) for op in self.ops)
        g.add_edges_from(self.edges)
        return g

    @cached_property
    def _by_name(self) -> dict[str, Op]:
        return {op.name: op for op in self.ops}

    @cached_property
    def params(self) -> int:
        """Trainable parameters (tied weights counted once)."""
        return int(sum(w.numel for op in self.ops if not op.tied for w in op.weights))

    @cached_property
    def stage_params(self) -> StageParams:
        """Parameters of the first-stage extras, of the average block and of the last-stage
        extras (ops scoped ``embeddings.*``, ``layers.N.*`` and the rest). The average block
        (all blocks' parameters over their count) makes blocks x layer the model's total
        even where blocks differ (DeepSeek's first dense layers beside MoE ones, Llama 4's
        interleaved MoE), which ``layers.0`` alone would not."""
        sums = {"first": 0.0, "block": 0.0, "other": 0.0, "last": 0.0}
        blocks: set[str] = set()
        for op in self.ops:
            where = stage_of(op.layer)
            if where in ("block", "other"):
                blocks.add(op.layer[len(LAYER_SCOPE):].split(".", 1)[0])
            if not op.tied:
                sums[where] += float(sum(w.numel for w in op.weights))
        layer = (sums["block"] + sums["other"]) / max(len(blocks), 1)
        return StageParams(sums["first"], layer, sums["last"])

    @cached_property
    def attention_kernels(self) -> str:
        """``flash`` if the graph computes attention in fused ``attention`` ops, else
        ``unfused`` (scores, softmax and context as kernels of their own, or no attention)."""
        return "flash" if any(op.kind == OpKind.ATTENTION for op in self.ops) else "unfused"

    @property
    def default_seq(self) -> int:
        """The sequence length a request that names none runs at (1 for models without
        one: images, single samples)."""
        return int(self.meta.get("default_seq", 1))

    def require_shape(self, purpose: str) -> ModelShape:
        """The shape record, or one PlanError saying ``purpose`` needs a transformer."""
        if self.shape is None:
            raise PlanError(f"{self.name}: {purpose} is modelled for transformers only",
                            "pick a transformer (perfmodel models) or a config.json")
        return self.shape

    @property
    def num_ops(self) -> int:
        return len(self.ops)

    def op(self, name: str) -> Op:
        return self._by_name[name]

    def __len__(self) -> int:
        return len(self.ops)
