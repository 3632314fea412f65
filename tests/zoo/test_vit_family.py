"""Swin V1/V2, DeiT and MLP-Mixer against their published figures.

Expected numbers come from each module's ``REFERENCE`` (its ``source`` cites them):
torchvision's docs table for Swin (also compared with the instantiated torchvision model
when torchvision is installed); Touvron et al. 2021 Table 1 and timm's model cards for DeiT;
Tolstikhin et al. 2021 Table 1 and timm's model cards for MLP-Mixer. Structural tests are
worked by hand in the comments.
"""

from __future__ import annotations

import pytest

from perfmodel.graph.kinds import OpKind
from perfmodel.zoo import deit, mixer, swin, vision_transformer
from tests.zoo.graph_sums import macs, out_shape, params
from tests.zoo.torchvision_check import (
    GFLOPS_ROUNDING,
    ZooRows,
    check_well_formed,
    torchvision_params,
)

NEW = {swin: tuple(swin.MODELS), deit: tuple(deit.MODELS), mixer: tuple(mixer.MODELS)}
Z = ZooRows(NEW)
ROWS, IDS, build = Z.rows, Z.ids, Z.build


@pytest.mark.parametrize(("name", "module"), ROWS, ids=IDS)
def test_params_equal_published(name, module):
    assert build(name).params == module.REFERENCE[name]["params"]


@pytest.mark.parametrize("name", sorted(swin.MODELS))
def test_swin_params_equal_torchvision(name):
    assert build(name).params == torchvision_params(name)


@pytest.mark.parametrize(("name", "module"), ROWS, ids=IDS)
def test_macs_within_published_rounding(name, module):
    ref = module.REFERENCE[name]
    if ref["macs"] is None:
        pytest.skip("no published MAC figure (see test_mixer_s16_macs_by_hand)")
    assert abs(macs(build(name)) - ref["macs"]) <= ref.get("macs_tolerance", GFLOPS_ROUNDING)


@pytest.mark.parametrize(("name", "module"), ROWS, ids=IDS)
def test_graph_is_well_formed(name, module):
    check_well_formed(build(name), module, name)


def test_swin_t_window_attention_by_hand():
    g = build("swin_t")
    blk = "features.1.0."
    # stage 1: 56x56 map, 7x7 windows -> 64 windows of 49 tokens, 3 heads of 32
    scores = g.op(blk + "attn.scores")
    assert scores.inputs[0].shape == ("B", 64 * 3, 49, 32)
    assert macs(g, blk + "attn.scores") == 64 * 3 * 49 * 49 * 32
    # the relative position bias table (2*7-1)^2 x 3 heads is a parameter
    assert params(g, blk + "attn.relative_position_bias") == 169 * 3
    # block params: LN 2*96 x 2, qkv 96*288 + 288, proj 96*96 + 96, table 507,
    # MLP 96*384 + 384 + 384*96 + 96
    assert params(g, blk) == 384 + 27_936 + 9_312 + 507 + 74_208
    # odd blocks shift (roll before and after, plus the mask); stage 4 (7x7 map) does not
    assert g.op("features.1.1.attn.roll").kind == OpKind.COPY
    assert "features.1.0.attn.roll" not in {op.name for op in g.ops}
    assert "features.7.1.attn.roll" not in {op.name for op in g.ops}
    assert out_shape(g, "features.2.reduction") == ("B", 28, 28, 192)


def test_swin_v2_continuous_position_bias_and_post_norm():
    g = build("swin_v2_t")
    blk = "features.1.0."
    # cpb_mlp: Linear 2->512 (1,536) + Linear 512->3 no bias (1,536); logit_scale 3
    assert params(g, blk + "attn.cpb_mlp.") == 1_536 + 1_536
    assert params(g, blk + "attn.logit_scale") == 3
    # it runs once per forward on the 15x15 table, whatever the batch
    assert g.op(blk + "attn.cpb_mlp.0").inputs[0].shape == (1, 15, 15, 2)
    assert macs(g, blk + "attn.cpb_mlp.") == 225 * (2 * 512 + 512 * 3)
    # res-post-norm: norm1 follows the attention (x + norm1(attn(x)))
    assert g.graph.has_edge(blk + "attn.proj", blk + "attn.window_reverse")
    assert g.graph.has_edge(blk + "attn.window_reverse", blk + "norm1")
    assert out_shape(g, "features.7.1.add_2") == ("B", 8, 8, 768)  # 256 / 32


def test_deit_is_vit_at_other_widths():
    # DeiT-B is ViT-B/16: same parameters and MACs (Touvron et al. 2021, Table 1)
    vit = vision_transformer.MODELS["vit_b_16"]()
    assert build("deit_base").params == vit.params and macs(build("deit_base")) == macs(vit)
    g = build("deit_tiny")
    # one layer: LNs 4*192, qkv 192*576 + 576, proj 192*192 + 192, MLP 192*768 + 768 +
    # 768*192 + 192 = 768 + 111,168 + 37,056 + 295,872
    assert params(g, "encoder.layers.encoder_layer_0.") == 444_864
    # embedding: patch conv 768*192 + 192, class token 192, position 197*192; final LN
    # 384; head 193,000
    assert g.params == 12 * 444_864 + 147_648 + 192 + 37_824 + 384 + 193_000 == 5_717_416
    assert g.op("encoder.layers.encoder_layer_0.self_attention.attention").inputs[0].shape \
        == ("B", 3, 197, 64)


def test_deit_distilled_adds_a_token_and_a_head():
    for v, dim in (("tiny", 192), ("small", 384), ("base", 768)):
        plain, dist = build(f"deit_{v}"), build(f"deit_{v}_distilled")
        # dist token dim, one more position dim, head_dist dim*1000 + 1000
        assert dist.params - plain.params == dim + dim + dim * 1000 + 1000
    g = build("deit_small_distilled")
    assert out_shape(g, "encoder.pos_embedding") == ("B", 198, 384)


def test_mixer_s16_macs_by_hand():
    g = build("mixer_s16")
    # stem 196 * 768 * 512; per layer token MLP 512 * 2 * 196 * 256 and channel MLP
    # 196 * 2 * 512 * 2048, 8 layers; head 512 * 1000
    per_layer = 512 * 2 * 196 * 256 + 196 * 2 * 512 * 2048
    assert macs(g) == 196 * 768 * 512 + 8 * per_layer + 512 * 1000 == 3_776_958_464
    assert g.op("blocks.0.mlp_tokens.fc1").inputs[0].shape == ("B", 512, 196)


@pytest.mark.parametrize("name", sorted(mixer.MODELS))
def test_mixer_trunk_params_match_the_papers_table(name):
    # Tolstikhin et al. 2021, Table 1 counts the trunk (no classifier head), in millions
    ref = mixer.REFERENCE[name]
    head = mixer.MIXER_CONFIGS[name][1] * 1001
    assert round((build(name).params - head) / 1e6) == ref["trunk_params_m"]
