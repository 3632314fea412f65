"""pm.sweep over parallel plans: each row is predict_step's training step, a plan that cannot
run is a row with its error, and bad plans are one clear error."""

from __future__ import annotations

import pandas as pd
import pytest

import perfmodel as pm
from perfmodel.errors import PerfModelError, UnknownNameError
from perfmodel.study.grid import grid_from_yaml
from perfmodel.study.plans import parse_plan, plan_text


def test_plan_text_round_trips():
    plan = parse_plan("tp=2,pp=4,dp=8,mb=1,zero=1,sp=1,schedule=interleaved,v=2")
    assert (plan.tensor_parallel, plan.pipeline_parallel, plan.data_parallel) == (2, 4, 8)
    assert plan.sequence_parallel and plan.virtual_stages == 2 and plan.zero_stage == 1
    assert parse_plan(plan_text(plan)) == plan
    assert parse_plan({"tensor_parallel": 2, "dp": 4}) == pm.ParallelPlan(tensor_parallel=2,
                                                                          data_parallel=4)


@pytest.mark.parametrize("text,match", [("tq=2", "unknown plan key 'tq'"),
                                        ("tp=two", "not a whole number"),
                                        ("tp", "KEY=VALUE"),
                                        ("tp=1,sp=1", "sequence")])
def test_bad_plans(text, match):
    with pytest.raises(PerfModelError, match=match):
        parse_plan(text)


def test_rows_are_predict_step():
    plans = ["tp=1,pp=1,dp=8", "tp=2,pp=2,dp=2,mb=1", "tp=3,pp=1,dp=2"]
    df = pm.sweep(model="llama-2-7b", system=["dgx-a100", "dgx-h100"], plan=plans, batch=64,
                  seq=2048)
    assert len(df) == 2 * 3
    for _, row in df[df["error"].isna()].iterrows():
        want = pm.predict_step(pm.load_model("llama-2-7b"),
                               pm.Job(phase="train", batch=64, seq=2048, dtype=row["dtype"]),
                               parse_plan(row["plan"]), pm.load_system(row["system"]))
        assert row["step_s"] == pytest.approx(want.step_s, rel=1e-12)
        assert row["mfu"] == pytest.approx(want.mfu, rel=1e-12)
        assert row["fits"] is want.fits
        assert row["gpus"] == row["tp"] * row["pp"] * row["dp"]
    # 32 heads do not split over 3 GPUs: no number, the reason instead
    bad = df[df["tp"] == 3]
    assert bad["step_s"].isna().all() and bad["error"].str.contains("does not divide").all()


def test_plan_study_file(tmp_path):
    f = tmp_path / "plans.yaml"
    f.write_text("models: [llama-2-7b]\nsystem: [dgx-h100]\nbatch: [32, 64]\nseq: [2048]\n"
                 "plan: ['tp=2,pp=1,dp=4', 'tp=4,pp=2,dp=1,mb=1']\n")
    df = pm.sweep(f)
    assert len(df) == 4 and set(df["plan"]) == {"tp=2,pp=1,dp=4", "tp=4,pp=2,dp=1,mb=1"}
    out = tmp_path / "plans.csv"
    pm.sweep(f, out=out)
    assert len(pd.read_csv(out)) == 4
    f.write_text("models: [llama-2-7b]\nplan: ['tp=2']\n")
    with pytest.raises(PerfModelError, match="system"):
        grid_from_yaml(f)


def test_plans_take_no_devices_or_overrides():
    with pytest.raises(PerfModelError, match="no hw, override or strategy"):
        pm.sweep(model="gpt2", system="dgx-a100", plan="tp=1", hw="a100")
    with pytest.raises(PerfModelError, match="needs the systems"):
        pm.sweep(model="gpt2", plan="tp=1")
    with pytest.raises(UnknownNameError):
        pm.sweep(model="gpt2", system="dgx-a1000", plan="tp=1")
