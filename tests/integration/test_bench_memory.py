"""``bench/memory.py`` runs, in miniature: one worker drains a small backlog and the run's
JSON holds its peak memory, its CPU per record and the garbage collector's figures
scraped from ``/metrics``. Sizes and times are the benchmark's to judge, not this test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_drain_reports_memory_cpu_and_the_collector(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Every record is committed by a worker that exits 0; the figures are there."""
    out = tmp_path / "memory.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.memory",
            f"--bootstrap={kafka_bootstrap}",
            "--records=20000",
            "--partitions=2",
            f"--out={out}",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert run["records"] == 20000 and run["exit_status"] == 0
    assert run["peak_rss_mib"] > 0
    assert run["drain_s"] > 0
    gc = run["gc"]
    assert {f'enforcer_gc_collections_total{{generation="{g}"}}' for g in range(3)} <= set(gc)
    assert "enforcer_gc_pause_seconds_total" in gc
    assert 'python_gc_collections_total{generation="0"}' in gc
