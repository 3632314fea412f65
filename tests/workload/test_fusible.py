"""The workload's fusible column (perfmodel.workload.build.fusible_flags)."""

from __future__ import annotations

from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model


def test_resnet_conv_bn_relu_chain():
    wl = build_workload(load_model("resnet50"), batch=1).table.set_index("name")["fusible"]
    # conv1 -> bn1 -> relu -> maxpool: bn and relu fuse into the conv, maxpool does not.
    assert [bool(wl[n]) for n in ("conv1", "bn1", "relu", "maxpool")] == [
        False, True, True, False]
    # block tail in execution order: conv3, bn3, downsample conv, its bn, add, relu3. The
    # add follows the downsample bn (one of its inputs), so it joins that kernel and bn3's
    # output comes in as the residual.
    names = ("conv3", "bn3", "downsample.0", "downsample.1", "add", "relu3")
    assert [bool(wl[f"layer1.0.{n}"]) for n in names] == [
        False, True, False, True, True, True]


def test_llama_residual_read_twice_stops_the_chain():
    wl = build_workload(load_model("llama-2-7b"), batch=1, seq=16, phase="prefill").table
    f = wl.set_index("name")["fusible"]
    assert bool(f["layers.0.attn_residual"])               # o_proj's only reader
    assert not bool(f["layers.0.post_attention_layernorm"])  # residual feeds two ops
    assert not bool(f["layers.0.mlp.act_fn"])  # follows up_proj, not its producer gate_proj


def test_only_forward_rows_fuse_in_training():
    wl = build_workload(load_model("resnet18"), batch=2, phase="train").table
    assert wl["fusible"].dtype == bool
    assert not wl.loc[wl["phase"] != "forward", "fusible"].any()
    assert wl.loc[wl["phase"] == "forward", "fusible"].any()


def test_pricing_never_builds_the_networkx_graph():
    # fusible_flags reads ModelGraph.edges, so building a workload leaves the lazy
    # networkx view unbuilt (ModelGraph.graph is a cached property).
    g = load_model("resnet18")
    build_workload(g, batch=1)
    assert "graph" not in vars(g)
