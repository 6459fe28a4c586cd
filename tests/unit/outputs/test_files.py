"""Replay's output files (enforcer/outputs/files.py): who may read them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from enforcer.outputs.files import DEADLETTER, FORWARDED, VIOLATIONS, FileOutputs

RECORD_FILES = (FORWARDED, VIOLATIONS, DEADLETTER)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("name", RECORD_FILES)
def test_record_files_are_readable_by_their_owner_only_whatever_the_umask(
    tmp_path: Path, name: str
) -> None:
    previous = os.umask(0o022)
    try:
        with FileOutputs(tmp_path):
            pass
    finally:
        os.umask(previous)
    assert _mode(tmp_path / name) == 0o600


@pytest.mark.parametrize("name", RECORD_FILES)
def test_a_file_left_by_an_earlier_replay_is_narrowed_and_emptied(
    tmp_path: Path, name: str
) -> None:
    left = tmp_path / name
    left.write_bytes(b"an earlier replay's line\n")
    left.chmod(0o644)
    with FileOutputs(tmp_path):
        pass
    assert _mode(left) == 0o600
    assert left.read_bytes() == b""
