"""``enforcer run``'s checks before start: the disk ledger store's directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from enforcer.cli.run import DataDirError, check_ledger_store_dirs
from enforcer.ledger.disk import MARKER

TOPIC = "identity.purposes"


def test_a_foreign_store_directory_of_the_ledger_topic_is_refused_by_name(tmp_path: Path) -> None:
    """A non-empty directory where a partition's store goes, without the marker: one
    line naming the path and what to do; nothing is removed."""
    foreign = tmp_path / "ledger" / f"{TOPIC}-1"
    foreign.mkdir(parents=True)
    (foreign / "x.txt").write_text("x")
    with pytest.raises(DataDirError) as refused:
        check_ledger_store_dirs(tmp_path, TOPIC)
    message = str(refused.value)
    assert f"cannot use {foreign} for the disk ledger store" in message
    assert "move its contents away" in message and "ENFORCER_DATA_DIR" in message
    assert "\n" not in message
    assert (foreign / "x.txt").read_text() == "x"


def test_stores_left_behind_and_other_topics_directories_pass(tmp_path: Path) -> None:
    """A store a stopped worker left (it holds the marker), an empty directory, and
    directories that are not this topic's partitions are no reason to refuse."""
    root = tmp_path / "ledger"
    left = root / f"{TOPIC}-0"
    left.mkdir(parents=True)
    (left / MARKER).write_text("")
    (left / "rocksdb").mkdir()
    (root / f"{TOPIC}-2").mkdir()
    for other in (f"{TOPIC}-old-0", "other.topic-0", f"{TOPIC}-x"):
        (root / other).mkdir()
        (root / other / "x.txt").write_text("x")
    check_ledger_store_dirs(tmp_path, TOPIC)
    check_ledger_store_dirs(tmp_path / "missing", TOPIC)


def test_a_file_where_the_stores_go_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ledger").write_text("x")
    with pytest.raises(DataDirError, match="it is not a directory"):
        check_ledger_store_dirs(tmp_path, TOPIC)
