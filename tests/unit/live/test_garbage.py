"""The garbage collector's work made visible (docs/operations.md: metrics) and start-up
objects kept out of its way."""

from __future__ import annotations

import gc

from prometheus_client.parser import text_string_to_metric_families

from enforcer.core.clock import FixedClock
from enforcer.core.models import Mode
from enforcer.live.garbage import (
    YOUNG_COLLECTION_EVERY,
    CollectionTimer,
    collect_young_less_often,
    freeze_startup_objects,
    kept_small,
    restore_thresholds,
    unfreeze,
)
from enforcer.live.http import prometheus_text
from enforcer.outputs.metrics import GcStats, MetricsRecorder

from ..conftest import NOW


class Ticks:
    """A clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_collections_are_counted_per_generation_with_their_pauses() -> None:
    """Every collection while installed counts once in its generation, and its pause is
    the time between the collector's start and stop calls; none once removed."""
    timer = CollectionTimer(GcStats(), Ticks())
    timer.install()
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        timer.remove()
    young, middle, full = timer.stats.collections
    assert young >= 1 and full >= 1 and middle >= 0
    assert timer.stats.pause_seconds == sum(timer.stats.collections)  # one tick each
    before = list(timer.stats.collections)
    gc.collect(2)
    assert timer.stats.collections == before


def test_start_up_objects_are_frozen_until_the_worker_stops() -> None:
    """What exists when the loop starts is out of the collector's sight; handed back
    afterwards."""
    kept = [{"startup": n} for n in range(100)]
    try:
        assert freeze_startup_objects() >= len(kept)
        assert gc.get_freeze_count() >= len(kept)
    finally:
        unfreeze()
    assert gc.get_freeze_count() == 0


def test_the_collector_s_work_is_scraped_and_in_the_snapshot() -> None:
    """enforcer_gc_collections_total per generation and enforcer_gc_pause_seconds_total,
    and the snapshot's gc object, read the same figures."""
    recorder = MetricsRecorder("w1", "v1", Mode.ENFORCE, FixedClock(NOW), lambda: 0.0)
    scraped = prometheus_text(recorder, []).decode()
    assert 'enforcer_gc_collections_total{generation="2"} 0.0' in scraped
    assert recorder.snapshot([]).gc is None
    recorder.gc = GcStats([30, 4, 1], 0.125)
    samples = {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in text_string_to_metric_families(prometheus_text(recorder, []).decode())
        for sample in family.samples
    }
    assert samples[("enforcer_gc_collections_total", ("0",))] == 30
    assert samples[("enforcer_gc_collections_total", ("1",))] == 4
    assert samples[("enforcer_gc_collections_total", ("2",))] == 1
    assert samples[("enforcer_gc_pause_seconds_total", ())] == 0.125
    snapshot = recorder.snapshot([]).gc
    assert snapshot is not None
    assert snapshot.collections_by_generation == {"0": 30, "1": 4, "2": 1}
    assert snapshot.pause_seconds == 0.125


def test_the_youngest_generation_is_collected_less_often_until_the_worker_stops() -> None:
    """Thresholds of 10,000 net allocations for the youngest generation while the loop
    runs (the older ones unchanged); Python's own afterwards."""
    before = gc.get_threshold()
    replaced = collect_young_less_often()
    try:
        assert replaced == before
        assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, before[1], before[2])
        assert YOUNG_COLLECTION_EVERY == 10_000
    finally:
        restore_thresholds(replaced)
    assert gc.get_threshold() == before


def test_a_long_read_keeps_the_collector_small_for_its_block_only() -> None:
    """``kept_small`` (remediate plan's read of a history): start-up frozen and the
    youngest generation collected less often inside the block, both as before after
    it, an exception included."""
    before = gc.get_threshold()
    kept = [{"startup": n} for n in range(100)]
    try:
        with kept_small():
            assert gc.get_freeze_count() >= len(kept)
            assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, before[1], before[2])
            raise LookupError
    except LookupError:
        pass
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
