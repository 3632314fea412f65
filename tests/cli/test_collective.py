"""perfmodel collective: nccl-tests columns in every format, --sim, compare, --plot, and bad
input as one line on stderr with exit code 2."""

from __future__ import annotations

import json

import pytest
import yaml

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


def test_stragglers_reach_the_simulator(capsys):
    # the figure (a straggler at half speed doubles a ring) is tests/sim/test_collective_sweep
    args = ["collective", "all_reduce", "--system", "dgx-a100", "--sim", "--bytes", "256M",
            "--format", "json"]
    _, fast, _ = run(capsys, *args)
    code, slow, err = run(capsys, *args, "--slow", "n0.d3=2", "--slow", "n0.d5=1.5")
    assert code == 0, err
    assert json.loads(slow)["rows"][0]["time_us"] > 1.8 * json.loads(fast)["rows"][0]["time_us"]


def test_compare_parameter_server_vs_ring(capsys):
    code, out, err = run(capsys, "collective", "compare", "--system", "pcie-8x-4090",
                         "--bytes", "1G")
    assert code == 0, err
    assert "parameter_server" in out and "ring" in out
    assert "= p = 8" in out                    # the closed-form footer names p
    code, out, _ = run(capsys, "collective", "compare", "--system", "pcie-8x-4090", "--bytes",
                       "1G", "--format", "json")
    rows = {r["algorithm"]: r for r in json.loads(out)}
    # 8 GPUs, bandwidth-bound: PS is p = 8 times slower (closed form; hand-worked on a tiny
    # switch in tests/sim/test_collective_sweep.py), simulated too
    assert rows["parameter_server"]["x_ring"] == pytest.approx(8, rel=0.01)
    assert rows["parameter_server"]["sim_x_ring"] == pytest.approx(8, rel=0.01)
    code, out, _ = run(capsys, "collective", "compare", "--system", "pcie-8x-4090", "--bytes",
                       "1G", "--format", "csv")
    assert code == 0 and out.splitlines()[0] == (
        "algorithm,size_bytes,p,time_us,busbw_GBps,sim_time_us,x_ring,sim_x_ring")


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
    assert code == 0, err
    assert curve.stat().st_size > 1000
    # simulated with a straggler: the model's curve beside it is drawn without one
    both = tmp_path / "both.png"
    code, out, err = run(capsys, "collective", "all_reduce", "--system", "dgx-a100", "--sim",
                         "--slow", "n0.d3=2", "--min-bytes", "1M", "--max-bytes", "4M",
                         "--plot", str(both))
    assert code == 0, err
    assert both.stat().st_size > 1000 and f"wrote {both}" in err  # the path, on stderr


def test_a_users_system_file(tmp_path, capsys):
    path = tmp_path / "my_cluster.yaml"
    path.write_text(yaml.safe_dump(tiny_system_dict(name="my-cluster")))
    code, out, err = run(capsys, "collective", "all_to_all", "--system", str(path), "--bytes",
                         "3", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["rows"][0]["p"] == 3


@pytest.mark.parametrize("argv, needle", [
    (["collective", "all_reduce", "--system", "dgx-a10"], "unknown system 'dgx-a10'"),
    (["collective", "all_reduce", "--system", "dgx-a100", "--bytes", "12Q"], "byte count"),
    (["collective", "all_reduce", "--system", "dgx-a100", "--bytes", "0"], "byte count"),
    (["collective", "all_reduce", "--system", "dgx-a100", "--bytes", "1" + "0" * 24 + "T"],
     "over 2**60"),                                  # once overflowed the int64 size column
    (["collective", "all_reduce", "--system", "dgx-a100", "--bytes", "1M", "--min-bytes",
      "8"], "not both"),
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


def nccl_tests_text(system, nodes: int, per_node: int, sizes) -> str:
    """An all_reduce_perf stdout (current layout) whose times are the model's on ``system``."""
    from perfmodel.analytic.network import predict_collective

    t = predict_collective(system, "all_reduce", sizes, nodes, per_node).table
    ranks = [f"#  Rank {n * per_node + i:2d} Group  0 Pid {100 + i:6d} on     node-{n} device "
             f"{i:2d} [0000:07:00] NVIDIA A100-SXM4-80GB" for n in range(nodes)
             for i in range(per_node)]
    rows = [f"{int(r.size_bytes):12d}  {int(r.count):12d}     float     sum      -1  "
            f"{r.time_us:8.2f}  {r.algbw_GBps:6.2f}  {r.busbw_GBps:6.2f}      0  "
            f"{r.time_us:8.2f}  {r.algbw_GBps:6.2f}  {r.busbw_GBps:6.2f}      0"
            for r in t.itertuples()]
    return "\n".join(["# Collective test starting: all_reduce_perf", *ranks,
                      "#       size         count      type   redop    root     time   algbw"
                      "   busbw #wrong     time   algbw   busbw #wrong", *rows,
                      "# Avg bus bandwidth    : 1.0", ""])


def test_check_and_calibrate_from_nccl_tests_output(capsys, tmp_path):
    from perfmodel.hardware.system import load_system
    from tests.validate.test_collectives_check import variant

    truth = variant("dgx-a100", 20.0, [[1024, 0.8]])
    start = variant("dgx-a100", 0.0, [[1024, 1.0]])
    start_file = tmp_path / "start.yaml"
    start_file.write_text(yaml.safe_dump(dict(start.raw)))
    run_file = tmp_path / "all_reduce_perf.txt"
    run_file.write_text(nccl_tests_text(truth, 1, 8, [8.0 * 4 ** i for i in range(15)]))
    out_file = tmp_path / "mine.yaml"
    code, out, err = run(capsys, "collective", "check", "--system", str(start_file),
                         "--nccl-tests", str(run_file), "--calibrate-out", str(out_file))
    assert code == 0, err
    assert "all_reduce, 1 node(s) x 8 GPUs, measured on NVIDIA A100-SXM4-80GB" in out
    assert "collective.launch_latency_us: 20" in out and "held out" in out
    fitted = load_system(out_file)
    assert fitted.name == "mine" and fitted.launch_latency_s * 1e6 == pytest.approx(20, abs=0.1)
    # with the written file the same run is predicted to within rounding (json rows)
    code, out, _ = run(capsys, "collective", "all_reduce", "--system", str(out_file),
                       "--nccl-tests", str(run_file), "--format", "json")
    assert code == 0
    big = [r for r in json.loads(out)["rows"] if r["size_bytes"] >= 1 << 20]
    assert big and all(abs(r["time_err"]) < 0.005 for r in big)
    # the file starts with where it came from
    assert out_file.read_text().splitlines()[0] == (
        f"# {start.display_name}, calibrated by `perfmodel collective --calibrate-out` to "
        f"{run_file}.")
    # never overwritten without --force
    before = out_file.read_text()
    code, _, err = run(capsys, "collective", "check", "--system", str(start_file),
                       "--nccl-tests", str(run_file), "--calibrate-out", str(out_file))
    assert code == 2 and "already exists" in err and "--force" in err
    assert out_file.read_text() == before
    code, out, err = run(capsys, "collective", "check", "--system", str(start_file),
                         "--nccl-tests", str(run_file), "--calibrate-out", str(out_file),
                         "--force", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert list(d) == ["system", "rows", "summary", "fit", "fit_rows", "fit_notes",
                       "fitted_summary", "held_out_summary", "written"]
    assert d["written"] == str(out_file) and d["fit"]["collective.launch_latency_us"] == 20


@pytest.mark.parametrize("argv, message", [
    (["check", "--system", "dgx-a100"], "need measured runs"),
    (["all_reduce", "--system", "dgx-a100", "--nccl-tests", "no/such/file.txt"], "not found"),
    (["all_reduce", "--system", "dgx-a100", "--nccl-tests", "x", "--calibrate-out",
      "out.txt"], "not a .yaml file"),
    (["all_reduce", "--system", "dgx-a100", "--nccl-tests", "x", "--calibrate-out",
      "no/such/folder/out.yaml"], "does not exist"),   # refused before reading the files
])
def test_check_bad_input_is_one_line(capsys, argv, message):
    code, out, err = run(capsys, "collective", *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_nvls_on_a_system_without_it_is_exit_2_with_a_hint(capsys):
    assert main(["collective", "all_reduce", "--system", "dgx-a100", "--bytes", "1G",
                 "--algo", "nvls"]) == 2
    err = capsys.readouterr().err
    assert "NVLink SHARP" in err and "Traceback" not in err


def test_nvls_and_auto_on_dgx_h100(capsys):
    assert main(["collective", "all_reduce", "--system", "dgx-h100", "--bytes", "1G",
                 "--algo", "nvls"]) == 0
    assert "nvls" in capsys.readouterr().out
    assert main(["collective", "all_reduce", "--system", "dgx-h100", "--min-bytes", "1K",
                 "--max-bytes", "8M", "--algo", "auto"]) == 0
    out = capsys.readouterr().out
    assert "ring" in out and "nvls" in out
