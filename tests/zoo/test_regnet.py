"""RegNetX / RegNetY against torchvision: parameters exact (published figure, and the
instantiated torchvision model when torchvision is installed), MACs within the rounding of
the published GFLOPS, and the width rule worked by hand.

Published figures: ``perfmodel.zoo.regnet.REFERENCE`` (torchvision docs, "Table of all
available classification weights", docs.pytorch.org/vision/stable/models.html; the
weights' meta ``_ops`` to 3 decimals).
"""

from __future__ import annotations

from functools import cache

import networkx as nx
import pytest

from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.zoo import regnet
from perfmodel.zoo.registry import load_model
from tests.zoo.graph_sums import macs, out_shape, params
from tests.zoo.torchvision_check import torchvision_params

NAMES = sorted(regnet.MODELS)
GFLOPS_ROUNDING = 0.0005e9  # the meta _ops figure has 3 decimals of GFLOPS (= GMACs)


@cache
def build(name: str) -> ModelGraph:
    return regnet.MODELS[name]()


def test_every_torchvision_regnet_is_in_the_zoo():
    assert set(NAMES) == {f"regnet_x_{s}" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf",
                                                    "16gf", "32gf")} | {
        f"regnet_y_{s}" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf",
                                  "128gf")}
    assert set(regnet.REFERENCE) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_params_equal_published(name):
    assert build(name).params == regnet.REFERENCE[name]["params"]


@pytest.mark.parametrize("name", NAMES)
def test_params_equal_torchvision(name):
    assert build(name).params == torchvision_params(name)


@pytest.mark.parametrize("name", NAMES)
def test_macs_within_published_rounding(name):
    ref = regnet.REFERENCE[name]["macs"]
    assert abs(macs(build(name)) - ref) <= GFLOPS_ROUNDING
    assert macs(build(name)) == pytest.approx(ref, rel=0.01)


@pytest.mark.parametrize("name", ["regnet_x_400mf", "regnet_y_400mf"])
def test_graph_is_well_formed(name):
    g = build(name)
    assert nx.is_directed_acyclic_graph(g.graph)
    assert g.ops[-1].outputs[0].shape == ("B", 1000)
    assert regnet.MODELS[name](num_classes=10).ops[-1].outputs[0].shape == ("B", 10)
    assert g.meta["family"] == "regnet" and g.meta["input"] == "3x224x224"


def test_regnet_y_400mf_stages_by_hand():
    # Radosavovic et al. 2020, section 3.3, with d=16, w_0=48, w_a=27.89, w_m=2.09:
    # u_j = 48 + 27.89 j; s_j = round(log(u_j / 48) / log 2.09) = 0 (j=0), 1 (j=1..3),
    # 2 (j=4..9), 3 (j=10..15); widths 48 * 2.09^s rounded to 8: 48, 104, 208, 440.
    assert regnet.regnet_stages(16, 48, 27.89, 2.09, 8) == [
        (48, 1, 8), (104, 3, 8), (208, 6, 8), (440, 6, 8)]
    # RegNetX-8GF: stage 1 is 80 wide, so its group width drops from 120 to 80
    assert regnet.regnet_stages(*regnet.REGNET_PARAMS["regnet_x_8gf"][:5])[0] == (80, 2, 80)


def test_regnet_stages_equal_torchvision_block_params():
    pytest.importorskip("torch")
    block_params = pytest.importorskip("torchvision.models.regnet").BlockParams
    for name, (d, w0, wa, wm, g, se) in regnet.REGNET_PARAMS.items():
        bp = block_params.from_init_params(depth=d, w_0=w0, w_a=wa, w_m=wm, group_width=g,
                                           se_ratio=se)
        assert regnet.regnet_stages(d, w0, wa, wm, g) == list(
            zip(bp.widths, bp.depths, bp.group_widths, strict=True)), name


def test_regnet_y_400mf_first_block_by_hand():
    g = build("regnet_y_400mf")
    block = "trunk_output.block1.block1-0."
    # 32 -> 48, stride 2, group width 8 (6 groups), SE squeeze round(0.25 * 32) = 8:
    # a: 32*48 + BN 96 = 1,632; b: 48*8*9 + 96 = 3,552; se: 48*8 + 8 + 8*48 + 48 = 824;
    # c: 48*48 + 96 = 2,400; proj: 32*48 + 96 = 1,632
    assert params(g, block) == 1_632 + 3_552 + 824 + 2_400 + 1_632 == 10_040
    assert g.op(block + "f.b.0").attr("groups") == 6
    assert g.op(block + "f.se.scale_activation").kind == OpKind.SIGMOID
    assert out_shape(g, block + "activation") == ("B", 48, 56, 56)
    assert out_shape(g, "trunk_output.block4.block4-5.activation") == ("B", 440, 7, 7)


def test_regnet_x_has_no_squeeze_excite():
    g = build("regnet_x_400mf")
    assert not any(".se." in op.name for op in g.ops)
    assert sum(op.kind == OpKind.ADD for op in g.ops) == 1 + 2 + 7 + 12  # one per block


def test_cli_roofline_runs_for_regnet(capsys):
    from perfmodel.cli.main import main
    assert main(["roofline", "regnet_y_400mf", "--hw", "a100"]) == 0
    assert "regnet_y_400mf on" in capsys.readouterr().out
    assert load_model("regnet-y-400mf").name == "regnet_y_400mf"
