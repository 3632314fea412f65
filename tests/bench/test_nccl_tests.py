"""Reading nccl-tests stdout: both column layouts, in-place-only runs, the run's shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perfmodel.bench.nccl_tests import parse_nccl_tests, read_nccl_tests
from perfmodel.errors import MeasurementError

DATA = Path(__file__).parent / "data" / "nccl_tests"



def test_new_layout_rows_and_shape():
    path = DATA / "all_reduce_perf_2x2.txt"
    run = parse_nccl_tests(path.read_text(), path.name)
    assert (run.collective, run.ranks, run.nodes, run.per_node) == ("all_reduce", 4, 2, 2)
    assert run.gpu == "NVIDIA A100-SXM4-80GB"
    r = run.rows
    assert r["size_bytes"].tolist() == [8, 1048576] and r["count"].tolist() == [2, 262144]
    assert r["time_us_oop"].tolist() == [39.93, 100.0]
    assert r["time_us_ip"].tolist() == [38.34, 99.0]
    assert r["busbw_GBps_ip"].iloc[1] == 15.89
    assert r["time_us"].tolist() == [39.93, 100.0]       # out-of-place where it ran


def test_old_layout_without_redop_root_and_with_error_column():
    run = read_nccl_tests(DATA / "all_gather_old_format.txt")
    assert run.collective == "all_gather"                 # from the file name
    assert (run.ranks, run.nodes, run.per_node) == (4, 1, 4)
    assert run.rows["size_bytes"].tolist() == [1024, 16384, 262144, 4194304]
    assert run.rows["time_us"].tolist() == [20.0, 40.0, 100.0, 500.0]
    assert run.rows["busbw_GBps_oop"].iloc[-1] == 6.29  # the NCCL INFO line is skipped


def test_in_place_only_run_reads_the_in_place_half():
    run = read_nccl_tests(DATA / "reduce_scatter_in_place_only.txt")
    assert run.collective == "reduce_scatter" and (run.nodes, run.per_node) == (2, 2)
    assert np.isnan(run.rows["time_us_oop"]).all()
    assert run.rows["time_us"].tolist() == [80.0, 120.0]
    assert run.rows["busbw_GBps_ip"].tolist() == [9.83, 13.11]


def test_bad_files_name_the_problem(tmp_path):
    with pytest.raises(MeasurementError, match="not found"):
        read_nccl_tests(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("# nThread 1\nNCCL INFO nothing\n")
    with pytest.raises(MeasurementError, match="no nccl-tests result rows"):
        read_nccl_tests(tmp_path / "empty.txt")
