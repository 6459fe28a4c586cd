"""Benchmark of ``enforcer remediate plan``'s judging (prints numbers; not a test).

A sink history is made in memory: the benchmark stream (``enforcer.demo.sample``)
decided by the built-in policy, its forwarded records as the sink would hold them. It is
then planned under a policy that also stops every phone number, in this process
(:class:`enforcer.remediate.planner.Planner`, no Kafka): CPU time per forwarded record
(``time.process_time``, best of ``--runs``), the decision step's share of it (the same
records through ``Step.explain`` alone), and tracemalloc's bytes per identifier held.

    python bench/bench_remediate.py [--records 100000] [--runs 3]

Reading the sink from Kafka and the command's start-up come on top: see
docs/remediate.md, "What it costs".
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

from enforcer.core.clock import SystemClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.models import Mode
from enforcer.core.policy.load import load_policy, parse_policy
from enforcer.core.step import InputRecord, Source, Step
from enforcer.demo.sample import sample_values
from enforcer.remediate.history import SinkRecord
from enforcer.remediate.judge import Judge
from enforcer.remediate.planner import Planner

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
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
        step = Step(
            policy.with_mode(Mode.ENFORCE), Fingerprinter(KEY), SystemClock(), exposure=True
        )
        started = time.process_time()
        for record in inputs:
            step.explain(record)
        best = min(best, time.process_time() - started)
    step_us = best * 1e6 / len(records)
    print(f"of which the decision step (enforce mode, exposure): {step_us:.1f} CPU-µs")

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


if __name__ == "__main__":
    main()
