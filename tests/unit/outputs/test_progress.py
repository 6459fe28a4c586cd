"""The progress bar of the commands that read a history: on a terminal only, and in
the units it is given (docs/operations.md: replay; docs/remediate.md)."""

from __future__ import annotations

import io

import pytest

from enforcer.outputs.progress import ProgressBar, progress_bar


def test_a_bar_shows_only_on_a_terminal_and_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not progress_bar(True, 10, "rec", "plan").enabled
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert not progress_bar(False, 10, "rec", "plan").enabled
    with progress_bar(True, 10, "rec", "plan") as bar:
        assert bar.enabled
        bar.advance(4)
        bar.advance(6)
    shown = terminal.getvalue()
    assert shown.startswith("\rplan:") and "100%" in shown and "10.0/10.0" in shown


def test_a_bar_that_does_not_show_asks_for_no_callback() -> None:
    bar = ProgressBar(False, 10, "rec", "plan")
    assert bar.callback(lambda _record: None) is None
    bar.advance(3)  # nothing to move: no error
