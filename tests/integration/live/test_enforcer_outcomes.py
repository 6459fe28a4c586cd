"""`enforcer run` on the real broker: every outcome kind, keys, headers, order, audit mode, start-up
refusals and the dead-letter guard (docs/contract.md: topics, forwarded record, violation event,
dead letter, guarantees)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from enforcer.core.fingerprint import generate_key
from enforcer.core.models import ViolationEvent
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord
from enforcer.testing.consume import read_committed
from enforcer.testing.worker import (
    Deployment,
    EnforcerTopics,
    EnforcerWorker,
    check_outcomes,
    end_offsets_of,
    mixed_values,
    produce,
    wait_for_commits,
)

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def deployment(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    """A deployment with its own topics (3 partitions) and group; cleaned up after."""
    topics = EnforcerTopics.unique("outcomes")
    with Deployment(
        kafka_bootstrap, topics, f"group-{topics.source}", generate_key(), tmp_path
    ) as created:
        await created.create_topics(partitions=3)
        try:
            yield created
        finally:
            created.close()
            await created.delete_topics()


async def run_one_worker(
    deployment: Deployment, name: str, values: list[bytes]
) -> tuple[EnforcerWorker, list[InputRecord]]:
    """Start a worker, produce ``values``, wait until it has committed them all."""
    worker = deployment.worker(name)
    worker.start()
    inputs = await produce(deployment.bootstrap, deployment.topics.source, values)
    await wait_for_commits(
        deployment.bootstrap,
        deployment.group_id,
        deployment.topics.source,
        until=end_offsets_of(inputs),
        timeout_s=120,
        alive=[worker],
    )
    return worker, inputs


async def test_every_outcome_kind_with_keys_headers_and_order(deployment: Deployment) -> None:
    """passed, redacted, dropped, dead-lettered: each exactly once, as the step says."""
    worker, inputs = await run_one_worker(deployment, "one", mixed_values(600, seed=7))
    assert worker.stop() == 0, worker.log_tail()
    check = await check_outcomes(
        deployment.bootstrap, deployment.topics, inputs, fingerprint_key=deployment.fingerprint_key
    )
    print(check.summary())
    assert check.problems() == []
    assert all(
        check.observed[kind] > 0 for kind in ("passed", "redacted", "dropped", "deadlettered")
    )

    bootstrap, topics = deployment.bootstrap, deployment.topics
    sink = await read_committed(bootstrap, topics.sink, expected=check.sink_records)
    version = load_policy(None).version.encode()
    by_event = {
        orjson.loads(r.value)["event_id"]: r
        for r in inputs
        if r.value and r.value.startswith(b'{"event_id":"evt-')
    }
    for record in sink:
        headers = dict(record.headers)
        assert headers["enforcer.policy"] == version
        assert headers["enforcer.action"] in (b"passed", b"redacted")
        source = by_event[orjson.loads(record.value or b"{}")["event_id"]]
        assert record.key == source.key  # same key as input
        if headers["enforcer.action"] == b"passed":
            assert record.value == source.value  # same bytes

    violations = await read_committed(
        bootstrap, topics.violations, expected=check.violation_records
    )
    for record in violations:
        event = ViolationEvent.model_validate_json(record.value or b"")
        assert record.key == event.subject_id.encode()
        assert event.source.topic == topics.source

    dead = await read_committed(bootstrap, topics.deadletter, expected=check.deadletter_records)
    by_source = {(r.source.partition, r.source.offset): r for r in inputs}
    for record in dead:
        headers = dict(record.headers)
        source = by_source[
            (int(headers["enforcer.source.partition"]), int(headers["enforcer.source.offset"]))
        ]
        assert (record.key, record.value) == (source.key, source.value)
        assert headers["enforcer.source.topic"] == topics.source.encode()
        assert headers["enforcer.error.reason"] in (b"invalid-json", b"not-an-object", b"schema")


async def test_audit_mode_forwards_everything_and_reports(deployment: Deployment) -> None:
    """Audit is a shadow: every record, valid or not, passes byte-identical; violations
    and would-be dead letters say mode audit; nothing is dead-lettered."""
    deployment.extra_env = {**deployment.extra_env, "ENFORCER_MODE": "audit"}
    worker, inputs = await run_one_worker(deployment, "audit", mixed_values(200, seed=3))
    assert worker.stop() == 0
    invalid = [r for r in inputs if not (r.value or b"").startswith(b'{"event_id":"evt-')]
    assert invalid
    sink = await read_committed(deployment.bootstrap, deployment.topics.sink, expected=len(inputs))
    assert sorted(r.value or b"" for r in sink) == sorted(r.value or b"" for r in inputs)
    assert {dict(r.headers)["enforcer.action"] for r in sink} == {b"passed"}
    violations = await read_committed(
        deployment.bootstrap, deployment.topics.violations, expected=len(invalid)
    )
    events = [orjson.loads(r.value or b"") for r in violations]
    assert {event["mode"] for event in events} == {"audit"}
    assert sum(event["action"] == "deadlettered" for event in events) == len(invalid)
    dead = await read_committed(
        deployment.bootstrap, deployment.topics.deadletter, expected=1, timeout_s=2
    )
    assert dead == []


def test_missing_topics_are_refused_with_exit_2(kafka_bootstrap: str, tmp_path: Path) -> None:
    """No implicit topic creation: one line naming what is missing, exit 2."""
    result = subprocess.run(
        [sys.executable, "-m", "enforcer.cli", "run"],
        env={
            "PATH": "/usr/bin:/bin",
            "ENFORCER_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "ENFORCER_SOURCE_TOPIC": "no-such-topic-here",
            "ENFORCER_FINGERPRINT_KEY": generate_key(),
            "ENFORCER_DATA_DIR": str(tmp_path),
            # Not the default port: other workers may serve on this machine.
            "ENFORCER_HTTP_PORT": "0",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "source topic 'no-such-topic-here'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_run_refuses_to_start_without_a_key(kafka_bootstrap: str) -> None:
    """No fingerprint key: exit 2 and how to make one."""
    result = subprocess.run(
        [sys.executable, "-m", "enforcer.cli", "run", "--bootstrap-servers", kafka_bootstrap],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "enforcer keygen" in result.stderr


async def test_dead_letter_guard_stops_the_worker_without_committing(
    deployment: Deployment,
) -> None:
    """A stream of garbage trips the guard: the worker exits non-zero, nothing committed."""
    deployment.extra_env = {
        **deployment.extra_env,
        "ENFORCER_DEADLETTER_WINDOW": "50",
        "ENFORCER_DEADLETTER_MAX_RATIO": "0.5",
    }
    worker = deployment.worker("guard")
    worker.start()
    await produce(deployment.bootstrap, deployment.topics.source, [b"not json"] * 200)
    for _ in range(600):
        if not worker.running:
            break
        await asyncio.sleep(0.1)
    assert not worker.running, "the guard did not stop the worker"
    assert worker.returncode != 0
    assert worker.log_count("dead-lettered") >= 1, worker.log_tail()
    dead = await read_committed(
        deployment.bootstrap, deployment.topics.deadletter, expected=1, timeout_s=3, settle_s=0.5
    )
    assert dead == []  # the batch that tripped the guard was never committed


async def test_the_guards_stop_line_carries_the_trace_id_of_a_dead_letter(
    deployment: Deployment,
) -> None:
    """JSON logs (ECS): the line that stops the worker on too many dead letters names,
    as ``trace.id``, the trace of the batch's last dead-lettered record (from its W3C
    ``traceparent`` header), so the bad traffic can be followed to its producer."""
    deployment.extra_env = {
        **deployment.extra_env,
        "ENFORCER_DEADLETTER_WINDOW": "50",
        "ENFORCER_DEADLETTER_MAX_RATIO": "0.5",
        "ENFORCER_LOG_FORMAT": "json",
    }
    worker = deployment.worker("guard-trace")
    worker.start()
    traces = [f"{i + 1:032x}" for i in range(200)]
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap, acks="all")
    await producer.start()
    try:
        for trace in traces:
            header = f"00-{trace}-00f067aa0ba902b7-01".encode()
            await producer.send(
                deployment.topics.source, value=b"not json", headers=[("traceparent", header)]
            )
        await producer.flush()
    finally:
        await producer.stop()
    assert worker.wait_exit(60) == 1
    assert worker.log_path is not None
    lines = [orjson.loads(line) for line in worker.log_path.read_text().splitlines()]
    (stop,) = [line for line in lines if line["message"].startswith("enforcer stopping:")]
    assert "dead-lettered" in stop["message"]
    assert stop["log.level"] == "critical"
    assert stop["trace"]["id"] in traces
