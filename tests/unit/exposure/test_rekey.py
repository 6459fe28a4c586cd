"""Re-keying exposure during a fingerprint key rotation (docs/exposure.md, "Key
rotation"): an identifier forwarded under the new key whose subject holds its entry made
under the previous key takes that entry over (new MAC and key id, the forward's
attributes, the earlier first forwarded time), so each identifier keeps one entry."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.fingerprint import Fingerprinter
from enforcer.exposure.model import ExposureEntry
from enforcer.exposure.state import ExposureState, PreviousKey

OLD = Fingerprinter(b"old-key-0123456789abcdef-rotation")
NEW = Fingerprinter(b"new-key-0123456789abcdef-rotation")
ADS = ("marketing.advertising",)
SINK, OTHER_SINK = "audience.identity", "audience.other"
DAY1, DAY2, DAY3 = "2026-11-30T12:00:00Z", "2026-12-01T08:00:00Z", "2026-12-02T09:30:00Z"

Listed = tuple[str, bytes, tuple[str, ...], bool]


def listed(fingerprinter: Fingerprinter, values: Sequence[tuple[str, str]]) -> list[Listed]:
    """What the decision lists for these identifiers under ``fingerprinter``."""
    return [(kind, fingerprinter.mac(kind, value), ADS, False) for kind, value in values]


class Asked:
    """The previous key's MACs, counting how often they are asked."""

    def __init__(self, values: Sequence[tuple[str, str]]) -> None:
        self.values = values
        self.calls = 0

    def __call__(self) -> list[bytes]:
        self.calls += 1
        return [OLD.mac(kind, value) for kind, value in self.values]


def forward(
    state: ExposureState,
    fingerprinter: Fingerprinter,
    values: Sequence[tuple[str, str]],
    at: str,
    *,
    previous: bool,
    subject: str = "acct-1",
    sink: str = SINK,
    version: str = "v1",
) -> tuple[bool, Asked]:
    asked = Asked(values)
    known = PreviousKey(OLD.key_id, asked) if previous else None
    changed = state.forwarded_macs(
        0,
        subject,
        sink,
        fingerprinter.key_id,
        version,
        listed(fingerprinter, values),
        at,
        previous=known,
    )
    return changed, asked


def entries(state: ExposureState, subject: str = "acct-1") -> list[ExposureEntry]:
    return list(state.exposure(0, subject).entries)


EMAIL = ("email", "ann@example.com")
PHONE = ("phone", "+14155550123")


def test_an_old_key_entry_forwarded_again_is_replaced_in_place() -> None:
    state = ExposureState()
    forward(state, OLD, [EMAIL, PHONE], DAY1, previous=False)
    changed, _ = forward(state, NEW, [EMAIL], DAY3, previous=True, version="v2")
    assert changed
    email, phone = entries(state)  # the email's slot kept its place
    assert email.key_id == NEW.key_id
    assert email.fingerprint == NEW("email", EMAIL[1])
    assert (email.first_forwarded_at, email.last_forwarded_at) == (DAY1, DAY3)
    assert email.policy_version == "v2"
    assert phone.key_id == OLD.key_id  # not forwarded again: left as it was


def test_without_the_previous_key_a_second_entry_is_made_as_before() -> None:
    state = ExposureState()
    forward(state, OLD, [EMAIL], DAY1, previous=False)
    forward(state, NEW, [EMAIL], DAY2, previous=False)
    assert [e.key_id for e in entries(state)] == [OLD.key_id, NEW.key_id]


def test_an_old_and_a_new_entry_of_one_identifier_become_one() -> None:
    """A rotation that began without the previous key left two entries: the next forward
    with it keeps one, under the new key, with the earlier first time."""
    state = ExposureState()
    forward(state, OLD, [EMAIL], DAY1, previous=False)
    forward(state, NEW, [EMAIL], DAY2, previous=False)
    changed, _ = forward(state, NEW, [EMAIL], DAY2, previous=True)
    assert changed
    (email,) = entries(state)
    assert (email.key_id, email.first_forwarded_at, email.last_forwarded_at) == (
        NEW.key_id,
        DAY1,
        DAY2,
    )


def test_the_previous_macs_are_asked_only_for_a_subject_holding_an_old_key_entry() -> None:
    state = ExposureState()
    forward(state, NEW, [EMAIL], DAY1, previous=False)
    forward(state, OLD, [PHONE], DAY1, previous=False, subject="acct-2")
    _, asked = forward(state, NEW, [EMAIL], DAY2, previous=True)
    assert asked.calls == 0  # nothing of acct-1 under the old key
    _, asked = forward(state, NEW, [EMAIL], DAY2, previous=True, subject="acct-2")
    assert asked.calls == 0  # an old entry, but no old email to take over
    assert [e.key_id for e in entries(state, "acct-2")] == [OLD.key_id, NEW.key_id]
    _, asked = forward(state, NEW, [PHONE, EMAIL], DAY3, previous=True, subject="acct-2")
    assert asked.calls == 1  # once per record
    assert {e.key_id for e in entries(state, "acct-2")} == {NEW.key_id}


def test_an_old_key_entry_of_another_sink_is_not_taken_over() -> None:
    state = ExposureState()
    forward(state, OLD, [EMAIL], DAY1, previous=False, sink=OTHER_SINK)
    forward(state, NEW, [EMAIL], DAY2, previous=True)
    assert [(e.sink_topic, e.key_id) for e in entries(state)] == [
        (OTHER_SINK, OLD.key_id),
        (SINK, NEW.key_id),
    ]


def test_an_entry_under_a_key_older_than_the_previous_one_is_left_alone() -> None:
    oldest = Fingerprinter(b"oldest-key-0123456789abcdef-rotation")
    state = ExposureState()
    forward(state, oldest, [EMAIL], DAY1, previous=False)
    forward(state, NEW, [EMAIL], DAY2, previous=True)
    assert [e.key_id for e in entries(state)] == [oldest.key_id, NEW.key_id]


def test_a_re_keyed_value_reads_back_the_same() -> None:
    state = ExposureState()
    forward(state, OLD, [EMAIL, PHONE], DAY1, previous=False)
    forward(state, NEW, [PHONE], DAY2, previous=True)
    copy = ExposureState()
    assert copy.restore(0, b"acct-1", state.value(0, "acct-1")) is None
    assert entries(copy) == entries(state)


def test_an_entry_under_the_previous_key_is_found_whatever_its_key_number() -> None:
    """Key ids are interned as 2-byte numbers: a previous key numbered above 255 (many
    rotations in one worker's life) is found by both of its bytes."""
    state = ExposureState()
    for n in range(300):
        other = f"{n:016x}"
        state.forwarded_macs(0, f"s{n}", SINK, other, "v1", listed(OLD, [EMAIL]), DAY1)
    state.forwarded_macs(0, "acct-1", SINK, OLD.key_id, "v1", listed(OLD, [EMAIL]), DAY1)
    assert state.holds_key(state.slots(0, "acct-1"), OLD.key_id)
    assert not state.holds_key(state.slots(0, "s1"), OLD.key_id)
    assert not state.holds_key(state.slots(0, "s299"), f"{1:016x}")
    forward(state, NEW, [EMAIL], DAY2, previous=True)
    assert [e.key_id for e in entries(state)] == [NEW.key_id]


VALUES = st.lists(
    st.tuples(st.sampled_from(["email", "phone", "device_id"]), st.text("abcdef0123", min_size=1)),
    min_size=1,
    max_size=6,
    unique=True,
)
TIMES = st.sampled_from([DAY1, DAY2, DAY3])


@settings(max_examples=150, deadline=None)
@given(
    old=VALUES,
    data=st.data(),
)
def test_re_forwarding_leaves_exactly_one_entry_per_identifier_with_the_first_time_kept(
    old: list[tuple[str, str]], data: st.DataObject
) -> None:
    """Random entries under both keys (some identifiers under the old key only, some
    under both, some new), then a re-forward of some of them under the new key with the
    previous key known: every re-forwarded identifier has exactly one entry, under the
    new key, with the earliest first time it had; the others are untouched."""
    state = ExposureState()
    first: dict[tuple[str, str], str] = {}
    for value in old:
        at = data.draw(TIMES)
        forward(state, OLD, [value], at, previous=False)
        first[value] = at
    both = data.draw(st.lists(st.sampled_from(old), unique=True))
    for value in both:
        at = data.draw(TIMES)
        forward(state, NEW, [value], at, previous=False)
        first[value] = min(first[value], at)
    fresh = data.draw(
        st.lists(st.tuples(st.just("email"), st.text("xyz", min_size=1)), max_size=2, unique=True)
    )
    again = data.draw(st.lists(st.sampled_from(old), unique=True)) + fresh
    at = data.draw(TIMES)
    forward(state, NEW, again, at, previous=True)
    for value in fresh:
        first.setdefault(value, at)

    by_mac = {(e.identifier_type, e.fingerprint): e for e in entries(state)}
    for value in again:
        kind, text = value
        assert (kind, OLD(kind, text)) not in by_mac
        entry = by_mac[(kind, NEW(kind, text))]
        assert entry.first_forwarded_at == min(first[value], at)
        assert entry.last_forwarded_at >= at
    for value in old:
        if value in again:
            continue
        kind, text = value
        assert (kind, OLD(kind, text)) in by_mac  # not forwarded again: kept as it was
        assert ((kind, NEW(kind, text)) in by_mac) == (value in both)
    assert len(state) == len(entries(state))
