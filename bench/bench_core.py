"""Benchmark of the decision core and file replay (prints numbers; not a test).

Per-record cost of the step on a typical ~600-byte event with 3 identifiers, on the
pass path and the redact path, next to ``orjson.loads`` of the same bytes measured
in the same run (the floor). Then the step over the benchmark stream (the realistic
mix below) from cold caches: a new step, no phone number parsed yet, in CPU time, with
the garbage collector's collections. Then ``replay --from-file`` throughput on one
core for a realistic mix (20% with a security-only identifier, 1% invalid), and what of
its cost is not the step (the step alone timed over the same records). Last, the
formats through the step (``bench/formats_step.py``): the same account events as an
identity event, as mapped plain JSON and framed in Avro, Protobuf and JSON Schema, side
by side.

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


def _stream_us(values: list[bytes]) -> tuple[float, dict[int, int]]:
    """CPU-µs per record of a new step over ``values`` (cold caches), and the garbage
    collections by generation it caused."""
    records = [
        InputRecord(None, value, (), Source("identity.events", 0, offset))
        for offset, value in enumerate(values)
    ]
    phone_e164.cache_clear()
    step = Step(load_policy(None), Fingerprinter(b"k" * 32), SystemClock())
    collections = dict.fromkeys(range(3), 0)

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections[info["generation"]] += 1

    gc.collect()
    gc.freeze()  # the records are kept for the loop: the collector need not scan them
    gc.callbacks.append(count)
    start = time.process_time()
    for record in records:
        step(record)
    cpu = time.process_time() - start
    gc.callbacks.remove(count)
    gc.unfreeze()
    return cpu / len(records) * 1e6, collections


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
        "--formats-records", type=int, default=20_000, help="account events per formats row"
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
        f"replay --from-file         {rate:8,.0f} records per CPU-second over "
        f"{report.records.in_:,} records (target >= {REPLAY_TARGET:,.0f})"
    )
    print(
        f"replay minus step          {rest:8.2f} us/record (reading, writing, report; "
        f"step alone {step_only:.2f} us)"
    )
    print()
    results["formats"] = _formats_rows(args.formats_records)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
