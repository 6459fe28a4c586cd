"""The purpose ledger of the "enforcer + ledger" row, and what the worker says about it.

The ledger is derived from the generated events as :mod:`enforcer.demo.ledger` derives
the demo's: one record per subject (keyed by the subject id, like the source, so the
same partitioner puts it in the matching partition), listing every identifier its
events carry with the purposes it was first given. It covers the backlog and the
latency phase's records, so every identifier a worker looks up is known to it.

The worker logs one ``ledger restored: <topic>[p] up to offset N, R record(s),
I identifier(s) in S s`` line per partition (:data:`enforcer.live.ledger.RESTORED_LOG`);
the row's clock starts once every partition has one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from enforcer.core.clock import SystemClock
from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.core.parse import ParseFailure
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, Source, Step
from enforcer.demo.ledger import demo_ledger
from enforcer.ledger.lookup import WholeLedger
from enforcer.ledger.model import SubjectErasure, parse_ledger_record
from enforcer.ledger.state import LedgerState, grants_of
from enforcer.live.ledger import RESTORED_LOG

from .workload import Record

LEDGER_TOPIC_CONFIG = {"cleanup.policy": "compact"}
"""The ledger topic is compacted (docs/ledger.md)."""

_RESTORED = re.compile(
    re.escape(RESTORED_LOG)
    + r": (?P<topic>\S+)\[(?P<partition>\d+)\] up to offset (?P<offset>\d+),"
    r" (?P<records>\d+) record\(s\), (?P<identifiers>\d+) identifier\(s\) in "
    r"(?P<seconds>[\d.]+)s"
)


def ledger_records(events: Sequence[Record]) -> list[Record]:
    """One ledger record per subject of ``events``: its identifiers, each with the
    purposes it was first given (the demo's derivation, without its withdrawals)."""
    derived = demo_ledger([record.value for record in events], seed=0, withdrawals=0)
    return [
        Record(subject.encode(), value) for subject, value in derived.ledger if value is not None
    ]


def ledger_identifiers(records: Sequence[Record]) -> int:
    """How many identifiers ``records`` list (the state's size once restored)."""
    return len(_state(records, Fingerprinter(key_from_text(generate_key()))))


def forwarded_with_ledger(events: Sequence[Record], ledger: Sequence[Record]) -> int:
    """How many of ``events`` the default policy forwards when ``ledger`` decides."""
    fingerprinter = Fingerprinter(key_from_text(generate_key()))
    step = Step(
        load_policy(None), fingerprinter, SystemClock(), WholeLedger(_state(ledger, fingerprinter))
    )
    return sum(
        step(InputRecord(r.key, r.value, (), Source("bench", 0, i))).forward_value is not None
        for i, r in enumerate(events)
    )


def _state(records: Sequence[Record], fingerprinter: Fingerprinter) -> LedgerState:
    state = LedgerState()
    for record in records:
        parsed = parse_ledger_record(record.key, record.value)
        if isinstance(parsed, ParseFailure | SubjectErasure):
            continue
        state.replace(
            parsed.subject_id, parsed.updated_at, grants_of(parsed.identifiers, fingerprinter)
        )
    return state


@dataclass(frozen=True)
class RestoredPartition:
    """One ``ledger restored`` log line."""

    partition: int
    offset: int
    records: int
    identifiers: int
    seconds: float


def restored_partitions(log_path: Path | None) -> list[RestoredPartition]:
    """The ``ledger restored`` lines of a worker's log, in order."""
    if log_path is None or not log_path.exists():
        return []
    return [
        RestoredPartition(
            int(m["partition"]),
            int(m["offset"]),
            int(m["records"]),
            int(m["identifiers"]),
            float(m["seconds"]),
        )
        for m in _RESTORED.finditer(log_path.read_text(errors="replace"))
    ]
