"""The disk store: a working copy that starts empty, holds no raw value on disk, and
reads back what it wrote once it lives in RocksDB's files rather than its memtable.
(Its behaviour against the memory store: tests/unit/ledger/test_state.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from enforcer.core.fingerprint import Fingerprinter
from enforcer.ledger.disk import MARKER, DiskLedgerState, DiskStoreError
from enforcer.ledger.state import Grant, LedgerState, LedgerStore, grants_of

from ..conftest import KEY

FP = Fingerprinter(KEY)
ADS, MFA = "marketing.advertising", "security.mfa"
T0 = "2019-10-08T12:00:00Z"
KiB = 1024


def small(path: Path) -> DiskLedgerState:
    """A store with tiny buffers, so a few thousand subjects make several files."""
    return DiskLedgerState(path, cache_bytes=64 * KiB, write_buffer_bytes=64 * KiB)


def file_bytes(path: Path) -> bytes:
    return b"".join(f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file())


def test_both_stores_are_ledger_stores(tmp_path: Path) -> None:
    """One protocol for both (checked by mypy), so the engine can take either."""
    stores: list[LedgerStore] = [LedgerState(), DiskLedgerState(tmp_path / "ledger")]
    for store in stores:
        assert (len(store), store.subjects, store.purpose_sets) == (0, 0, 0)
        store.close()
    assert not (tmp_path / "ledger").exists()


def test_the_store_starts_empty_over_what_a_previous_one_left(tmp_path: Path) -> None:
    """A worker that died leaves its directory; the next store there starts empty."""
    path, left = tmp_path / "ledger", tmp_path / "left-behind"
    grant = Grant("email", FP("email", "a@x.io"), (ADS,))
    with small(path) as first:
        first.replace("acct-1", T0, [grant])
        first.flush()
        shutil.copytree(path, left)  # what a crash would have left
    shutil.copytree(left, path)
    with small(path) as second:
        assert (len(second), second.subjects) == (0, 0)
        assert second.purposes("acct-1", "email", grant.fingerprint) is None
    assert not path.exists()


def test_a_directory_that_is_not_a_ledgers_is_refused_and_kept(tmp_path: Path) -> None:
    """Opening wipes the directory only when it is a disk ledger's (or empty); a refusal
    is one line naming the path, why, and what to do."""
    (tmp_path / "data.txt").write_text("someone else's")
    with pytest.raises(DiskStoreError) as refused:
        DiskLedgerState(tmp_path)
    assert (tmp_path / "data.txt").read_text() == "someone else's"
    assert not (tmp_path / MARKER).exists()
    message = str(refused.value)
    assert f"cannot use {tmp_path} for the disk ledger store" in message
    assert "not a disk ledger's working copy" in message
    assert "move its contents away" in message and "ENFORCER_DATA_DIR" in message
    assert "\n" not in message


def test_a_file_where_the_store_goes_is_refused_and_kept(tmp_path: Path) -> None:
    """A file, not a directory, at the store's path: refused by name, left as it was."""
    path = tmp_path / "purposes-0"
    path.write_text("someone else's")
    with pytest.raises(DiskStoreError, match="it is not a directory") as refused:
        DiskLedgerState(path)
    assert str(path) in str(refused.value)
    assert path.read_text() == "someone else's"


def test_an_unusable_parent_is_a_store_error_naming_the_path(tmp_path: Path) -> None:
    """An operating system error while making the directory says which and why."""
    (tmp_path / "taken").write_text("a file where a directory must go")
    path = tmp_path / "taken" / "purposes-0"
    with pytest.raises(DiskStoreError) as refused:
        DiskLedgerState(path)
    assert f"cannot use {path} for the disk ledger store" in str(refused.value)
    assert "ENFORCER_DATA_DIR" in str(refused.value)


def test_no_raw_value_reaches_the_disk(tmp_path: Path) -> None:
    """Every byte under the directory, before and after the memtable is written out,
    is free of the emails, phone numbers (as given and as E.164) and subject ids."""
    path = tmp_path / "ledger"
    raw = [
        ("email", "alice.raw@example.com"),
        ("phone", "+1 (415) 555-0123"),
        ("email", "bob.raw@example.org"),
    ]
    needles = [b"alice.raw@example.com", b"bob.raw@example.org", b"4155550123", b"acct-raw-"]
    with small(path) as state:
        for n in range(300):
            triples: list[tuple[str, str, tuple[str, ...]]] = [
                (kind, f"{n}.{value}", (ADS, MFA)) for kind, value in raw
            ]
            triples.append(("phone", "+1 (415) 555-0123", (MFA,)))
            state.replace(f"acct-raw-{n}", T0, grants_of(triples, FP))
        for flushed in (False, True):
            if flushed:
                state.flush()
            stored = file_bytes(path)
            assert all(needle not in stored for needle in needles)
        assert b"hmac-sha256" not in stored  # MACs only, as raw bytes
        assert len(state) == 300 * 4


def test_reads_come_back_from_the_files(tmp_path: Path) -> None:
    """Thousands of subjects over several flushed files: lookups, updates, erasures and
    counts as in memory."""
    memory = LedgerState()
    with small(tmp_path / "ledger") as disk:
        for store in (memory, disk):
            for n in range(3000):
                grants = [Grant("email", FP("email", f"u{n}@x.io"), (ADS,) if n % 2 else (MFA,))]
                store.replace(f"acct-{n}", T0, grants)
            for n in range(0, 3000, 3):
                store.erase(f"acct-{n}", T0)
            store.replace("acct-1", T0, [])
        disk.flush()
        assert len(list((disk.path / "rocksdb").glob("*.sst"))) > 1
        for n in range(0, 3000, 7):
            fingerprint = FP("email", f"u{n}@x.io")
            assert disk.purposes(f"acct-{n}", "email", fingerprint) == memory.purposes(
                f"acct-{n}", "email", fingerprint
            )
        assert (len(disk), disk.subjects) == (len(memory), memory.subjects) == (1999, 1999)
        assert disk.disk_bytes() > 1999 * 40


def test_close_removes_the_directory_and_may_be_called_twice(tmp_path: Path) -> None:
    state = DiskLedgerState(tmp_path / "ledger")
    state.close()
    state.close()
    assert list(tmp_path.iterdir()) == []
