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
from pathlib import Path

from enforcer.testing.kafka_broker import DEFAULT_KAFKA_VERSION

REPO_ROOT = Path(__file__).resolve().parents[2]
PIPELINES = ("raw-aiokafka", "raw-confluent", "confluent-step", "quix-step", "enforcer")
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
}
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
    """Every pipeline drains its backlog and delivers its paced records; the JSON and the
    markdown table are written where asked, and docs/benchmarks.md is left alone."""
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
            f"--out={out}",
            "--docs=-",
            f"--work-dir={tmp_path / 'work'}",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    results = json.loads((out / "pipeline.json").read_text())
    assert {"started_at", "duration_s", "machine", "workload", "kafka_tools", "runs"} <= set(
        results
    )
    assert "targets" in results
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
        assert set(run) == RUN_KEYS, run["pipeline"]
        assert run["guarantee"] == "exactly_once"
        assert run["exit_status"] == 0, run["pipeline"]
        assert run["latency_missing"] == 0, run["pipeline"]
        assert run["latency_p50_ms"] is not None, run["pipeline"]
    assert "| enforcer | exactly-once | 100 ms |" in (out / "pipeline.md").read_text()
