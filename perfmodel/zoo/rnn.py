"""Recurrent language models: word embedding -> stacked RNN/LSTM/GRU -> linear to the vocabulary.

The defaults are the "medium" LSTM of Zaremba, Sutskever & Vinyals 2014 ("Recurrent Neural
Network Regularization", Penn Treebank): vocabulary 10,000, 2 layers of 650 units, 650-wide
embeddings, unrolled for 35 steps. Parameters follow PyTorch's layout: ``nn.Embedding``,
``nn.RNN``/``nn.LSTM``/``nn.GRU`` (W_ih, W_hh, b_ih, b_hh per layer, see
:meth:`~perfmodel.graph.GraphBuilder.recurrent_cell`) and ``nn.Linear`` with bias.

The recurrence is serial, so the sequence length is a build-time option (``seq``): every
time step is its own cell op, tied to the layer's first step (weights counted once, still
read each step). Layer ``l`` at step ``t`` takes layer ``l-1``'s output at step ``t``
directly, so the graph keeps the wavefront parallelism across layers that cuDNN exploits.
Dropout (Zaremba et al. use it between layers) is the identity at inference and is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph

__all__ = ["recurrent_lm", "rnn_lm", "lstm_lm", "gru_lm", "MODELS", "REFERENCE"]

_ZAREMBA = "Zaremba et al. 2014, 'Recurrent Neural Network Regularization', medium config"
_TORCH = "torch.nn.Embedding + torch.nn.{cell} + torch.nn.Linear"
_CELL_NAMES = {OpKind.RNN_CELL: "RNN", OpKind.LSTM_CELL: "LSTM", OpKind.GRU_CELL: "GRU"}


def recurrent_lm(kind: str, *, vocab: int = 10000, hidden: int = 650, layers: int = 2,
                 seq: int = 35, embed: int | None = None) -> ModelGraph:
    """A word-level language model with ``layers`` recurrent layers of ``kind``, unrolled
    ``seq`` steps; ``embed`` defaults to ``hidden`` (as in Zaremba et al. 2014)."""
    embed = hidden if embed is None else embed
    cell = _CELL_NAMES[OpKind(kind)]
    b = GraphBuilder(f"{cell.lower()}_lm", family=cell.lower(),
                     source=f"{_ZAREMBA}; parameters as {_TORCH.format(cell=cell)}",
                     input=f"{seq} tokens", default_batch=1, default_seq=seq, is_llm=False,
                     vocab=vocab, hidden=hidden, layers=layers, embed=embed)
    tokens = b.input("tokens", (seq,), role="index")
    x = b.embedding(tokens, vocab, embed, name="encoder")
    steps = [_step_view(b, x, t) for t in range(seq)]
    for layer in range(layers):
        with b.scope(f"rnn.{layer}"):
            steps = _unroll(b, kind, steps, hidden)
    with b.scope("decoder"):
        out = b.add_op(OpKind.RESHAPE, steps, ("B", seq, hidden), name="stack")
        b.linear(out, vocab, name="linear")
    return b.build()


def _step_view(b: GraphBuilder, x: Tensor, t: int) -> Tensor:
    """Time step t of (B, seq, E) as a (B, E) view: x[:, t]."""
    with b.scope("encoder"):
        step = b.slice(x, 1, 1, name=f"step{t}")
        return b.reshape(step, ("B", x.shape[-1]), name=f"x{t}")


def _unroll(b: GraphBuilder, kind: str, inputs: list[Tensor], hidden: int) -> list[Tensor]:
    """One layer over all time steps: h_t = cell(x_t, h_{t-1}); steps after the first are tied."""
    outputs: list[Tensor] = []
    h: Tensor | None = None
    for t, x_t in enumerate(inputs):
        h = b.recurrent_cell(kind, x_t, h, hidden, tied=t > 0, name=f"t{t}")
        outputs.append(h)
    return outputs


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
    """GRU language model (Cho et al. 2014 cells): 3 gates, so 3/4 of an LSTM's cell work."""
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
