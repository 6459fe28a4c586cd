"""Ledger traffic for tests and the demo: ledger values, producing them keyed by
subject, and the retractions a sequence of them must produce (docs/ledger.md)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.parse import ParseFailure
from enforcer.ledger.model import LedgerEntry, SubjectWithheld, parse_ledger_record
from enforcer.ledger.retract import is_retraction
from enforcer.ledger.state import LedgerState, Passes
from enforcer.ledger.store import apply_record
from enforcer.testing.consume import ReadRecord

RetractionKey = tuple[str, str, str, str, str]
"""subject id, identifier type, fingerprint, reason, ledger_updated_at."""


def ledger_value(
    subject_id: str, updated_at: str, identifiers: Sequence[tuple[str, str, Sequence[str]]]
) -> bytes:
    """A ledger value: the subject's whole state, ``(type, value, purposes)`` each."""
    return orjson.dumps(
        {
            "subject_id": subject_id,
            "updated_at": updated_at,
            "identifiers": [
                {"type": kind, "value": value, "purposes": list(purposes)}
                for kind, value, purposes in identifiers
            ],
        }
    )


async def produce_ledger(
    bootstrap: str,
    topic: str,
    entries: Iterable[LedgerEntry],
    *,
    per_second: float | None = None,
) -> int:
    """Send ledger records keyed by subject id, in order (at about ``per_second``
    when given); return how many."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = []
        started = time.monotonic()
        for count, (subject, value) in enumerate(entries):
            if per_second and count % 10 == 0:
                await asyncio.sleep(max(0.0, started + count / per_second - time.monotonic()))
            sent.append(await producer.send(topic, key=subject.encode(), value=value))
        for delivery in sent:
            await delivery
        return len(sent)
    finally:
        await producer.stop()


def expected_retractions(
    entries: Iterable[LedgerEntry],
    fingerprinter: Fingerprinter,
    passes: Passes,
    tombstone_times: Sequence[str] = (),
) -> Counter[tuple[str, str, str, str]]:
    """The retractions applying ``entries`` in order (from an empty ledger) produces:
    ``(subject, type, fingerprint, reason)``, counted. (A tombstone's time is the
    record's timestamp, so it is not part of the key.)"""
    state = LedgerState()
    found: Counter[tuple[str, str, str, str]] = Counter()
    for subject, value in entries:
        parsed = parse_ledger_record(subject.encode(), value)
        if isinstance(parsed, SubjectWithheld):  # refused, and its key's subject keeps nothing
            applied = state.withhold(parsed.subject_id, "", passes)
        elif isinstance(parsed, ParseFailure):
            continue
        else:
            applied = apply_record(state, parsed, fingerprinter, "", passes)
        for r in applied:
            found[(r.subject_id, r.identifier_type, r.fingerprint, r.reason.value)] += 1
    return found


def retractions_read(records: Iterable[ReadRecord]) -> Counter[tuple[str, str, str, str]]:
    """The retractions among sink records, as :func:`expected_retractions` counts them."""
    found: Counter[tuple[str, str, str, str]] = Counter()
    for record in records:
        if not is_retraction(record.headers):
            continue
        body: dict[str, Any] = orjson.loads(record.value or b"{}")["retraction"]
        found[
            (body["subject_id"], body["identifier_type"], body["fingerprint"], body["reason"])
        ] += 1
    return found
