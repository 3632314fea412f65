"""Recurrent language models: PyTorch-exact parameters, cost that follows --seq and --batch,
GRU = 3/4 of LSTM's GEMM work."""

from __future__ import annotations

import pytest

from perfmodel.graph.kinds import OpKind
from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model
from perfmodel.zoo.rnn import MODELS, REFERENCE, gru_lm, lstm_lm, rnn_lm

GATES = {"rnn_lm": 1, "lstm_lm": 4, "gru_lm": 3}


def _params_by_hand(gates, vocab=10000, hidden=650, layers=2, embed=650):
    """torch: Embedding V*E + per layer G*(in*h + h*h + 2h) (W_ih, W_hh, b_ih, b_hh)
    + Linear (h + 1) * V."""
    ins = [embed] + [hidden] * (layers - 1)
    cells = sum(gates * (i * hidden + hidden * hidden + 2 * hidden) for i in ins)
    return vocab * embed + cells + (hidden + 1) * vocab


def _table(graph, seq=None, batch=None):
    return build_workload(graph, batch=batch, seq=seq, dtype="fp16").table


def _recurrent_macs(graph, seq=None, batch=None):
    """MACs of the recurrent layers (scopes rnn.*), at the job's seq and batch."""
    t = _table(graph, seq, batch)
    return float(t.loc[t["layer"].str.startswith("rnn."), "macs"].sum())


# REFERENCE cites torch.nn.Embedding + nn.RNN/LSTM/GRU + nn.Linear for Zaremba et al. 2014's
# medium config, counted with torch 2.14 (sum of p.numel()).
@pytest.mark.parametrize("name", sorted(MODELS))
def test_params_equal_torch_reference(name):
    assert MODELS[name]().params == REFERENCE[name]["params"] == _params_by_hand(GATES[name])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_params_equal_torch_modules_when_installed(name):
    torch = pytest.importorskip("torch")
    cell = {"rnn_lm": torch.nn.RNN, "lstm_lm": torch.nn.LSTM, "gru_lm": torch.nn.GRU}[name]
    mods = (torch.nn.Embedding(10000, 650), cell(650, 650, 2), torch.nn.Linear(650, 10000))
    assert MODELS[name]().params == sum(p.numel() for m in mods for p in m.parameters())


def test_zaremba_medium_lstm_params_by_hand():
    # Embedding 10000*650 = 6,500,000; each LSTM layer 4*(650*650 + 650*650 + 2*650)
    # = 3,385,200; Linear 650*10000 + 10000 = 6,510,000. Total 19,780,400.
    assert lstm_lm().params == 6_500_000 + 2 * 3_385_200 + 6_510_000 == 19_780_400


def test_options_change_the_parameter_count():
    # vocab 100, embed 4, 3 layers of 8 units, GRU: 100*4 + 3*(4*8 + 64 + 16)
    # + 2 * 3*(8*8 + 64 + 16) + (8 + 1)*100 = 400 + 336 + 864 + 900 = 2500.
    g = gru_lm(vocab=100, hidden=8, layers=3, seq=5, embed=4)
    assert g.params == _params_by_hand(3, vocab=100, hidden=8, layers=3, embed=4) == 2500


def test_lstm_macs_by_hand():
    # Per step: 2 layers * 4 gates * 650 * (650 + 650) = 6,760,000 recurrent-layer MACs,
    # plus the decoder 650 * 10000 = 6,500,000. Times 35 steps = 464,100,000.
    assert _recurrent_macs(lstm_lm()) == 35 * 6_760_000 == 236_600_000
    assert _table(lstm_lm())["macs"].sum() == 35 * (6_760_000 + 6_500_000) == 464_100_000


def test_seq_70_doubles_the_recurrent_work_of_seq_35():
    # The issue: lstm_lm at --seq 70 gave the seq-35 numbers. Hand-worked: 70 steps *
    # 6,760,000 = 473,200,000 = 2 * 236,600,000; the decoder doubles too (70 * 6,500,000).
    g = load_model("lstm_lm")
    assert _recurrent_macs(g, seq=70) == 70 * 6_760_000 == 2 * _recurrent_macs(g, seq=35)
    assert _table(g, seq=70)["macs"].sum() == 70 * (6_760_000 + 6_500_000)
    # each step reads h_{t-1} (650) and W_hh (650 x 2600), fp16, in each of the 2 layers
    t = _table(g, seq=70)
    hh = t.loc[t["name"].str.endswith(".hh"), "input_bytes"].sum()
    assert hh == 2 * 70 * (650 + 650 * 4 * 650) * 2


@pytest.mark.parametrize("name", sorted(MODELS))
def test_batch_and_seq_scale_every_recurrent_model(name):
    g = MODELS[name]()
    base = _recurrent_macs(g, seq=35, batch=1)
    assert base == 35 * 2 * GATES[name] * 650 * 1300
    assert _recurrent_macs(g, seq=70, batch=1) == 2 * base
    assert _recurrent_macs(g, seq=35, batch=4) == 4 * base
    assert _recurrent_macs(g, seq=70, batch=4) == 8 * base


def test_default_seq_is_the_builders_seq():
    assert build_workload(lstm_lm(seq=10)).job.seq == 10
    assert _recurrent_macs(lstm_lm(seq=10)) == 10 * 6_760_000


def test_gru_gemm_macs_are_three_quarters_of_lstm():
    # DOMAIN.md section 2: LSTM has 4 gates, GRU 3, so GRU does 3/4 of the cell work.
    assert _recurrent_macs(gru_lm()) / _recurrent_macs(lstm_lm()) == 3 / 4


def test_layer_is_input_gemm_recurrent_gemm_and_gates():
    g = rnn_lm(layers=3)
    ih, hh, w = g.op("rnn.1.ih"), g.op("rnn.1.hh"), g.op("rnn.1.weight_hh")
    assert ih.kind == OpKind.LINEAR and ih.inputs[0].shape == ("S", "B", 650)
    # a batch of S GEMMs (B, H) x (H, G*H), W_hh broadcast over the steps (role weight)
    assert hh.kind == OpKind.MATMUL and hh.outputs[0].shape == ("S", "B", 650)
    assert hh.inputs[1].shape == ("S", 650, 650) and hh.inputs[1].role == "weight"
    assert w.kind == OpKind.IDENTITY and [t.shape for t in w.weights] == [(650, 650), (650,)]
    assert g.graph.has_edge("rnn.0.h", "rnn.1.ih")  # layers stack
    assert g.graph.has_edge("rnn.1.weight_hh", "rnn.1.hh")
    assert sum(op.name.endswith(".hh") for op in g.ops) == 3


def test_lstm_gates_follow_torch():
    g = lstm_lm()
    assert g.op("rnn.0.ifo").kind == OpKind.SIGMOID
    assert g.op("rnn.0.ifo").outputs[0].shape == ("S", "B", 3 * 650)
    assert g.op("rnn.0.h").outputs[0].shape == ("S", "B", 650)
    t = _table(g, seq=2)
    # per hidden unit and step: gates add 4, sigmoid 3 * 4, tanh(g) 5, f*c 1, i*g 1,
    # c add 1, tanh(c) 5, o*tanh 1 = 30 FLOPs (perfmodel.graph.costs.ELEMENTWISE_FLOPS)
    vector = t[(t["layer"] == "rnn.0") & (t["macs"] == 0)]
    assert vector["flops"].sum() == 2 * 650 * 30


def test_decoder_maps_every_step_to_the_vocabulary():
    g = lstm_lm(seq=10)
    assert g.op("decoder.linear").outputs[0].shape == ("S", "B", 10000)
    assert g.meta["default_seq"] == 10 and g.meta["is_llm"] is False
    assert g.meta["input"] == "10 tokens" and g.meta["default_batch"] == 1
