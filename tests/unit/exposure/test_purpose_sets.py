"""Purpose sets no exposed identifier uses any more are forgotten once there are many
(docs/exposure.md, "Memory"): what the state holds, and every value it writes, stay
exactly what they were; only the table of sets shrinks to the sets in use."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.fingerprint import Fingerprinter
from enforcer.exposure.disk import DiskTable
from enforcer.exposure.model import ExposureEntry, Forward
from enforcer.exposure.state import ExposureState, MemoryTable, SubjectTable
from enforcer.ledger.disk import MiB

from ..conftest import KEY

FP = Fingerprinter(KEY)
SINK = "audience.identity"
AT = ("2026-11-30T12:00:00Z", "2026-12-01T08:00:00Z")
SUBJECTS = ("acct-1", "acct-2", "acct-3")
EMAILS = tuple(FP("email", f"user{n}@example.com") for n in range(4))
# Tags that vary per record (a campaign id among them): many distinct sets.
PURPOSES = st.lists(
    st.sampled_from(
        ["marketing.advertising", "security.mfa", *(f"campaign.c{n}" for n in range(12))]
    ),
    min_size=1,
    max_size=4,
).map(tuple)


def forward(fingerprint: str, purposes: tuple[str, ...], version: str = "v1") -> Forward:
    return Forward(SINK, "email", fingerprint, FP.key_id, purposes, False, version)


Step = tuple[str, int, int, tuple[str, ...], int, bool]
"""(what, subject, email, purposes, time, compact now): a forward, or a retraction of
what carries a campaign tag."""
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["forward", "forward", "retract"]),
        st.integers(0, len(SUBJECTS) - 1),
        st.integers(0, len(EMAILS) - 1),
        PURPOSES,
        st.integers(0, 1),
        st.booleans(),
    ),
    max_size=60,
)


def campaign_free(_subject: str, entry: ExposureEntry) -> bool:
    return not any(tag.startswith("campaign.") for tag in entry.purposes)


def apply(state: ExposureState, step: Step) -> object:
    """One step on ``state``; what it returns (the value to write, and what a
    retraction removed)."""
    what, subject, email, purposes, at, _ = step
    if what == "forward":
        return state.forwarded(0, SUBJECTS[subject], [forward(EMAILS[email], purposes)], AT[at])
    return state.retract(0, SUBJECTS[subject], campaign_free)


def assert_same(state: ExposureState, twin: ExposureState) -> None:
    for subject in SUBJECTS:
        assert state.exposure(0, subject) == twin.exposure(0, subject)
        assert state.value(0, subject) == twin.value(0, subject)


def in_use(state: ExposureState) -> int:
    return len({e.purposes for s in SUBJECTS for e in state.exposure(0, s).entries})


@settings(max_examples=150, deadline=None)
@given(STEPS)
def test_forgetting_unused_purpose_sets_changes_nothing_the_state_says(steps: list[Step]) -> None:
    """A state that forgets unused sets early says and writes exactly what one that never
    forgets does, after every step; once it forgets, it holds the sets in use only."""
    state = ExposureState(purpose_sets_kept=2)
    twin = ExposureState(purpose_sets_kept=1 << 30)
    bound = 2  # what may be held: twice what was kept the last time, at least 2
    for step in steps:
        assert apply(state, step) == apply(twin, step)
        if step[5]:
            held = state.purpose_sets
            kept = state.forget_unused_purposes()
            if kept is None:
                assert held <= max(bound, len(state) // 16)
            else:
                assert held > bound
                assert kept == state.purpose_sets == in_use(state)
                bound = max(2, 2 * kept)
        assert_same(state, twin)
    assert twin.forget_unused_purposes() is None  # never due under its bound


def test_after_forgetting_a_forward_of_a_known_set_reuses_its_number() -> None:
    """The sets kept are numbered anew; a later forward under one of them finds it
    (the packed attributes remembered under old numbers are gone), and one under a set
    forgotten is a new set again."""
    state = ExposureState(purpose_sets_kept=2)
    for n in range(4):
        state.forwarded(
            0,
            "acct-1",
            [forward(EMAILS[n % 2], ("marketing.advertising", f"campaign.c{n}"))],
            AT[0],
        )
    assert state.purpose_sets == 4
    assert state.forget_unused_purposes() == 2  # the last set of each of the two emails
    before = state.value(0, "acct-1")
    write = state.forwarded(
        0, "acct-1", [forward(EMAILS[1], ("marketing.advertising", "campaign.c3"))], AT[0]
    )
    assert write is None and state.value(0, "acct-1") == before and state.purpose_sets == 2
    state.forwarded(
        0, "acct-1", [forward(EMAILS[0], ("marketing.advertising", "campaign.c0"))], AT[0]
    )
    assert state.purpose_sets == 3
    [first, second] = state.exposure(0, "acct-1").entries
    assert {first.purposes, second.purposes} == {
        ("campaign.c0", "marketing.advertising"),
        ("campaign.c3", "marketing.advertising"),
    }


@pytest.mark.parametrize("store", ["memory", "disk"])
def test_every_partition_s_slots_are_renumbered_in_either_store(store: str, tmp_path: Path) -> None:
    def table(partition: int) -> SubjectTable:
        if store == "memory":
            return MemoryTable()
        return DiskTable(tmp_path / f"p{partition}", cache_bytes=MiB, write_buffer_bytes=MiB)

    state = ExposureState(table, purpose_sets_kept=2)
    twin = ExposureState(purpose_sets_kept=1 << 30)
    for partition in (0, 1):
        for n in range(6):
            for s in (state, twin):
                purposes = ("marketing.advertising", f"campaign.c{n + 6 * partition}")
                s.forwarded(partition, f"acct-{n % 3}", [forward(EMAILS[n % 2], purposes)], AT[0])
    assert state.forget_unused_purposes() is not None
    for partition in (0, 1):
        for subject in ("acct-0", "acct-1", "acct-2"):
            assert state.value(partition, subject) == twin.value(partition, subject)
    state.close()
