"""Recurrent language models: word embedding -> stacked RNN/LSTM/GRU -> linear to the vocabulary.

The defaults are the "medium" LSTM of Zaremba, Sutskever & Vinyals 2014 ("Recurrent Neural
Network Regularization", Penn Treebank): vocabulary 10,000, 2 layers of 650 units, 650-wide
embeddings, unrolled for 35 steps. Parameters follow PyTorch's layout: ``nn.Embedding``,
``nn.RNN``/``nn.LSTM``/``nn.GRU`` (W_ih, W_hh, b_ih, b_hh per layer) and ``nn.Linear`` with
bias. Tensors are time-major, (S, B, features), as ``nn.LSTM``'s default and PyTorch's
``word_language_model`` example.

The graph is symbolic in the sequence length ``S`` and the batch ``B``, so one graph serves
every ``--seq`` and ``--batch`` (the Workload resolves them; ``seq`` here only sets the
default). Each layer is built as cuDNN's standard RNN algorithm runs it (NVIDIA cuDNN
``cudnnRNNForward``; Appleyard, Kocisky & Blunsom 2016, "Optimizing Performance of Recurrent
Neural Networks on GPUs", arXiv:1604.01946, section 3):

* ``ih``: the input GEMM of every time step at once, x (S, B, I) -> (S, B, G*H) with W_ih
  and b_ih (one large GEMM, since no step depends on another here);
* ``hh``: the recurrent GEMMs, h_{t-1} (B, H) x W_hh^T for t = 1..S, one per step. They are
  one ``matmul`` of a batch of S GEMMs whose second operand is W_hh broadcast over the
  steps (``weight_hh``, a zero-cost view that owns W_hh and b_hh), so W_hh is read once per
  step, as S separate GEMM launches read it. The operand h_{t-1} is the layer's own output
  fed back (no graph edge, so the graph stays acyclic);
* the gate nonlinearities and state updates of ``torch.nn.LSTM``/``GRU``/``RNN`` as
  elementwise ops over (S, B, H).

What this leaves out: the recurrence launches 2 kernels per step (GEMM, then the fused
gates) where the graph has one op per stage, so per-launch overhead is counted once per
layer, not once per step. Dropout (Zaremba et al. use it between layers) is the identity at
inference and is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import TensorSpec

__all__ = ["recurrent_lm", "rnn_lm", "lstm_lm", "gru_lm", "MODELS", "REFERENCE"]

_ZAREMBA = "Zaremba et al. 2014, 'Recurrent Neural Network Regularization', medium config"
_TORCH = "torch.nn.Embedding + torch.nn.{cell} + torch.nn.Linear"
_CELL_NAMES = {OpKind.RNN_CELL: "RNN", OpKind.LSTM_CELL: "LSTM", OpKind.GRU_CELL: "GRU"}
_GATES = {OpKind.RNN_CELL: 1, OpKind.LSTM_CELL: 4, OpKind.GRU_CELL: 3}


def recurrent_lm(kind: str, *, vocab: int = 10000, hidden: int = 650, layers: int = 2,
                 seq: int = 35, embed: int | None = None) -> ModelGraph:
    """A word-level language model with ``layers`` recurrent layers of ``kind`` (the cell
    kind: rnn_cell, lstm_cell, gru_cell); ``embed`` defaults to ``hidden`` (as in Zaremba
    et al. 2014). ``seq`` is the default sequence length of a workload built from it."""
    embed = hidden if embed is None else embed
    cell = _CELL_NAMES[OpKind(kind)]
    b = GraphBuilder(f"{cell.lower()}_lm", family=cell.lower(),
                     source=f"{_ZAREMBA}; parameters as {_TORCH.format(cell=cell)}",
                     input=f"{seq} tokens", default_batch=1, default_seq=seq, is_llm=False,
                     vocab=vocab, hidden=hidden, layers=layers, embed=embed)
    tokens = b.input("tokens", ("S", "B"), batch=False, role="index")
    x = b.embedding(tokens, vocab, embed, name="encoder")
    for layer in range(layers):
        with b.scope(f"rnn.{layer}"):
            x = _recurrent_layer(b, OpKind(kind), x, hidden)
    with b.scope("decoder"):
        b.linear(x, vocab, name="linear")
    return b.build()


def _fed_back(hidden: int) -> Tensor:
    """A state of the previous step, (S, B, H): the layer's own output read one step later."""
    return Tensor(None, TensorSpec(("S", "B", hidden)))


def _recurrent_layer(b: GraphBuilder, kind: OpKind, x: Tensor, hidden: int) -> Tensor:
    """One layer over all S steps: input GEMM, recurrent GEMMs, then the cell's gates."""
    gh = _GATES[kind] * hidden
    pre_x = b.linear(x, gh, name="ih")
    w_hh = b.add_op(OpKind.IDENTITY, [], ("S", hidden, gh), weights=[(gh, hidden), (gh,)],
                    role="weight", name="weight_hh")
    pre_h = b.matmul(_fed_back(hidden), w_hh, name="hh")
    return _POINTWISE[kind](b, pre_x, pre_h, hidden)


def _rnn_gates(b: GraphBuilder, pre_x: Tensor, pre_h: Tensor, hidden: int) -> Tensor:
    """``nn.RNN`` (tanh): h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""
    return b.act(b.add(pre_x, pre_h, name="gates"), OpKind.TANH, name="h")


def _lstm_gates(b: GraphBuilder, pre_x: Tensor, pre_h: Tensor, hidden: int) -> Tensor:
    """``nn.LSTM``: gates i, f, g, o; c_t = f c_{t-1} + i g; h_t = o tanh(c_t).
    Sigmoid on i, f, o (3H), tanh on g (H); slices are views."""
    gates = b.add(pre_x, pre_h, name="gates")
    ifo = b.act(b.slice(gates, 2, 3 * hidden, name="ifo_view"), OpKind.SIGMOID, name="ifo")
    g = b.act(b.slice(gates, 2, hidden, name="g_view"), OpKind.TANH, name="g")
    i, f, o = (b.slice(ifo, 2, hidden, name=f"{n}_view") for n in "ifo")
    c = b.add(b.mul(f, _fed_back(hidden), name="f_c"), b.mul(i, g, name="i_g"), name="c")
    return b.mul(o, b.act(c, OpKind.TANH, name="tanh_c"), name="h")


def _gru_gates(b: GraphBuilder, pre_x: Tensor, pre_h: Tensor, hidden: int) -> Tensor:
    """``nn.GRU``: r, z = sigmoid(x-part + h-part); n = tanh(W_in x + b_in + r (W_hn h +
    b_hn)); h_t = (1 - z) n + z h_{t-1}, computed as n + z (h_{t-1} - n) (the subtraction
    is an ``add`` op: one FLOP per element either way)."""
    def view(t: Tensor, size: int, name: str) -> Tensor:
        return b.slice(t, 2, size, name=name)
    rz = b.add(view(pre_x, 2 * hidden, "x_rz"), view(pre_h, 2 * hidden, "h_rz"), name="rz_sum")
    rz = b.act(rz, OpKind.SIGMOID, name="rz")
    r, z = view(rz, hidden, "r_view"), view(rz, hidden, "z_view")
    n = b.mul(r, view(pre_h, hidden, "h_n"), name="r_hn")
    n = b.act(b.add(view(pre_x, hidden, "x_n"), n, name="n_sum"), OpKind.TANH, name="n")
    delta = b.add(_fed_back(hidden), n, name="h_minus_n")
    return b.add(n, b.mul(z, delta, name="z_delta"), name="h")


_POINTWISE = {OpKind.RNN_CELL: _rnn_gates, OpKind.LSTM_CELL: _lstm_gates,
              OpKind.GRU_CELL: _gru_gates}


def rnn_lm(*, vocab: int = 10000, hidden: int = 650, layers: int = 2, seq: int = 35,
           embed: int | None = None) -> ModelGraph:
    """Elman (tanh) RNN language model, h_t = tanh(W x_t + U h_{t-1} + b)."""
    return recurrent_lm(OpKind.RNN_CELL, vocab=vocab, hidden=hidden, layers=layers, seq=seq,
                        embed=embed)


def lstm_lm(*, vocab: int = 10000, hidden: int = 650, layers: int = 2, seq: int = 35,
            embed: int | None = None) -> ModelGraph:
    """LSTM language model (Zaremba et al. 2014 medium by default): 4 gates per layer."""
    return recurrent_lm(OpKind.LSTM_CELL, vocab=vocab, hidden=hidden, layers=layers, seq=seq,
                        embed=embed)


def gru_lm(*, vocab: int = 10000, hidden: int = 650, layers: int = 2, seq: int = 35,
           embed: int | None = None) -> ModelGraph:
    """GRU language model (Cho et al. 2014 cells): 3 gates, so 3/4 of an LSTM's GEMM work."""
    return recurrent_lm(OpKind.GRU_CELL, vocab=vocab, hidden=hidden, layers=layers, seq=seq,
                        embed=embed)


def _reference(cell: str, params: int) -> dict[str, Any]:
    return {"params": params, "macs": None,
            "source": f"{_TORCH.format(cell=cell)} for the {_ZAREMBA} (vocab 10000, 2 layers "
                      f"of 650, embed 650): sum(p.numel()) = {params:,} (torch 2.14)"}


MODELS: dict[str, Callable[..., ModelGraph]] = {
    "rnn_lm": rnn_lm,
    "lstm_lm": lstm_lm,
    "gru_lm": gru_lm,
}
REFERENCE: dict[str, dict[str, Any]] = {
    "rnn_lm": _reference("RNN", 14_702_600),
    "lstm_lm": _reference("LSTM", 19_780_400),
    "gru_lm": _reference("GRU", 18_087_800),
}
