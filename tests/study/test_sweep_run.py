"""pm.sweep: the grid's points, the capacity verdict and errors per row, resuming without
recomputing finished tasks, and the same table from a process pool and a Dask cluster."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import perfmodel as pm
from perfmodel.errors import PerfModelError, UnknownNameError
from perfmodel.hardware.load import load_device
from perfmodel.study import run as run_mod
from perfmodel.study.grid import LARGE_GRID, Grid, grid_from_yaml
from perfmodel.study.run import run_sweep
from perfmodel.zoo.registry import load_model

SMALL = dict(model=["resnet18", "gpt2"], hw=["a100", "t4"], batch=[1, 4], seq=128,
             phase=["inference", "decode"], override={"memory.bandwidth_GBps": [500, 2000]})


def _grid(**kw):
    return Grid.of(**{("models" if k == "model" else k): v for k, v in {**SMALL, **kw}.items()})


def test_points_are_the_grid_less_what_does_not_apply():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        df = pm.sweep(**SMALL)
    # resnet18 has no decode (left out, with a warning) and no sequence length:
    # resnet18: 1 phase x 2 batches x 2 devices x 2 bandwidths = 8; gpt2: 2 x 2 x 2 x 2 = 16
    assert len(df) == 24
    assert any("resnet18 decode" in str(x.message) for x in w)
    assert df[df["model"] == "resnet18"]["seq"].isna().all()
    assert (df[df["model"] == "gpt2"]["seq"] == 128).all()
    assert df["error"].isna().all() and df["fits"].isin([True]).all()
    # one row equals predict on the overridden spec
    row = df[(df.model == "gpt2") & (df.hw == "t4") & (df.phase == "decode") & (df.batch == 4)
             & (df["memory.bandwidth_GBps"] == 500)].iloc[0]
    dev = pm.hardware.overrides.override_device(load_device("t4"),
                                                {"memory.bandwidth_GBps": 500})
    wl = pm.build_workload(load_model("gpt2"), batch=4, seq=128, dtype="fp16", phase="decode")
    assert row["latency_s"] == pytest.approx(
        pm.predict(wl, dev, dtype_fallback=True).summary["latency_s"], rel=1e-12)


def test_a_run_that_cannot_happen_gets_no_number():
    # fp8 on an A100 (no fp8 unit): an error, no latency; llama-2-7b decode at batch 64 x
    # 4096 tokens needs 64 x 2 GiB of KV cache (2 x 32 layers x 4096 x 2 B per token):
    # more than 80 GB, so the row says it does not fit
    df = pm.sweep(model="llama-2-7b", hw=["a100", "h100"], batch=64, seq=4096,
                  phase="decode", dtype=["fp16", "fp8"])
    fp8 = df[(df.hw == "a100") & (df.dtype == "fp8")].iloc[0]
    assert np.isnan(fp8["latency_s"]) and fp8["fits"] is None and "fp8" in fp8["error"]
    fp16 = df[(df.hw == "a100") & (df.dtype == "fp16")].iloc[0]
    assert fp16["fits"] is False and fp16["memory_bytes"] > 64 * 2 * 2**30


def test_resume_recomputes_nothing_that_finished(tmp_path, monkeypatch):
    grid = _grid(batch=list(range(1, 41)))  # 40 batches x 3 phases-models: several tasks
    out = tmp_path / "sweep.csv"
    seen: list[int] = []
    full = run_sweep(grid, load_model, load_device, out=tmp_path / "full.csv")
    n_tasks = len(run_mod.tasks_of(grid, run_mod._resolve(grid, load_model, load_device)
                                   .applies, run_mod.WORKPOINTS_PER_TASK))
    assert n_tasks >= 4

    def stop_at_third(task):
        seen.append(task.index)
        if len(seen) == 3:
            raise KeyboardInterrupt  # the user pressed Ctrl-C in the third task

    with pytest.raises(KeyboardInterrupt):
        run_sweep(grid, load_model, load_device, out=out, on_task=stop_at_third)
    assert not out.exists() and len(list((tmp_path / "sweep.csv.parts").glob("task-*"))) == 2
    again: list[int] = []
    result = run_sweep(grid, load_model, load_device, out=out,
                       on_task=lambda t: again.append(t.index))
    assert sorted(again) == sorted(set(range(n_tasks)) - set(seen[:2]))  # none done twice
    assert out.exists() and not (tmp_path / "sweep.csv.parts").exists()
    pd.testing.assert_frame_equal(result, full)
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(tmp_path / "full.csv"))


def test_parts_of_another_grid_are_not_mixed_in(tmp_path):
    out = tmp_path / "s.csv"
    (tmp_path / "s.csv.parts").mkdir()
    (tmp_path / "s.csv.parts" / "grid.json").write_text('{"grid": "someotherdigest"}')
    with pytest.raises(PerfModelError, match="another sweep"):
        run_sweep(_grid(), load_model, load_device, out=out)
    df = run_sweep(_grid(), load_model, load_device, out=out, force=True)
    assert len(df) == 24


def test_nothing_is_overwritten_without_force(tmp_path):
    out = tmp_path / "s.csv"
    out.write_text("mine")
    with pytest.raises(PerfModelError, match="exists"):
        run_sweep(_grid(), load_model, load_device, out=out)
    assert out.read_text() == "mine"


def test_process_pool_gives_the_same_table():
    grid = _grid(batch=list(range(1, 21)))
    here = run_sweep(grid, load_model, load_device)
    pool = run_sweep(grid, load_model, load_device, workers=2)
    pd.testing.assert_frame_equal(here, pool)


def test_dask_local_cluster_gives_the_same_table():
    distributed = pytest.importorskip("distributed")
    grid = _grid(batch=list(range(1, 21)))
    here = run_sweep(grid, load_model, load_device)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        on_dask = run_sweep(grid, load_model, load_device, dask=client)
    pd.testing.assert_frame_equal(here, on_dask)


def test_parquet_output_round_trips(tmp_path):
    pytest.importorskip("pyarrow")
    df = pm.sweep(**SMALL, out=tmp_path / "s.parquet")
    back = pd.read_parquet(tmp_path / "s.parquet")
    assert list(back.columns) == list(df.columns) and len(back) == len(df)


@pytest.mark.parametrize("kw,match", [
    (dict(batch=[]), "axis 'batch' is empty"),
    (dict(batch=[0]), "not a positive whole number"),
    (dict(phase=["serve"]), "unknown phase"),
    (dict(override={"memory.bandwidth_GBps": [-1]}), "not a positive number"),
    (dict(override={"memory.bandwith_GBps": [1000]}), "did you mean"),
    (dict(model=["resnet5O"]), "resnet50"),
])
def test_bad_grids_are_one_clear_error(kw, match):
    with pytest.raises(PerfModelError, match=match):
        pm.sweep(**{**SMALL, **kw})


def test_a_huge_grid_is_refused_with_its_count():
    grid = _grid(batch=list(range(1, 1001)), override={"memory.bandwidth_GBps":
                                                        list(range(100, 1100))})
    assert grid.size > LARGE_GRID
    with pytest.raises(PerfModelError, match=f"{grid.size:,} points"):
        run_sweep(grid, load_model, load_device)


def test_study_yaml(tmp_path):
    f = tmp_path / "study.yaml"
    f.write_text("models: [resnet18]\nhw: [a100, h100]\nbatch: [1, 8]\n"
                 "override:\n  power.tdp_W: [300, 600]\n")
    df = pm.sweep(f)
    assert len(df) == 8
    # energy = TDP x latency (roofline.predict's upper bound)
    assert np.allclose(df["energy_j"], df["power.tdp_W"] * df["latency_s"])
    f.write_text("models: [resnet18]\nhw: [a100]\nbatchez: [1]\n")
    with pytest.raises(UnknownNameError, match="batch"):
        grid_from_yaml(f)
    f.write_text("models: [resnet18]\n  hw: [a100\n")
    with pytest.raises(PerfModelError):
        grid_from_yaml(f)
    f.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(PerfModelError):
        grid_from_yaml(f)


def test_plot_marks_what_does_not_fit(tmp_path):
    df = pm.sweep(model="llama-2-7b", hw=["a100", "h100"], batch=[1, 16, 64], seq=4096,
                  phase="decode")
    fig = pm.plot.sweep(df, x="batch", hue="hw", path=tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 5000
    labels = fig.axes[0].get_legend().get_texts()
    assert "x: does not fit in memory" in [t.get_text() for t in labels]
    with pytest.raises(PerfModelError, match="several rows"):
        pm.plot.sweep(df, x="batch")  # two devices on one line: refused, not averaged


def test_a_billion_point_grid_is_refused_at_once(monkeypatch):
    # 1,000 batches x 1,000 bandwidths x 1,000 TDPs = 10^9 points: counted, never built
    def built(self):
        raise AssertionError("the settings were built before the size was checked")

    monkeypatch.setattr(Grid, "settings", property(built))
    with pytest.raises(PerfModelError, match="1,000,000,000 points"):
        pm.sweep(model="resnet18", hw="a100", batch=list(range(1, 1001)),
                 override={"memory.bandwidth_GBps": list(range(100, 1100)),
                           "power.tdp_W": list(range(100, 1100))})
