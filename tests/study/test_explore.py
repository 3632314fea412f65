"""Design-space exploration: a crossover worked by hand, the Pareto front of a hand-made
table, the cost parser, every design equal to predict on the overridden spec, and the
model search's pick on a constructed case."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

import perfmodel as pm
from perfmodel.errors import PerfModelError, UnknownNameError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.hardware.load import device_from_dict
from perfmodel.hardware.overrides import override_device
from perfmodel.study.explore import (
    best_candidate,
    crossover,
    design_points,
    exploration,
    explore,
    model_search,
    pareto_mask,
    parse_cost,
)
from perfmodel.workload.build import build_workload
from tests.conftest import tiny_device_dict


def _linear(n: int = 10):
    """One linear n -> n, no bias: a single GEMM."""
    b = GraphBuilder(f"fc{n}", default_batch=1)
    b.linear(b.input("x", (n,)), n, bias=False)
    return b.build()


def _roomy_tiny():
    """The tiny device (100 FLOP/s fp16, 10 B/s, efficiency 1, no overhead) with 1 MB."""
    d = tiny_device_dict()
    d["memory"] = [{**d["memory"][0], "capacity_GB": {"value": 1e-3, "source": "HAND"}}]
    return device_from_dict(d, "tiny.yaml")


# --- crossover, by hand ------------------------------------------------------------------

def test_crossover_of_one_gemm_in_bandwidth_is_worked_by_hand(tiny_device):
    # linear 10 -> 10, batch 1, fp16: flops = 2 x 10 x 10 = 200; bytes = weights 200 +
    # input 20 + output 20 = 240. Compute time 200 / P, memory time 240 / BW (efficiency
    # 1 both, no launch overhead). At P = 100 FLOP/s: memory-bound below BW* = 240 x 100 /
    # 200 = 120 B/s, compute-bound above: memory.bandwidth_GBps = 120e-9.
    wl = build_workload(_linear(), batch=1, dtype="fp16")
    assert pm.predict(wl, tiny_device).summary["bound"] == "memory"  # at 10 B/s
    bw = crossover(wl, tiny_device, "memory.bandwidth_GBps")
    assert bw == pytest.approx(120e-9, rel=1e-8)
    for scale, bound in ((0.99, "memory"), (1.01, "compute")):
        dev = override_device(tiny_device, {"memory.bandwidth_GBps": bw * scale})
        assert pm.predict(wl, dev).summary["bound"] == bound


def test_crossover_of_one_gemm_in_the_peak_is_worked_by_hand(tiny_device):
    # the same GEMM at 10 B/s: compute time = memory time when 200 / P = 24 s, P* = 200 /
    # 24 = 8.33 FLOP/s: compute-bound below, memory-bound above (tensor_TFLOPS.fp16 =
    # 8.33e-12)
    wl = build_workload(_linear(), batch=1, dtype="fp16")
    p = crossover(wl, tiny_device, "compute.tensor_TFLOPS.fp16")
    assert p == pytest.approx(200 / 24 * 1e-12, rel=1e-8)


def test_no_crossover_outside_the_range_or_for_an_overhead_bound_run(tiny_device):
    wl = build_workload(_linear(), batch=1, dtype="fp16")
    assert crossover(wl, tiny_device, "memory.bandwidth_GBps", within=(1e-9, 1e-7)) is None
    d = tiny_device_dict()
    d["efficiency"]["launch_overhead_us"] = {"value": 1e9, "source": "HAND"}  # 1000 s
    slow = device_from_dict(d, "slow.yaml")
    assert crossover(wl, slow, "memory.bandwidth_GBps") is None  # overhead throughout
    with pytest.raises(UnknownNameError, match="did you mean"):
        crossover(wl, tiny_device, "memory.bandwith_GBps")


# --- the Pareto front of a hand-made table ----------------------------------------------

def test_pareto_front_of_a_hand_made_table():
    # (cost, latency): (1, 5) is beaten by (1, 4) at the same cost; (3, 3) by (2, 3),
    # cheaper and as fast; (4, 6) by everything cheaper. The rest trade cost for speed.
    cost = [1, 1, 2, 3, 3, 4, 5]
    lat = [5, 4, 3, 3, 2, 6, 1]
    assert pareto_mask(cost, lat).tolist() == [False, True, True, False, True, False, True]
    # throughput (higher is better) on the same costs
    thr = [1, 2, 3, 3, 4, 0.5, 5]
    assert pareto_mask(cost, thr, maximize=True).tolist() == [
        False, True, True, False, True, False, True]
    # identical points are both on the front; NaN and ineligible points never are, and
    # leaving one out can put a point it dominated on the front
    assert pareto_mask([1, 1, 2], [2, 2, 1]).tolist() == [True, True, True]
    assert pareto_mask([1, np.nan, 2], [1, 0, 0]).tolist() == [True, False, True]
    assert pareto_mask(cost, lat, eligible=[1, 0, 1, 1, 1, 1, 1]).tolist() == [
        True, False, True, False, True, False, True]


def test_pareto_front_equals_the_definition_on_random_tables():
    rng = random.Random(3)
    for _ in range(50):
        n = rng.randint(1, 40)
        c = [rng.randint(0, 6) for _ in range(n)]  # small integers: many ties
        o = [rng.randint(0, 6) for _ in range(n)]
        want = [not any(c[j] <= c[i] and o[j] <= o[i] and (c[j] < c[i] or o[j] < o[i])
                        for j in range(n)) for i in range(n)]
        assert pareto_mask(c, o).tolist() == want


# --- the cost parser ----------------------------------------------------------------------

def test_cost_parser_accepts_arithmetic_over_spec_paths():
    h100 = pm.load_device("h100")
    c = parse_cost("2 * compute.tensor_TFLOPS.fp8 + 0.5 * memory.bandwidth_GBps", h100)
    assert c.paths == ("compute.tensor_TFLOPS.fp8", "memory.bandwidth_GBps")
    v = c.evaluate({"compute.tensor_TFLOPS.fp8": np.array([100.0, 200.0]),
                    "memory.bandwidth_GBps": 1000.0}, 2)
    assert v.tolist() == [700.0, 900.0]
    v = parse_cost("-(power.tdp_W - 100) ** 2 / 4 + +1", h100).evaluate({"power.tdp_W": 300})
    assert v.tolist() == [-9999.0]
    # numbers are floats: a tower of powers overflows to inf, it does not hang
    assert parse_cost("9 ** 9 ** 9", h100).evaluate({}).tolist() == [math.inf]


@pytest.mark.parametrize("text, needle", [
    ("__import__('os').system('true')", "function call"),
    ("power.tdp_W[0]", "indexing"),
    ("power.tdp_W if 1 else 2", "IfExp"),
    ("power.tdp_W > 3", "comparison"),
    ("power.tdp_W % 3", "operator Mod"),
    ("power.tdp_W // 3", "operator FloorDiv"),
    ("'700'", "not a finite number"),
    ("True + power.tdp_W", "not a finite number"),
    ("lambda: 1", "lambda"),
    ("power.tdp_W +", "not an arithmetic expression"),
    ("", "empty"),
    ("1 + " * 200 + "1", "over 400 characters"),
    ("power.tdp_w", "did you mean 'power.tdp_W'"),
])
def test_cost_parser_refuses_anything_else(text, needle):
    with pytest.raises(PerfModelError, match="(?i)" + needle.replace("(", r"\(")):
        parse_cost(text, pm.load_device("h100"))


# --- the grid and explore -----------------------------------------------------------------

def test_design_points_and_their_refusals():
    h100 = pm.load_device("h100")
    d = design_points(h100, {"memory.bandwidth_GBps": (1000, 8000), "power.tdp_W": 500}, 4)
    assert d["memory.bandwidth_GBps"].tolist() == pytest.approx([1000, 2000, 4000, 8000])
    assert set(d["power.tdp_W"]) == {500}
    lin = design_points(h100, {"memory.bandwidth_GBps": (1000, 4000)}, 4, "linear")
    assert lin["memory.bandwidth_GBps"].tolist() == [1000, 2000, 3000, 4000]
    for vary, needle in [({"memory.bandwith_GBps": (1, 2)}, "did you mean"),
                         ({"memory.bandwidth_GBps": (2, 1)}, "less than"),
                         ({"memory.bandwidth_GBps": (1, 1)}, "less than"),
                         ({"memory.bandwidth_GBps": (0, 1)}, "positive"),
                         ({"memory.bandwidth_GBps": [1, -2]}, "positive"),
                         ({"memory.bandwidth_GBps": []}, "range or a list"),
                         ({}, "nothing to vary")]:
        with pytest.raises(PerfModelError, match=needle):
            design_points(h100, vary)
    big = {"memory.bandwidth_GBps": (1, 2), "power.tdp_W": (1, 2), "memory.capacity_GB": (1, 2)}
    with pytest.raises(PerfModelError, match="1,030,301 points"):
        design_points(h100, big, 101)


@pytest.fixture(scope="module")
def suite():
    h100 = pm.load_device("h100")
    return h100, {
        "decode": build_workload(pm.load_model("llama-2-7b"), batch=8, seq=2048,
                                 dtype="fp16", phase="decode"),
        "cnn": build_workload(pm.load_model("resnet50"), batch=32, dtype="fp16"),
    }


def test_every_design_equals_predict_on_the_overridden_spec(suite):
    h100, wls = suite
    vary = {"memory.bandwidth_GBps": (1000, 8000), "compute.tensor_TFLOPS.fp16": (400, 2000),
            "memory.capacity_GB": [16, 80], "compute.units": [66, 132]}  # units: re-priced
    cost = "2 * compute.tensor_TFLOPS.fp16 + memory.bandwidth_GBps / 4"
    df = explore(wls, h100, vary, cost=cost, points_per_axis=3)
    assert len(df) == 3 * 3 * 2 * 2
    for i in random.Random(5).sample(range(len(df)), 6):
        row = df.iloc[i]
        changes = {p: float(row[p]) for p in vary}
        dev = override_device(h100, changes)
        ratios = []
        for name, wl in wls.items():
            s = pm.predict(wl, dev, dtype_fallback=True).summary
            base = pm.predict(wl, h100, dtype_fallback=True).summary
            assert row[f"{name}:latency_s"] == pytest.approx(s["latency_s"], rel=1e-10)
            assert row[f"{name}:throughput_per_s"] == pytest.approx(s["throughput_per_s"],
                                                                    rel=1e-10)
            assert row[f"{name}:bound"] == s["bound"]
            assert row[f"{name}:fits"] == s["fits"]
            ratios.append(s["latency_s"] / base["latency_s"])
        assert row["latency_ratio"] == pytest.approx(math.prod(ratios) ** 0.5, rel=1e-10)
        assert row["cost"] == pytest.approx(2 * changes["compute.tensor_TFLOPS.fp16"]
                                            + changes["memory.bandwidth_GBps"] / 4)
        assert row["all_fit"] == all(row[f"{n}:fits"] for n in wls)
    # the front: non-dominated among feasible designs (every design is, without a budget)
    assert df["feasible"].all()
    front = df[df["pareto"]]
    for (_, a), (_, b) in itertools.product(front.iterrows(), df.iterrows()):
        assert not (b["cost"] <= a["cost"] and b["latency_ratio"] < a["latency_ratio"])


def test_budgets_feasibility_and_a_budget_nobody_meets(suite):
    h100, wls = suite
    vary = {"memory.bandwidth_GBps": (1000, 8000), "power.tdp_W": (300, 1000)}
    e = exploration(wls, h100, vary, budget={"power.tdp_W": 700}, points_per_axis=4)
    pts = e.points
    assert pts["feasible"].tolist() == (pts["power.tdp_W"] <= 700).tolist()
    assert not (pts["pareto"] & ~pts["feasible"]).any()
    best = e.best()
    # fastest within budget at the least TDP: the most bandwidth, the cheapest TDP
    assert best["memory.bandwidth_GBps"] == pytest.approx(8000)
    assert best["power.tdp_W"] == pytest.approx(300)
    # the default cost is the TDP; nothing ties it to the figures varied, and it is said
    assert e.cost == "power.tdp_W"
    e2 = exploration(wls, h100, {"memory.bandwidth_GBps": (1000, 8000),
                                 "compute.tensor_TFLOPS.fp8": (500, 4000)},
                     budget={"power.tdp_W": 500}, points_per_axis=3)
    said = " ".join(e2.assumptions)
    assert "power model" in said and "one value at every design" in said
    assert "compute.tensor_TFLOPS.fp8 changes no workload's time (they run fp16)" in said
    with pytest.raises(PerfModelError, match=r"no design meets power.tdp_W <= 500; the "
                                             r"closest is .*power.tdp_W = 700"):
        e2.best()


def test_a_design_that_does_not_fit_stays_flagged(suite):
    h100, wls = suite
    vary = {"memory.capacity_GB": [4, 80]}
    df = explore(wls, h100, vary)
    small = df[df["memory.capacity_GB"] == 4].iloc[0]
    assert small["decode:fits"] is False or not small["decode:fits"]
    assert not small["all_fit"] and small["feasible"]
    strict = explore(wls, h100, vary, require_fit=True)
    assert strict["feasible"].tolist() == strict["all_fit"].tolist()


def test_crossovers_along_each_range(suite):
    h100, wls = suite
    e = exploration({"decode": wls["decode"]}, h100,
                    {"memory.bandwidth_GBps": (1000, 64000)}, points_per_axis=3)
    row = e.crossovers.iloc[0]
    assert (row["bound_at_lo"], row["bound_at_hi"]) == ("memory", "compute")
    want = crossover(wls["decode"], h100, "memory.bandwidth_GBps", within=(1000, 64000))
    assert row["crossover"] == pytest.approx(want, rel=1e-5)


# --- the model search ------------------------------------------------------------------

def test_model_search_picks_the_largest_candidate_within_the_budget():
    # linear n -> n at batch 1, fp16, on 10 B/s: memory-bound, (2 n^2 + 4 n) / 10 s:
    # n = 10: 24 s, n = 20: 88 s, n = 40: 336 s. A 100 s budget: n = 20 is the largest that
    # meets it; it keeps 400 / 1600 of the largest's parameters (loss 0.75).
    dev = _roomy_tiny()
    cands = [(f"fc{n}", _linear(n), n * n) for n in (10, 40, 20)]
    t = model_search(cands, dev, 100.0, dtype="fp16")
    assert t["candidate"].tolist() == ["fc40", "fc20", "fc10"]
    assert t["latency_s"].tolist() == pytest.approx([336, 88, 24])
    assert t["meets_budget"].tolist() == [False, True, True]
    assert t["chosen"].tolist() == [False, True, False]
    assert t.loc[1, "size_loss"] == pytest.approx(0.75)
    assert best_candidate(t, 100.0, dev.name)["candidate"] == "fc20"
    t = model_search(cands, dev, 10.0, dtype="fp16")
    with pytest.raises(PerfModelError, match=r"no candidate meets the 1e\+04 ms budget .* "
                                             r"the closest is fc10 at 2.4e\+04 ms"):
        best_candidate(t, 10.0, dev.name)
