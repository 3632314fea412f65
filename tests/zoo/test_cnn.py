"""CNN and ViT zoo: parameters and MACs against the published figures, plus hand-worked
structure checks.

The published figures and their sources live in each module's ``REFERENCE`` (``source``
cites torchvision's "Table of all available classification weights" and the torchvision
0.29.1 check; LeNet-5 cites LeCun et al. 1998 and DOMAIN.md section 2).
"""

from __future__ import annotations

import networkx as nx
import pytest

from perfmodel.errors import UnknownNameError
from perfmodel.graph.costs import is_costed
from perfmodel.zoo import cnn, resnet, vision_transformer
from tests.zoo.graph_sums import macs, out_shape, params

MODULES = (cnn, resnet, vision_transformer)
ROWS = [(m, name) for m in MODULES for name in m.MODELS]


@pytest.mark.parametrize(("module", "name"), ROWS, ids=[n for _, n in ROWS])
def test_matches_published_figures(module, name):
    # REFERENCE[name]["source"] names the published table entry each number comes from.
    ref = module.REFERENCE[name]
    g = module.MODELS[name]()
    assert g.params == ref["params"]
    if ref["macs"] is not None:
        assert macs(g) == pytest.approx(ref["macs"], rel=0.01)
    assert ref["source"]


@pytest.mark.parametrize(("module", "name"), ROWS, ids=[n for _, n in ROWS])
def test_graph_is_well_formed(module, name):
    g = module.MODELS[name]()
    assert {"family", "source", "input", "default_batch", "is_llm"} <= set(g.meta)
    assert g.meta["default_batch"] == 1 and g.meta["is_llm"] is False
    assert nx.is_directed_acyclic_graph(g.graph)
    assert all(is_costed(op.kind) for op in g.ops)
    assert g.ops[-1].outputs[0].shape == ("B", 10 if name.startswith("lenet") else 1000)


def test_lenet5_cifar_params_and_macs_by_hand():
    g = cnn.MODELS["lenet5_cifar"]()
    # conv1 3*5*5*6 + 6 = 456; conv2 6*5*5*16 + 16 = 2,416; fc1 400*120 + 120 = 48,120;
    # fc2 120*84 + 84 = 10,164; fc3 84*10 + 10 = 850
    assert g.params == 456 + 2_416 + 48_120 + 10_164 + 850 == 62_006
    assert g.params - cnn.MODELS["lenet5"]().params == 2 * 5 * 5 * 6  # two more in-channels
    # conv1 28*28*6*75 = 352,800; conv2 10*10*16*150 = 240,000; fcs 48,000 + 10,080 + 840
    assert macs(g) == 352_800 + 240_000 + 48_000 + 10_080 + 840
    assert out_shape(g, "pool2") == ("B", 16, 5, 5)


def test_lenet5_macs_by_hand():
    # conv1 28*28*6*25 = 117,600, the rest as lenet5_cifar: 416,520 MACs
    assert macs(cnn.MODELS["lenet5"]()) == 117_600 + 240_000 + 48_000 + 10_080 + 840


def test_resnet50_bottleneck_by_hand():
    g = resnet.MODELS["resnet50"]()
    # layer1.0: 1x1 64->64 (4,096) + 3x3 64->64 (36,864) + 1x1 64->256 (16,384)
    # + projection 64->256 (16,384) + BN gains/biases 2*(64+64+256+256) = 1,280
    assert params(g, "layer1.0.") == 4_096 + 36_864 + 16_384 + 16_384 + 1_280 == 75_008
    assert out_shape(g, "layer4.2.relu3") == ("B", 2048, 7, 7)
    assert out_shape(g, "layer2.0.conv2") == ("B", 128, 28, 28)  # v1.5: the 3x3 conv strides


def test_googlenet_inception3a_and_aux():
    g = cnn.MODELS["googlenet"]()
    assert out_shape(g, "inception3a.cat") == ("B", 64 + 128 + 32 + 32, 28, 28)
    # aux1 (on 512 channels) and aux2 (on 528): 1x1 conv to 128 + BN 256 each, and
    # FCs 2048->1024->1000 each: 2048*1024 + 1024 + 1024*1000 + 1000 = 3,123,176
    aux = cnn.googlenet(aux_logits=True)
    assert aux.params - g.params == (512 + 528) * 128 + 2 * 256 + 2 * 3_123_176
    assert aux.params == 13_004_888  # torchvision GoogLeNet(aux_logits=True)


def test_inception_v3_aux_head_is_in_published_params():
    g = cnn.MODELS["inception_v3"]()
    # AuxLogits: conv0 768*128 + BN 256; conv1 128*768*25 + BN 1,536; fc 768*1000 + 1000
    aux = 98_304 + 256 + 2_457_600 + 1_536 + 769_000
    assert params(g, "AuxLogits.") == aux == 3_326_696
    assert cnn.inception_v3(aux_logits=False).params == 27_161_264 - aux
    assert out_shape(g, "Mixed_7c.cat") == ("B", 2048, 8, 8)
    assert out_shape(g, "Mixed_6e.cat") == ("B", 768, 17, 17)


def test_squeezenet_fire_and_densenet_growth():
    sq = cnn.MODELS["squeezenet1_0"]()
    # features.3 = Fire(96, 16, 64, 64): 96*16+16 + 16*64+64 + 16*9*64+64
    assert params(sq, "features.3.") == 1_552 + 1_088 + 9_280
    dn = cnn.MODELS["densenet121"]()
    # block 4 starts at 1024 // 2 = 512 channels and adds 16 layers of 32
    assert out_shape(dn, "features.denseblock4.cat") == ("B", 512 + 16 * 32, 7, 7)


def test_convnext_block_by_hand():
    g = resnet.MODELS["convnext_tiny"]()
    # dw 7x7: 96*49 + 96; LayerNorm 2*96; Linear 96->384: 96*384 + 384;
    # Linear 384->96: 384*96 + 96; layer scale 96
    assert params(g, "features.1.0.") == 4_800 + 192 + 37_248 + 36_960 + 96 == 79_296
    assert out_shape(g, "features.7.2.add") == ("B", 768, 7, 7)


def test_vit_encoder_layer_and_attention_by_hand():
    g = vision_transformer.MODELS["vit_b_16"]()
    layer = "encoder.layers.encoder_layer_0."
    # LNs 2*2*768; in_proj 768*2304 + 2304; out_proj 768*768 + 768;
    # MLP 768*3072 + 3072 + 3072*768 + 768
    assert params(g, layer) == 3_072 + 1_771_776 + 590_592 + 4_722_432 == 7_087_872
    attn = g.op(layer + "self_attention.attention")
    assert attn.inputs[0].shape == ("B", 12, 197, 64) and not attn.attr("causal")
    assert macs(g, layer + "self_attention.attention") == 2 * 12 * 197 * 197 * 64
    # class token (1,1,768) and position embedding (1,197,768) are counted parameters
    assert params(g, "class_token") == 768
    assert params(g, "encoder.pos_embedding") == 197 * 768


def test_unknown_variant_is_one_clear_error():
    with pytest.raises(UnknownNameError, match="ResNet depth 42"):
        resnet.resnet(depth=42)
    with pytest.raises(UnknownNameError, match="did you mean '1_0'"):
        cnn.squeezenet(version="1.0")
    with pytest.raises(UnknownNameError, match="VGG cfg"):
        cnn.vgg(cfg="Z")
