"""The cyclic garbage collector, by design rather than switched off.

Three things keep its work small and visible:

- :func:`freeze_startup_objects`, once the worker is built: the policy, the compiled
  rules, the imported modules and the clients live as long as the process, and a full
  collection would otherwise walk all of them again each time. Frozen, they are never
  scanned; collections still run and still free cycles made later.
- :func:`collect_young_less_often`: Python collects its youngest generation every 700
  net allocations, which in the engine is every hundred records or so, each time
  walking the batch being decided (alive, not garbage) and promoting it to be walked
  again. Every :data:`YOUNG_COLLECTION_EVERY` allocations instead, nearly everything
  a batch makes has been freed by reference counting before a collection sees it: a
  worker measured spending a tenth of the time in collections as before, at the same
  memory (docs/benchmarks.md). Cycles are still collected, a little later.
- :func:`kept_small`, the first two for the length of a ``with`` block: the worker's
  loop, and a command that reads a whole history in one process (``enforcer remediate
  plan``), where the same reasons hold: full collections walking the imported modules
  again and again cost ``remediate plan`` about a tenth of its time (docs/remediate.md,
  "What it costs").
- :class:`CollectionTimer`, a ``gc.callbacks`` hook counting collections per generation
  and the time spent in them, for ``enforcer_gc_collections_total`` and
  ``enforcer_gc_pause_seconds_total`` (docs/operations.md: metrics).

The engine itself keeps little alive between batches (counts, not outcomes, wait for a
commit: :class:`enforcer.outputs.metrics.BatchCounts`), so most objects die young.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: a command using kept_small need not load the metrics
    from enforcer.outputs.metrics import GcStats


class CollectionTimer:
    """Counts each collection and its pause into ``stats`` (a ``gc.callbacks`` entry).

    The collector calls it with the GIL held and never runs two collections at once,
    so one start time is enough, whichever thread set a collection off."""

    def __init__(self, stats: GcStats, clock: Callable[[], float] = time.perf_counter) -> None:
        self.stats = stats
        self._clock = clock
        self._started: float | None = None

    def __call__(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        started, self._started = self._started, None
        if started is None:  # installed during a collection
            return
        stats = self.stats
        stats.collections[info["generation"]] += 1
        stats.pause_seconds += self._clock() - started

    def install(self) -> None:
        """Start counting."""
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        """Stop counting."""
        if self in gc.callbacks:
            gc.callbacks.remove(self)


YOUNG_COLLECTION_EVERY = 10_000
"""Net allocations between collections of the youngest generation (Python: 700)."""


def collect_young_less_often() -> tuple[int, int, int]:
    """Collect the youngest generation every :data:`YOUNG_COLLECTION_EVERY` allocations
    (the older generations as before); return the thresholds it replaced."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)
    return young, middle, old


def restore_thresholds(thresholds: tuple[int, int, int]) -> None:
    """Put back what :func:`collect_young_less_often` returned."""
    gc.set_threshold(*thresholds)


def freeze_startup_objects() -> int:
    """Collect what start-up left behind, then move every object alive now out of the
    collector's sight (``gc.freeze``); return how many were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def unfreeze() -> None:
    """Hand the frozen objects back to the collector (the worker has stopped; a caller
    that runs another one in the same process starts from scratch)."""
    gc.unfreeze()


@contextmanager
def kept_small() -> Iterator[int]:
    """For the ``with`` block: what is alive now frozen (how many objects: the value
    of the block), the youngest generation collected less often; then both as they
    were."""
    thresholds = collect_young_less_often()
    frozen = freeze_startup_objects()
    try:
        yield frozen
    finally:
        unfreeze()
        restore_thresholds(thresholds)
