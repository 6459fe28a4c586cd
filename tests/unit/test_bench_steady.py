"""The steady-state exposure rows of the pipeline benchmark, without a broker: the
stream with stable identifiers, the exposure seed written by the worker's own code,
the writes read from ``/metrics``, and their target and table (bench/pipeline/steady.py,
docs/benchmarks.md "Exposure: on vs off"). The rows themselves run against a broker in
tests/integration/test_bench_smoke.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka.partitioner import DefaultPartitioner

from bench.pipeline.report import markdown, targets
from bench.pipeline.steady import exposure_seed, exposure_writes, steady_variant
from bench.pipeline.workload import Record, generate, with_stable_identifiers
from enforcer.core.clock import SystemClock, rfc3339
from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, Source, Step
from enforcer.exposure.state import ExposureState
from enforcer.live.exposure import LiveExposure

PARTITIONS = 4


def _events(records: Sequence[Record]) -> list[dict[str, Any]]:
    return [orjson.loads(record.value) for record in records]


def test_each_account_keeps_the_identifiers_of_its_first_event() -> None:
    """Every event of an account carries its first event's identifiers (values and
    purposes); the rest of each event is the generated one; the default stream has a
    new device id in every event."""
    plain = generate(3000)
    steady = with_stable_identifiers(plain)
    assert [r.key for r in steady] == [r.key for r in plain]
    first: dict[str, Any] = {}
    again = 0
    for before, after in zip(_events(plain), _events(steady), strict=True):
        assert {k: v for k, v in after.items() if k != "identifiers"} == {
            k: v for k, v in before.items() if k != "identifiers"
        }
        expected = first.setdefault(after["subject_id"], before["identifiers"])
        assert after["identifiers"] == expected
        again += expected is not before["identifiers"]
    assert again > 0  # accounts are seen again in 3,000 events of 50,000 accounts
    devices = [e["identifiers"][2]["value"] for e in _events(plain)]
    assert len(set(devices)) == len(devices)


def test_the_steady_rows_share_one_stream_across_backlog_and_latency() -> None:
    """The latency phase's accounts seen in the backlog bring back the backlog's
    identifiers."""
    backlog, paced = generate(2000), generate(1000, seed=2020)
    variant = steady_variant(backlog, paced)
    assert len(variant.backlog) == 2000 and len(variant.paced) == 1000
    first = {e["subject_id"]: e["identifiers"] for e in reversed(_events(variant.backlog))}
    shared = [e for e in _events(variant.paced) if e["subject_id"] in first]
    assert shared
    assert all(e["identifiers"] == first[e["subject_id"]] for e in shared)
    assert 0 < variant.paced_forwarded <= len(paced)


def test_a_worker_restored_from_the_seed_writes_nothing_for_the_same_stream() -> None:
    """The seed holds one record per subject forwarded, in its source partition (the
    producer's default partitioner); a worker's exposure restored from it and
    forwarding the same stream again (same key, sink, policy, day) changes no
    subject."""
    key = generate_key()
    records = with_stable_identifiers(generate(1500))
    topics = {"exposure_topic": "exp", "source_topic": "in", "sink_topic": "out"}
    seed, identifiers = exposure_seed(records, fingerprint_key=key, partitions=PARTITIONS, **topics)
    partitioner = DefaultPartitioner()
    every = list(range(PARTITIONS))
    where = {r.key: partitioner(r.key, every, every) for r in records}
    assert len({k for _, k, _ in seed}) == len(seed) > 0
    assert all(where[k] == p and v is not None for p, k, v in seed)

    policy = load_policy(None)
    fingerprinter = Fingerprinter(key_from_text(key))
    step = Step(policy, fingerprinter, SystemClock(), exposure=True)
    exposure = LiveExposure(
        "exp",
        "in",
        "out",
        fingerprinter.key_id,
        policy,
        policy.ledger_mode(False),
        lambda _: None,
        lambda: 0.0,
    )
    state: ExposureState = exposure._state
    for partition, subject, value in seed:
        assert state.restore(partition, subject, value) is None
    assert len(state) == identifiers
    at = rfc3339(SystemClock().now())
    forwarded = 0
    for offset, record in enumerate(records):
        source = Source("in", where[record.key], offset)
        outcome = step(InputRecord(record.key, record.value, (), source))
        if outcome.forwarded_identifiers:
            forwarded += 1
            assert exposure.forwarded(outcome, at) is None
    assert forwarded > 0
    assert exposure.pending_writes() == []


def test_the_exposure_writes_come_from_the_workers_metrics() -> None:
    text = "# TYPE enforcer_exposure_writes counter\nenforcer_exposure_writes_total 12.0\n"
    assert exposure_writes(text) == 12
    assert exposure_writes("# TYPE other counter\nother_total 1.0\n") is None


def _run(pipeline: str, records_per_s: float, cpu: float, **more: Any) -> dict[str, Any]:
    return {
        "pipeline": pipeline,
        "guarantee": "exactly_once",
        "commit_interval_s": 1.0,
        "records_per_s": records_per_s,
        "cpu_us_per_record": cpu,
        "latency_p50_ms": None,
        "latency_p99_ms": None,
        "outcomes": {"inputs": 10, "missing": 0, "duplicates": 0, "unexpected": 0},
        **more,
    }


RUNS = [
    _run("enforcer", 40_000, 25),
    _run("enforcer-exposure", 20_000, 50, exposure={"writes_drain": 70_000, "writes": 74_000}),
    _run("enforcer-steady", 40_000, 24),
    _run(
        "enforcer-exposure-steady",
        36_000,
        27,
        exposure={
            "writes_drain": 0,
            "writes": 0,
            "restored_records": 40_000,
            "restored_identifiers": 100_000,
            "seeded_records": 40_000,
        },
    ),
]


def test_both_exposure_targets_each_against_its_own_stream() -> None:
    """First sight against the plain row, the steady state against the steady stream's
    row without exposure."""
    found = {t["target"]: (t["ratio"], t["met"]) for t in targets(RUNS)}
    assert found["enforcer run, exposure on / off, first sight (worst case)"] == (0.5, False)
    assert found["enforcer run, exposure on / off, steady state"] == (0.9, True)
    alone = targets([_run("enforcer-exposure-steady", 36_000, 27), _run("enforcer", 1, 1)])
    assert all("steady" not in t["target"] for t in alone)


def test_the_markdown_has_the_exposure_table() -> None:
    results = {
        "started_at": "2026-12-06T08:00:00+00:00",
        "duration_s": 60.0,
        "machine": {
            "cpu_model": "cpu",
            "cores": 2,
            "ram_gib": 8,
            "kernel": "6",
            "python": "3.11",
            "java": "17",
            "kafka": "3.9.1",
            "load_average_start": [1.0, 1.0, 1.0],
            "load_average_end": [1.0, 1.0, 1.0],
        },
        "workload": {
            "records": 80_000,
            "mean_value_bytes": 640.0,
            "identifiers_per_event": 3,
            "security_only_share": 0.2,
            "partitions": 4,
            "repeat": 1,
            "latency_records": 5000,
            "latency_per_s": 1000.0,
        },
        "runs": RUNS,
        "targets": targets(RUNS),
    }
    text = markdown(results)
    assert (
        "| enforcer run, exposure on, first sight (empty exposure) | exactly-once | 1 s "
        "| 40,000 | 20,000 | 0.50 | 25.0 / 50.0 | empty | 70,000 / 74,000 |"
    ) in text
    assert (
        "| enforcer run, exposure on, steady state | exactly-once | 1 s | 40,000 | 36,000 "
        "| 0.90 | 24.0 / 27.0 | 40,000 subjects, 100,000 identifiers | 0 / 0 |"
    ) in text
