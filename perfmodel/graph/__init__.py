"""Op kinds and their costs, the GraphBuilder and ModelGraph."""

from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.costs import COST_RULES, ELEMENTWISE_FLOPS, OpCost, cost_of, is_costed
from perfmodel.graph.kinds import TENSOR_KINDS, ZERO_COST_KINDS, OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import Op, TensorSpec

__all__ = ["COST_RULES", "ELEMENTWISE_FLOPS", "GraphBuilder", "ModelGraph", "Op", "OpCost",
           "OpKind", "TENSOR_KINDS", "Tensor", "TensorSpec", "ZERO_COST_KINDS", "cost_of",
           "is_costed"]
