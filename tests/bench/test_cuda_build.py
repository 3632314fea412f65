"""The nvcc build step and the parsing of what the CUDA programs print."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from perfmodel.bench.build import PROGRAMS, SOURCE_DIR, build, nvcc_commands
from perfmodel.bench.runner import detect_archs, parse_output
from perfmodel.errors import UnknownNameError

HAS_NVCC = shutil.which("nvcc") is not None


def test_every_cu_file_is_a_program():
    # CI compiles every program, so every .cu must be one (none left out of the build)
    assert {p.name for p in SOURCE_DIR.glob("*.cu")} == {p.source for p in PROGRAMS.values()}


@pytest.mark.skipif(not HAS_NVCC, reason="nvcc not installed")
def test_nvcc_command_has_both_architectures(tmp_path):
    cmd = nvcc_commands(tmp_path, ("sm_80", "sm_90"), ["membw"])["membw"]
    assert "-gencode=arch=compute_80,code=sm_80" in cmd
    assert "-gencode=arch=compute_90,code=sm_90" in cmd
    assert str(SOURCE_DIR / "membw.cu") in cmd and cmd[cmd.index("-o") + 1] == str(
        tmp_path / "membw")


@pytest.mark.skipif(not HAS_NVCC, reason="nvcc not installed")
def test_bad_arch():
    with pytest.raises(UnknownNameError, match="unknown GPU architecture"):
        nvcc_commands(Path("."), ("sm80",), ["membw"])


@pytest.mark.slow
@pytest.mark.skipif(not HAS_NVCC, reason="nvcc not installed")
def test_compiles_a_program(tmp_path):
    built = build(("sm_80",), tmp_path, ["launch"])
    assert built["launch"].is_file()


def test_detect_archs():
    assert detect_archs({"compute_cap": "9.0"}) == ("sm_90",)
    assert detect_archs({}) == ("sm_80", "sm_90")


def test_parse_output_adds_context_and_rates():
    text = ("# a remark\n"
            "benchmark,family,dtype,m,n,k,batch,seq,flops,bytes,working_set_bytes,repeats,"
            "time_s,time_p10_s,time_p90_s,cycles,check_rel_err,busbw_GBps,num_devices,method\n"
            "gemm_cublas,gemm,fp16,1024,1024,1024,,,2147483648,6291456,6291456,50,1e-05,"
            "9e-06,1.1e-05,,0.0001,,1,\"CUDA events\"\n")
    df = parse_output(text, {"device": "NVIDIA H100", "driver_version": "580.1"})
    assert len(df) == 1 and df["backend"][0] == "cuda" and df["device"][0] == "NVIDIA H100"
    assert df["achieved_TFLOPS"][0] == pytest.approx(2147483648 / 1e-5 / 1e12)


@pytest.mark.gpu
def test_cuda_membw_suite_runs_and_checks():
    from perfmodel.bench.runner import run_cuda
    df = run_cuda(["membw", "launch"], quick=True)
    assert (df["check_rel_err"].fillna(0) == 0).all()
    assert (df["time_s"] > 0).all()
