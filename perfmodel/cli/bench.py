"""perfmodel bench: run the microbenchmark suite (CUDA on a GPU, or the host CPU via numpy)."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pandas as pd

from perfmodel.bench.build import DEFAULT_ARCHS, PROGRAMS, SUITES, build, nvcc_commands
from perfmodel.bench.host import HOST_SUITES, host_spec, run_host
from perfmodel.bench.measurement import write_measurements
from perfmodel.cli.output import emit_frame, to_json
from perfmodel.errors import PerfModelError
from perfmodel.files import check_writable
from perfmodel.hardware.write import write_spec
from perfmodel.units import format_si
from perfmodel.zoo.registry import canonical_name, load_model

SHOWN_TORCH = ["benchmark", "model", "phase", "batch", "seq", "dtype", "time_s", "time_p10_s",
               "time_p90_s", "repeats"]
SHOWN = ["benchmark", "family", "dtype", "m", "n", "k", "bytes", "time_s", "achieved_TFLOPS",
         "achieved_GBps", "check_rel_err"]


def _list(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["cuda", "cpu", "torch"], default="cuda",
                   help="cuda: the bundled CUDA programs on the visible GPU; cpu: numpy; "
                        "torch: end-to-end latency of --models (needs the torch extra)")
    p.add_argument("--models", default=None, help="torch: comma list of zoo models, e.g. "
                                                  "resnet50,bert-base,llama-2-7b")
    p.add_argument("--batch", type=int, default=1, help="torch: batch size (default 1)")
    p.add_argument("--seq", type=int, default=None,
                   help="torch: tokens (prompt, or KV length for decode; default: the "
                        "model's default_seq)")
    p.add_argument("--dtype", default=None, help="torch: fp32, fp16 or bf16 (default fp16 on "
                                                 "CUDA, fp32 on the CPU)")
    p.add_argument("--torch-device", default=None, metavar="DEV",
                   help="torch: cuda, cuda:1 or cpu (default: cuda when torch sees a GPU)")
    p.add_argument("--suite", default=None, help=f"comma list; cuda: {','.join(SUITES)}; "
                                                 f"cpu: {','.join(HOST_SUITES)} (default all)")
    p.add_argument("--out", default=None, metavar="CSV", help="measurement file to write")
    p.add_argument("--force", action="store_true", help="overwrite --out / --spec-out")
    p.add_argument("--quick", action="store_true", help="a small sweep (CI, smoke tests)")
    p.add_argument("--repeats", type=int, default=None, help="timed repetitions per case")
    p.add_argument("--spec-out", default=None, metavar="YAML",
                   help="cpu: also write a hw spec of this host (detected + measured)")
    p.add_argument("--build-only", action="store_true",
                   help="cuda: compile every program with nvcc and stop (no GPU needed)")
    p.add_argument("--print-commands", action="store_true",
                   help="with --build-only: print the nvcc commands instead of running them")
    p.add_argument("--arch", default=None, help="GPU architectures, e.g. sm_80,sm_90 "
                                                "(default: the visible GPU's, else sm_80,sm_90)")
    p.add_argument("--build-dir", default=None, help="where binaries go (default: a cache "
                                                     "folder under ~/.cache/perfmodel)")


def _build_only(args: argparse.Namespace) -> str:
    archs = _list(args.arch) or list(DEFAULT_ARCHS)
    out = Path(args.build_dir) if args.build_dir else None
    if args.print_commands:
        cmds = nvcc_commands(out or Path("BUILD_DIR"), archs)
        return "\n".join(subprocess.list2cmdline(c) for c in cmds.values())
    built = build(archs, out, jobs=2, force=args.force)
    table = pd.DataFrame({"program": list(built), "source": [PROGRAMS[n].source for n in built],
                          "binary": [str(b) for b in built.values()]})
    if args.format != "table":
        return emit_frame(table, args.format)
    return (f"compiled {len(built)} of {len(PROGRAMS)} CUDA programs for {','.join(archs)}:\n"
            + emit_frame(table, "table"))


def _write_spec(df: pd.DataFrame, path: str, force: bool) -> Path:
    return write_spec(path, host_spec(df), force=force, header=(
        "Host CPU spec written by `perfmodel bench --backend cpu --spec-out`."))


def _run_torch(args: argparse.Namespace) -> pd.DataFrame:
    """Resolve --models in the zoo and measure them with torch (perfmodel.bench.torch_e2e)."""
    from perfmodel.bench.torch_e2e import run_torch
    names = _list(args.models)
    if not names:
        raise PerfModelError("--backend torch needs --models NAME[,NAME...]",
                             "e.g. --models resnet50,bert-base,llama-2-7b")
    keys = [n if n.endswith((".yaml", ".yml", ".json")) else canonical_name(n) for n in names]
    models = [(k, load_model(k)) for k in keys]
    return run_torch(models, batch=args.batch, seq=args.seq, dtype=args.dtype,
                     device=args.torch_device, repeats=args.repeats, quick=args.quick)


def handle(args: argparse.Namespace) -> str:
    if args.build_only:
        return _build_only(args)
    if not args.out:
        raise PerfModelError("bench needs --out FILE.csv (or --build-only)",
                             "e.g. perfmodel bench --backend cpu --out host.csv")
    check_writable(args.out, args.force, (".csv",))
    if args.repeats is not None and args.repeats <= 0:
        raise PerfModelError(f"--repeats must be positive, got {args.repeats}", "e.g. 20")
    suites = _list(args.suite)
    if args.spec_out and (args.backend != "cpu" or not {"gemm", "membw"} <= set(
            suites or HOST_SUITES)):
        raise PerfModelError("--spec-out needs --backend cpu with the gemm and membw suites",
                             "drop --suite, or add gemm,membw to it")
    if args.models and args.backend != "torch":
        raise PerfModelError("--models measures end-to-end latency with --backend torch",
                             "add --backend torch")
    if args.backend == "torch":
        df = _run_torch(args)
    elif args.backend == "cpu":
        df = run_host(suites or list(HOST_SUITES), quick=args.quick, repeats=args.repeats)
    else:
        from perfmodel.bench.runner import run_cuda
        df = run_cuda(suites or list(SUITES), quick=args.quick, repeats=args.repeats,
                      archs=_list(args.arch),
                      build_dir=Path(args.build_dir) if args.build_dir else None)
    write_measurements(df, args.out, overwrite=args.force)
    shown = SHOWN_TORCH if args.backend == "torch" else SHOWN
    spec = _write_spec(df, args.spec_out, args.force) if args.spec_out else None
    if args.format == "json":
        return to_json({"out": args.out, "spec_out": str(spec) if spec else None,
                        "rows": df[shown].astype(object).where(df[shown].notna(), None)
                        .to_dict(orient="records")})
    if args.format == "csv":
        return emit_frame(df[shown], "csv")
    fmt = {"bytes": lambda v: "-" if pd.isna(v) else format_si(v, "B"),
           "time_s": lambda v: format_si(v, "s"),
           "time_p10_s": lambda v: format_si(v, "s"), "time_p90_s": lambda v: format_si(v, "s"),
           "achieved_TFLOPS": lambda v: "-" if pd.isna(v) else f"{v:.4g}",
           "achieved_GBps": lambda v: "-" if pd.isna(v) else f"{v:.4g}",
           "check_rel_err": lambda v: "-" if pd.isna(v) else f"{v:.1e}"}
    tail = [f"wrote {len(df)} rows to {args.out}"] + ([f"wrote host spec {spec}"] if spec else [])
    return emit_frame(df[shown], "table", fmt) + "\n\n" + "\n".join(tail)
