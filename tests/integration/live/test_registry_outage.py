"""A schema registry that goes away under a running worker is an outage, not bad input
(docs/formats.md: running with a schema registry).

A real ``enforcer run`` against the session broker and an Apicurio registry of the
test's own (stopped and started again here): while the registry is down the worker says
why in one line, dead-letters nothing, decides and commits nothing from the first
framed record on; once it answers again the held records are decided, each once. Down
past the deadline, the worker stops with the cause (exit 1, as any worker that cannot
make progress). The held framed record is then decided by its schema's tags, as the
step with the same reader says: passed, not dead-lettered.
"""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from enforcer.core.fingerprint import generate_key
from enforcer.formats.framing import frame
from enforcer.formats.registry import RegistrySettings, SchemaRegistry
from enforcer.testing.consume import read_committed, read_topic
from enforcer.testing.formats import event_id_reader, framed_step
from enforcer.testing.schema_registry import LocalSchemaRegistry
from enforcer.testing.topics import unique_topic_name
from enforcer.testing.worker import (
    ASSIGNED,
    Deployment,
    EnforcerTopics,
    EnforcerWorker,
    check_outcomes,
    committed_offsets,
    read_inputs,
    wait_for_commits,
)

pytestmark = pytest.mark.timeout(300)

DEFAULT_POLICY = Path(__file__).resolve().parents[3] / "policies" / "default.yaml"

# Read by its tags (no mapping): the event's fields at the top level, one tagged email.
JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Contact",
    "type": "object",
    "properties": {
        "event_id": {"type": "string"},
        "subject_id": {"type": "string"},
        "occurred_at": {"type": "string"},
        "email": {
            "type": ["string", "null"],
            "confluent:tags": ["PII_EMAIL", "purpose:marketing.advertising"],
        },
    },
    "required": ["event_id", "subject_id", "occurred_at"],
}
FRAMED_BODY = orjson.dumps(
    {
        "event_id": "evt-3",
        "subject_id": "acct-3",
        "occurred_at": "2019-10-08T12:00:00Z",
        "email": "u3@example.com",
    }
)
WAITING = "waiting for it: no record is dead-lettered for it"
ANSWERS_AGAIN = "the schema registry answers again"


def _event(n: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"evt-{n}",
            "subject_id": f"acct-{n}",
            "occurred_at": "2019-10-08T12:00:00Z",
            "identifiers": [
                {
                    "type": "email",
                    "value": f"u{n}@example.com",
                    "purposes": ["marketing.advertising"],
                }
            ],
        }
    )


def _register(url: str, subject: str) -> int:
    """Register the schema under ``subject``; its id."""
    registry = SchemaRegistry(RegistrySettings(url))
    return registry.register(subject, "JSON", json.dumps(JSON_SCHEMA))


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for value in values:
        producer.produce(topic, value=value, key=b"acct")
    assert producer.flush(30) == 0


def _get(worker: EnforcerWorker, path: str) -> tuple[int, str]:
    """GET ``path`` from the worker's HTTP side (its port is in its log)."""
    assert worker.log_path is not None
    serving = next(
        line for line in worker.log_path.read_text().splitlines() if "serving /metrics" in line
    )
    address = serving.rsplit(" on ", 1)[1].strip()
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def _committed(deployment: Deployment, worker: EnforcerWorker, count: int) -> int:
    return await wait_for_commits(
        deployment.bootstrap,
        deployment.group_id,
        deployment.topics.source,
        at_least=count,
        timeout_s=60,
        alive=[worker],
    )


async def test_the_worker_waits_for_a_stopped_registry_and_resumes_when_it_is_back(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    registry = LocalSchemaRegistry(tmp_path / "schema-registry")
    topics = EnforcerTopics.unique("regout")
    group = unique_topic_name("regout-group")
    key = generate_key()
    with registry, Deployment(kafka_bootstrap, topics, group, key, tmp_path) as deployment:
        await deployment.create_topics(1)
        subject = f"{topics.source}-value"
        schema_id = _register(registry.url, subject)
        worker = deployment.worker(
            "worker",
            {
                "ENFORCER_SCHEMA_REGISTRY_URL": registry.url,
                "ENFORCER_SCHEMA_REGISTRY_TIMEOUT": "3",
                "ENFORCER_SCHEMA_REGISTRY_DEADLINE": "600",
            },
        )
        worker.start()
        await worker.wait_for_log(ASSIGNED)
        _produce(kafka_bootstrap, topics.source, [_event(n) for n in range(3)])
        assert await _committed(deployment, worker, 3) == 3

        registry.kill()  # an outage: the port stops answering at once
        framed = frame(schema_id, FRAMED_BODY)
        _produce(kafka_bootstrap, topics.source, [framed, _event(4), _event(5)])
        # One line, within 30 s, naming the registry and why.
        await worker.wait_for_log(WAITING, timeout_s=30)
        assert worker.log_count(WAITING) == 1, worker.log_tail()
        assert worker.log_count(f"schema registry {registry.url} did not answer") == 1
        # Held: nothing of the held records is sent, dead-lettered or committed.
        uncommitted = await read_topic(
            kafka_bootstrap, topics.sink, expected=3, settle_s=2.0,
            isolation_level="read_uncommitted",
        )  # fmt: skip
        assert len(uncommitted) == 3
        assert await read_committed(kafka_bootstrap, topics.deadletter, expected=0) == []
        assert await committed_offsets(kafka_bootstrap, group, topics.source) == {0: 3}
        # Still alive (the deadline is far), naming the cause; the metric says it waits.
        status, health = _get(worker, "/healthz")
        assert status == 200 and registry.url in json.loads(health)["waiting_for_schema_registry"]
        assert "enforcer_schema_registry_up 0.0" in _get(worker, "/metrics")[1]
        assert worker.running

        # Back, empty (Apicurio keeps schemas in memory): the same schema registered
        # first again gets the same id, as a restored registry would serve it.
        registry.start()
        assert _register(registry.url, subject) == schema_id
        await worker.wait_for_log(ANSWERS_AGAIN, timeout_s=60)
        assert await _committed(deployment, worker, 6) == 6
        assert worker.log_count(WAITING) == 1
        assert "enforcer_schema_registry_up 1.0" in _get(worker, "/metrics")[1]
        inputs = await read_inputs(kafka_bootstrap, topics.source)
        values = [record.value for record in inputs]
        step, reader, _ = framed_step(registry.url, DEFAULT_POLICY, key, values)
        check = await check_outcomes(
            kafka_bootstrap,
            topics,
            inputs,
            fingerprint_key=key,
            step=step,
            event_id_of=event_id_reader(reader, topics.source),
        )
        assert worker.stop() == 0, worker.log_tail()
    assert check.problems() == [], check.summary()
    assert check.records == 6
    assert check.observed == {"passed": 6}, check.summary()


async def test_a_registry_down_past_the_deadline_stops_the_worker_with_the_cause(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{_free_port()}/apis/ccompat/v7"
    topics = EnforcerTopics.unique("regdead")
    group = unique_topic_name("regdead-group")
    with Deployment(kafka_bootstrap, topics, group, generate_key(), tmp_path) as deployment:
        await deployment.create_topics(1)
        worker = deployment.worker(
            "worker",
            {"ENFORCER_SCHEMA_REGISTRY_URL": url, "ENFORCER_SCHEMA_REGISTRY_DEADLINE": "5"},
        )
        worker.start()
        await worker.wait_for_log(ASSIGNED)
        _produce(kafka_bootstrap, topics.source, [_event(0), frame(1, b"\x02x"), _event(2)])
        status = await asyncio.to_thread(worker.wait_exit, 90)
        assert status == 1, worker.log_tail()
        assert worker.log_count(WAITING) == 1, worker.log_tail()
        stopping = f"enforcer stopping: schema registry {url} did not answer schemas/ids/1"
        assert worker.log_count(stopping) == 1, worker.log_tail()
        assert worker.log_count("has not answered for") == 1
        assert await read_committed(kafka_bootstrap, topics.deadletter, expected=0) == []
        assert await committed_offsets(kafka_bootstrap, group, topics.source) in ({}, {0: 1})
