"""The ``perfmodel`` command: parse, call the API, print. One error handler for all."""

from __future__ import annotations

import argparse
import copy
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from perfmodel.cli.output import FORMATS
from perfmodel.errors import PerfModelError

__all__ = ["main", "run", "build_parser", "COMMANDS", "EXAMPLES"]

# Command -> (the module that implements it: add_arguments, handle; its one-line help).
# A module is imported only for the command being run, and `perfmodel --help` imports none,
# so no command pays for the simulator, the benchmark suite or the compression library it
# does not use.
COMMANDS: dict[str, tuple[str, str]] = {
    "roofline": ("perfmodel.cli.roofline", "roofline prediction of one model on one device"),
    "models": ("perfmodel.cli.models", "list the model zoo with parameters and MACs"),
    "hw": ("perfmodel.cli.hw",
           "list devices with key figures, or `hw show NAME` for one in full with sources"),
    "memory": ("perfmodel.cli.memory",
               "memory footprint per device, capacity verdict, what to change, decode limits"),
    "memory-wall": ("perfmodel.cli.memory_wall", "memory-wall statistics of the device "
                    "library, by year (--plot for the trend chart)"),
    "compress": ("perfmodel.cli.compress", "compare compression strategies: size, bytes, "
                 "MACs, latency, memory, energy"),
    "collective": ("perfmodel.cli.collective", "collective time, algbw and busbw per message "
                   "size (nccl-tests columns), or compare"),
    "pipeline": ("perfmodel.cli.pipeline", "pipeline schedule (GPipe, 1F1B, interleaved, "
                 "zero bubble, DualPipe, PipeDream): simulated timeline vs closed forms"),
    "infer": ("perfmodel.cli.infer", "inference end to end through an engine (vLLM, "
              "TensorRT-LLM, llama.cpp, ...): TTFT, TPOT, tokens/s, memory per GPU"),
    "sensitivity": ("perfmodel.cli.sensitivity", "the latency's elasticity to every figure "
                    "of a device's spec (tornado chart)"),
    "sweep": ("perfmodel.cli.sweep", "roofline predictions over a grid (models, devices, "
              "batches, dtypes, spec overrides): resumable, a process pool or Dask"),
    "explore": ("perfmodel.cli.explore", "design space of a hypothetical chip: spec figures "
                "varied, a workload suite priced, the Pareto front; --search-models"),
    "review": ("perfmodel.cli.review", "design review of a chip against baselines over a "
               "workload suite: one self-contained HTML report"),
    "serve": ("perfmodel.cli.serve", "serving under load, simulated (continuous batching, "
              "replicas, router): TTFT / TPOT percentiles, throughput, goodput"),
    "parallel": ("perfmodel.cli.parallel", "3D-parallel training step (DP x TP x PP): time, "
                 "tokens/s, MFU, bubble, memory; --search"),
    "bench": ("perfmodel.cli.bench", "run the microbenchmarks (CUDA GPU or --backend cpu) and "
              "write a measurement CSV"),
    "validate": ("perfmodel.cli.validate", "compare perfmodel's predictions with a "
                 "measurement file (or the shipped references)"),
    "calibrate": ("perfmodel.cli.calibrate", "fit size-dependent efficiency curves and launch "
                  "overhead; write a calibrated spec"),
}


# Command -> two command lines shown under "Examples:" in its --help. Each one runs as printed
# with shipped names (tests/cli/test_help.py runs them all); none needs a GPU.
EXAMPLES: dict[str, tuple[str, str]] = {
    "roofline": ("perfmodel roofline resnet50 --hw a100",
                 "perfmodel roofline llama-2-7b --hw h100 --phase decode --seq 2048 --batch 8"),
    "models": ("perfmodel models",
               "perfmodel models --family llama --format csv"),
    "hw": ("perfmodel hw",
           "perfmodel hw show h100"),
    "memory": ("perfmodel memory llama-2-7b --hw a100 --phase decode --batch 16 --seq 4096",
               "perfmodel memory llama-2-13b --hw a100 --phase train --batch 32 --seq 4096 "
               "--tp 4 --pp 2 --dp 4 --zero 1"),
    "memory-wall": ("perfmodel memory-wall",
                    "perfmodel memory-wall --plot wall.png"),
    "compress": ("perfmodel compress resnet50 --hw a100 --strategy int8 "
                 "--strategy prune:0.5:structured",
                 "perfmodel compress llama-2-7b --hw h100 --phase decode --strategy w4a16 "
                 "--strategy fp8"),
    "collective": ("perfmodel collective all_reduce --system dgx-h100 --min-bytes 8 "
                   "--max-bytes 1G",
                   "perfmodel collective all_reduce --system dgx-a100 --nodes 2 "
                   "--algo hierarchical --bytes 256M --sim"),
    "pipeline": ("perfmodel pipeline --stages 4 --micro-batches 8",
                 "perfmodel pipeline --stages 4 --micro-batches 8 --schedule interleaved "
                 "--virtual 2 --layers 32"),
    "infer": ("perfmodel infer llama-2-7b --hw h100 --engine vllm --batch 16 --input-len 512 "
              "--output-len 128",
              "perfmodel infer llama-3-70b --system dgx-h100 --tp 8 --engine vllm --batch max "
              "--input-len 1024 --output-len 512"),
    "sensitivity": ("perfmodel sensitivity llama-2-7b --hw h100 --phase decode --batch 1 "
                    "--seq 2048 --plot tornado.png",
                    "perfmodel sensitivity llama-3-8b --hw mi300x --engine vllm-rocm "
                    "--input-len 1024 --output-len 256"),
    "sweep": ("perfmodel sweep --model resnet50,llama-3-8b --hw a100,h100 --batch 1,8,64 "
              "--override memory.bandwidth_GBps=2000,4000",
              "perfmodel sweep --model llama-2-7b --hw a100,h100,mi300x --phase decode --seq "
              "4096 --batch 1,16,64,256 --plot sweep.png"),
    "explore": ("perfmodel explore --hw h100 --vary compute.tensor_TFLOPS.fp16=500..4000 "
                "--vary memory.bandwidth_GBps=2000..16000 --budget power.tdp_W=700",
                "perfmodel explore --search-models resnet,mobilenet_v2 --strategy int8 --hw h100 "
                "--budget-ms 0.5"),
    "review": ("perfmodel review --hw h100 --baseline a100 -o review.html",
               "perfmodel review --hw mi300x --baseline h100,b200 --sensitivity-workload "
               "llama-3-8b-decode-b32 --title 'MI300X review' -o mi300x.html"),
    "serve": ("perfmodel serve llama-3-8b --hw h100 --engine vllm --rate 8 --requests 2000 "
              "--input-len 1024 --output-len 256 --slo-ttft 0.5 --slo-tpot 0.05",
              "perfmodel serve llama-3-70b --system dgx-h100 --tp 8 --rate 12 --input-len "
              "lognormal:1024,0.6 --replicas 2 --router least-loaded --plot timeline.png"),
    "parallel": ("perfmodel parallel llama-2-7b --system dgx-a100 --gpus 8 --tp 2 --pp 2 "
                 "--global-batch 64",
                 "perfmodel parallel llama-2-13b --system dgx-h100 --gpus 16 --global-batch 256 "
                 "--search --top 5"),
    "bench": ("perfmodel bench --backend cpu --quick --out host.csv",
              "perfmodel bench --build-only --print-commands"),
    "validate": ("perfmodel validate --reference a100",
                 "perfmodel validate --reference a100 --family gemm,membw --by dtype"),
    "calibrate": ("perfmodel calibrate --reference t4 --group framework",
                  "perfmodel calibrate --reference a100 --family gemm,membw "
                  "-o a100-calibrated.yaml"),
}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                     argparse.RawDescriptionHelpFormatter):
    """Every option's default after its help, where the default says something (not None,
    False or empty, and not already told in the help text); descriptions and the examples
    epilog keep their line breaks."""

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and _tells(action):  # no help text: the default alone
            action = copy.copy(action)
            action.help = "default: %(default)s"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if not _tells(action) or "default" in (action.help or "").lower():
            return action.help
        return super()._get_help_string(action)


def _tells(action: argparse.Action) -> bool:
    """Whether an option's default is worth printing (None, False, [] mean "not given")."""
    d = action.default
    return d is not argparse.SUPPRESS and d is not None and d is not False and d != []


def _epilog(command: str) -> str | None:
    lines = EXAMPLES.get(command, ())
    return "Examples:\n" + "\n".join(f"  {line}" for line in lines) if lines else None


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors go through our one-line error path (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise PerfModelError(message, f"see `{self.prog} --help`")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser: every command listed with its help; only ``command``'s sub-parser (if
    given) is complete, its module imported to add its arguments."""
    parser = _Parser(prog="perfmodel", description="Predict how AI models run on hardware.",
                     epilog="`perfmodel COMMAND --help`: a command's options, their defaults "
                            "and two examples.", formatter_class=_HelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars (they show only on a terminal, with the "
                             "rich package installed)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (path, text) in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text, epilog=_epilog(name),
                           formatter_class=_HelpFormatter)
        if name != command:
            continue
        module = importlib.import_module(path)
        p.add_argument("--format", choices=FORMATS, default="table",
                       help="output format (json is stable for scripts)")
        module.add_arguments(p)
        p.set_defaults(handler=module.handle)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 2 bad input, 3 the run does not fit
    in memory and --allow-oom was not given)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
        if args.quiet:  # read by perfmodel.progress in this process
            os.environ["PERFMODEL_QUIET"] = "1"
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="perfmodel: %(levelname)s: %(message)s")
        if not getattr(args, "handler", None):
            parser.print_help()
            return 2
        print(args.handler(args))
        return int(getattr(args, "exit_code", 0))  # 3: printed, but does not fit
    except PerfModelError as exc:
        print(f"perfmodel: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
