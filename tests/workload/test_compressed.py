"""Per-op compression attrs in the workload: widths, dtypes, storage, sparse bytes, look-ups."""

from __future__ import annotations

import pytest

from perfmodel.compress.rewrite import with_attrs
from perfmodel.errors import ShapeError, UnknownNameError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.workload.build import build_workload


def _fc(in_f=10, out_f=10, bias=False):
    b = GraphBuilder("fc", default_batch=1)
    b.relu(b.linear(b.input("x", (in_f,)), out_f, bias=bias))
    return b.build()


def _row(g, **kw):
    return build_workload(g, batch=1, **kw).table.set_index("name").loc["linear"]


def test_dense_op_storage_is_params_times_width():
    r = _row(_fc(bias=True), dtype="fp16")
    assert r["storage_bytes"] == (100 + 10) * 2          # 110 params x 2 B
    assert r["sparse_weight_bytes"] == r["weight_bytes"] == 220
    assert r["weight_dtype"] == "fp16" and r["dtype"] == "fp16" and r["sparsity"] == 0


def test_per_op_weight_and_act_dtypes_override_the_workload():
    g = with_attrs(_fc(), {"linear": {"weight_dtype": "int4", "act_dtype": "int8",
                                      "compute_dtype": "int8"}}, "q")
    wl = build_workload(g, batch=1, dtype="fp16").table.set_index("name")
    lin, relu = wl.loc["linear"], wl.loc["relu"]
    assert lin["weight_bytes"] == 100 * 0.5           # int4 weights
    assert lin["input_bytes"] == lin["output_bytes"] == 10 * 1   # int8 activations
    assert (lin["dtype"], lin["weight_dtype"]) == ("int8", "int4")
    assert relu["dtype"] == "fp16" and relu["input_bytes"] == 20  # untouched op


def test_unstructured_storage_counts_values_and_indices():
    # 100 fp16 weights at 90 % sparsity: 10 values x 16 bits + 10 indices x 8 bits = 240
    # bits = 30 B (Deep Compression's relative 8-bit index); a dense kernel still reads 200 B.
    g = with_attrs(_fc(), {"linear": {"sparsity": 0.9, "sparse_pattern": "unstructured",
                                      "index_bits": 8}}, "s")
    r = _row(g, dtype="fp16")
    assert r["storage_bytes"] == pytest.approx(30.0)
    assert r["weight_bytes"] == 200 and r["sparse_weight_bytes"] == pytest.approx(30.0)
    assert r["macs"] == 100 and r["sparse_pattern"] == "unstructured"


def test_bitmap_format_and_2_4_metadata():
    bitmap = with_attrs(_fc(), {"linear": {"sparsity": 0.5, "sparse_format": "bitmap"}}, "b")
    # 50 values x 16 bits + a 100-bit mask = 900 bits = 112.5 B
    assert _row(bitmap, dtype="fp16")["storage_bytes"] == pytest.approx(112.5)
    two_four = with_attrs(_fc(), {"linear": {"sparse_pattern": "2:4"}}, "24")
    r = _row(two_four, dtype="fp16")
    # 2:4: 50 kept values x (16 + 2 metadata bits) = 900 bits (Mishra et al. 2021)
    assert r["storage_bytes"] == pytest.approx(112.5) and r["sparsity"] == 0.5


def test_a_sparse_format_bigger_than_dense_is_not_used():
    # 10 % zeros with 32-bit indices: 90 x (16 + 32) bits > 100 x 16 bits: stored dense.
    g = with_attrs(_fc(), {"linear": {"sparsity": 0.1, "index_bits": 32}}, "s")
    assert _row(g, dtype="fp16")["storage_bytes"] == 200


def test_codebook_indices_are_read_and_looked_up():
    # 100 fp32 weights in 16 clusters: 100 x 4 bits + 16 x 32 bits = 912 bits = 114 B,
    # read by every kernel (indices, then a table look-up per weight).
    g = with_attrs(_fc(), {"linear": {"codebook_bits": 4, "codebook_size": 16}}, "c")
    r = _row(g, dtype="fp32")
    assert r["storage_bytes"] == pytest.approx(114.0)
    assert r["weight_bytes"] == pytest.approx(114.0)
    assert r["lookups"] == 100


def test_training_rows_store_nothing_and_run_dense():
    g = with_attrs(_fc(), {"linear": {"sparse_pattern": "2:4"}}, "24")
    wl = build_workload(g, batch=1, dtype="fp16", phase="train").table
    assert wl[wl["phase"] != "forward"]["storage_bytes"].sum() == 0
    assert set(wl[wl["phase"] == "backward"]["sparse_pattern"]) == {""}
    assert wl[wl["phase"] == "optimizer"]["dtype"].unique().tolist() == ["fp32"]


@pytest.mark.parametrize("attrs, error", [
    ({"sparsity": 1.5}, ShapeError),
    ({"sparsity": 0.5, "sparse_pattern": "3:8"}, UnknownNameError),
    ({"weight_dtype": "int3"}, UnknownNameError),
])
def test_bad_attrs_are_one_clear_error(attrs, error):
    with pytest.raises(error):
        build_workload(with_attrs(_fc(), {"linear": attrs}, "bad"), batch=1)
