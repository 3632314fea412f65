"""The ``perfmodel`` command: parse, call the API, print. One error handler for all."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from perfmodel.cli.output import FORMATS
from perfmodel.errors import PerfModelError

__all__ = ["main", "run", "build_parser", "COMMANDS"]

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
    "pipeline": ("perfmodel.cli.pipeline", "pipeline schedule (GPipe, 1F1B, interleaved): "
                 "simulated timeline vs closed forms"),
    "parallel": ("perfmodel.cli.parallel", "3D-parallel training step (DP x TP x PP): time, "
                 "tokens/s, MFU, bubble, memory; --search"),
    "bench": ("perfmodel.cli.bench", "run the microbenchmarks (CUDA GPU or --backend cpu) and "
              "write a measurement CSV"),
    "validate": ("perfmodel.cli.validate", "compare perfmodel's predictions with a "
                 "measurement file (or the shipped references)"),
    "calibrate": ("perfmodel.cli.calibrate", "fit size-dependent efficiency curves and launch "
                  "overhead; write a calibrated spec"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors go through our one-line error path (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise PerfModelError(message, f"see `{self.prog} --help`")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser: every command listed with its help; only ``command``'s sub-parser (if
    given) is complete, its module imported to add its arguments."""
    parser = _Parser(prog="perfmodel", description="Predict how AI models run on hardware.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (path, text) in COMMANDS.items():
        if name != command:
            sub.add_parser(name, help=text, description=text)
            continue
        module = importlib.import_module(path)
        p = sub.add_parser(name, help=text, description=text)
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
