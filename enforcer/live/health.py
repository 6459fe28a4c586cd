"""Liveness and readiness of a worker, from what its loop reports. Pure: the clock
is passed in, and the loop (or a test) calls the ``on_*`` methods.

- alive (``/healthz``): the loop has gone round recently and nothing fatal happened.
  A loop that stops going round (stuck in a client call, a hung broker) turns it
  unhealthy, so an orchestrator restarts the worker.
- ready (``/readyz``): started (transactions registered, subscribed) and not stopping.
  A worker without partitions is a ready standby: with more workers than partitions,
  a rolling update's new pod must still become ready for the rollout to go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple


class Status(NamedTuple):
    """An answer of a health check: whether it passes, and why (JSON-able details)."""

    ok: bool
    detail: dict[str, Any]


class Health:
    """What the loop last reported, and the verdicts drawn from it."""

    def __init__(self, monotonic: Callable[[], float], stalled_after_s: float) -> None:
        self._monotonic = monotonic
        self._stalled_after_s = stalled_after_s
        self.started = False
        self.stopping = False
        self.fatal: str | None = None
        self.assigned: tuple[tuple[str, int], ...] = ()
        self._last_loop = monotonic()
        self._last_commit: float | None = None
        self.commits = 0
        self.aborts = 0
        self.rebalances = 0
        self._work_since: float | None = None
        self.last_failure: str | None = None
        """Why the last transaction was aborted, for the line that says a worker is stuck."""
        self.doing = "starting"
        """What the loop is doing now (a client call may block): named when it stalls."""
        self.schema_registry_down: str | None = None
        """Why the schema registry cannot be reached, while records wait for it: shown
        in ``/healthz`` (still alive until the registry's deadline) and in metrics."""
        self.security_override: str | None = None
        """The policy's stated reason when it lets security-only identifiers through
        (docs/policy.md: the security guardrail): shown in ``/readyz``, not a failure."""
        self.policy_version: str | None = None
        """The version of the policy in force (the SHA-256 of its file's content; it
        changes with a hot reload): shown in ``/readyz``."""

    def on_started(self) -> None:
        """Transactions registered and subscribed: the worker can take partitions."""
        self.started = True
        self._last_loop = self._monotonic()

    def on_loop(self) -> None:
        """The loop went round once (it does at least every batch wait)."""
        self._last_loop = self._monotonic()

    def on_assigned(self, partitions: Iterable[tuple[str, int]]) -> None:
        """The group gave this worker these partitions (eager: the whole assignment)."""
        self.assigned = tuple(sorted(partitions))
        self.rebalances += 1

    def on_work(self) -> None:
        """Records were decided that a commit has yet to cover."""
        if self._work_since is None:
            self._work_since = self._monotonic()

    def on_commit(self) -> None:
        """A transaction (or an at-least-once commit) went through."""
        self.commits += 1
        self._last_commit = self._monotonic()
        self._work_since = None

    def on_abort(self, reason: str = "aborted") -> None:
        """A transaction was aborted; its records are decided again (still to commit)."""
        self.aborts += 1
        self.last_failure = reason
        self.on_work()

    def on_revoked(self) -> None:
        """The worker's partitions were taken back, or lost: their work went with them."""
        self.assigned = ()
        self._work_since = None

    def uncommitted_for(self) -> float:
        """Seconds since records began waiting for a commit (0 when none wait)."""
        if self._work_since is None:
            return 0.0
        return self._monotonic() - self._work_since

    def on_fatal(self, cause: str) -> None:
        """The worker cannot go on; ``cause`` is the one-line reason."""
        self.fatal = cause

    def alive(self) -> Status:
        """Liveness: nothing fatal, and the loop went round within the stall limit."""
        since_loop = self._monotonic() - self._last_loop
        stalled = since_loop > self._stalled_after_s
        ok = self.fatal is None and not stalled
        detail: dict[str, Any] = {"loop_seconds_ago": round(since_loop, 3), "commits": self.commits}
        if self.fatal is not None:
            detail["fatal"] = self.fatal
        if stalled:
            detail["stalled"] = True
            detail["stalled_in"] = self.doing
        if self.schema_registry_down is not None:
            detail["waiting_for_schema_registry"] = self.schema_registry_down
        return Status(ok, detail)

    def stalled_for(self) -> float:
        """Seconds since the loop last went round."""
        return self._monotonic() - self._last_loop

    def ready(self) -> Status:
        """Readiness: started, not stopping, nothing fatal; partitions not required."""
        ok = self.started and not self.stopping and self.fatal is None
        detail: dict[str, Any] = {
            "started": self.started,
            "stopping": self.stopping,
            "assigned_partitions": len(self.assigned),
            "security_override": self.security_override is not None,
        }
        if self.policy_version is not None:
            detail["policy_version"] = self.policy_version
        if self.security_override is not None:
            detail["security_override_reason"] = self.security_override
        return Status(ok, detail)
