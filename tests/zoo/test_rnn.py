"""Recurrent language models: PyTorch-exact parameters, unrolled cells, GRU = 3/4 LSTM work."""

from __future__ import annotations

import pytest

from perfmodel.graph.costs import cost_of
from perfmodel.graph.kinds import RECURRENT_KINDS
from perfmodel.zoo.rnn import MODELS, REFERENCE, gru_lm, lstm_lm, rnn_lm

WIDTHS = {"act": 2, "weight": 2, "kv": 2, "index": 4}
GATES = {"rnn_lm": 1, "lstm_lm": 4, "gru_lm": 3}


def _params_by_hand(gates, vocab=10000, hidden=650, layers=2, embed=650):
    """torch: Embedding V*E + per layer G*(in*h + h*h + 2h) (W_ih, W_hh, b_ih, b_hh)
    + Linear (h + 1) * V."""
    ins = [embed] + [hidden] * (layers - 1)
    cells = sum(gates * (i * hidden + hidden * hidden + 2 * hidden) for i in ins)
    return vocab * embed + cells + (hidden + 1) * vocab


def _macs(graph, kinds=None):
    return sum(cost_of(op.resolve({"B": 1}), WIDTHS).macs for op in graph.ops
               if kinds is None or op.kind in kinds)


# REFERENCE cites torch.nn.Embedding + nn.RNN/LSTM/GRU + nn.Linear for Zaremba et al. 2014's
# medium config, counted with torch 2.14 (sum of p.numel()).
@pytest.mark.parametrize("name", sorted(MODELS))
def test_params_equal_torch_reference(name):
    assert MODELS[name]().params == REFERENCE[name]["params"] == _params_by_hand(GATES[name])


def test_zaremba_medium_lstm_params_by_hand():
    # Embedding 10000*650 = 6,500,000; each LSTM layer 4*(650*650 + 650*650 + 2*650)
    # = 3,385,200; Linear 650*10000 + 10000 = 6,510,000. Total 19,780,400.
    assert lstm_lm().params == 6_500_000 + 2 * 3_385_200 + 6_510_000 == 19_780_400


def test_options_change_the_parameter_count():
    # vocab 100, embed 4, 3 layers of 8 units, GRU: 100*4 + 3*(4*8 + 64 + 16)
    # + 2 * 3*(8*8 + 64 + 16) + (8 + 1)*100 = 400 + 336 + 864 + 900 = 2500.
    g = gru_lm(vocab=100, hidden=8, layers=3, seq=5, embed=4)
    assert g.params == _params_by_hand(3, vocab=100, hidden=8, layers=3, embed=4) == 2500


def test_gru_cell_macs_are_three_quarters_of_lstm():
    # DOMAIN.md section 2: LSTM has 4 gates, GRU 3, so GRU does 3/4 of the cell work.
    lstm, gru = _macs(lstm_lm(), RECURRENT_KINDS), _macs(gru_lm(), RECURRENT_KINDS)
    assert gru / lstm == 3 / 4


def test_lstm_macs_by_hand():
    # Per step: 2 layers * 4 gates * 650 * (650 + 650) = 6,760,000 cell MACs, plus the
    # decoder 650 * 10000 = 6,500,000. Times 35 steps = 464,100,000.
    assert _macs(lstm_lm()) == 35 * (2 * 4 * 650 * 1300 + 650 * 10000) == 464_100_000


def test_cells_are_unrolled_over_time_and_tied():
    g = rnn_lm(seq=7, layers=3)
    cells = [op for op in g.ops if op.kind in RECURRENT_KINDS]
    assert len(cells) == 3 * 7
    assert sum(not op.tied for op in cells) == 3  # one owner of the weights per layer
    first, second = g.op("rnn.0.t0"), g.op("rnn.0.t1")
    assert len(first.inputs) == 1 and len(second.inputs) == 2  # t>0 also reads h_{t-1}
    assert first.inputs[0].shape == ("B", 650)
    # Layer 1 at step 3 reads layer 0's output at step 3 (wavefront across layers).
    assert g.graph.has_edge("rnn.0.t3", "rnn.1.t3")
    assert g.graph.has_edge("rnn.1.t2", "rnn.1.t3")


def test_decoder_maps_every_step_to_the_vocabulary():
    g = lstm_lm(seq=10)
    assert g.op("decoder.linear").outputs[0].shape == ("B", 10, 10000)
    assert g.meta["default_seq"] == 10 and g.meta["is_llm"] is False
    assert g.meta["input"] == "10 tokens" and g.meta["default_batch"] == 1
