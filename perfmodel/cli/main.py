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

# Command -> the module that implements it (HELP, add_arguments, handle). Modules are
# imported only for the command being run, so `perfmodel roofline` does not pay for the
# simulator, the benchmark suite or the compression library at start-up.
COMMANDS: dict[str, str] = {
    "roofline": "perfmodel.cli.roofline",
    "models": "perfmodel.cli.models",
    "hw": "perfmodel.cli.hw",
    "memory": "perfmodel.cli.memory",
    "memory-wall": "perfmodel.cli.memory_wall",
    "compress": "perfmodel.cli.compress",
    "collective": "perfmodel.cli.collective",
    "pipeline": "perfmodel.cli.pipeline",
    "parallel": "perfmodel.cli.parallel",
    "bench": "perfmodel.cli.bench",
    "validate": "perfmodel.cli.validate",
    "calibrate": "perfmodel.cli.calibrate",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors go through our one-line error path (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise PerfModelError(message, f"see `{self.prog} --help`")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or (``command`` given) one whose only complete sub-parser is that
    command's; the others are listed by name so usage errors still name every command."""
    parser = _Parser(prog="perfmodel", description="Predict how AI models run on hardware.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, path in COMMANDS.items():
        if command is not None and name != command:
            sub.add_parser(name)
            continue
        module = importlib.import_module(path)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        p.add_argument("--format", choices=FORMATS, default="table",
                       help="output format (json is stable for scripts)")
        module.add_arguments(p)
        p.set_defaults(handler=module.handle)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 2 bad input)."""
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
        return 0
    except PerfModelError as exc:
        print(f"perfmodel: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
