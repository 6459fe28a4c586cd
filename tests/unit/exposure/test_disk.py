"""Exposure on disk behaves as exposure in memory: the same random histories of forwards,
retractions, policy changes, rollbacks and dropped partitions leave both states with the
same values, sizes and retractions; a disk table's directory is gone once closed."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.fingerprint import Fingerprinter
from enforcer.exposure.disk import DiskTable
from enforcer.exposure.model import ExposureEntry, Forward
from enforcer.exposure.state import ExposureState, Undo
from enforcer.ledger.disk import MiB

from ..conftest import KEY

FP = Fingerprinter(KEY)
SUBJECTS = ("s0", "s1", "s2", "s-ü")
FINGERPRINTS = tuple(FP("email", f"{n}@x.org") for n in range(4))
PURPOSES = (("marketing.advertising",), ("analytics",), ("marketing.advertising", "analytics"))
DAYS = ("2026-11-30T10:00:00Z", "2026-11-30T20:00:00Z", "2026-12-01T09:00:00Z")
_runs = itertools.count()

_forward = st.builds(
    Forward,
    st.sampled_from(["sink-a", "sink-b"]),
    st.sampled_from(["email", "phone"]),
    st.sampled_from(FINGERPRINTS),
    st.just(FP.key_id),
    st.sampled_from(PURPOSES),
    st.booleans(),
    st.sampled_from(["v1", "v2"]),
)
_operation = st.one_of(
    st.tuples(
        st.just("forward"),
        st.integers(0, 1),
        st.sampled_from(SUBJECTS),
        st.lists(_forward, min_size=1, max_size=3),
        st.sampled_from(DAYS),
    ),
    st.tuples(st.just("retract"), st.integers(0, 1), st.sampled_from(SUBJECTS)),
    st.tuples(st.just("rejudge"), st.integers(0, 1)),
    st.tuples(st.just("abort")),
    st.tuples(st.just("commit")),
    st.tuples(st.just("drop"), st.integers(0, 1)),
)


def _no_analytics(_subject: str, entry: ExposureEntry) -> bool:
    return "analytics" not in entry.purposes


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("exposure-disk")


@settings(max_examples=60, deadline=None)
@given(operations=st.lists(_operation, max_size=25))
def test_disk_and_memory_states_agree_on_any_history(
    root: Path, operations: list[tuple[Any, ...]]
) -> None:
    run = root / str(next(_runs))
    opened: list[DiskTable] = []

    def table(partition: int) -> DiskTable:
        made = DiskTable(
            run / f"p{partition}-{len(opened)}", cache_bytes=MiB, write_buffer_bytes=MiB
        )
        opened.append(made)
        return made

    memory, disk = ExposureState(), ExposureState(table)
    undo_memory: Undo = {}
    undo_disk: Undo = {}
    try:
        for operation in operations:
            kind = operation[0]
            if kind == "forward":
                _, partition, subject, forwards, at = operation
                a = memory.forwarded(partition, subject, forwards, at, undo_memory)
                b = disk.forwarded(partition, subject, forwards, at, undo_disk)
                assert a == b
            elif kind == "retract":
                _, partition, subject = operation
                gone = memory.retract(partition, subject, _no_analytics, undo_memory)
                assert gone == disk.retract(partition, subject, _no_analytics, undo_disk)
            elif kind == "rejudge":
                partition = operation[1]
                judged = memory.rejudge(partition, _no_analytics, "v3", undo_memory)
                other = disk.rejudge(partition, _no_analytics, "v3", undo_disk)
                # A disk table lists its subjects in key order, memory in insertion order.
                assert sorted(judged.retractions) == sorted(other.retractions)
                assert sorted(judged.writes) == sorted(other.writes)
            elif kind == "abort":
                memory.rollback(undo_memory)
                disk.rollback(undo_disk)
            elif kind == "commit":
                undo_memory.clear()
                undo_disk.clear()
            else:
                partition = operation[1]
                memory.drop(partition)
                disk.drop(partition)
                undo_memory.clear()
                undo_disk.clear()
            assert len(memory) == len(disk) and memory.subjects == disk.subjects
            assert memory.partitions == disk.partitions
            for partition in memory.partitions:
                assert sorted(memory.subject_ids(partition)) == sorted(disk.subject_ids(partition))
                for subject in SUBJECTS:
                    assert memory.value(partition, subject) == disk.value(partition, subject)
    finally:
        disk.close()
    assert not any(t.path.exists() for t in opened)


def test_a_closed_table_removes_its_directory(tmp_path: Path) -> None:
    table = DiskTable(tmp_path / "t", cache_bytes=MiB, write_buffer_bytes=MiB)
    table[b"s1"] = b"x" * 55
    assert len(table) == 1 and table.get(b"s1") == b"x" * 55 and list(table) == [b"s1"]
    del table[b"s1"]
    del table[b"s1"]  # twice: still nothing
    assert len(table) == 0 and table.get(b"s1") is None
    table.close()
    assert not (tmp_path / "t").exists()
    table.close()  # twice: nothing to do
