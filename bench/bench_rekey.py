"""Benchmark of re-keying exposure during a key rotation (prints numbers; not a test).

What configuring the previous fingerprint key costs a worker keeping exposure
(docs/exposure.md, "Key rotation"), in CPU-µs per record (``time.process_time``, best
of several runs taken in turn), for records of two identifiers (an email and a phone
number) of ``--subjects`` subjects:

- the decision (:class:`enforcer.core.step.Step` with ``exposure=True``): without and
  with the previous key (the identifiers are then listed as ``Rekeyable``), fingerprints
  remembered (the steady state);
- exposure's forward (:meth:`enforcer.live.exposure.LiveExposure.forwarded`) of the same
  records again on the same day (nothing written), off and on, when no subject holds an
  entry under the previous key (the rotation is over, or never began);
- the first forward after the restart, every subject holding both identifiers under the
  previous key: off, each becomes a second entry; on, each takes over its old entry;
- the steady state on, every subject holding a stale entry of the same sink and type
  under the previous key (an old email never forwarded again): the previous key's MACs
  are asked for each of its records (remembered after the first).

    python bench/bench_rekey.py [--subjects 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast

import orjson
from confluent_kafka import Message, TopicPartition

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerMode
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, Outcome, Source, Step
from enforcer.live.exposure import LiveExposure
from enforcer.outputs.records import OutputRecord

OLD = Fingerprinter(b"bench-old-key-0123456789abcdef")
NEW = Fingerprinter(b"bench-new-key-0123456789abcdef")
ADS = ["marketing.advertising"]
BEFORE, AFTER = "2026-11-30T12:00:00Z", "2026-12-06T10:00:00Z"
NOW = datetime(2026, 12, 6, 10, tzinfo=UTC)
EXPOSURE, SOURCE, SINK = "exposure", "events", "audience"


def _inputs(subjects: int, stale: bool = False) -> list[InputRecord]:
    """One record per subject: its email and phone (``stale``: another email)."""
    out = []
    for n in range(subjects):
        email = f"user{n}@{'old.' if stale else ''}example.org"
        value = orjson.dumps(
            {
                "event_id": f"e{n}",
                "subject_id": f"acct-{n:08d}",
                "occurred_at": BEFORE,
                "identifiers": [
                    {"type": "email", "value": email, "purposes": ADS},
                    {"type": "phone", "value": f"+1415{n % 10_000_000:07d}", "purposes": ADS},
                ],
            }
        )
        out.append(InputRecord(f"acct-{n:08d}".encode(), value, (), Source(SOURCE, 0, n)))
    return out


def _step(key: Fingerprinter, previous: Fingerprinter | None = None) -> Step:
    return Step(
        load_policy(None), key, FixedClock(NOW), exposure=True, previous_fingerprinter=previous
    )


class _Message:
    def __init__(self, key: bytes, value: bytes | None) -> None:
        self._key, self._value = key, value

    def partition(self) -> int:
        return 0

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def offset(self) -> int:
        return 0


def _exposure(
    key: Fingerprinter, previous: Fingerprinter | None, values: list[OutputRecord]
) -> LiveExposure:
    """A worker's exposure of partition 0, restored from ``values`` (exposure records)."""
    exposure = LiveExposure(
        EXPOSURE,
        SOURCE,
        SINK,
        key.key_id,
        load_policy(None),
        LedgerMode.OFF,
        lambda _: None,
        time.monotonic,
        previous_key_id=None if previous is None else previous.key_id,
    )
    exposure.assign(
        [TopicPartition(SOURCE, 0), TopicPartition(EXPOSURE, 0)],
        lambda tps: [TopicPartition(t.topic, t.partition, -1001) for t in tps],
    )
    for record in values:
        exposure.read(cast(Message, _Message(record.key or b"", record.value)))
    exposure.at_end(0)
    exposure.rejudge_due(lambda _: True, budget=10**9)
    exposure.committed()
    return exposure


def _old_values(inputs: list[InputRecord]) -> list[OutputRecord]:
    """What a worker under the old key wrote for ``inputs``."""
    exposure = _exposure(OLD, None, [])
    step = _step(OLD)
    for record in inputs:
        exposure.forwarded(step(record), BEFORE)
    return exposure.pending_writes()


def _cpu(work: Callable[[], object]) -> float:
    gc.collect()
    start = time.process_time()
    work()
    return time.process_time() - start


def _best(runs: int, **works: Callable[[], Callable[[], object]]) -> dict[str, float]:
    """Best CPU seconds of each work over ``runs``, the works taken in turn; each
    ``works[name]()`` prepares a fresh run and returns the part measured."""
    best = dict.fromkeys(works, float("inf"))
    for _ in range(runs):
        for name, prepare in works.items():
            measured = prepare()
            best[name] = min(best[name], _cpu(measured))
    return best


def _forward_all(exposure: LiveExposure, outcomes: list[Outcome], at: str) -> Callable[[], None]:
    def work() -> None:
        for outcome in outcomes:
            exposure.forwarded(outcome, at)

    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    n, runs = args.subjects, args.runs
    inputs = _inputs(n)
    per = 1e6 / n

    plain, rotating = _step(NEW), _step(NEW, OLD)
    for step in (plain, rotating):  # fingerprints remembered: the steady state
        for record in inputs:
            step(record)

    def decide(step: Step) -> Callable[[], Callable[[], object]]:
        def work() -> None:
            for record in inputs:  # outcomes dropped, as a worker drops a batch's
                step(record)

        return lambda: work

    decided = _best(runs, off=decide(plain), on=decide(rotating))
    print(f"decision, per record: off {decided['off'] * per:.2f}, on {decided['on'] * per:.2f}")

    off_outcomes = [plain(record) for record in inputs]
    on_outcomes = [rotating(record) for record in inputs]
    new_values = _exposure(NEW, None, [])
    for outcome in off_outcomes:
        new_values.forwarded(outcome, AFTER)
    current = new_values.pending_writes()

    def steady(previous: Fingerprinter | None, outcomes: list[Outcome]) -> Callable[[], object]:
        return _forward_all(_exposure(NEW, previous, current), outcomes, AFTER)

    same = _best(
        runs,
        off=lambda: steady(None, off_outcomes),
        on=lambda: steady(OLD, on_outcomes),
    )
    print(
        "forward again, nothing under the previous key, per record: "
        f"off {same['off'] * per:.2f}, on {same['on'] * per:.2f}"
    )

    old = _old_values(inputs)

    def restart(previous: Fingerprinter | None, outcomes: list[Outcome]) -> Callable[[], object]:
        return _forward_all(_exposure(NEW, previous, old), outcomes, AFTER)

    first = _best(
        runs,
        off=lambda: restart(None, off_outcomes),
        on=lambda: restart(OLD, on_outcomes),
    )
    print(
        "first forward after the restart, both identifiers under the previous key, per "
        f"record: off (second entries) {first['off'] * per:.2f}, "
        f"on (re-keyed) {first['on'] * per:.2f}"
    )

    stale = _old_values(_inputs(n, stale=True))
    stale_exposure = _exposure(NEW, OLD, stale)
    _forward_all(stale_exposure, on_outcomes, AFTER)()  # the new entries, once
    stale_off = _exposure(NEW, None, stale)
    _forward_all(stale_off, off_outcomes, AFTER)()

    held = _best(
        runs,
        off=lambda: _forward_all(stale_off, off_outcomes, AFTER),
        on=lambda: _forward_all(stale_exposure, on_outcomes, AFTER),
    )
    print(
        "forward again, a stale email under the previous key, per record: "
        f"off {held['off'] * per:.2f}, on {held['on'] * per:.2f}"
    )


if __name__ == "__main__":
    main()
