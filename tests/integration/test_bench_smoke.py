"""The pipeline benchmark (``bench/run_pipeline.sh``) runs, in miniature.

Timings are not checked here (they belong to the benchmark, not the test suite): a few
hundred records through every pipeline at one guarantee and one commit interval, and
the Kafka tools on a few thousand, through the same ``python -m bench.pipeline`` the
benchmark script calls; then the JSON must hold every expected key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from enforcer.testing.kafka_broker import DEFAULT_KAFKA_VERSION

REPO_ROOT = Path(__file__).resolve().parents[2]
PIPELINES = (
    "raw-confluent",
    "raw-aiokafka",
    "confluent-step",
    "quix-step",
    "bytewax-step",
    "enforcer",
)
RUN_KEYS = {
    "pipeline",
    "guarantee",
    "commit_interval_s",
    "records_per_s",
    "cpu_us_per_record",
    "latency_p50_ms",
    "latency_p99_ms",
    "window_s",
    "window_records",
    "startup_s",
    "drain_s",
    "latency_records",
    "latency_missing",
    "exit_status",
    "load_average_1m",
    "attempts",
    "outcomes",
}
"""Every row's keys; ``enforcer run`` rows have ``gc`` too."""
MACHINE_KEYS = {
    "cpu_model",
    "cores",
    "ram_gib",
    "kernel",
    "python",
    "java",
    "kafka",
    "load_average_start",
    "load_average_end",
}
TOOLS = {
    "producer",
    "producer_transactions_100ms",
    "producer_transactions_1s",
    "consumer",
    "end_to_end_latency",
}


def test_the_benchmark_writes_its_results(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Every pipeline drains its backlog and delivers its paced records, and the
    independent check finds exactly one outcome per input in every run (bytewax's too:
    no delivery guarantee, but nothing fails here); the enforcer's GC counts and the
    memory run are in the JSON; the JSON and the markdown table are written where
    asked, and docs/benchmarks.md is left alone."""
    out = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.pipeline",
            f"--bootstrap={kafka_bootstrap}",
            f"--kafka-version={os.environ.get('KAFKA_VERSION') or DEFAULT_KAFKA_VERSION}",
            "--records=300",
            "--repeat=1",
            f"--pipelines={','.join(PIPELINES)}",
            "--guarantees=exactly_once",
            "--intervals=0.1",
            "--latency-per-s=200",
            "--latency-seconds=0.5",
            "--kafka-tools-records=2000",
            "--memory-records=2000",
            f"--out={out}",
            "--docs=-",
            f"--work-dir={tmp_path / 'work'}",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    results = json.loads((out / "pipeline.json").read_text())
    assert {
        "started_at",
        "duration_s",
        "machine",
        "workload",
        "kafka_tools",
        "runs",
        "memory",
        "targets",
        "versus",
    } <= set(results)
    assert set(results["machine"]) >= MACHINE_KEYS
    assert set(results["kafka_tools"]) == TOOLS
    assert all(
        tool["records_per_s"] > 0
        for key, tool in results["kafka_tools"].items()
        if key != "end_to_end_latency"
    )
    runs = results["runs"]
    assert [run["pipeline"] for run in runs] == list(PIPELINES)
    for run in runs:
        gc = {"gc"} if run["pipeline"] == "enforcer" else set()
        assert set(run) == RUN_KEYS | gc, run["pipeline"]
        assert run["guarantee"] == "exactly_once"
        assert run["exit_status"] == 0, run["pipeline"]
        assert run["latency_missing"] == 0, run["pipeline"]
        assert run["latency_p50_ms"] is not None, run["pipeline"]
        check = run["outcomes"]
        assert check["inputs"] == 300 + 100, run["pipeline"]  # backlog and paced records
        assert (check["missing"], check["duplicates"], check["unexpected"]) == (0, 0, 0), run
    deciding = [r for r in runs if r["pipeline"] in ("confluent-step", "quix-step", "bytewax-step")]
    enforcer = next(r for r in runs if r["pipeline"] == "enforcer")
    for run in deciding:  # the peers write what the enforcer writes
        for kind in ("forwarded", "dropped", "deadlettered", "violation_records"):
            assert run["outcomes"][kind] == enforcer["outcomes"][kind], (run["pipeline"], kind)
    assert enforcer["outcomes"]["violation_records"] > enforcer["outcomes"]["dropped"] > 0
    # The worker's own collector figures, counted from its first batch (start-up objects
    # are frozen before it: a run this small may well need no collection at all).
    gc = enforcer["gc"]
    assert gc["metric"] == "enforcer_gc_collections_total"
    assert set(gc["collections"]) == {"0", "1", "2"}
    assert sum(gc["collections"].values()) == gc["collections_total"] >= 0
    assert gc["pause_s"] is not None and gc["pause_s"] >= 0
    assert results["memory"]["records"] == 2000
    assert results["memory"]["peak_rss_mib"] > 0
    assert results["memory"]["exit_status"] == 0
    table = (out / "pipeline.md").read_text()
    assert "| enforcer run | exactly-once | 100 ms |" in table
    assert "| bytewax + Step | none | 100 ms |" in table


def _bench(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_ledger_row_restores_before_its_clock(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The enforcer + ledger row alone: its ledger (every subject of the stream) is
    restored whole, its paced records all arrive, and its facts are in the JSON."""
    out = tmp_path / "results"
    result = _bench(
        *_small_run(kafka_bootstrap, tmp_path, "enforcer-ledger", "at_least_once", "0.1")
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((out / "pipeline.json").read_text())
    [run] = results["runs"]
    assert run["pipeline"] == "enforcer-ledger"
    assert set(run) == RUN_KEYS | {"ledger", "gc"}
    assert run["exit_status"] == 0
    assert run["latency_missing"] == 0
    assert (run["outcomes"]["missing"], run["outcomes"]["duplicates"]) == (0, 0)
    ledger = results["workload"]["ledger"]
    assert run["ledger"]["records"] == ledger["records"] > 0
    assert run["ledger"]["identifiers"] == ledger["identifiers"] >= ledger["records"]
    assert (
        "| enforcer run, ledger on | at-least-once | 100 ms |" in (out / "pipeline.md").read_text()
    )


def test_the_restore_benchmark_reads_log_and_metrics(kafka_bootstrap: str, tmp_path: Path) -> None:
    """``python -m bench.pipeline.restore`` on a tiny ledger: every identifier restored,
    the log and /metrics agree, and the table has the empty baseline and the size."""
    result = _bench(
        "bench.pipeline.restore",
        f"--bootstrap={kafka_bootstrap}",
        "--identifiers=300",
        f"--out={tmp_path}",
        f"--work-dir={tmp_path / 'work'}",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    empty, sized = json.loads((tmp_path / "ledger_restore.json").read_text())["runs"]
    assert empty["restored_identifiers"] == 0
    assert sized["restored_identifiers"] == sized["metrics_identifiers"] == 300
    assert sized["restored_records"] == sized["metrics_restored_records"] == 100
    assert sized["rss_mib"] > 0
    assert "| 300 | 100 |" in (tmp_path / "ledger_restore.md").read_text()


def test_the_formats_rows_run_on_the_same_events_through_a_registry(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The formats rows alone: the run starts its own schema registry, both rows drain
    the same account events (as identity events and framed in Avro), each input has
    exactly one outcome (the framed ones traced by their schema), the paced records all
    arrive, and the Avro target is in the results."""
    out = tmp_path / "results"
    result = _bench(
        *_small_run(
            kafka_bootstrap, tmp_path, "enforcer-contacts,enforcer-avro", "exactly_once", "1"
        )
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((out / "pipeline.json").read_text())
    runs = {run["pipeline"]: run for run in results["runs"]}
    assert set(runs) == {"enforcer-contacts", "enforcer-avro"}
    for run in runs.values():
        assert run["exit_status"] == 0
        assert run["latency_missing"] == 0
        check = run["outcomes"]
        assert (check["missing"], check["duplicates"], check["unexpected"]) == (0, 0, 0)
        assert check["inputs"] == 300 + 100
    # The same events, the same decisions: equal counts of each outcome.
    contacts, avro = runs["enforcer-contacts"]["outcomes"], runs["enforcer-avro"]["outcomes"]
    for kind in ("forwarded", "dropped", "deadlettered"):
        assert contacts[kind] == avro[kind]
    assert contacts["deadlettered"] == 0 < contacts["dropped"]
    assert (
        results["workload"]["formats"]["avro_bytes"]
        < results["workload"]["formats"]["identity_bytes"]
    )
    [target] = results["targets"]
    assert target["target"] == "enforcer run, Avro / identity events"


def test_the_steady_exposure_rows_start_from_a_seeded_exposure(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The steady-state rows alone: both drain the stream with stable identifiers; the
    exposure row's worker restores the seed whole before its clock starts and, deciding
    the same accounts with the same identifiers, writes no exposure record; every input
    has exactly one outcome; the steady target is in the results."""
    out = tmp_path / "results"
    seeded_on = datetime.now(UTC).date()
    result = _bench(
        *_small_run(
            kafka_bootstrap,
            tmp_path,
            "enforcer-steady,enforcer-exposure-steady",
            "exactly_once",
            "1",
        )
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((out / "pipeline.json").read_text())
    runs = {run["pipeline"]: run for run in results["runs"]}
    assert set(runs) == {"enforcer-steady", "enforcer-exposure-steady"}
    for run in runs.values():
        assert run["exit_status"] == 0
        assert run["latency_missing"] == 0
        check = run["outcomes"]
        assert (check["missing"], check["duplicates"], check["unexpected"]) == (0, 0, 0)
        assert check["inputs"] == 300 + 100
    off, on = runs["enforcer-steady"]["outcomes"], runs["enforcer-exposure-steady"]["outcomes"]
    for kind in ("forwarded", "dropped", "deadlettered"):
        assert off[kind] == on[kind]
    exposure = runs["enforcer-exposure-steady"]["exposure"]
    assert exposure["restored_records"] == exposure["seeded_records"] > 0
    assert exposure["restored_identifiers"] == exposure["seeded_identifiers"]
    if datetime.now(UTC).date() == seeded_on:
        # Seeded and decided on one UTC day: nothing new to write. A forward on a later
        # day moves each subject's last-forwarded day, and is written (docs/exposure.md).
        assert exposure["writes_drain"] == exposure["writes"] == 0
    [target] = results["targets"]
    assert target["target"] == "enforcer run, exposure on / off, steady state"


def _small_run(
    bootstrap: str, tmp_path: Path, pipelines: str, guarantee: str, interval: str
) -> list[str]:
    """``bench.pipeline``'s arguments for a run of 300 records and 100 paced ones through
    ``pipelines`` alone, without the Kafka tools or the memory run, its results in
    ``tmp_path/results`` and docs/benchmarks.md left alone."""
    return [
        "bench.pipeline",
        f"--bootstrap={bootstrap}",
        "--records=300",
        "--repeat=1",
        f"--pipelines={pipelines}",
        f"--guarantees={guarantee}",
        f"--intervals={interval}",
        "--latency-per-s=200",
        "--latency-seconds=0.5",
        "--kafka-tools-records=0",
        "--memory-records=0",
        f"--out={tmp_path / 'results'}",
        "--docs=-",
        f"--work-dir={tmp_path / 'work'}",
    ]
