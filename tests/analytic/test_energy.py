"""Energy model: per-op energies from hw_specs/_energy.yaml (Horowitz ISSCC 2014)."""

from __future__ import annotations

import pytest

from perfmodel.analytic.energy import energy_summary, load_energy_table, op_energy
from perfmodel.analytic.roofline import predict
from perfmodel.errors import SpecError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.hardware.load import load_device
from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model

PJ = 1e-12


def test_shipped_table_has_horowitz_figures_with_sources():
    t = load_energy_table()
    # Horowitz 2014 (45 nm): fp32 mult 3.7 pJ, add 0.9 pJ; int8 mult 0.2, add 0.03;
    # DRAM 1.3 nJ per 64-bit access (lower end) = 162.5 pJ/B.
    assert t.mult_j["fp32"] == pytest.approx(3.7 * PJ) and t.add_j["int8"] == 0.03 * PJ
    assert t.byte_j["dram"] == pytest.approx(162.5 * PJ)
    assert "Horowitz" in t.provenance["arithmetic_pJ.fp32.mult"]
    assert "DERIVED" in t.provenance["arithmetic_pJ.int4.mult"]


def test_energy_by_hand_on_a_linear_layer(tiny_device):
    # linear 10 -> 10 fp16, batch 1: 100 MACs x (1.1 + 0.4) pJ = 150 pJ; bytes 100*2 + 10*2
    # + 10*2 = 240 B x 162.5 pJ = 39000 pJ.
    b = GraphBuilder("fc", default_batch=1)
    b.linear(b.input("x", (10,)), 10, bias=False)
    pred = predict(build_workload(b.build(), batch=1, dtype="fp16"), tiny_device)
    e = op_energy(pred.ops, load_energy_table()).iloc[0]
    assert e["compute_j"] == pytest.approx(150 * PJ)
    assert e["memory_j"] == pytest.approx(39000 * PJ)
    assert e["energy_j"] == pytest.approx(39150 * PJ)


def test_dram_dominates_and_stays_under_the_tdp_bound():
    # Horowitz's point: a DRAM byte costs ~100x an fp16 MAC. ResNet-50 batch 1 on an A100:
    # the per-op (dynamic) energy must stay below TDP x latency.
    a100 = load_device("a100")
    pred = predict(build_workload(load_model("resnet50"), batch=1, dtype="fp16"), a100)
    s = energy_summary(pred.ops, a100, pred.summary["latency_s"])
    assert s["memory_j"] > s["compute_j"]
    assert 0 < s["energy_j"] < s["energy_tdp_j"] == pytest.approx(400 * pred.summary["latency_s"])


def test_malformed_energy_table_reports_every_problem(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text("arithmetic_pJ:\n  fp32: {mult: {value: 3.7}}\nmemory_pJ_per_64bit: {}\n"
                 "bogus: 1\n")
    with pytest.raises(SpecError) as exc:
        load_energy_table(p)
    msg = str(exc.value)
    assert "bogus" in msg and "arithmetic_pJ.fp16" in msg and "memory_pJ_per_64bit.dram" in msg
