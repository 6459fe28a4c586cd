"""Benchmark of the decision core and file replay (prints numbers; not a test).

Per-record cost of the step on a typical ~600-byte event with 3 identifiers, on the
pass path and the redact path, next to ``orjson.loads`` of the same bytes measured
in the same run (the floor). Then the step over the benchmark stream (the realistic
mix below) from cold caches: a new step, no phone number parsed yet, in CPU time, with
the garbage collector's collections, and the same with exposure off and on (the step
listing forwarded identifiers, then also turned into ``Forward``s; and a stream whose
identifiers recur). Then ``replay --from-file`` throughput on one core for a realistic
mix (20% with a security-only identifier, 1% invalid), and what of its cost is not the
step (the step alone timed over the same records). Last, the formats through the step
(``bench/formats_step.py``): the same account events as an identity event, as mapped
plain JSON and framed in Avro, Protobuf and JSON Schema, side by side.

    python bench/bench_core.py [--records 200000] [--json results.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

import orjson

from enforcer.core.clock import FixedClock, SystemClock
from enforcer.core.fingerprint import Fingerprinter, phone_e164
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, OutcomeKind, Source, Step
from enforcer.demo.sample import sample_event, sample_values
from enforcer.exposure.forwards import forwards
from enforcer.replay.run import replay_file
from enforcer.replay.sources.jsonl import HashedRecords

PASS_TARGET, REDACT_TARGET, REPLAY_TARGET = 6.0, 8.0, 100_000.0
STREAM_TARGET_US = 8.0


def _per_call_us(fn: Callable[[], object], seconds: float = 1.0) -> float:
    """Best of five timed batches, in microseconds per call."""
    n = 1000
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start > seconds / 5:
            break
        n *= 2
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def _stream_us(
    values: list[bytes], exposure: bool = False, with_forwards: bool = False
) -> tuple[float, dict[int, int]]:
    """CPU-µs per record of a new step over ``values`` (cold caches), and the garbage
    collections by generation it caused. ``exposure``: the step lists forwarded
    identifiers; ``with_forwards``: and each outcome is turned into ``Forward``s."""
    records = [
        InputRecord(None, value, (), Source("identity.events", 0, offset))
        for offset, value in enumerate(values)
    ]
    phone_e164.cache_clear()
    step = Step(load_policy(None), Fingerprinter(b"k" * 32), SystemClock(), exposure=exposure)
    decide: Callable[[InputRecord], object] = step
    if with_forwards:
        version, key_id = step.policy.version, step.key_id

        def decide_and_forward(record: InputRecord) -> object:
            return forwards(step(record), "audience.identity", version, key_id)

        decide = decide_and_forward
    collections = dict.fromkeys(range(3), 0)

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections[info["generation"]] += 1

    gc.collect()
    gc.freeze()  # the records are kept for the loop: the collector need not scan them
    gc.callbacks.append(count)
    start = time.process_time()
    for record in records:
        decide(record)
    cpu = time.process_time() - start
    gc.callbacks.remove(count)
    gc.unfreeze()
    return cpu / len(records) * 1e6, collections


def _warm_us(values: list[bytes], exposure: bool) -> float:
    """CPU-µs per record of a step over ``values`` it has decided once already: every
    identifier is in the fingerprinter's memory (it must fit: 65,536 entries), as in a
    stream whose accounts recur."""
    records = [
        InputRecord(None, value, (), Source("identity.events", 0, offset))
        for offset, value in enumerate(values)
    ]
    step = Step(load_policy(None), Fingerprinter(b"k" * 32), SystemClock(), exposure=exposure)
    for record in records:
        step(record)
    gc.collect()
    gc.freeze()
    start = time.process_time()
    for record in records:
        step(record)
    cpu = time.process_time() - start
    gc.unfreeze()
    return cpu / len(records) * 1e6


RECURRING = 15_000
"""Records decided twice for the recurring row: about 44,000 distinct identifiers, all
remembered by the fingerprinter."""


def _exposure_rows(values: list[bytes]) -> tuple[float, ...]:
    """Exposure (docs/exposure.md, "What the decision hands exposure"): the stream with
    exposure off, on, on with ``Forward``s, then recurring identifiers off and on; each
    measured twice in turn, the best kept."""
    rows: dict[str, list[float]] = {
        name: [] for name in ("off", "on", "forwards", "warm off", "warm on")
    }
    recurring = values[:RECURRING]
    for _ in range(2):
        rows["off"].append(_stream_us(values)[0])
        rows["on"].append(_stream_us(values, exposure=True)[0])
        rows["forwards"].append(_stream_us(values, exposure=True, with_forwards=True)[0])
        rows["warm off"].append(_warm_us(recurring, exposure=False))
        rows["warm on"].append(_warm_us(recurring, exposure=True))
    return tuple(min(found) for found in rows.values())


def _step_only_us(path: Path) -> float:
    """CPU-µs per record of the step alone over a file's records, read beforehand."""
    step = Step(load_policy(None), Fingerprinter(b"k" * 32), SystemClock())
    with path.open("rb") as stream:
        records = list(HashedRecords(stream, path.name))
    gc.collect()
    gc.freeze()  # the records are kept for the loop: the collector need not scan them
    start = time.process_time()
    for record in records:
        step(record)
    cpu = time.process_time() - start
    gc.unfreeze()
    return cpu / len(records) * 1e6


def _formats_rows(records: int) -> dict[str, dict[str, Any]]:
    """The formats through the step (``bench/formats_step.py``), printed and returned."""
    # Run as a script, the repository's root (the ``bench`` package) is not on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.formats_step import measure, print_table

    found = measure(records)
    print_table(found)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument(
        "--formats-records",
        type=int,
        default=20_000,
        help="account events per formats row (0: no formats rows)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    step = Step(load_policy(None), Fingerprinter(b"k" * 32), FixedClock(datetime.now(UTC)))
    at = datetime(2019, 10, 8, 12, 0, tzinfo=UTC)
    passing = sample_event(Random(1), 1, False, at)
    redacting = sample_event(Random(1), 1, True, at)
    pass_record = InputRecord(b"acct", passing, (), Source("identity.events", 0, 1))
    redact_record = InputRecord(b"acct", redacting, (), Source("identity.events", 0, 2))
    assert step(pass_record).kind is OutcomeKind.PASSED
    assert step(redact_record).kind is OutcomeKind.REDACTED

    gc.collect()
    floor = _per_call_us(lambda: orjson.loads(passing))
    pass_us = _per_call_us(lambda: step(pass_record))
    redact_us = _per_call_us(lambda: step(redact_record))

    stream_values = list(sample_values(args.records))
    stream_us, collections = _stream_us(stream_values)
    exposure_off, exposure_on, exposure_forwards, warm_off, warm_on = _exposure_rows(stream_values)
    recurring = RECURRING

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "mix.jsonl"
        with data.open("wb") as out:
            for value in sample_values(args.records):
                out.write(value + b"\n")
        start = time.process_time()
        report = replay_file(
            data, Path(tmp) / "out", load_policy(None), Fingerprinter(b"k" * 32), False
        )
        cpu = time.process_time() - start
        step_only = _step_only_us(data)
    rate = report.records.in_ / cpu
    rest = cpu / report.records.in_ * 1e6 - step_only

    results = {
        "machine": f"{platform.machine()} {platform.processor() or ''} "
        f"Python {platform.python_version()}".strip(),
        "event_bytes": len(passing),
        "floor_orjson_loads_us": round(floor, 3),
        "pass_us": round(pass_us, 3),
        "pass_ratio": round(pass_us / floor, 2),
        "redact_us": round(redact_us, 3),
        "redact_ratio": round(redact_us / floor, 2),
        "stream_cold_us": round(stream_us, 3),
        "stream_gc_collections": collections,
        "stream_exposure_off_us": round(exposure_off, 3),
        "stream_exposure_on_us": round(exposure_on, 3),
        "stream_exposure_on_with_forwards_us": round(exposure_forwards, 3),
        "recurring_exposure_off_us": round(warm_off, 3),
        "recurring_exposure_on_us": round(warm_on, 3),
        "replay_records": report.records.in_,
        "replay_records_per_cpu_second": round(rate),
        "replay_minus_step_us": round(rest, 3),
    }
    print(f"event size                 {len(passing)} bytes, 3 identifiers")
    print(f"floor: orjson.loads        {floor:8.2f} us")
    print(
        f"step, pass path            {pass_us:8.2f} us  {pass_us / floor:5.1f}x floor "
        f"(target <= {PASS_TARGET:.0f}x)"
    )
    print(
        f"step, redact path          {redact_us:8.2f} us  {redact_us / floor:5.1f}x floor "
        f"(target <= {REDACT_TARGET:.0f}x)"
    )
    print(
        f"step, benchmark stream     {stream_us:8.2f} us  cold caches, {len(stream_values):,} "
        f"records (target <= {STREAM_TARGET_US:.0f} us); gc collections by generation "
        f"{collections[0]}/{collections[1]}/{collections[2]}"
    )
    print(
        f"stream, exposure off / on  {exposure_off:8.2f} us / {exposure_on:.2f} us "
        f"(+{exposure_on - exposure_off:.2f} us; with forwards {exposure_forwards:.2f} us), "
        "cold caches, best of 2"
    )
    print(
        f"  identifiers recurring    {warm_off:8.2f} us / {warm_on:.2f} us "
        f"(+{warm_on - warm_off:.2f} us), {recurring:,} records decided a second time"
    )
    print(
        f"replay --from-file         {rate:8,.0f} records per CPU-second over "
        f"{report.records.in_:,} records (target >= {REPLAY_TARGET:,.0f})"
    )
    print(
        f"replay minus step          {rest:8.2f} us/record (reading, writing, report; "
        f"step alone {step_only:.2f} us)"
    )
    print()
    if args.formats_records > 0:
        results["formats"] = _formats_rows(args.formats_records)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
