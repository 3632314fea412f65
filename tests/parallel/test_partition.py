"""TP / recompute partitioning of the per-device workload, and Narayanan's model FLOP."""

from __future__ import annotations

import pytest

from perfmodel.errors import PlanError
from perfmodel.parallel.partition import (
    TransformerDims,
    dims_of,
    layer_costs,
    model_flops,
    p2p_bytes,
    stage_times,
    tp_comm_bytes,
)
from perfmodel.zoo.registry import load_model


@pytest.fixture(scope="module")
def gpt3():
    return load_model("gpt3-175b")


def test_model_flops_hand_worked():
    # l = 1, h = 6, s = 6, V = 12, B = 1: 72 x 6 x 36 x (1 + 6/36 + 12/72) = 20736
    d = TransformerDims("t", 1, 6, 1, 12, 0.0, 0.0, 0.0)
    assert model_flops(d, 1, 6) == pytest.approx(20736.0)


def test_gpt3_dims(gpt3):
    d = dims_of(gpt3)
    assert (d.layers, d.hidden, d.heads) == (96, 12288, 96)  # Brown et al. 2020, Table 2.1
    # 12 h^2 + 13 h per layer (Narayanan et al. 2021, eq. 2 without the embedding)
    assert d.layer_params == pytest.approx(12 * 12288**2 + 13 * 12288)


def test_sequence_parallel_splits_every_row_by_tp(gpt3, tiny_device=None):
    from perfmodel.hardware.load import load_device
    dev = load_device("a100-sxm4-80gb")
    c = layer_costs(gpt3, 2048)
    one = stage_times(c, dev, 1, 1)
    sp8 = stage_times(c, dev, 8, 1, sequence_parallel=True)
    no_sp8 = stage_times(c, dev, 8, 1)
    assert sp8.layer_model_flops * 8 == pytest.approx(one.layer_model_flops)
    # without SP the layer norms, adds and GELU are replicated: more than 1/8 per device
    assert no_sp8.layer_model_flops * 8 > one.layer_model_flops
    # micro-batch 4 does 4x the FLOP
    assert stage_times(c, dev, 8, 4, True).layer_model_flops == pytest.approx(
        4 * sp8.layer_model_flops)


def test_full_recompute_adds_one_forward(gpt3):
    # Narayanan et al. 2021, sec. 5.1: 96 instead of 72 B s l h^2 with recomputation: 4/3
    from perfmodel.hardware.load import load_device
    t = stage_times(layer_costs(gpt3, 2048), load_device("a100-sxm4-80gb"), 8, 1, True, "full")
    assert t.layer_hw_flops / t.layer_model_flops == pytest.approx(4 / 3, rel=0.01)
    sel = stage_times(layer_costs(gpt3, 2048), load_device("a100-sxm4-80gb"), 8, 1, True,
                      "selective")
    assert 1 < sel.layer_hw_flops / sel.layer_model_flops < 1.05  # attention core only


def test_comm_sizes(gpt3):
    d = dims_of(gpt3)
    assert tp_comm_bytes(d, 2048, 1, "bf16") == 2048 * 12288 * 2  # s b h x 2 B
    assert p2p_bytes(d, 2048, 1, "bf16", 8, True) == 2048 * 12288 * 2 / 8


def test_non_transformer_rejected():
    with pytest.raises(PlanError):
        dims_of(load_model("resnet18"))
