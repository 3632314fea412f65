"""Op kinds and their costs, the GraphBuilder, ModelGraph and the ModelShape record."""

from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.costs import COST_RULES, ELEMENTWISE_FLOPS, OpCost, cost_of, is_costed
from perfmodel.graph.kinds import TENSOR_KINDS, ZERO_COST_KINDS, OpKind
from perfmodel.graph.model_graph import ModelGraph, StageParams
from perfmodel.graph.op import Op, TensorSpec
from perfmodel.graph.shape import ModelShape

__all__ = ["COST_RULES", "ELEMENTWISE_FLOPS", "GraphBuilder", "ModelGraph", "ModelShape", "Op",
           "OpCost", "OpKind", "StageParams", "TENSOR_KINDS", "Tensor", "TensorSpec",
           "ZERO_COST_KINDS", "cost_of", "is_costed"]
