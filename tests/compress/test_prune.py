"""Pruning: structured (hand-computed ResNet-50 MACs), unstructured, 2:4, whole blocks."""

from __future__ import annotations

import pytest

from perfmodel.analytic.roofline import predict
from perfmodel.compress.channels import channel_groups
from perfmodel.compress.prune import prune_2_4, prune_layers, prune_structured, prune_unstructured
from perfmodel.compress.select import Selection
from perfmodel.errors import ShapeError
from perfmodel.graph.kinds import TENSOR_KINDS
from perfmodel.hardware.load import load_device
from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model


def _macs(g):
    return build_workload(g, batch=1, dtype="fp16").table["macs"].sum()


def _resnet50_conv_macs():
    """(stem, fc, every other conv) MACs of ResNet-50 from its architecture table (He et
    al. 2016, Table 1; torchvision v1.5: stride on the 3x3 conv)."""
    stem, fc, rest = 3 * 64 * 7 * 7 * 112 * 112, 2048 * 1000, 0
    c_in = 64
    for planes, blocks, h_in, h in ((64, 3, 56, 56), (128, 4, 56, 28), (256, 6, 28, 14),
                                    (512, 3, 14, 7)):
        for i in range(blocks):
            hw_in = (h_in if i == 0 else h) ** 2
            rest += c_in * planes * hw_in              # conv1, 1x1
            rest += 9 * planes * planes * h * h        # conv2, 3x3
            rest += planes * 4 * planes * h * h        # conv3, 1x1
            if i == 0:
                rest += c_in * 4 * planes * h * h      # downsample, 1x1
            c_in = 4 * planes
    return stem, fc, rest


def test_structured_50_percent_on_resnet50_by_hand():
    # Every conv keeps half its input and output channels, except that the stem keeps its
    # 3 image channels and the classifier its 1000 outputs: MACs = stem/2 + fc/2 + rest/4.
    stem, fc, rest = _resnet50_conv_macs()
    g = load_model("resnet50")
    assert _macs(g) == stem + fc + rest == 4_089_184_256      # torchvision: 4.089 G
    pruned = prune_structured(g, 0.5)
    assert _macs(pruned) == stem / 2 + fc / 2 + rest / 4 == 1_052_311_552
    assert pruned.op("layer3.2.conv2").weights[0].shape == (128, 128, 3, 3)
    assert pruned.op("fc").weights[0].shape == (1000, 1024)


def test_structured_skip_first_keeps_the_stem_group():
    pruned = prune_structured(load_model("resnet50"), 0.5, Selection(skip_first=True))
    assert pruned.op("conv1").weights[0].shape == (64, 3, 7, 7)
    assert pruned.op("layer1.0.conv1").weights[0].shape == (32, 64, 1, 1)


def test_channel_groups_stop_at_shape_changes():
    groups = channel_groups(load_model("vgg16"))
    last_conv = next(g for g in groups if "features.28" in g.producers)
    assert not last_conv.prunable and "flatten" in last_conv.blocked_by  # 512x7x7 -> 25088
    llama = channel_groups(load_model("llama-2-7b"))
    mlp = next(g for g in llama if "layers.0.mlp.gate_proj" in g.producers)
    assert mlp.prunable and set(mlp.producers) == {"layers.0.mlp.gate_proj",
                                                   "layers.0.mlp.up_proj"}
    assert mlp.absorbers == ("layers.0.mlp.down_proj",)


def test_unstructured_90_keeps_macs_and_latency_on_a100_but_shrinks_size():
    # fp16 weights, 90 % zeros, 8-bit relative indices (Deep Compression sec. 2): each
    # pruned weight tensor stores 0.1 x (16 + 8) bits per weight instead of 16: 6.67x
    # smaller ("~10x minus the index overhead"); biases and BatchNorm stay dense.
    a100 = load_device("a100")
    g = load_model("resnet50")
    p = prune_unstructured(g, 0.9)
    base = predict(build_workload(g, batch=1, dtype="fp16"), a100, dtype_fallback=True)
    pruned = predict(build_workload(p, batch=1, dtype="fp16"), a100, dtype_fallback=True)
    assert pruned.summary["macs_executed"] == base.summary["macs"]
    assert pruned.summary["latency_s"] == pytest.approx(base.summary["latency_s"])
    main = sum(op.weights[0].numel for op in g.ops if op.kind in TENSOR_KINDS and op.weights)
    rest = g.params - main
    expected = main * 0.1 * (16 + 8) / 8 + rest * 2
    assert pruned.summary["storage_bytes"] == pytest.approx(expected)
    ratio = base.summary["storage_bytes"] / pruned.summary["storage_bytes"]
    assert 6 < ratio < 10


def test_2_4_speeds_up_matmuls_only_on_devices_that_declare_it():
    g = prune_2_4(load_model("bert-base"))
    wl = build_workload(g, batch=8, seq=512, dtype="fp16")
    a100 = predict(wl, load_device("a100"), dtype_fallback=True)     # sparse_2_4: true
    mi250x = predict(wl, load_device("mi250x"), dtype_fallback=True)  # not declared
    base = build_workload(load_model("bert-base"), batch=8, seq=512, dtype="fp16")
    lin = a100.ops["kind"] == "linear"
    assert (a100.ops[lin]["macs_executed"] == a100.ops[lin]["macs"] / 2).all()
    assert mi250x.summary["macs_executed"] == mi250x.summary["macs"]
    assert a100.summary["latency_s"] < predict(base, load_device("a100")).summary["latency_s"]
    assert mi250x.summary["latency_s"] == pytest.approx(
        predict(base, load_device("mi250x")).summary["latency_s"])


def test_prune_layers_removes_the_deepest_identity_blocks():
    # ResNet-50 has 12 blocks with identity shortcuts; 25 % -> 3 removed, deepest first but
    # not the last (layer4.2): layer4.1, layer3.5, layer3.4.
    g = load_model("resnet50")
    p = prune_layers(g, 0.25)
    assert p.meta["removed_blocks"] == ["layer4.1", "layer3.5", "layer3.4"]
    l3 = 1024 * 256 * 196 + 9 * 256 * 256 * 196 + 256 * 1024 * 196
    l4 = 2048 * 512 * 49 + 9 * 512 * 512 * 49 + 512 * 2048 * 49
    assert _macs(g) - _macs(p) == 2 * l3 + l4
    assert p.ops[-1].outputs[0].shape == g.ops[-1].outputs[0].shape


@pytest.mark.parametrize("fn, arg", [(prune_unstructured, 1.0), (prune_structured, -0.1),
                                     (prune_layers, 2)])
def test_bad_fractions_are_rejected(fn, arg):
    with pytest.raises(ShapeError):
        fn(load_model("resnet18"), arg)
