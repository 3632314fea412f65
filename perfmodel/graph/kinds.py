"""Op kinds: one StrEnum and the named groups that decide how an op is priced.

Groups (in the spirit of tinygrad's ``Ops``/``GroupOp``):

* ``TENSOR_KINDS`` run on the matrix engine (tensor cores, MXU, ...) when the device
  has one for the dtype; everything else runs on the vector unit.
* ``ZERO_COST_KINDS`` are views or no-ops at inference: they cost nothing.
* ``MAC_KINDS`` are multiply-accumulate ops: FLOPs = 2 x MACs.
"""

from __future__ import annotations

from enum import Enum


class OpKind(str, Enum):
    """Every op kind perfmodel can cost. The value is the name used in tables and files."""

    CONV2D = "conv2d"
    LINEAR = "linear"
    MATMUL = "matmul"
    BMM = "bmm"
    ATTN_SCORE = "attn_score"        # Q K^T
    ATTN_CONTEXT = "attn_context"    # P V
    ATTENTION = "attention"          # fused score + softmax + context (FlashAttention-style)
    SOFTMAX = "softmax"
    LAYERNORM = "layernorm"
    BATCHNORM = "batchnorm"
    RMSNORM = "rmsnorm"
    GROUPNORM = "groupnorm"
    RELU = "relu"
    RELU6 = "relu6"
    GELU = "gelu"
    SILU = "silu"
    SIGMOID = "sigmoid"
    TANH = "tanh"
    HARDSWISH = "hardswish"
    HARDSIGMOID = "hardsigmoid"
    ADD = "add"
    MUL = "mul"
    ROPE = "rope"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    ADAPTIVE_AVGPOOL = "adaptive_avgpool"
    CONCAT = "concat"
    CHANNEL_SHUFFLE = "channel_shuffle"
    COPY = "copy"                    # e.g. appending new keys/values to the KV cache
    EMBEDDING = "embedding"
    RNN_CELL = "rnn_cell"
    LSTM_CELL = "lstm_cell"
    GRU_CELL = "gru_cell"
    RESHAPE = "reshape"
    FLATTEN = "flatten"
    PERMUTE = "permute"
    DROPOUT = "dropout"
    IDENTITY = "identity"

    def __str__(self) -> str:
        return self.value


TENSOR_KINDS = frozenset({
    OpKind.CONV2D, OpKind.LINEAR, OpKind.MATMUL, OpKind.BMM, OpKind.ATTN_SCORE,
    OpKind.ATTN_CONTEXT, OpKind.ATTENTION, OpKind.RNN_CELL, OpKind.LSTM_CELL, OpKind.GRU_CELL,
})
MAC_KINDS = TENSOR_KINDS
# Views and inference no-ops. PERMUTE is treated as a view: frameworks fold it into the
# next kernel's strides (torch .permute is a view; the copy, if any, is fused).
ZERO_COST_KINDS = frozenset({
    OpKind.RESHAPE, OpKind.FLATTEN, OpKind.PERMUTE, OpKind.DROPOUT, OpKind.IDENTITY,
})
NORM_KINDS = frozenset({OpKind.LAYERNORM, OpKind.BATCHNORM, OpKind.RMSNORM, OpKind.GROUPNORM})
ACTIVATION_KINDS = frozenset({
    OpKind.RELU, OpKind.RELU6, OpKind.GELU, OpKind.SILU, OpKind.SIGMOID, OpKind.TANH,
    OpKind.HARDSWISH, OpKind.HARDSIGMOID,
})
RECURRENT_KINDS = frozenset({OpKind.RNN_CELL, OpKind.LSTM_CELL, OpKind.GRU_CELL})
