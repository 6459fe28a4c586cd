"""Benchmark of ``enforcer remediate plan``'s judging (prints numbers; not a test).

A sink history is made in memory: the benchmark stream (``enforcer.demo.sample``)
decided by the built-in policy, its forwarded records as the sink would hold them. It is
then planned under a policy that also stops every phone number, in this process
(:class:`enforcer.remediate.planner.Planner`, no Kafka): CPU time per forwarded record
(``time.process_time``, best of ``--runs``), the judging's share of it (the same
records through :class:`~enforcer.remediate.judge.Judge` alone: the step's judgements
and the fingerprints), and tracemalloc's bytes per identifier held.

    python bench/bench_remediate.py [--records 100000] [--runs 3]

With a broker (``bash bench/with-broker.sh remediate bench.bench_remediate``, which
passes ``--bootstrap``), the same history is also written to a sink topic and
``enforcer remediate plan`` run over it as a user runs it, in a child process: its CPU
time (user + system, ``getrusage``) per forwarded record, start-up, reading the topic
and writing the plan included, beside the CPU of the same command over an empty
topic (the start-up alone) in the same run. See docs/remediate.md, "What it costs".
"""

from __future__ import annotations

import argparse
import gc
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka import Producer

from enforcer.core.clock import SystemClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.policy.load import load_policy, parse_policy
from enforcer.core.step import InputRecord, Source, Step
from enforcer.demo.sample import sample_values
from enforcer.remediate.history import SinkRecord
from enforcer.remediate.judge import Judge
from enforcer.remediate.planner import Planner
from enforcer.testing.topics import create_topics_sync

KEY = b"bench-remediate-key-0123456789ab"
NO_PHONES = """
format: 1
mode: enforce
namespace_sets:
  security: [security]
rules:
  - name: no-phone-audiences
    when: any-within
    within: [marketing]
    types: [phone]
    action: redact
  - name: security-only-purpose
    when: all-within
    within: security
    action: redact
  - name: missing-purpose
    when: no-purpose
    action: redact
destinations:
  audience-building:
    allow: [marketing.advertising]
    action: redact
    rule: purpose-not-allowed
"""


def sink_history(count: int) -> list[SinkRecord]:
    """The forwarded records of ``count`` sample events under the built-in policy."""
    live = Step(load_policy(None), Fingerprinter(KEY), SystemClock())
    records = []
    for offset, value in enumerate(sample_values(count, seed=3)):
        outcome = live(InputRecord(None, value, (), Source("identity.events", 0, offset)))
        if outcome.forwarded and outcome.forward_headers is not None:
            at = 1_764_500_000_000 + offset
            records.append(
                SinkRecord(
                    None, outcome.forward_value, outcome.forward_headers, offset % 3, offset, at
                )
            )
    return records


def write_sink(bootstrap: str, topic: str, records: Sequence[SinkRecord]) -> None:
    """``records`` as a sink topic of three partitions holds them (committed)."""
    # Kept whatever the records' times: the history is dated a year back.
    create_topics_sync(bootstrap, [topic], 3, configs={"retention.ms": "-1"})
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "queue.buffering.max.messages": 500_000}
    )
    for record in records:
        producer.produce(
            topic,
            record.value,
            record.key,
            partition=record.partition,
            headers=list(record.headers),
            timestamp=record.timestamp_ms,
        )
        producer.poll(0)
    if producer.flush(60) != 0:
        raise SystemExit("bench: the sink history was not all written")


def child_cpu(command: Sequence[str]) -> float:
    """CPU seconds (user + system) of ``command`` run to its end; exits when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"bench: {command[1:4]} failed: {done.stderr.strip()[-500:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def end_to_end(bootstrap: str, records: Sequence[SinkRecord], runs: int) -> None:
    """``enforcer remediate plan`` over the history written to a topic, as a user runs
    it, beside the command's start-up alone."""
    topic = f"bench-remediate-sink-{uuid.uuid4().hex[:8]}"
    empty = f"{topic}-empty"
    write_sink(bootstrap, topic, records)
    create_topics_sync(bootstrap, [empty], 3)
    enforcer = str(Path(sys.executable).with_name("enforcer"))
    with tempfile.TemporaryDirectory() as work:
        policy, key = Path(work, "no-phones.yaml"), Path(work, "key")
        policy.write_text(NO_PHONES)
        key.write_bytes(KEY)
        key.chmod(0o600)
        plan = [
            enforcer, "remediate", "plan", "--bootstrap-servers", bootstrap,
            "--policy", str(policy), "--fingerprint-key-file", str(key),
            "--out", str(Path(work, "plan.json")), "--sink-topic",
        ]  # fmt: skip
        start_up = min(child_cpu([*plan, empty]) for _ in range(runs))
        whole = min(child_cpu([*plan, topic]) for _ in range(runs))
    count = len(records)
    print(
        f"enforcer remediate plan, end to end: {whole:.2f} CPU-s, "
        f"{whole * 1e6 / count:.1f} CPU-µs per forwarded record "
        f"({count / whole:,.0f} records/CPU-s); of which start-up (the same command over "
        f"an empty topic): {start_up:.2f} CPU-s; without it {(whole - start_up) * 1e6 / count:.1f} "
        f"CPU-µs per record ({count / (whole - start_up):,.0f} records/CPU-s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bootstrap", help="a broker: also run the command end to end")
    parser.add_argument("--kafka-version", help="(given by bench/with-broker.sh; unused)")
    args = parser.parse_args()
    policy = parse_policy(NO_PHONES.encode(), origin="no-phones.yaml")
    records = sink_history(args.records)
    print(f"{len(records):,} forwarded records of {args.records:,} sample events")

    best = float("inf")
    for _ in range(args.runs):
        planner = Planner(Judge(policy, Fingerprinter(KEY), SystemClock()), "sink", "src")
        gc.collect()
        started = time.process_time()
        planner.add_all(records)
        plan = planner.plan()
        best = min(best, time.process_time() - started)
    per = best * 1e6 / len(records)
    print(
        f"plan: {per:.1f} CPU-µs per forwarded record ({len(records) / best:,.0f} records/CPU-s); "
        f"{plan.exposed:,} exposed, {len(plan.retractions):,} to retract"
    )

    inputs = [
        InputRecord(r.key, r.value, r.headers, Source("src", r.partition, r.offset))
        for r in records
    ]
    best = float("inf")
    for _ in range(args.runs):
        judge = Judge(policy, Fingerprinter(KEY), SystemClock())
        started = time.process_time()
        for record in inputs:
            judge(record)
        best = min(best, time.process_time() - started)
    judge_us = best * 1e6 / len(records)
    print(f"of which judging (the step's judgements, fingerprints): {judge_us:.1f} CPU-µs")

    planner = Planner(Judge(policy, Fingerprinter(KEY), SystemClock()), "sink", "src")
    gc.collect()
    tracemalloc.start()
    planner.add_all(records)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    identifiers = len(planner.exposed())
    print(
        f"memory: {held / identifiers:.0f} bytes per identifier held "
        f"({identifiers:,}; peak {peak / 2**20:.0f} MiB)"
    )
    if args.bootstrap:
        end_to_end(args.bootstrap, records, args.runs)


if __name__ == "__main__":
    main()
