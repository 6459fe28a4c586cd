"""A reader that stops reading standard output (``enforcer ... | head``) is not an
error: the command prints nothing more, says nothing on stderr (not even Python's own
"Exception ignored ... BrokenPipeError" at exit) and exits 141, as a shell tool killed
by SIGPIPE does. Any other broken pipe is still an internal error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from enforcer.cli import EXIT_READER_GONE, main

ROOT = Path(__file__).resolve().parents[3]


def _with_no_reader(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``enforcer argv`` with standard output a pipe whose read end is already
    closed: its first write finds no reader, whatever the timing."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "enforcer.cli", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "argv",
    [
        ["policy", "check", "enforcer/core/policy/default.yaml"],  # printed in the command
        ["--help"],  # printed by the parser, which drops write errors of its own
        ["--version"],  # left in the buffer: seen by the flush at the end of main
    ],
)
def test_a_reader_that_stopped_is_exit_141_and_nothing_said(argv: list[str]) -> None:
    done = _with_no_reader(*argv)
    assert done.returncode == EXIT_READER_GONE == 141
    assert done.stderr == ""


def test_another_broken_pipe_is_still_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken pipe that is not standard output's (a socket, a child process) says
    what it is: standard output here is still read."""
    from enforcer.cli import keygen

    def broken(*_: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(keygen, "command", broken)
    assert main(["keygen"]) == 1
    assert "internal error (BrokenPipeError)" in capsys.readouterr().err
