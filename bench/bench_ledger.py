"""Benchmark of the ledger stores (prints numbers; not a test).

With ``--store memory`` (the default), first the figures of the memory store
(:class:`enforcer.ledger.state.LedgerState`): its memory per 10^6 identifiers, measured
with tracemalloc around building the state alone (fingerprints made beforehand and
dropped), for subjects holding 1 and 3 identifiers; then the apply rate of a silent
restore: the state alone, and end to end (parse the record, fingerprint, apply) for
emails and for phone numbers (which phonenumbers normalizes first).

Then, for either store (``--store disk``: :class:`enforcer.ledger.disk.DiskLedgerState`
in a fresh directory under ``--dir``), a restore of ``--identifiers`` identifiers,
``--per-subject`` per subject, streamed in chunks whose grants are made (with synthetic
fingerprints) outside the timed apply: the apply time and rate, the process's resident
memory (RSS) before, after and at its peak, the on-disk size for the disk store; then
the lookup rate of known identifiers (random subjects) and of unknown subjects.
``--restore-only`` skips the first part (tracemalloc is slow at 10^7).

    python bench/bench_ledger.py [--store memory|disk] [--identifiers 1000000]
        [--per-subject 1] [--restore-only] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import random
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from enforcer.core.fingerprint import Fingerprinter
from enforcer.ledger.disk import DiskLedgerState
from enforcer.ledger.model import SubjectUpdate, parse_ledger_record
from enforcer.ledger.state import FINGERPRINT_PREFIX, Grant, LedgerState, LedgerStore
from enforcer.ledger.store import apply_record

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
    """Identifiers per CPU-second (this process's CPU time: other work on the machine
    slows the wall clock, much less this)."""
    gc.collect()
    start = time.process_time()
    run()
    elapsed = time.process_time() - start
    print(f"  {label:<44} {identifiers / elapsed:>12,.0f} identifiers per CPU-s")


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
    """A silent restore as the worker makes it: parse, fingerprint, apply."""
    state = LedgerState()
    for key, value in records:
        parsed = parse_ledger_record(key, value)
        assert isinstance(parsed, SubjectUpdate)
        apply_record(state, parsed, FP, "")


def memory_figures(n: int) -> None:
    """The memory store's memory per identifier and apply rates."""
    print(f"memory store, {n:,} identifiers")
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


def synthetic_fingerprint(subject: int, index: int) -> str:
    """A stand-in for an HMAC fingerprint: 32 bytes that look random, made cheaply."""
    seed = subject.to_bytes(5, "little") + index.to_bytes(1, "little")
    return FINGERPRINT_PREFIX + hashlib.blake2b(seed, digest_size=32).hexdigest()


def restore_chunks(
    identifiers: int, per_subject: int, chunk: int = 50_000
) -> Iterator[list[tuple[str, list[Grant]]]]:
    """Subjects' grants, ``chunk`` subjects at a time, 4 purpose sets in turn."""
    subjects = identifiers // per_subject
    for first in range(0, subjects, chunk):
        yield [
            (
                f"acct-{s:09d}",
                [
                    Grant("email", synthetic_fingerprint(s, i), PURPOSE_SETS[(s + i) % 4])
                    for i in range(per_subject)
                ],
            )
            for s in range(first, min(first + chunk, subjects))
        ]


def rss_mib() -> tuple[float, float]:
    """This process's resident memory now and at its peak, in MiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    now = int(fields["VmRSS"].split()[0]) / 1024
    return now, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def lookups(store: LedgerStore, subjects: int, per_subject: int, count: int) -> None:
    """Rates of finding known identifiers of random subjects, and of unknown subjects."""
    rng = random.Random(7)
    picks = [rng.randrange(subjects) for _ in range(count)]
    known = [(f"acct-{s:09d}", synthetic_fingerprint(s, s % per_subject)) for s in picks]
    unknown = [
        (f"nobody-{s:09d}", fingerprint) for s, (_, fingerprint) in zip(picks, known, strict=True)
    ]
    for label, queries in (
        ("lookup, known identifiers", known),
        ("lookup, unknown subjects", unknown),
    ):
        start = time.perf_counter()
        found = sum(store.purposes(subject, "email", fp) is not None for subject, fp in queries)
        elapsed = time.perf_counter() - start
        assert found == (len(queries) if queries is known else 0)
        print(f"  {label:<44} {len(queries) / elapsed:>12,.0f} lookups/s")


def restore_figures(store_kind: str, n: int, per_subject: int, parent: Path) -> None:
    """A silent restore of ``n`` identifiers into a new store, then lookups."""
    print(f"{store_kind} store: restore of {n:,} identifiers, {per_subject} per subject")
    gc.collect()
    rss_before, _ = rss_mib()
    where = Path(tempfile.mkdtemp(prefix="bench-ledger-", dir=parent))
    store: LedgerStore = (
        DiskLedgerState(where / "ledger") if store_kind == "disk" else LedgerState()
    )
    applying = 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    for updates in restore_chunks(n, per_subject):
        start = time.perf_counter()
        for subject, grants in updates:
            store.replace(subject, "2019-10-08T12:00:00Z", grants)
        applying += time.perf_counter() - start
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert len(store) == n // per_subject * per_subject
    gc.collect()
    rss_after, rss_peak = rss_mib()
    print(f"  apply (state only) {applying:8.1f} s  {len(store) / applying:>12,.0f} identifiers/s")
    print(f"  with making grants {wall:8.1f} s wall, {cpu:.1f} s CPU (all threads)")
    print(
        f"  RSS: {rss_before:,.0f} MiB before, {rss_after:,.0f} MiB after "
        f"(+{rss_after - rss_before:,.0f} MiB), peak {rss_peak:,.0f} MiB"
    )
    if isinstance(store, DiskLedgerState):
        start = time.perf_counter()
        store.flush()
        print(
            f"  on disk after flush: {store.disk_bytes() / 1024**2:,.0f} MiB "
            f"(flush {time.perf_counter() - start:.1f} s)"
        )
    lookups(store, n // per_subject, per_subject, min(n, 1_000_000))
    store.close()
    where.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=["memory", "disk"], default="memory")
    parser.add_argument("--identifiers", type=int, default=1_000_000)
    parser.add_argument("--per-subject", type=int, default=1)
    parser.add_argument("--restore-only", action="store_true")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    if args.store == "memory" and not args.restore_only:
        memory_figures(args.identifiers)
    restore_figures(args.store, args.identifiers, args.per_subject, args.dir)


if __name__ == "__main__":
    main()
