"""Help that teaches: every command's --help shows its defaults and two examples, and every
example runs as printed (exit 0, or 3 where the run does not fit in memory)."""

from __future__ import annotations

import argparse
import shlex

import pytest

from perfmodel.cli.main import COMMANDS, EXAMPLES, build_parser, main


def command_parser(command: str) -> argparse.ArgumentParser:
    """The complete sub-parser of one command (its module imported)."""
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def help_text(capsys, command: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    out, err = capsys.readouterr()
    assert exc.value.code == 0, err
    return out


def test_every_command_has_two_examples_and_nothing_else_has():
    assert set(EXAMPLES) == set(COMMANDS)
    for command, lines in EXAMPLES.items():
        assert len(lines) == 2, command
        assert all(shlex.split(line)[:2] == ["perfmodel", command] for line in lines), command


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_exits_0_with_two_examples(capsys, command):
    out = help_text(capsys, command)
    assert "Examples:" in out
    shown = [line.strip() for line in out.splitlines()
             if line.strip() == f"perfmodel {command}"
             or line.strip().startswith(f"perfmodel {command} ")]
    assert shown == list(EXAMPLES[command])


def test_help_shows_defaults_where_they_say_something(capsys):
    out = " ".join(help_text(capsys, "roofline").split())  # undo the wrapping
    assert "--top TOP ops shown in the table (by time) (default: 10)" in out
    assert "train (forward, backward, optimizer) (default: inference)" in out
    assert "(default: None)" not in out and "(default: False)" not in out
    assert "batch size (default 1)" in out and "batch size (default 1) (default" not in out


def test_top_level_help_points_to_command_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    out, _ = capsys.readouterr()
    assert exc.value.code == 0
    assert "`perfmodel COMMAND --help`" in out


# bench --backend cpu --quick times numpy kernels on the host: seconds, not milliseconds.
SLOW_EXAMPLES = {"perfmodel bench --backend cpu --quick --out host.csv"}


@pytest.mark.parametrize("line", [
    pytest.param(line, id=f"{command}-{i}",
                 marks=[pytest.mark.slow] if line in SLOW_EXAMPLES else [])
    for command, lines in EXAMPLES.items() for i, line in enumerate(lines)])
def test_every_example_runs(capsys, monkeypatch, tmp_path, line):
    monkeypatch.chdir(tmp_path)  # examples that write (--plot, --out, -o) write here
    code = main(shlex.split(line)[1:])
    out, err = capsys.readouterr()
    assert code in (0, 3), f"{line}: exit {code}: {err}"
    assert out.strip(), line


def options_without_help() -> list[tuple[str, str]]:
    return [(command, "/".join(a.option_strings) or a.dest)
            for command in COMMANDS for a in command_parser(command)._actions
            if not (a.help or "").strip()]


def test_every_argument_of_every_command_has_help():
    missing = options_without_help()
    assert not missing, "arguments without a help string: " + ", ".join(
        f"{command} {flag}" for command, flag in missing)
