"""Leave-one-device-out: the chip left out is never in the fit that prices it."""

from __future__ import annotations

import pandas as pd
import pytest

from perfmodel.hardware.load import load_device
from perfmodel.validate.compare import compare, with_efficiency
from perfmodel.validate.holdout import (
    _defaults_efficiency,
    _fit_on,
    chip_of,
    leave_one_device_out,
)
from perfmodel.validate.reference import load_reference


def test_chip_of_drops_memory_and_form_factor():
    assert [chip_of(h) for h in ("a100-sxm4-40gb", "a100-pcie-80gb", "h100-nvl", "a30")] == \
        ["a100", "a100", "h100", "a30"]


@pytest.fixture(scope="module")
def rows():
    ref = load_reference("all")
    micro = ref[ref["family"].isin(["gemm", "membw"])]
    return pd.concat([micro[micro["hw"].str.startswith("v100")],
                      micro[micro["hw"] == "a100-sxm4-80gb"].iloc[::7]]).reset_index(drop=True)


def test_each_chip_is_priced_by_a_fit_on_the_others_only(rows):
    h = leave_one_device_out(rows)
    v100 = rows["hw"].str.startswith("v100")
    # the fit the V100 rows get is the one made from the A100 rows alone
    eff = _fit_on(rows[~v100], {hw: load_device(hw) for hw in rows["hw"].unique()}, None)
    expect = pd.concat([compare(g, with_efficiency(load_device(hw), eff))
                        for hw, g in rows[v100].groupby("hw", sort=False)])
    got = h.rows[v100].sort_values(["hw", "benchmark", "time_s"])["fitted_s"].to_numpy()
    assert sorted(got) == pytest.approx(sorted(expect["predicted_s"].to_numpy()))
    # "before" is every device with the A100-fitted scalars of hw_specs/_defaults.yaml
    d = _defaults_efficiency()
    assert (d.compute, d.memory) == (0.72, 0.88)
    table = h.table.set_index(["held_out", "family"])
    assert set(table.index) >= {("v100", "gemm"), ("a100", "gemm"), ("v100", "membw"),
                                ("all", "gemm")}
    assert table.loc[("all", "gemm"), "rows"] == int((rows["family"] == "gemm").sum())


def test_refit_takes_the_issue_fraction_from_the_other_chips(rows):
    # one A100 GEMM whose measured time is its model compute time at issue fraction 0.5
    # (plus the launch overhead): the refit issue fraction is 0.5, applied to the V100
    from perfmodel.validate.holdout import _ops, _refit_model, _with_issue
    a100 = load_device("a100-sxm4-80gb")
    g = rows[rows["hw"] == "a100-sxm4-80gb"].head(1).copy()
    g["m"], g["n"], g["k"] = 8192, 8192, 8192   # compute-bound at any issue fraction
    ops = _ops(g, _with_issue(a100, 0.5, None, None))
    g["time_s"] = ops["time_s"].to_numpy()
    devices = {"a100-sxm4-80gb": a100, "v100-sxm2-32gb": load_device("v100-sxm2-32gb")}
    refit = _refit_model(g, devices, None)
    assert refit["v100-sxm2-32gb"].efficiency.compute_model.architecture.issue_fraction == \
        pytest.approx(0.5)
