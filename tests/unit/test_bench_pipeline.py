"""The pipeline benchmark's own logic, without a broker: the independent outcome
check, the GC figures read from ``/metrics``, the targets and the run modes
(bench/pipeline, docs/benchmarks.md). The whole harness runs against a broker in
tests/integration/test_bench_smoke.py."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bench.pipeline.cli import parse_args
from bench.pipeline.gc_metrics import gc_work
from bench.pipeline.outcomes import ReadBack, tally
from bench.pipeline.report import markdown, targets
from bench.pipeline.run import best_of
from enforcer.testing.worker import EnforcerTopics

TOPICS = EnforcerTopics("in", "out", "violations", "dead", "metrics")


def _event(number: int) -> bytes:
    return orjson.dumps({"event_id": f"evt-{number}", "subject_id": "acct-1"})


def _violation(offset: int, action: str) -> ReadBack:
    value = {"action": action, "source": {"topic": "in", "partition": 0, "offset": offset}}
    return ReadBack(0, 100 + offset, orjson.dumps(value), ())


def _dead_letter(offset: int) -> ReadBack:
    headers = (
        ("enforcer.source.topic", b"in"),
        ("enforcer.source.partition", b"0"),
        ("enforcer.source.offset", str(offset).encode()),
    )
    return ReadBack(0, 200 + offset, b"not json", headers)


def _read(
    sink: list[int], violations: list[ReadBack], dead: list[ReadBack]
) -> dict[str, list[ReadBack]]:
    return {
        "in": [ReadBack(0, n, _event(n), ()) for n in range(4)],
        "out": [ReadBack(0, i, _event(n), ()) for i, n in enumerate(sink)],
        "violations": violations,
        "dead": dead,
    }


def test_each_input_with_one_outcome_passes_the_check() -> None:
    """Forwarded (one redacted, with its violation), dropped, dead-lettered: each input
    once, so nothing is missing or repeated."""
    count = tally(
        TOPICS,
        _read([0, 1], [_violation(1, "redacted"), _violation(2, "dropped")], [_dead_letter(3)]),
    )
    assert (count.inputs, count.forwarded, count.dropped, count.deadlettered) == (4, 2, 1, 1)
    assert (count.missing, count.duplicates, count.unexpected) == (0, 0, 0)
    assert count.exactly_once


def test_the_check_counts_missing_repeated_and_untraced_outputs() -> None:
    """Input 0 forwarded twice, input 1 nowhere (its 'redacted' violation is no outcome),
    input 2's violation written twice, input 3 both forwarded and dead-lettered, and a
    dead letter of an offset the source never had."""
    count = tally(
        TOPICS,
        _read(
            [0, 0, 3],
            [_violation(1, "redacted"), _violation(2, "dropped"), _violation(2, "dropped")],
            [_dead_letter(3), _dead_letter(9)],
        ),
    )
    assert count.missing == 1
    # input 0: one extra sink record; input 2: one extra outcome and one extra violation;
    # input 3: two outcomes.
    assert count.duplicates == 4
    assert count.unexpected == 1
    assert not count.exactly_once


def test_framed_values_are_traced_by_the_event_id_reader_given() -> None:
    """The formats rows' values are framed: with the reader of their event ids the check
    traces them; without it, none (every sink record untraced, every input missing)."""

    def framed(number: int) -> bytes:
        return b"\x00\x00\x00\x00\x07" + f"evt-{number}".encode()

    def event_id(value: bytes | None) -> object:
        return value[5:].decode() if value and value[0] == 0 else None

    read = {
        "in": [ReadBack(0, n, framed(n), ()) for n in range(2)],
        "out": [ReadBack(0, n, framed(n), ()) for n in range(2)],
        "violations": [],
        "dead": [],
    }
    assert tally(TOPICS, read, event_id_of=event_id).exactly_once
    untraced = tally(TOPICS, read)
    assert (untraced.missing, untraced.unexpected) == (2, 2)


def test_the_avro_target_compares_the_same_events_in_both_shapes() -> None:
    found = targets([_run("enforcer-contacts", 30_000, 29), _run("enforcer-avro", 18_000, 56)])
    assert [(t["target"], t["ratio"], t["met"]) for t in found] == [
        ("enforcer run, Avro / identity events", 0.6, False)
    ]


_GC_DEFAULT = """\
# TYPE python_gc_collections_total counter
python_gc_collections_total{generation="0"} 120.0
python_gc_collections_total{generation="1"} 10.0
python_gc_collections_total{generation="2"} 1.0
"""
_GC_ENFORCER = """\
# TYPE enforcer_gc_collections_total counter
enforcer_gc_collections_total{generation="0"} 7.0
enforcer_gc_collections_total{generation="1"} 2.0
enforcer_gc_collections_total{generation="2"} 0.0
# TYPE enforcer_gc_pause_seconds_total counter
enforcer_gc_pause_seconds_total 0.0123
"""


def test_gc_figures_prefer_the_enforcers_own_metrics() -> None:
    """With the enforcer's metrics, their counts and pause time; without, the default
    collector's counts and no pause time."""
    assert gc_work(_GC_DEFAULT + _GC_ENFORCER) == {
        "metric": "enforcer_gc_collections_total",
        "collections": {"0": 7, "1": 2, "2": 0},
        "collections_total": 9,
        "pause_s": 0.0123,
    }
    assert gc_work(_GC_DEFAULT) == {
        "metric": "python_gc_collections_total",
        "collections": {"0": 120, "1": 10, "2": 1},
        "collections_total": 131,
        "pause_s": None,
    }


def _run(pipeline: str, records_per_s: float, cpu: float) -> dict[str, Any]:
    return {
        "pipeline": pipeline,
        "guarantee": "exactly_once",
        "commit_interval_s": 1.0,
        "records_per_s": records_per_s,
        "cpu_us_per_record": cpu,
    }


def test_the_targets_and_their_thresholds() -> None:
    """The five pipeline targets, each met or missed at its own threshold."""
    runs = [
        _run("quix-step", 20_000, 45),
        _run("confluent-step", 40_000, 25),
        _run("enforcer", 35_000, 21),
        _run("enforcer-ledger", 30_000, 24),
    ]
    found = {t["target"]: t for t in targets(runs, {"records": 300_000, "peak_rss_mib": 110.0})}
    assert [(t["ratio"], t["met"]) for t in found.values()] == [
        (round(20 / 21, 3), False),  # 21 CPU-µs/record: over 20
        (1.75, True),  # ≥ 1.5 x quixstreams
        (0.875, False),  # < 0.9 x the bare loop
        (round(30 / 35, 3), True),  # ledger on ≥ 0.85 x off
        (round(120 / 110, 3), True),  # 110 MiB ≤ 120
    ]
    assert "300,000-record backlog" in next(reversed(found))
    assert found["enforcer run / quixstreams + Step"]["measured"] == (
        "35,000 / 20,000 records/s (21.0 / 45.0 CPU-µs/record)"
    )


def test_a_target_whose_rows_were_not_run_is_left_out() -> None:
    """Only the enforcer ran: its CPU target alone."""
    found = targets([_run("enforcer", 60_000, 15)])
    assert [(t["target"], t["met"]) for t in found] == [
        ("enforcer run: CPU-µs/record (≥ 50k records/s on one core)", True)
    ]


def test_the_markdown_shows_the_targets_and_the_check() -> None:
    """The targets table and each row's check figures are in the section."""
    run = _run("enforcer", 35_000, 21) | {
        "latency_p50_ms": 500.0,
        "latency_p99_ms": 1000.0,
        "outcomes": {"inputs": 85_000, "missing": 0, "duplicates": 2, "unexpected": 1},
    }
    results = {
        "started_at": "2026-12-06T08:00:00+00:00",
        "duration_s": 60.0,
        "command": "bash bench/run_pipeline.sh --quick",
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
        "runs": [run],
        "targets": targets([run]),
    }
    text = markdown(results)
    assert "| enforcer run: CPU-µs/record (≥ 50k records/s on one core) | 21.0 CPU-µs" in text
    assert "| 85,000 | 0 | 3 |" in text
    assert "Command: `bash bench/run_pipeline.sh --quick`" in text


@pytest.mark.parametrize(
    ("flag", "records", "guarantees", "intervals", "repeat", "tools"),
    [
        ([], 80_000, ["at_least_once", "exactly_once"], [0.1, 1.0], 2, 200_000),
        (["--targets-only"], 80_000, ["exactly_once"], [1.0], 2, 0),
        (["--quick"], 20_000, ["exactly_once"], [1.0], 1, 0),
    ],
)
def test_the_modes(
    flag: list[str],
    records: int,
    guarantees: list[str],
    intervals: list[float],
    repeat: int,
    tools: int,
) -> None:
    """Each mode's configurations; every mode runs every pipeline and the memory run."""
    args = parse_args(["--bootstrap=x:1", *flag])
    assert (args.records, args.guarantees, args.intervals, args.repeat) == (
        records,
        guarantees,
        intervals,
        repeat,
    )
    assert args.kafka_tools_records == tools
    assert "bytewax-step" in args.pipelines
    assert args.memory_records == 300_000


def test_an_option_given_overrides_the_mode() -> None:
    args = parse_args(["--bootstrap=x:1", "--quick", "--records=5000", "--pipelines=enforcer"])
    assert (args.records, args.pipelines, args.repeat) == (5000, ["enforcer"], 1)


def test_a_row_adds_up_the_checks_of_all_its_drains() -> None:
    """The fastest drain gives the rate; a duplicate in a slower drain still shows."""
    check = {"inputs": 85_000, "missing": 0, "duplicates": 0, "unexpected": 0, "read_s": 1.0}
    fast = _run("enforcer", 30_000, 20) | {"outcomes": check | {"inputs": 80_000}}
    slow = _run("enforcer", 20_000, 25) | {"outcomes": check | {"duplicates": 1}}
    latency = dict.fromkeys(("latency_p50_ms", "latency_p99_ms", "latency_records"), 1.0)
    for row in (fast, slow):
        row.update(latency, latency_missing=0, window_s=1.0, load_average_1m=1.0)
    row = best_of([slow, fast])
    assert row["records_per_s"] == 30_000
    assert row["outcomes"]["inputs"] == 165_000
    assert row["outcomes"]["duplicates"] == 1
    assert [a["outcomes"]["duplicates"] for a in row["attempts"]] == [1, 0]
