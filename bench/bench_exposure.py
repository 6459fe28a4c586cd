"""Benchmark of the exposure state (prints numbers; not a test).

Memory: tracemalloc around building :class:`enforcer.exposure.state.ExposureState`
alone by :meth:`~ExposureState.forwarded` (fingerprints, subject ids and forwards made
beforehand; the values it returns dropped), for subjects holding 1 and 3 exposed
identifiers: bytes per identifier, and what 10^7 would take.

CPU (``time.process_time``, so other work on the machine does not count):

- a first forward per subject (a value written),
- the steady state: the same forwards again on the same day (nothing written),
- a restore: every subject's value read back into a new state
  (:meth:`~ExposureState.restore`: the strict parse and the packing),
- a policy change: :meth:`~ExposureState.rejudge` of every subject under a policy that
  retracts about half, per exposed identifier (the target: 10^6 in 60 s);
- the same in a running worker (:class:`enforcer.live.exposure.LiveExposure`): the
  partitions restored from their values, then re-judged under a real policy (the default,
  then one that keeps phone numbers from advertising: a third retracted) against an
  ``authoritative`` ledger that grants every identifier, retraction and exposure
  records built.

    python bench/bench_exposure.py [--identifiers 1000000] [--partitions 4]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import time
import tracemalloc
from typing import cast

from enforcer.core.fingerprint import FINGERPRINT_PREFIX
from enforcer.exposure.model import ExposureEntry, Forward
from enforcer.exposure.state import ExposureState

ADS, MFA = "marketing.advertising", "security.mfa"
PURPOSE_SETS = [(ADS,), (ADS, "analytics"), (MFA,), (ADS, MFA)]
TYPES = ["email", "phone", "device_id"]
SINK = "audience.identity"
KEY_ID = "0123456789abcdef"
DAY1, DAY1_LATER = "2026-11-30T12:00:00Z", "2026-11-30T18:00:00Z"


def _fingerprint(n: int) -> str:
    return FINGERPRINT_PREFIX + hashlib.sha256(n.to_bytes(8, "little")).hexdigest()


def _records(identifiers: int, per_subject: int) -> list[tuple[int, str, list[Forward]]]:
    """(partition, subject id, forwards) per subject, made before anything is measured."""
    out = []
    for subject in range(identifiers // per_subject):
        forwards = [
            Forward(
                SINK,
                TYPES[(subject * per_subject + i) % len(TYPES)],
                _fingerprint(subject * per_subject + i),
                KEY_ID,
                PURPOSE_SETS[(subject + i) % len(PURPOSE_SETS)],
                False,
                "v1",
            )
            for i in range(per_subject)
        ]
        out.append((subject % PARTITIONS, f"acct-{subject:08d}", forwards))
    return out


PARTITIONS = 4


def measure(identifiers: int, per_subject: int) -> None:
    records = _records(identifiers, per_subject)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    state = ExposureState()
    for partition, subject, forwards in records:
        state.forwarded(partition, subject, forwards, DAY1)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    per = used / len(state)
    print(
        f"memory, {per_subject} per subject: {len(state):,} identifiers, "
        f"{used / 2**20:.1f} MiB, {per:.0f} bytes each, "
        f"10^7 would take {per * 1e7 / 2**30:.2f} GiB"
    )

    state = ExposureState()
    start = time.process_time()
    writes = sum(state.forwarded(p, s, f, DAY1) is not None for p, s, f in records)
    first = time.process_time() - start
    start = time.process_time()
    again = sum(state.forwarded(p, s, f, DAY1_LATER) is not None for p, s, f in records)
    steady = time.process_time() - start
    print(
        f"  first forward: {first / len(records) * 1e6:.1f} CPU-us per record "
        f"({writes:,} writes); same again the same day: "
        f"{steady / len(records) * 1e6:.1f} CPU-us per record ({again} writes)"
    )

    values = [(p, key.encode(), state.value(p, key)) for p, key, _ in records]
    restored = ExposureState()
    start = time.process_time()
    for partition, key, value in values:
        restored.restore(partition, key, value)
    restore = time.process_time() - start
    print(
        f"  restore: {len(restored):,} identifiers from {len(values):,} values, "
        f"{restore / len(values) * 1e6:.1f} CPU-us per value "
        f"({len(restored) / restore:,.0f} identifiers per CPU-second)"
    )
    del values, restored

    def allowed(_subject: str, entry: ExposureEntry) -> bool:
        return MFA not in entry.purposes  # about half are retracted

    exposed = len(state)
    start = time.process_time()
    retractions = 0
    for partition in state.partitions:
        retractions += len(state.rejudge(partition, allowed, "v2").retractions)
    rejudge = time.process_time() - start
    print(
        f"  policy change: {exposed:,} exposed re-judged, {retractions:,} retracted, "
        f"{rejudge:.1f} CPU-s ({rejudge / exposed * 1e6:.1f} CPU-us per identifier; "
        f"10^6 would take {rejudge / exposed * 1e6:.0f} CPU-s)"
    )


class _Message:
    """What :meth:`LiveExposure.read` reads of a consumed record."""

    def __init__(self, partition: int, key: bytes, value: bytes | None) -> None:
        self._partition, self._key, self._value = partition, key, value

    def partition(self) -> int:
        return self._partition

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def offset(self) -> int:
        return 0


def measure_live_policy_change(identifiers: int, per_subject: int) -> None:
    """Restore and a policy change through the worker's own exposure, real policies."""
    from confluent_kafka import Message, TopicPartition

    from enforcer.core.ledger_view import LedgerMode
    from enforcer.core.policy.load import load_policy, parse_policy
    from enforcer.ledger.state import LedgerState
    from enforcer.live.exposure import LiveExposure
    from enforcer.testing.policies import phones_never_for_advertising

    records = _records(identifiers, per_subject)
    state = ExposureState()
    ledgers = {p: LedgerState() for p in range(PARTITIONS)}
    for partition, subject, forwards in records:
        state.forwarded(partition, subject, forwards, DAY1)
        ledgers[partition].replace_macs(
            subject,
            DAY1,
            [(f.identifier_type, bytes.fromhex(f.fingerprint[-64:]), (ADS,)) for f in forwards],
        )
    values = [(p, s.encode(), state.value(p, s)) for p, s, _ in records]
    del state, records
    strict = phones_never_for_advertising()
    live = LiveExposure(
        "exposure",
        "events",
        SINK,
        KEY_ID,
        load_policy(None),
        LedgerMode.AUTHORITATIVE,
        ledgers.get,
        time.monotonic,
    )
    assigned = [TopicPartition(t, p) for p in range(PARTITIONS) for t in ("events", "exposure")]
    live.assign(assigned, lambda tps: tps)
    start = time.process_time()
    for partition, key, value in values:
        live.read(cast(Message, _Message(partition, key, value)))
    for partition in range(PARTITIONS):
        live.at_end(partition)
    restore = time.process_time() - start
    unchanged = live.rejudge_due(lambda _: True)
    live.committed()
    exposed = live.stats.identifiers
    live.use_policy(parse_policy(strict, origin="no-phones.yaml", destination="audience-building"))
    start = time.process_time()
    outputs = live.rejudge_due(lambda _: True)
    rejudge = time.process_time() - start
    live.committed()
    print(
        f"  in a worker, {per_subject} per subject: restore {exposed:,} identifiers in "
        f"{restore:.1f} CPU-s ({exposed / restore:,.0f} per CPU-second); re-judged under an "
        f"unchanged policy: {len(unchanged)} records; a policy change: "
        f"{sum(live.stats.retractions.values()):,} retracted, {len(outputs):,} records, "
        f"{rejudge:.1f} CPU-s ({rejudge / exposed * 1e6:.1f} CPU-us per exposed identifier; "
        f"10^6 would take {rejudge / exposed * 1e6:.0f} CPU-s)"
    )


def main() -> None:
    global PARTITIONS  # noqa: PLW0603 - a setting of this script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identifiers", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    PARTITIONS = args.partitions
    for per_subject in (1, 3):
        measure(args.identifiers, per_subject)
        measure_live_policy_change(args.identifiers, per_subject)


if __name__ == "__main__":
    main()
