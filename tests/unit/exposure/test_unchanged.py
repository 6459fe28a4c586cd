"""``ExposureState.unchanged``, the steady state's check that a forward changes nothing,
held equal to the merge it lets the live path skip (docs/exposure.md, "When it is
written")."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from enforcer.exposure.state import ExposureState

MACS = [hashlib.sha256(bytes([n])).digest() for n in range(4)]
TIMES = [
    "2026-11-29T23:00:00Z",  # earlier than the rest: a clock stepping back
    "2026-11-30T00:00:00Z",
    "2026-11-30T12:00:00Z",
    "2026-11-30T23:59:59Z",
    "2026-12-01T00:00:00Z",
]

_IDENTIFIER = st.tuples(
    st.sampled_from(["email", "phone", "device_id"]),
    st.sampled_from(MACS),
    st.sampled_from([(), ("marketing.advertising",), ("analytics", "marketing.advertising")]),
    st.booleans(),
)
_RECORD = st.tuples(
    st.lists(_IDENTIFIER, min_size=1, max_size=4),
    st.sampled_from(["sink-a", "sink-b"]),
    st.sampled_from(["key-1", "key-2"]),
    st.sampled_from(["v1", "v2"]),
    st.sampled_from(TIMES),
)


@given(st.lists(st.tuples(st.sampled_from(["acct-1", "acct-2"]), _RECORD), max_size=30))
def test_unchanged_only_when_the_merge_changes_nothing(
    history: list[
        tuple[str, tuple[list[tuple[str, bytes, tuple[str, ...], bool]], str, str, str, str]]
    ],
) -> None:
    """For any history of forwards (identifiers, sinks, keys, policy versions and times
    drawn from small sets, so that forwards recur), before each one: when ``unchanged``
    says True the merge leaves the subject's slots as they are (the live path skips it
    then). It says False only when the merge changes them, or when a record names one
    identifier twice (the merge may change its slot and change it back: the merge
    decides then)."""
    state = ExposureState()
    for subject, (identifiers, sink, key_id, version, at) in history:
        before = state.slots(0, subject)
        said = state.unchanged(before, sink, key_id, version, identifiers, at)
        changed = state.forwarded_macs(0, subject, sink, key_id, version, identifiers, at)
        assert (state.slots(0, subject) == before) is (not changed)
        if said:
            assert not changed
        if len({(kind, mac) for kind, mac, _, _ in identifiers}) == len(identifiers):
            assert said is (not changed)


def test_a_subject_with_nothing_exposed_is_never_unchanged() -> None:
    identifiers = [("email", MACS[0], ("marketing.advertising",), False)]
    assert not ExposureState().unchanged(b"", "sink", "key", "v1", identifiers, TIMES[1])
