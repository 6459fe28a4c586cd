"""A ledger value another reader may read otherwise (a judged field repeated in one
object, or written in other letter cases) is refused, and its key's subject keeps no
purpose until a value that reads one way comes: it may have withdrawn consent for a
reader that takes the first of two keys (docs/ledger.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.models import DeadLetterReason
from enforcer.core.parse import ParseFailure
from enforcer.ledger.model import (
    SubjectUpdate,
    SubjectWithheld,
    parse_ledger_line,
    parse_ledger_record,
)
from enforcer.ledger.replay import LedgerRecord, replay_ledger_records
from enforcer.ledger.state import Grant, LedgerState, Retraction, RetractionReason
from enforcer.testing.ledger import expected_retractions

from ..conftest import KEY

ADS, MFA = "marketing.advertising", "security.mfa"
PHONE = "+1 415 555 0142"
FP = Fingerprinter(KEY)
T0 = "2019-09-01T10:00:00Z"

ITEM_FIELDS = ("type", "value", "purposes")
TOP_FIELDS = ("subject_id", "identifiers")


def item_pairs(purposes: list[str] | None) -> list[tuple[str, str]]:
    """An identifier's fields as JSON texts, in order."""
    pairs = [("type", '"phone"'), ("value", json.dumps(PHONE))]
    if purposes is not None:
        pairs.append(("purposes", json.dumps(purposes)))
    return pairs


def written(pairs: list[tuple[str, str]]) -> str:
    """An object of (name, JSON text) pairs; a name written as a JSON string already
    (quoted, with its escapes) is kept as it is."""
    return "{" + ",".join(f"{_key(name)}:{text}" for name, text in pairs) + "}"


def _key(name: str) -> str:
    return name if name.startswith('"') else json.dumps(name)


def ledger_text(items: list[str], top_extra: list[tuple[str, str]] | None = None) -> bytes:
    pairs = [
        ("subject_id", '"acct-1"'),
        ("updated_at", json.dumps(T0)),
        ("identifiers", "[" + ",".join(items) + "]"),
        *(top_extra or []),
    ]
    return written(pairs).encode()


repeats = st.sampled_from(
    [
        # the identifier's purposes twice: a first-wins reader sees the MFA-only grant
        ("item", "purposes", json.dumps([ADS])),
        ("item", "value", json.dumps("+1 415 555 0199")),
        ("item", "type", '"email"'),
        ("item", "Purposes", json.dumps([ADS])),
        ("item", '"purpose\\u0073"', json.dumps([ADS])),
        ("top", "identifiers", "[]"),
        ("top", "subject_id", '"acct-2"'),
        ("top", "IDENTIFIERS", "[]"),
    ]
)


@st.composite
def ambiguous_values(draw: st.DrawFn) -> bytes:
    """A valid value of one to three identifiers (some without purposes) with one judged
    field repeated (or in another letter case) in one object."""
    count = draw(st.integers(1, 3))
    with_purposes = [draw(st.booleans()) for _ in range(count)]
    where, name, text = draw(repeats)
    target = draw(st.integers(0, count - 1))
    with_purposes[target] = True  # a repeated purposes needs a first one
    items = []
    for index in range(count):
        pairs = item_pairs([MFA] if with_purposes[index] else None)
        if where == "item" and index == target:
            at = draw(st.integers(0, len(pairs)))
            pairs.insert(at, (name, text))
        items.append(written(pairs))
    extra = [(name, text)] if where == "top" else None
    return ledger_text(items, extra)


@settings(max_examples=200, deadline=None)
@given(value=ambiguous_values())
def test_an_ambiguous_value_is_refused_naming_its_keys_subject(value: bytes) -> None:
    parsed = parse_ledger_record(b"acct-1", value)
    assert isinstance(parsed, SubjectWithheld), parsed
    assert parsed.reason is DeadLetterReason.SCHEMA and parsed.subject_id == "acct-1"
    assert PHONE not in parsed.message and "acct" not in parsed.message
    line = parse_ledger_line(value)
    assert isinstance(line, ParseFailure) and not isinstance(line, SubjectWithheld)
    unkeyed = parse_ledger_record(None, value)
    assert isinstance(unkeyed, ParseFailure) and not isinstance(unkeyed, SubjectWithheld)


@settings(max_examples=100, deadline=None)
@given(purposes=st.lists(st.sampled_from([None, [MFA], [ADS], []]), min_size=1, max_size=3))
def test_a_value_that_reads_one_way_is_not_refused(purposes: list[list[str] | None]) -> None:
    value = ledger_text([written(item_pairs(p)) for p in purposes])
    assert isinstance(parse_ledger_record(b"acct-1", value), SubjectUpdate)


def test_the_first_of_two_purposes_withdraws_so_the_subject_keeps_none() -> None:
    """The 2019 case through a repeated key: the collection system meant MFA only (a
    first-wins reader's view), the enforcer would have read advertising."""
    item = written([*item_pairs([MFA]), ("purposes", json.dumps([ADS]))])
    value = ledger_text([item])
    granted = written(item_pairs([ADS]))
    records = [
        LedgerRecord(b"acct-1", ledger_text([granted]), _time(0), 0, 0),
        LedgerRecord(b"acct-1", value, _time(1), 0, 1),
    ]
    result = replay_ledger_records(records, FP)
    state = result.state
    assert state.purposes("acct-1", "phone", FP("phone", PHONE)) == ()
    assert result.invalid == 1 and result.applied == 1
    # A later value that reads one way is the subject's state again.
    later = LedgerRecord(b"acct-1", ledger_text([granted]), _time(2), 0, 2)
    again = replay_ledger_records([*records, later], FP)
    assert again.state.purposes("acct-1", "phone", FP("phone", PHONE)) == (ADS,)


def test_an_ambiguous_value_after_as_of_changes_nothing() -> None:
    item = written([*item_pairs([MFA]), ("purposes", json.dumps([ADS]))])
    records = [
        LedgerRecord(b"acct-1", ledger_text([written(item_pairs([ADS]))]), _time(0), 0, 0),
        LedgerRecord(b"acct-1", ledger_text([item]), _time(2), 0, 1),
    ]
    result = replay_ledger_records(records, FP, as_of=_time(1))
    assert result.state.purposes("acct-1", "phone", FP("phone", PHONE)) == (ADS,)


def test_withhold_retracts_what_passed_as_withdrawn() -> None:
    state = LedgerState()
    fingerprint = FP("phone", PHONE)
    state.replace("acct-1", T0, [Grant("phone", fingerprint, (ADS,))])

    def passes(_kind: str, purposes: tuple[str, ...]) -> bool:
        return ADS in purposes

    undo: dict[bytes, bytes | None] = {}
    out = state.withhold("acct-1", "2019-10-01T00:00:00.000Z", passes, undo)
    assert out == [
        Retraction(
            "acct-1",
            "phone",
            fingerprint,
            RetractionReason.PURPOSE_WITHDRAWN,
            "2019-10-01T00:00:00.000Z",
        )
    ]
    assert state.purposes("acct-1", "phone", fingerprint) == ()
    state.rollback(undo)
    assert state.purposes("acct-1", "phone", fingerprint) == (ADS,)


def _time(hour: int) -> datetime:
    return datetime(2019, 9, 2, hour, tzinfo=UTC)


def test_the_integration_oracle_expects_the_withdrawal_an_ambiguous_value_makes() -> None:
    """:func:`enforcer.testing.ledger.expected_retractions` counts what a worker retracts."""

    def passes(_kind: str, purposes: tuple[str, ...]) -> bool:
        return ADS in purposes

    item = written([*item_pairs([MFA]), ("purposes", json.dumps([ADS]))])
    entries = [
        ("acct-1", ledger_text([written(item_pairs([ADS]))])),
        ("acct-1", ledger_text([item])),
    ]
    found = expected_retractions(entries, FP, passes)
    assert found == {("acct-1", "phone", FP("phone", PHONE), "purpose-withdrawn"): 1}
