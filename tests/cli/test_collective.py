"""perfmodel collective: nccl-tests columns in every format, --sim, compare, --plot, and bad
input as one line on stderr with exit code 2."""

from __future__ import annotations

import json

import pytest
import yaml

from perfmodel.cli.collective import parse_bytes
from perfmodel.cli.main import main
from tests.hardware.test_system import tiny_system_dict


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_size_sweep_prints_nccl_tests_columns(capsys):
    code, out, err = run(capsys, "collective", "all_reduce", "--system", "dgx-h100", "--gpus",
                         "8", "--min-bytes", "8", "--max-bytes", "8G", "--step-factor", "2")
    assert code == 0, err
    lines = out.splitlines()
    header = lines[1].split()
    assert header[:6] == ["size(B)", "count(elts)", "type", "time(us)", "algbw(GB/s)",
                          "busbw(GB/s)"]
    rows = [line for line in lines if line.strip()[:1].isdigit()]
    assert len(rows) == 31                     # 8 B .. 8 GiB in steps of 2: 2^3 .. 2^33
    assert rows[0].split()[:3] == ["8", "2", "fp32"] and rows[-1].split()[0] == str(8 << 30)
    assert "assumptions" in out


def test_json_and_csv(capsys):
    code, out, _ = run(capsys, "collective", "all_gather", "--system", "polaris", "--nodes",
                       "8", "--bytes", "1G", "--format", "json")
    assert code == 0
    d = json.loads(out)
    row = d["rows"][0]
    assert row["p"] == 32 and row["size_bytes"] == 1 << 30
    assert row["busbw_GBps"] == pytest.approx(row["algbw_GBps"] * 31 / 32)
    assert d["assumptions"]["inter"]["nic_GBps"] == 25.0
    code, out, _ = run(capsys, "collective", "broadcast", "--system", "dgx-a100", "--min-bytes",
                       "1K", "--max-bytes", "1M", "--step-factor", "4", "--format", "csv")
    assert code == 0
    assert out.splitlines()[0].startswith("size_bytes,count,type,time_us,algbw_GBps,busbw_GBps")
    assert len(out.splitlines()) == 1 + 6


def test_sim_and_algorithm(capsys):
    code, out, err = run(capsys, "collective", "all_reduce", "--system", "dgx-a100", "--nodes",
                         "2", "--algo", "hierarchical", "--sim", "--bytes", "64M")
    assert code == 0, err
    assert "discrete-event simulation" in out and "hierarchical" in out
    assert "simulated" in out and "events" in out


def test_stragglers_slow_the_simulated_ring(capsys):
    args = ["collective", "all_reduce", "--system", "dgx-a100", "--sim", "--bytes", "256M",
            "--format", "json"]
    _, fast, _ = run(capsys, *args)
    _, slow, _ = run(capsys, *args, "--slow", "n0.d3=2")
    t_fast = json.loads(fast)["rows"][0]["time_us"]
    t_slow = json.loads(slow)["rows"][0]["time_us"]
    assert t_slow > 1.8 * t_fast               # the ring goes at the straggler's pace


def test_compare_parameter_server_vs_ring(capsys):
    code, out, err = run(capsys, "collective", "compare", "--system", "pcie-8x-4090",
                         "--bytes", "1G")
    assert code == 0, err
    assert "parameter_server" in out and "ring" in out
    code, out, _ = run(capsys, "collective", "compare", "--system", "pcie-8x-4090", "--bytes",
                       "1G", "--format", "json")
    rows = {r["algorithm"]: r for r in json.loads(out)}
    # 8 GPUs, bandwidth-bound: PS is p = 8 times slower (closed form), simulated too
    assert rows["parameter_server"]["x_ring"] == pytest.approx(8, rel=0.01)
    assert rows["parameter_server"]["sim_x_ring"] == pytest.approx(8, rel=0.01)


def test_plots(tmp_path, capsys):
    gantt = tmp_path / "links.png"
    code, _, err = run(capsys, "collective", "all_to_all", "--system", "pcie-8x-4090",
                       "--bytes", "256M", "--plot", str(gantt))
    assert code == 0, err
    assert gantt.stat().st_size > 1000
    code, _, err = run(capsys, "collective", "all_to_all", "--system", "pcie-8x-4090",
                       "--bytes", "256M", "--plot", str(gantt))
    assert code == 2 and "already exists" in err          # never overwritten unasked
    curve = tmp_path / "busbw.png"
    code, _, err = run(capsys, "collective", "all_reduce", "--system", "dgx-a100",
                       "--min-bytes", "1K", "--max-bytes", "1G", "--plot", str(curve))
    assert code == 0, err and curve.stat().st_size > 1000


def test_a_users_system_file(tmp_path, capsys):
    path = tmp_path / "my_cluster.yaml"
    path.write_text(yaml.safe_dump(tiny_system_dict(name="my-cluster")))
    code, out, err = run(capsys, "collective", "all_to_all", "--system", str(path), "--bytes",
                         "3", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["rows"][0]["p"] == 3


@pytest.mark.parametrize("text, value", [("8", 8), ("64K", 65536), ("256M", 256 << 20),
                                         ("8G", 8 << 30), ("1.5k", 1536)])
def test_parse_bytes_binary_like_nccl_tests(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("argv, needle", [
    (["collective", "all_reduce", "--system", "dgx-a10"], "unknown system 'dgx-a10'"),
    (["collective", "all_reduce", "--system", "dgx-a100", "--bytes", "12Q"], "byte count"),
    (["collective", "all_reduce", "--system", "dgx-a100", "--bytes", "0"], "byte count"),
    (["collective", "all_reduce", "--system", "dgx-a100", "--gpus", "9"], "8 devices per node"),
    (["collective", "all_reduce", "--system", "dgx-a100", "--slow", "n0.d1=2"], "needs --sim"),
    (["collective", "all_gather", "--system", "dgx-a100", "--algo", "tree"], "no tree"),
    (["collective", "all_reduce", "--system", "pcie-8x-4090", "--nodes", "2"], "scale-out"),
    (["collective", "all_reduce", "--system", "dgx-a100", "--min-bytes", "1M",
      "--max-bytes", "1K"], "min <= max"),
    (["collective", "allreduce", "--system", "dgx-a100"], "invalid choice"),
    (["collective", "all_reduce", "--system", "dgx-a100", "--sim", "--bytes", "1M",
      "--slow", "n9.d9=2"], "unknown device"),
])
def test_bad_input_exit_2_one_line(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
