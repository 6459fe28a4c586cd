"""The dead-letter guard's lines carry the trace id of a dead-lettered record
(docs/operations.md: logs), asked for only when the guard trips."""

from __future__ import annotations

import logging

import pytest

from enforcer.config.logs import TRACE_ID
from enforcer.live.guard import DeadLetterGuard, DeadLetterRateExceededError


def _traceparent(index: int) -> str:
    return f"00-{index + 1:032x}-00f067aa0ba902b7-01"


class Asked:
    """``traceparent_of`` that remembers which records it was asked about."""

    def __init__(self) -> None:
        self.indexes: list[int] = []

    def __call__(self, index: int) -> str | None:
        self.indexes.append(index)
        return _traceparent(index)


def test_the_stop_carries_the_last_dead_letters_traceparent() -> None:
    """Enforce: the error names the batch's last dead-lettered record (index 2, not the
    passed record 3 after it); nothing is asked while the guard does not trip."""
    guard = DeadLetterGuard(0.5, 4)
    asked = Asked()
    guard.check([True, False], asked)
    assert asked.indexes == []  # no trip, no cost
    with pytest.raises(DeadLetterRateExceededError) as raised:
        guard.check([True, True, False], asked)
    assert asked.indexes == [1]
    assert raised.value.traceparent == _traceparent(1)


def test_a_batch_that_trips_without_its_own_dead_letter_names_no_trace() -> None:
    """The window fills with a passed record while the share is already over the limit:
    no dead letter of this batch to name, so no trace id rather than a wrong one."""
    guard = DeadLetterGuard(0.5, 4)
    guard.check([True, True, True])
    asked = Asked()
    with pytest.raises(DeadLetterRateExceededError) as raised:
        guard.check([False], asked)
    assert (asked.indexes, raised.value.traceparent) == ([], None)


def test_the_audit_warning_carries_trace_id(caplog: pytest.LogCaptureFixture) -> None:
    """Audit: the would-be trip's warning has ``trace.id`` (the 32 hex of the trace)."""
    guard = DeadLetterGuard(0.5, 2, stops=False)
    with caplog.at_level(logging.WARNING, logger="enforcer.guard"):
        guard.check([True, True], Asked())
    (line,) = caplog.records
    assert getattr(line, TRACE_ID) == f"{2:032x}"
    assert guard.trips == 1
