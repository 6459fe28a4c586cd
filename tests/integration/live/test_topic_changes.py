"""A worker never decides against a ledger it no longer follows (docs/operations.md):
partitions added to the ledger, the ledger deleted, the ledger re-created and
rewritten, and a deleted output each stop the worker within 30 s with one line naming
the topic and the change, ``/healthz`` unhealthy first; nothing decided after the
change is committed, and a restart follows the new topic or refuses, exit 2.

Each test prints how long the worker took from the change to its stop line.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request

import orjson
import pytest
from aiokafka.partitioner import murmur2

from enforcer.testing.consume import ReadRecord, read_committed
from enforcer.testing.kafka_broker import free_port
from enforcer.testing.ledger import ledger_value, produce_ledger
from enforcer.testing.topics import (
    add_partitions,
    create_topics,
    delete_topics,
    wait_until_deleted,
)
from enforcer.testing.worker import (
    Deployment,
    EnforcerWorker,
    end_offsets_of,
    produce,
    wait_for_commits,
)

from .test_ledger_live import ADS, MFA, T0, deployment, event, ledger_topic

__all__ = ["deployment"]  # the fixture, shared with the ledger's other live tests

pytestmark = pytest.mark.timeout(240)

STOP_LINE = "enforcer stopping: "
WITHDRAWN_AT = "2026-11-03T00:00:00Z"


def _partition(subject: str, partitions: int) -> int:
    """The partition a keyed record goes to (the Java client's and aiokafka's rule)."""
    digest: int = murmur2(subject.encode())
    return (digest & 0x7FFFFFFF) % partitions


class HealthPoller:
    """Polls ``/healthz`` in a thread of its own; remembers when it first saw a 503."""

    def __init__(self, port: int) -> None:
        self._url = f"http://127.0.0.1:{port}/healthz"
        self._done = threading.Event()
        self.unhealthy_at: float | None = None
        self.fatal: str | None = None
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(5)

    def _poll(self) -> None:
        while not self._done.wait(0.02) and self.unhealthy_at is None:
            try:
                with urllib.request.urlopen(self._url, timeout=1):  # noqa: S310 - loopback
                    continue
            except urllib.error.HTTPError as error:
                self.unhealthy_at = time.monotonic()
                self.fatal = orjson.loads(error.read()).get("fatal")
            except OSError:
                continue  # not serving (yet, or any more)


async def stop_line(worker: EnforcerWorker, *, timeout_s: float = 45.0) -> tuple[str, float]:
    """The worker's stop line, and the monotonic time it was first seen in its log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert worker.log_path is not None
        lines = [
            line
            for line in worker.log_path.read_text(errors="replace").splitlines()
            if STOP_LINE in line
        ]
        if lines:
            return lines[0], time.monotonic()
        if not worker.running:
            pytest.fail(f"exit {worker.returncode} without a stop line\n{worker.log_tail()}")
        await asyncio.sleep(0.05)
    pytest.fail(f"no stop line within {timeout_s:.0f}s\n{worker.log_tail()}")


def _event_ids(records: list[ReadRecord]) -> set[str]:
    return {
        document["event_id"]
        for document in (orjson.loads(r.value or b"{}") for r in records)
        if "event_id" in document
    }


async def _running_with_grants(
    deployment: Deployment, subjects: list[str]
) -> tuple[EnforcerWorker, int]:
    """A worker that has committed one advertising event per subject, each granted
    advertising by the ledger (so each was forwarded); and its HTTP port."""
    bootstrap = deployment.bootstrap
    grants = [(s, ledger_value(s, T0, [("email", f"{s}@example.org", ADS)])) for s in subjects]
    await produce_ledger(bootstrap, ledger_topic(deployment), grants)
    first = [event(f"a-{s}", s, [("email", f"{s}@example.org", ADS)]) for s in subjects]
    inputs = await produce(bootstrap, deployment.topics.source, first)
    port = free_port()
    worker = deployment.worker("one", {"ENFORCER_HTTP_PORT": str(port)})
    worker.start()
    await wait_for_commits(
        bootstrap,
        deployment.group_id,
        deployment.topics.source,
        until=end_offsets_of(inputs),
        timeout_s=90,
        alive=[worker],
    )
    return worker, port


async def _after_change_events(deployment: Deployment, subjects: list[str]) -> list[bytes]:
    """Advertising events, one per subject, sent after the change."""
    values = [event(f"b-{s}", s, [("email", f"{s}@example.org", ADS)]) for s in subjects]
    await produce(deployment.bootstrap, deployment.topics.source, values)
    return values


def _assert_stopped_in_time(
    worker: EnforcerWorker, poller: HealthPoller, changed: float, line: str, seen: float
) -> None:
    """Exit 1 with one stop line, no traceback, within 30 s of the change; /healthz,
    when the poller caught it failing, named the same cause. (That it fails before the
    line is written is the watch's order, checked in tests/unit/live/test_watch.py:
    two pollers cannot tell milliseconds apart.)"""
    assert worker.wait_exit(30) == 1, worker.log_tail()
    tail = worker.log_tail(200)
    assert tail.count(STOP_LINE) == 1, tail
    assert "Traceback" not in tail
    assert seen - changed < 30, (seen - changed, line)
    if poller.unhealthy_at is not None:
        assert poller.fatal is not None and poller.fatal in line
    print(
        f"change -> stop line {seen - changed:.1f}s; /healthz 503 "
        + (f"{poller.unhealthy_at - changed:.1f}s" if poller.unhealthy_at else "not caught")
    )


async def test_partitions_added_to_the_ledger_stop_the_worker(deployment: Deployment) -> None:
    """Grown 3 -> 5 while running: withdrawals written to the new layout are never
    read, so the worker stops rather than forward what they forbid; a restart refuses."""
    bootstrap, ledger = deployment.bootstrap, ledger_topic(deployment)
    # Subjects whose ledger records go to a new partition once there are five.
    moved = [s for s in (f"s-{i}" for i in range(400)) if _partition(s, 5) >= 3][:20]
    worker, port = await _running_with_grants(deployment, moved)
    with HealthPoller(port) as poller:
        await add_partitions(bootstrap, ledger, 5)
        changed = time.monotonic()
        withdrawals = [
            (s, ledger_value(s, WITHDRAWN_AT, [("email", f"{s}@example.org", MFA)])) for s in moved
        ]
        await produce_ledger(bootstrap, ledger, withdrawals)
        await _after_change_events(deployment, moved)
        line, seen = await stop_line(worker)
        _assert_stopped_in_time(worker, poller, changed, line, seen)
    assert f"the ledger topic '{ledger}' now has 5 partition(s), had 3" in line, line
    sink = await read_committed(bootstrap, deployment.topics.sink, expected=len(moved))
    assert _event_ids(sink) == {f"a-{s}" for s in moved}  # nothing after the withdrawals
    worker.start()
    assert worker.wait_exit(60) == 2, worker.log_tail()
    assert "has 5 partition(s)" in worker.log_tail(), worker.log_tail()


async def test_a_deleted_ledger_stops_the_worker(deployment: Deployment) -> None:
    """Deleted while running: the worker stops instead of deciding on its last state;
    nothing sent after the deletion is forwarded; a restart refuses, naming it."""
    bootstrap, ledger = deployment.bootstrap, ledger_topic(deployment)
    subjects = [f"s-{i}" for i in range(12)]
    worker, port = await _running_with_grants(deployment, subjects)
    with HealthPoller(port) as poller:
        await delete_topics(bootstrap, [ledger])
        changed = time.monotonic()
        await wait_until_deleted(bootstrap, [ledger])
        await _after_change_events(deployment, subjects)
        line, seen = await stop_line(worker)
        _assert_stopped_in_time(worker, poller, changed, line, seen)
    assert f"the ledger topic '{ledger}' was deleted (UNKNOWN_TOPIC_OR_PART)" in line, line
    sink = await read_committed(bootstrap, deployment.topics.sink, expected=len(subjects))
    assert _event_ids(sink) == {f"a-{s}" for s in subjects}
    worker.start()
    assert worker.wait_exit(60) == 2, worker.log_tail()
    assert f"ledger topic '{ledger}'" in worker.log_tail(), worker.log_tail()


async def test_a_re_created_and_rewritten_ledger_is_followed_after_a_restart(
    deployment: Deployment,
) -> None:
    """Deleted, created again (same count) and rewritten with withdrawals: the worker
    stops, and once restarted it restores the new topic, so every later event of a
    subject who withdrew is stopped (purpose-not-granted), none forwarded."""
    bootstrap, ledger = deployment.bootstrap, ledger_topic(deployment)
    subjects = [f"s-{i}" for i in range(12)]
    worker, port = await _running_with_grants(deployment, subjects)
    with HealthPoller(port) as poller:
        await delete_topics(bootstrap, [ledger])
        changed = time.monotonic()
        await wait_until_deleted(bootstrap, [ledger])
        await create_topics(bootstrap, [ledger], 3, configs={"cleanup.policy": "compact"})
        withdrawals = [
            (s, ledger_value(s, WITHDRAWN_AT, [("email", f"{s}@example.org", MFA)]))
            for s in subjects
        ]
        await produce_ledger(bootstrap, ledger, withdrawals)
        later = await _after_change_events(deployment, subjects)
        line, seen = await stop_line(worker)
        _assert_stopped_in_time(worker, poller, changed, line, seen)
    # Seen between the deletion and the creation, it is a deletion; after, a new id.
    assert f"the ledger topic '{ledger}' was " in line, line
    assert "was re-created (topic id" in line or "was deleted" in line, line
    worker.start()
    await wait_for_commits(
        bootstrap,
        deployment.group_id,
        deployment.topics.source,
        at_least=len(subjects) + len(later),
        timeout_s=90,
        alive=[worker],
    )
    assert worker.stop() == 0, worker.log_tail()
    sink = await read_committed(bootstrap, deployment.topics.sink, expected=len(subjects))
    assert _event_ids(sink) == {f"a-{s}" for s in subjects}
    violations = await read_committed(
        bootstrap, deployment.topics.violations, expected=len(subjects)
    )
    rules = {
        document["event_id"]: document["findings"][0]["rule"]
        for document in (orjson.loads(v.value or b"") for v in violations)
    }
    assert rules == {f"b-{s}": "purpose-not-granted" for s in subjects}


async def test_a_deleted_sink_is_named_in_the_stop_line(deployment: Deployment) -> None:
    """The stop line names the deleted output and the broker's error, not a timed-out
    commit."""
    bootstrap = deployment.bootstrap
    subjects = [f"s-{i}" for i in range(12)]
    worker, port = await _running_with_grants(deployment, subjects)
    with HealthPoller(port) as poller:
        await delete_topics(bootstrap, [deployment.topics.sink])
        changed = time.monotonic()
        await wait_until_deleted(bootstrap, [deployment.topics.sink])
        await _after_change_events(deployment, subjects)
        line, seen = await stop_line(worker)
        _assert_stopped_in_time(worker, poller, changed, line, seen)
    sink = deployment.topics.sink
    assert f"the sink topic '{sink}' was deleted (UNKNOWN_TOPIC_OR_PART)" in line, line
    assert "_STATE" not in line and "_TIMED_OUT" not in line
