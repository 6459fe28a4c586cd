"""The live engine's pure parts: transaction positions, error remedies, health."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from enforcer.live.failures import Remedy, remedy_for
from enforcer.live.health import Health
from enforcer.live.output import RenewalBudget
from enforcer.live.positions import TransactionPositions


def test_positions_commit_the_next_offset_and_rewind_to_the_first() -> None:
    """A commit stores the offset after the last record read; a rewind goes back to
    the first record read since the last commit, per partition."""
    positions = TransactionPositions()
    for offset in (5, 6, 7):
        positions.advance("t", 0, offset)
    positions.advance("t", 1, 40)
    assert positions.to_commit() == {("t", 0): 8, ("t", 1): 41}
    assert positions.to_rewind() == {("t", 0): 5, ("t", 1): 40}
    positions.clear()
    assert not positions and positions.to_commit() == {}


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000)), min_size=1))
def test_positions_for_any_reading_order(reads: list[tuple[int, int]]) -> None:
    """Whatever was read, per partition: commit = last read + 1, rewind = first read."""
    positions = TransactionPositions()
    for partition, offset in reads:
        positions.advance("t", partition, offset)
    for partition in {p for p, _ in reads}:
        offsets = [o for p, o in reads if p == partition]
        assert positions.to_commit()[("t", partition)] == offsets[-1] + 1
        assert positions.to_rewind()[("t", partition)] == offsets[0]
    assert len(positions) == len({p for p, _ in reads})


@dataclass
class _Error:
    is_fatal: bool = False
    is_retriable: bool = False
    needs_abort: bool = False

    def fatal(self) -> bool:
        return self.is_fatal

    def retriable(self) -> bool:
        return self.is_retriable

    def txn_requires_abort(self) -> bool:
        return self.needs_abort

    def name(self) -> str:
        return "TEST"


@given(st.booleans(), st.booleans(), st.booleans())
def test_remedies(fatal: bool, retriable: bool, abort: bool) -> None:
    """Fatal stops whatever else is set; an abortable error aborts (even if retriable:
    retrying a commit that must abort would only fail again); retriable retries; an
    error with no flag stops, since nothing says it can be fixed by trying again."""
    remedy = remedy_for(_Error(fatal, retriable, abort))
    if fatal:
        assert remedy is Remedy.STOP
    elif abort:
        assert remedy is Remedy.ABORT
    elif retriable:
        assert remedy is Remedy.RETRY
    else:
        assert remedy is Remedy.STOP


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_worker_without_partitions_is_a_ready_standby() -> None:
    """Ready once started, with or without partitions; not before, not while stopping."""
    clock = _Clock()
    health = Health(clock, stalled_after_s=30)
    assert not health.ready().ok
    health.on_started()
    assert health.ready().ok
    assert health.ready().detail["assigned_partitions"] == 0
    health.on_assigned([("t", 1), ("t", 0)])
    assert health.assigned == (("t", 0), ("t", 1))
    assert health.ready().detail["assigned_partitions"] == 2
    health.stopping = True
    assert not health.ready().ok


def test_a_stalled_loop_or_a_fatal_error_is_unhealthy() -> None:
    """Alive while the loop goes round; not once it stalls past the limit, nor after a
    fatal error, which /healthz then names."""
    clock = _Clock()
    health = Health(clock, stalled_after_s=30)
    health.on_started()
    clock.now += 29
    assert health.alive().ok
    clock.now += 2
    assert not health.alive().ok and health.alive().detail["stalled"] is True
    health.on_loop()
    assert health.alive().ok
    health.on_fatal("commit failed: PRODUCER_FENCED")
    status = health.alive()
    assert not status.ok and status.detail["fatal"] == "commit failed: PRODUCER_FENCED"
    assert not health.ready().ok


def test_commits_and_aborts_are_counted() -> None:
    """The counters the metrics expose."""
    health = Health(_Clock(), stalled_after_s=30)
    health.on_commit()
    health.on_commit()
    health.on_abort()
    health.on_assigned([])
    assert (health.commits, health.aborts, health.rebalances) == (2, 1, 1)


def test_the_producer_is_replaced_at_most_so_often() -> None:
    """Three renewals in five minutes are allowed, a fourth is refused, and the window
    slides: once the first has aged out, one more is allowed again."""
    clock = _Clock()
    budget = RenewalBudget(3, 300.0, clock)
    assert [budget.allow() for _ in range(3)] == [True, True, True]
    assert not budget.allow()
    clock.now += 301
    assert budget.allow()


def test_records_waiting_for_a_commit_are_timed_until_one_goes_through() -> None:
    """From the first uncommitted work (or abort) until a commit: that is how long the
    worker has made no progress; a revocation takes the work away with the partitions."""
    clock = _Clock()
    health = Health(clock, stalled_after_s=30)
    assert health.uncommitted_for() == 0
    health.on_work()
    clock.now += 5
    health.on_abort("commit: _TIMED_OUT")
    health.on_work()
    clock.now += 7
    assert health.uncommitted_for() == 12
    assert health.last_failure == "commit: _TIMED_OUT"
    health.on_commit()
    assert health.uncommitted_for() == 0
    health.on_abort("lost")
    clock.now += 3
    health.on_revoked()
    assert health.uncommitted_for() == 0
