"""Build the CUDA microbenchmarks with nvcc, into a cache folder (never the package).

The command for each program is printed by ``perfmodel bench --build-only --print-commands``
and documented in perfmodel/bench/cuda/README.md. cuBLAS, cuDNN and NCCL are found in the
CUDA toolkit (CUDA_HOME, /usr/local/cuda, /usr) or in NVIDIA's pip wheels (nvidia-cublas,
nvidia-cudnn-cu13, nvidia-nccl-cu13; ``pip install "perfmodel[cuda]"``); the binaries get an
rpath to where each library was found.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from perfmodel.errors import PerfModelError, UnknownNameError, did_you_mean

__all__ = ["PROGRAMS", "SUITES", "LIBRARIES", "BuildError", "find_nvcc", "nvcc_commands",
           "build", "default_build_dir", "SOURCE_DIR", "DEFAULT_ARCHS"]

log = logging.getLogger(__name__)
SOURCE_DIR = Path(__file__).resolve().parent / "cuda"
DEFAULT_ARCHS = ("sm_80", "sm_90")  # A100 and H100/H200; CUDA 13 builds sm_75 and newer
FLAGS = ("-std=c++17", "-O3", "-lineinfo")


class BuildError(PerfModelError):
    """nvcc or a CUDA library is missing, or a benchmark failed to compile."""


@dataclass(frozen=True)
class Library:
    header: str
    files: tuple[str, ...]  # shared-library name stems (libcublas.so -> libcublas.so*)
    pip: str


@dataclass(frozen=True)
class Program:
    source: str
    libraries: tuple[str, ...] = ()


LIBRARIES = {
    "cublas": Library("cublas_v2.h", ("libcublas.so", "libcublasLt.so"), "nvidia-cublas"),
    "cudnn": Library("cudnn.h", ("libcudnn.so",), "nvidia-cudnn-cu13"),
    "nccl": Library("nccl.h", ("libnccl.so",), "nvidia-nccl-cu13"),
}
PROGRAMS = {
    "gemm_cublas": Program("gemm_cublas.cu", ("cublas",)),
    "gemm_tiled": Program("gemm_tiled.cu"),
    "membw": Program("membw.cu"),
    "l2bw": Program("l2bw.cu"),
    "latency": Program("latency.cu"),
    "launch": Program("launch.cu"),
    "elementwise": Program("elementwise.cu"),
    "conv_cudnn": Program("conv_cudnn.cu", ("cudnn",)),
    "attention": Program("attention.cu", ("cublas",)),
    "nccl": Program("nccl.cu", ("nccl",)),
}
SUITES = {
    "gemm": ("gemm_cublas", "gemm_tiled"), "membw": ("membw",), "l2": ("l2bw",),
    "latency": ("latency",), "launch": ("launch",), "elementwise": ("elementwise",),
    "conv": ("conv_cudnn",), "attention": ("attention",), "collective": ("nccl",),
}


def _toolkit_roots() -> list[Path]:
    roots = [Path(p) for p in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")) if p]
    roots += [Path("/usr/local/cuda"), Path("/usr")]
    for entry in sys.path:  # NVIDIA's wheels: site-packages/nvidia/<cu13|cudnn|nccl|...>
        base = Path(entry or ".") / "nvidia"
        if base.is_dir():
            roots += sorted(p for p in base.iterdir() if p.is_dir())
    return roots


def find_nvcc() -> Path:
    """The nvcc to build with (PATH first, then the toolkit roots)."""
    found = shutil.which("nvcc")
    candidates = [Path(found)] if found else []
    candidates += [r / "bin" / "nvcc" for r in _toolkit_roots()]
    for c in candidates:
        if c.is_file():
            return c
    raise BuildError("nvcc not found: the CUDA microbenchmarks cannot be built",
                     "install the CUDA toolkit (nvcc on PATH, or set CUDA_HOME); "
                     "`perfmodel bench --backend cpu` needs no GPU")


def find_library(key: str) -> tuple[Path, list[Path]]:
    """(include dir, shared-library files) of a CUDA library, from toolkit or pip wheels."""
    lib = LIBRARIES[key]
    for root in _toolkit_roots():
        inc = root / "include"
        if not (inc / lib.header).is_file():
            continue
        files = []
        for stem in lib.files:
            hits = sorted((p for d in ("lib", "lib64", "lib/x86_64-linux-gnu")
                           for p in (root / d).glob(f"{stem}*") if p.is_file()),
                          key=lambda p: len(p.name))
            if hits:
                files.append(hits[0])
        if len(files) == len(lib.files):
            return inc, files
    raise BuildError(f"{key}: {lib.header} and its shared libraries not found",
                     f"install the CUDA toolkit's {key}, or `pip install {lib.pip}` "
                     f"(all of them: pip install \"perfmodel[cuda]\")")


def _gencode(archs: Sequence[str]) -> list[str]:
    out = []
    for a in archs:
        if a == "native":
            out.append("-arch=native")
            continue
        m = re.fullmatch(r"sm_(\d+a?)", a)
        if not m:
            raise UnknownNameError(f"unknown GPU architecture {a!r}",
                                   "use sm_NN (sm_80 for A100, sm_90 for H100/H200) or native")
        num = m.group(1)
        out.append(f"-gencode=arch=compute_{num},code=sm_{num}")
    return out


def nvcc_commands(out_dir: Path, archs: Sequence[str] = DEFAULT_ARCHS,
                  programs: Iterable[str] | None = None) -> dict[str, list[str]]:
    """program -> the nvcc command line that builds it into ``out_dir``."""
    nvcc = str(find_nvcc())
    gencode = _gencode(archs)
    cmds = {}
    for name in programs or PROGRAMS:
        prog = PROGRAMS[name]
        inc, link = [], []
        for key in prog.libraries:
            d, files = find_library(key)
            inc += [f"-I{d}"]
            for f in files:
                link += ["-Xlinker", str(f), f"-Xlinker=-rpath={f.parent}"]
        cmds[name] = [nvcc, *FLAGS, *gencode, *inc, str(SOURCE_DIR / prog.source),
                      "-o", str(out_dir / name), *link]
    return cmds


def _nvcc_version(nvcc: str) -> str:
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=False)
    m = re.search(r"release (\d+\.\d+)", out.stdout)
    return m.group(1) if m else "unknown"


def default_build_dir(archs: Sequence[str]) -> Path:
    """~/.cache/perfmodel/bench/<key>: key = hash of the sources, archs and nvcc version."""
    h = hashlib.sha256()
    for p in sorted(SOURCE_DIR.glob("*.cu*")):
        h.update(p.read_bytes())
    h.update(" ".join(archs).encode())
    h.update(_nvcc_version(str(find_nvcc())).encode())
    return Path.home() / ".cache" / "perfmodel" / "bench" / h.hexdigest()[:16]


def _compile(name: str, cmd: list[str]) -> tuple[str, int, str]:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return name, res.returncode, res.stdout + res.stderr


def build(archs: Sequence[str] = DEFAULT_ARCHS, out_dir: Path | None = None,
          programs: Iterable[str] | None = None, jobs: int = 2,
          force: bool = False) -> dict[str, Path]:
    """Compile the programs (all by default); returns name -> binary. Up-to-date binaries
    in the (content-keyed) cache folder are reused unless ``force``."""
    names = list(programs or PROGRAMS)
    for n in names:
        if n not in PROGRAMS:
            raise UnknownNameError(f"unknown benchmark program {n!r}", did_you_mean(n, PROGRAMS))
    out = Path(out_dir) if out_dir else default_build_dir(archs)
    out.mkdir(parents=True, exist_ok=True)
    cmds = nvcc_commands(out, archs, names)
    todo = {n: c for n, c in cmds.items() if force or not (out / n).is_file()}
    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        results = list(pool.map(lambda item: _compile(*item), todo.items()))
    log_text = "\n".join(f"$ {' '.join(cmds[n])}\n{text}" for n, _, text in results)
    (out / "build.log").write_text(log_text)
    failed = [(n, text) for n, rc, text in results if rc != 0]
    if failed:
        first = next((ln for ln in failed[0][1].splitlines() if "error" in ln), "")
        raise BuildError(f"{len(failed)} benchmark(s) failed to compile: "
                         f"{', '.join(n for n, _ in failed)} ({first.strip()[:200]})",
                         f"full nvcc output in {out / 'build.log'}")
    for n in names:
        log.info("built %s", out / n)
    return {n: out / n for n in names}
