"""The garbage collector's work in an ``enforcer run`` worker, from its ``/metrics``.

Read once the drain is committed, so it covers the worker's whole life up to then
(start-up, group join and the drain). Preferred: the enforcer's own
``enforcer_gc_collections_total{generation}`` and ``enforcer_gc_pause_seconds_total``
(collections and the time spent in them, from ``gc.callbacks``); when a worker does not
have them, prometheus-client's default ``python_gc_collections_total{generation}``
(counts only: no pause time).
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

ENFORCER_COLLECTIONS = "enforcer_gc_collections_total"
ENFORCER_PAUSE = "enforcer_gc_pause_seconds_total"
DEFAULT_COLLECTIONS = "python_gc_collections_total"

_SERVING = re.compile(r"serving \S.* on [\d.]+:(\d+)")
"""The worker's log line naming its HTTP port."""


def metrics_url(log_path: Path | None) -> str | None:
    """The worker's ``/metrics`` address, from its log; ``None`` if it logged none."""
    if log_path is None or not log_path.exists():
        return None
    port = _SERVING.search(log_path.read_text(errors="replace"))
    return None if port is None else f"http://127.0.0.1:{port.group(1)}/metrics"


def scrape_gc(url: str) -> dict[str, Any]:
    """Collections per generation, their sum and the pause time (s) of the worker
    serving ``url``, and which metric they came from (blocking)."""
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (loopback http)
        return gc_work(answer.read().decode())


def gc_work(text: str) -> dict[str, Any]:
    """:func:`scrape_gc` of a Prometheus text exposition."""
    collections: dict[str, dict[str, float]] = {ENFORCER_COLLECTIONS: {}, DEFAULT_COLLECTIONS: {}}
    pause: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in collections:
                generation = sample.labels.get("generation", "?")
                collections[sample.name][generation] = sample.value
            elif sample.name == ENFORCER_PAUSE:
                pause = (pause or 0.0) + sample.value
    metric = ENFORCER_COLLECTIONS if collections[ENFORCER_COLLECTIONS] else DEFAULT_COLLECTIONS
    by_generation: Mapping[str, float] = collections[metric]
    return {
        "metric": metric,
        "collections": {g: int(n) for g, n in sorted(by_generation.items())},
        "collections_total": int(sum(by_generation.values())),
        "pause_s": None if pause is None else round(pause, 4),
    }
