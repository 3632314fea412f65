"""Progress bars show only where someone watches: never in tests, scripts or --quiet."""

from __future__ import annotations

import io

from perfmodel import progress


def test_track_is_a_plain_loop_off_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())          # not a TTY
    assert list(progress.track(range(5), "x", 5)) == [0, 1, 2, 3, 4]
    assert not progress.showing()


def test_quiet_turns_bars_off_even_on_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True
    monkeypatch.setattr("sys.stderr", Tty())
    monkeypatch.setenv("PERFMODEL_QUIET", "1")
    assert not progress.showing()
    assert list(progress.track(iter("ab"), "x")) == ["a", "b"]
