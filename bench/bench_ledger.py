"""Benchmark of the ledger state (prints numbers; not a test).

Memory of :class:`enforcer.ledger.state.LedgerState` per 10^6 identifiers, measured
with tracemalloc around building the state alone (fingerprints made beforehand and
dropped), for subjects holding 1 and 3 identifiers; then the apply rate of a silent
restore: the state alone, and end to end (parse the record, fingerprint, apply) for
emails and for phone numbers (which phonenumbers normalizes first).

    python bench/bench_ledger.py [--identifiers 1000000]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable

import orjson

from enforcer.fingerprint import Fingerprinter
from enforcer.ledger.model import SubjectUpdate, parse_ledger_record
from enforcer.ledger.state import Grant, LedgerState, grants_of

FP = Fingerprinter(b"bench-key-0123456789abcdef")
# A handful of purpose sets, as in real streams: the state interns them.
PURPOSE_SETS = [
    ("security.mfa",),
    ("marketing.advertising",),
    ("marketing.advertising", "security.mfa"),
    ("essential.service.notifications.sms",),
]
MiB = 1024 * 1024


def subject_grants(identifiers: int, per_subject: int) -> list[tuple[str, list[Grant]]]:
    """Subjects with ``per_subject`` fingerprinted identifiers each."""
    out = []
    for s in range(identifiers // per_subject):
        grants = [
            Grant("email", FP("email", f"user{s}.{i}@example.com"), PURPOSE_SETS[(s + i) % 4])
            for i in range(per_subject)
        ]
        out.append((f"acct-{s:09d}", grants))
    return out


def memory_per_million(identifiers: int, per_subject: int) -> float:
    """MiB the state takes per 10^6 identifiers."""
    updates = subject_grants(identifiers, per_subject)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    state = LedgerState()
    for subject, grants in updates:
        state.replace(subject, "2019-10-08T12:00:00Z", grants)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(state) == identifiers // per_subject * per_subject
    return used / MiB * 1_000_000 / len(state)


def rate(label: str, identifiers: int, run: Callable[[], None]) -> None:
    gc.collect()
    start = time.perf_counter()
    run()
    elapsed = time.perf_counter() - start
    print(f"  {label:<44} {identifiers / elapsed:>12,.0f} identifiers/s")


def ledger_values(identifiers: int, phone: bool) -> list[tuple[bytes, bytes]]:
    """Records of 2-identifier subjects, as the ledger topic would hold them."""
    out = []
    for s in range(identifiers // 2):
        values = (
            [f"+1 415 {200 + s // 10000 % 700:03d} {s % 10000:04d}", f"+44 20 7946 {s % 10000:04d}"]
            if phone
            else [f"user{s}@example.com", f"user{s}@example.org"]
        )
        subject = f"acct-{s:09d}"
        record = {
            "subject_id": subject,
            "updated_at": "2019-10-08T12:00:00Z",
            "identifiers": [
                {"type": "phone" if phone else "email", "value": v, "purposes": list(p)}
                for v, p in zip(values, PURPOSE_SETS[s % 4 : s % 4 + 2] * 2, strict=False)
            ],
        }
        out.append((subject.encode(), orjson.dumps(record)))
    return out


def restore(records: list[tuple[bytes, bytes]]) -> None:
    state = LedgerState()
    for key, value in records:
        parsed = parse_ledger_record(key, value)
        assert isinstance(parsed, SubjectUpdate)
        state.replace(parsed.subject_id, parsed.updated_at, grants_of(parsed.identifiers, FP))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--identifiers", type=int, default=1_000_000)
    n = parser.parse_args().identifiers
    print(f"ledger state, {n:,} identifiers")
    for per_subject in (1, 3):
        mib = memory_per_million(n, per_subject)
        print(
            f"  memory, {per_subject} identifier(s) per subject: {mib:6.1f} MiB per 10^6 "
            f"identifiers -> {mib * 10 / 1024:4.2f} GiB for 10^7"
        )
    updates = subject_grants(n, 2)

    def apply_all() -> None:
        state = LedgerState()
        for subject, grants in updates:
            state.replace(subject, "2019-10-08T12:00:00Z", grants)

    rate("apply (state only, fingerprinted)", n, apply_all)
    small = max(n // 10, 2)
    emails = ledger_values(small, phone=False)
    rate("restore (parse + fingerprint + apply), emails", small, lambda: restore(emails))
    phones = ledger_values(small, phone=True)
    rate("restore (parse + fingerprint + apply), phones", small, lambda: restore(phones))


if __name__ == "__main__":
    main()
