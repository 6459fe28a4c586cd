"""The dead-letter guard: a bad deploy must not dead-letter the whole stream.

Pure: it sees, per record, whether it was (or in audit mode would have been)
dead-lettered, nothing else. When the share of dead letters among the most recent
records exceeds the limit (once the window is full), it trips: in enforce mode the
worker stops; in audit mode (``stops=False``) nothing may change what flows, so the
trip is only counted, once each time the share rises over the limit.

The line that says so carries ``trace.id`` of the batch's last dead-lettered record when
that record had a W3C ``traceparent``: asked for only when the guard trips, so the
hot path pays nothing for it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable

from enforcer.config.logs import trace_fields

log = logging.getLogger("enforcer.guard")


class DeadLetterRateExceededError(RuntimeError):
    """Too many recent records were dead-lettered; the worker stops."""

    def __init__(self, message: str, traceparent: str | None = None) -> None:
        super().__init__(message)
        self.traceparent = traceparent
        """The ``traceparent`` of the batch's last dead-lettered record, if it had one."""


class DeadLetterGuard:
    """Tracks the last ``window`` records and whether each was dead-lettered."""

    def __init__(self, max_ratio: float, window: int, *, stops: bool = True) -> None:
        self.max_ratio = max_ratio
        self.window = window
        self.stops = stops
        self.trips = 0
        """Times the guard tripped (in audit mode: would have stopped the worker)."""
        self._recent: deque[bool] = deque(maxlen=window)
        self._dead = 0
        self._over = False

    def check(
        self,
        dead_lettered: Iterable[bool],
        traceparent_of: Callable[[int], str | None] | None = None,
    ) -> None:
        """Record a batch; raise when the window's share of dead letters is too high
        (only counted when the guard does not stop the worker).

        A record that trips the guard has been counted, and the caller must not
        commit the batch: after a fix, the same records are decided again.
        ``traceparent_of(i)``: the ``i``-th record's trace context, asked on a trip only.
        """
        recent = self._recent
        last_dead = -1
        for index, dead in enumerate(dead_lettered):
            if dead:
                last_dead = index
            if len(recent) == self.window and recent[0]:
                self._dead -= 1
            recent.append(dead)
            self._dead += dead
            over = len(recent) == self.window and self._dead > self.max_ratio * self.window
            if over and not self._over:
                self.trips += 1
                trace = None
                if traceparent_of is not None and last_dead >= 0:
                    trace = traceparent_of(last_dead)
                if self.stops:
                    raise DeadLetterRateExceededError(
                        f"{self._dead} of the last {self.window} records were dead-lettered "
                        f"(limit {self.max_ratio:.0%}, ENFORCER_DEADLETTER_MAX_RATIO); "
                        "stopping before committing them: check the producer of the source "
                        "topic and the policy, then restart",
                        trace,
                    )
                log.warning(
                    "audit: %d of the last %d records would have been dead-lettered (limit "
                    "%.0f%%); enforce mode would stop here, this auditing worker goes on",
                    self._dead,
                    self.window,
                    self.max_ratio * 100,
                    extra=trace_fields(trace),
                )
            self._over = over
