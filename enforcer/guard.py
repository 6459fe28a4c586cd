"""The dead-letter guard: a bad deploy must not dead-letter the whole stream.

Pure: it sees outcome kinds, nothing else. When the share of dead letters among the
most recent records exceeds the limit (once the window is full), it trips.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class DeadLetterRateExceededError(RuntimeError):
    """Too many recent records were dead-lettered; the worker stops."""


class DeadLetterGuard:
    """Tracks the last ``window`` records and whether each was dead-lettered."""

    def __init__(self, max_ratio: float, window: int) -> None:
        self.max_ratio = max_ratio
        self.window = window
        self._recent: deque[bool] = deque(maxlen=window)
        self._dead = 0

    def check(self, dead_lettered: Iterable[bool]) -> None:
        """Record a batch; raise when the window's share of dead letters is too high.

        A record that trips the guard has been counted, and the caller must not
        commit the batch: after a fix, the same records are decided again.
        """
        recent = self._recent
        for dead in dead_lettered:
            if len(recent) == self.window and recent[0]:
                self._dead -= 1
            recent.append(dead)
            self._dead += dead
            if len(recent) == self.window and self._dead > self.max_ratio * self.window:
                raise DeadLetterRateExceededError(
                    f"{self._dead} of the last {self.window} records were dead-lettered "
                    f"(limit {self.max_ratio:.0%}, ENFORCER_DEADLETTER_MAX_RATIO); "
                    "stopping before committing them: check the producer of the source "
                    "topic and the policy, then restart"
                )
