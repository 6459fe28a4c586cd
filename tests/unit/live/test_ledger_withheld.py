"""Fail closed, and the same everywhere: a ledger topic's value refused under a key
that names a subject (invalid, ambiguous, or not fitting its key) leaves that subject
no purpose until its next valid value or tombstone (docs/ledger.md). Live, in a restore
of what compaction keeps (the last record per key) and in replay, a history of valid,
invalid and tombstone records of a few subjects ends in one state, in both stores; and
what live retracts is what the integration tests' oracle expects."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enforcer.core.policy.load import load_policy
from enforcer.ledger.disk import DiskLedgerState, MiB
from enforcer.ledger.replay import LedgerRecord, replay_ledger_records
from enforcer.ledger.retract import passes_under
from enforcer.ledger.state import LedgerState, LedgerStore
from enforcer.live.ledger import LiveLedger
from enforcer.testing.ledger import expected_retractions, ledger_value

from .test_ledger import (
    ADS,
    FP,
    MFA,
    both,
    committed_at,
    live,
    message,
    mistaken_withdrawals,
)
from .test_ledger import ambiguous as ambiguous_value

SUBJECTS = ("a", "b", "c")
TYPES = ("email", "device_id")
START_MS = 1_700_000_000_000


def value_of(subject: str, kind: str) -> str:
    return f"{subject}-{kind}@example.org"


Record = tuple[bytes | None, bytes | None]
"""A ledger topic's record as written: key and value (``None``: a tombstone)."""


@st.composite
def records(draw: st.DrawFn) -> Record:
    """A valid value (each identifier listed or not, with advertising, MFA, both or no
    purposes), a value with a mistake or ambiguous, a tombstone; or, rarely, a refused
    value under a key that names no subject."""
    subject = draw(st.sampled_from(SUBJECTS))
    kind = draw(st.sampled_from(["valid", "valid", "invalid", "tombstone", "no subject"]))
    key = subject.encode()
    if kind == "tombstone":
        return key, None
    if kind == "invalid":
        return key, draw(st.sampled_from([*mistaken_withdrawals(subject), ambiguous(subject)]))
    identifiers = []
    for identifier_type in TYPES:
        purposes = draw(st.sampled_from([None, (), ADS, MFA, (*ADS, *MFA)]))
        if purposes is not None:
            identifiers.append((identifier_type, value_of(subject, identifier_type), purposes))
    valid = ledger_value(subject, "2026-01-01T00:00:00Z", identifiers)
    if kind == "no subject":
        return draw(st.sampled_from([b"\xff" + key, b"", None])), valid
    return key, valid


def ambiguous(subject: str) -> bytes:
    """The live tests' ambiguous value, with this module's identifier values."""
    return ambiguous_value(subject).replace(
        f"{subject}@example.org".encode(), value_of(subject, "email").encode()
    )


View = dict[tuple[str, str], tuple[str, ...] | None]


def view(store: LedgerStore) -> tuple[View, dict[str, bool], tuple[int, int, int]]:
    """Everything a decision can ask of the store about these subjects, and its counts."""
    granted = {
        (subject, kind): store.purposes_of_mac(subject, kind, FP.mac(kind, value_of(subject, kind)))
        for subject in SUBJECTS
        for kind in TYPES
    }
    nothing = {subject: store.grants_nothing(subject) for subject in SUBJECTS}
    return granted, nothing, (len(store), store.subjects, store.erased)


@pytest.fixture(scope="module", params=["memory", "disk"])
def new_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[int], LedgerStore]:
    def make(_partition: int) -> LedgerStore:
        if request.param == "memory":
            return LedgerState()
        return DiskLedgerState(
            tmp_path_factory.mktemp("ledger"), cache_bytes=MiB, write_buffer_bytes=MiB
        )

    return make


def live_ledger(new_store: Callable[[int], LedgerStore]) -> LiveLedger:
    return live(new_store=new_store)


def compacted(history: list[Record]) -> Iterator[tuple[int, Record]]:
    """What compaction keeps: the last record per key, at its offset (a key-less record
    is kept here too: it changes nothing either way)."""
    last = {key: offset for offset, (key, _value) in enumerate(history) if key is not None}
    for offset, record in enumerate(history):
        if record[0] is None or last[record[0]] == offset:
            yield offset, record


def retractions_of(outputs: list[Any]) -> Counter[tuple[str, str, str, str]]:
    found: Counter[tuple[str, str, str, str]] = Counter()
    for output in outputs:
        body = orjson.loads(output.value)["retraction"]
        found[
            (body["subject_id"], body["identifier_type"], body["fingerprint"], body["reason"])
        ] += 1
    return found


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=st.lists(records(), max_size=12))
def test_live_restore_and_replay_agree_on_refused_values(
    new_store: Callable[[int], LedgerStore], history: list[Record]
) -> None:
    ledger = live_ledger(new_store)
    ledger.assign(both(0), committed_at({0: 0}))
    ledger.at_end(0, 0)
    outputs = []
    for offset, (key, value) in enumerate(history):
        read = ledger.read(message(0, offset, key, value, START_MS + offset))
        assert read is not None
        outputs.extend(read.outputs)
    live_store = ledger.store(0)
    assert live_store is not None
    after_live = view(live_store)

    restored = live_ledger(new_store)
    restored.assign(both(0), committed_at({0: len(history)}))
    for offset, (key, value) in compacted(history):
        assert restored.read(message(0, offset, key, value, START_MS + offset)) is None
    restored.at_end(0, len(history))
    restored_store = restored.store(0)
    assert restored_store is not None and not restored.restoring(0)
    assert view(restored_store) == after_live

    replayed = replay_ledger_records(
        [
            LedgerRecord(key, value, datetime.fromtimestamp((START_MS + at) / 1000, UTC), 0, at)
            for at, (key, value) in enumerate(history)
        ],
        FP,
    )
    assert view(replayed.state) == after_live

    # What live retracted is what the integration tests' oracle counts.
    keyed = [(key.decode(), value) for key, value in history if key and key[:1] != b"\xff"]
    passes = passes_under(load_policy(None))
    assert retractions_of(outputs) == expected_retractions(keyed, FP, passes)
    for done in (ledger, restored):
        done.close()
    replayed.state.close()
