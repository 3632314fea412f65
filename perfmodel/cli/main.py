"""The ``perfmodel`` command: parse, call the API, print. One error handler for all."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from perfmodel.cli import (
    bench,
    calibrate,
    collective,
    compress,
    hw,
    memory,
    memory_wall,
    models,
    parallel,
    pipeline,
    roofline,
    validate,
)
from perfmodel.cli.output import FORMATS
from perfmodel.errors import PerfModelError

__all__ = ["main", "run", "build_parser"]

COMMANDS = {"roofline": roofline, "models": models, "hw": hw}
COMMANDS["bench"] = bench
COMMANDS["validate"] = validate
COMMANDS["calibrate"] = calibrate
COMMANDS["memory"] = memory
COMMANDS["memory-wall"] = memory_wall
COMMANDS["compress"] = compress
COMMANDS["collective"] = collective
COMMANDS["pipeline"] = pipeline
COMMANDS["parallel"] = parallel


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors go through our one-line error path (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise PerfModelError(message, f"see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="perfmodel", description="Predict how AI models run on hardware.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        p.add_argument("--format", choices=FORMATS, default="table",
                       help="output format (json is stable for scripts)")
        module.add_arguments(p)
        p.set_defaults(handler=module.handle)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 2 bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="perfmodel: %(levelname)s: %(message)s")
        if not getattr(args, "handler", None):
            parser.print_help()
            return 2
        print(args.handler(args))
        return 0
    except PerfModelError as exc:
        print(f"perfmodel: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
