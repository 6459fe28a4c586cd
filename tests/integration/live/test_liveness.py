"""No record halts the pipeline; a worker that cannot progress says why and exits (docs/contract.md:
liveness).

Each case runs a real ``enforcer run`` against the local broker and feeds it the record
or the fault, with ordinary records before and after it: the odd record gets exactly
one outcome (read back ``read_committed``), and the ones after it still flow. Records
are produced with confluent-kafka (librdkafka), a client other than the enforcer's
asyncio helpers, where the case is about what other clients send (codecs, headers).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from enforcer.core.fingerprint import generate_key
from enforcer.testing.consume import ReadRecord, read_committed, read_topic
from enforcer.testing.kafka_broker import LocalKafka
from enforcer.testing.topics import create_topics, unique_topic_name
from enforcer.testing.worker import (
    ASSIGNED,
    Deployment,
    EnforcerTopics,
    EnforcerWorker,
    wait_for_commits,
)

pytestmark = pytest.mark.timeout(180)


def _event(n: int, padding: int = 0, **extra: object) -> bytes:
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
            "note": "x" * padding,
            **extra,
        }
    )


def _ids(records: list[ReadRecord]) -> list[str]:
    return [str(orjson.loads(r.value or b"{}")["event_id"]) for r in records]


def _produce(bootstrap: str, topic: str, records: list[dict[str, object]], **config: str) -> None:
    """Send with librdkafka; each record a dict of produce() arguments."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, **config})
    for record in records:
        producer.produce(topic, **record)  # type: ignore[arg-type]
    assert producer.flush(30) == 0


async def _started(deployment: Deployment, name: str = "worker") -> EnforcerWorker:
    worker = deployment.worker(name)
    worker.start()
    await worker.wait_for_log(ASSIGNED)
    return worker


async def _outputs(
    deployment: Deployment, sink: int, dead: int
) -> tuple[list[ReadRecord], list[ReadRecord]]:
    topics = deployment.topics
    forwarded = await read_committed(deployment.bootstrap, topics.sink, expected=sink, settle_s=0.5)
    letters = await read_committed(
        deployment.bootstrap, topics.deadletter, expected=dead, settle_s=0.5
    )
    return forwarded, letters


async def _drained(deployment: Deployment, worker: EnforcerWorker, count: int) -> None:
    await wait_for_commits(
        deployment.bootstrap,
        deployment.group_id,
        deployment.topics.source,
        at_least=count,
        timeout_s=60,
        alive=[worker],
    )


@asynccontextmanager
async def _deployed(
    bootstrap: str,
    tmp_path: Path,
    prefix: str,
    make_topics: Callable[[EnforcerTopics], Awaitable[None]] | None = None,
) -> AsyncIterator[tuple[Deployment, EnforcerWorker]]:
    """A deployment with its topics (one partition each, or ``make_topics``) and a
    worker that has joined; the topics are deleted afterwards."""
    topics = EnforcerTopics.unique(prefix)
    group = unique_topic_name(f"{prefix}-group")
    with Deployment(bootstrap, topics, group, generate_key(), tmp_path) as deployment:
        if make_topics is None:
            await deployment.create_topics(1)
        else:
            await make_topics(topics)
        try:
            yield deployment, await _started(deployment)
        finally:
            await deployment.delete_topics()


async def test_no_key_no_value_and_null_header_values(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A record with neither key nor value is dead-lettered as it is (both null); a
    null header value reaches the sink still null, not empty."""
    async with _deployed(kafka_bootstrap, tmp_path, "empty") as (deployment, worker):
        _produce(
            kafka_bootstrap,
            deployment.topics.source,
            [
                {"value": _event(1)},
                {"value": None, "key": None},
                {"value": _event(2), "headers": [("trace", None), ("team", b"ads")]},
            ],
        )
        await _drained(deployment, worker, 3)
        forwarded, letters = await _outputs(deployment, sink=2, dead=1)
        assert worker.stop() == 0, worker.log_tail()
    assert _ids(forwarded) == ["evt-1", "evt-2"]
    assert (letters[0].key, letters[0].value) == (None, None)
    assert dict(letters[0].headers)["enforcer.error.reason"] == b"invalid-json"
    headers = dict(forwarded[1].headers)
    assert headers["trace"] is None and headers["team"] == b"ads"


async def test_outputs_too_large_for_their_topics_are_dead_lettered(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A valid event whose forwarded copy exceeds the sink's max.message.bytes is
    dead-lettered (output-too-large); one too large for the dead-letter topic as well
    goes there without its value, with its size and SHA-256; the records around them
    flow on, and nothing halts."""

    async def small_outputs(topics: EnforcerTopics) -> None:
        await create_topics(kafka_bootstrap, [topics.violations, topics.metrics])
        await create_topics(
            kafka_bootstrap, [topics.source], configs={"max.message.bytes": "300000"}
        )
        await create_topics(kafka_bootstrap, [topics.sink], configs={"max.message.bytes": "20000"})
        await create_topics(
            kafka_bootstrap, [topics.deadletter], configs={"max.message.bytes": "50000"}
        )

    big, huge = _event(2, padding=30_000), _event(3, padding=80_000)
    garbage = b"\x00not json" * 12_000  # a dead letter too large for its topic
    async with _deployed(kafka_bootstrap, tmp_path, "large", small_outputs) as (
        deployment,
        worker,
    ):
        topics = deployment.topics
        _produce(
            kafka_bootstrap,
            topics.source,
            [
                {"value": _event(1)},
                {"value": big},
                {"value": huge},
                {"value": garbage},
                {"value": _event(5)},
            ],
            **{"message.max.bytes": "1000000"},
        )
        await _drained(deployment, worker, 5)
        forwarded, letters = await _outputs(deployment, sink=2, dead=3)
        assert worker.stop() == 0, worker.log_tail()
    assert _ids(forwarded) == ["evt-1", "evt-5"]
    assert [dict(r.headers)["enforcer.source.offset"] for r in letters] == [b"1", b"2", b"3"]
    reasons = [dict(r.headers)["enforcer.error.reason"] for r in letters]
    assert reasons == [b"output-too-large", b"output-too-large", b"invalid-json"]
    assert letters[0].value == big
    for letter, original in ((letters[1], huge), (letters[2], garbage)):
        headers = dict(letter.headers)
        assert letter.value is None
        assert headers["enforcer.error.value.size"] == str(len(original)).encode()


def _send_unreadable_header(bootstrap: str, topic: str) -> None:
    """A header key that is not UTF-8: the Java and librdkafka APIs cannot write one,
    so aiokafka's pure-Python record builder is handed a key that encodes to bad bytes."""
    script = (
        "import asyncio\n"
        "from aiokafka import AIOKafkaProducer\n"
        "class Bad(str):\n"
        "    def encode(self, *a, **k): return b'\\xff\\xfe-key'\n"
        "async def main():\n"
        f"    p = AIOKafkaProducer(bootstrap_servers={bootstrap!r}); await p.start()\n"
        f"    try: await p.send_and_wait({topic!r}, value=b'{{}}', headers=[(Bad('x'), b'v')])\n"
        "    finally: await p.stop()\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "AIOKAFKA_NO_EXTENSIONS": "1"}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)


async def test_a_header_key_that_is_not_utf8_is_dead_lettered(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The client cannot read such headers; the record is dead-lettered without them
    (unreadable-record) instead of stopping the worker."""
    async with _deployed(kafka_bootstrap, tmp_path, "header") as (deployment, worker):
        topics = deployment.topics
        _produce(kafka_bootstrap, topics.source, [{"value": _event(1)}])
        await asyncio.to_thread(_send_unreadable_header, kafka_bootstrap, topics.source)
        _produce(kafka_bootstrap, topics.source, [{"value": _event(3)}])
        await _drained(deployment, worker, 3)
        forwarded, letters = await _outputs(deployment, sink=2, dead=1)
        assert worker.stop() == 0, worker.log_tail()
    assert _ids(forwarded) == ["evt-1", "evt-3"]
    headers = dict(letters[0].headers)
    assert headers["enforcer.error.reason"] == b"unreadable-record"
    assert "x" not in headers and letters[0].value == b"{}"


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
async def test_every_standard_codec_is_read(
    kafka_bootstrap: str, tmp_path: Path, codec: str
) -> None:
    """Batches compressed by librdkafka with each codec are decided like any other."""
    async with _deployed(kafka_bootstrap, tmp_path, f"codec-{codec}") as (deployment, worker):
        _produce(
            kafka_bootstrap,
            deployment.topics.source,
            [{"value": _event(n)} for n in range(50)],
            **{"compression.type": codec, "linger.ms": "50"},
        )
        await _drained(deployment, worker, 50)
        forwarded, _ = await _outputs(deployment, sink=50, dead=0)
        assert worker.stop() == 0, worker.log_tail()
    assert len(forwarded) == 50


async def test_a_deleted_sink_stops_the_worker_with_the_cause(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """With its sink gone the worker cannot commit: it names the deleted topic in one
    line (the topic watch, before any commit waits on the missing topic), and exits 1 to
    be restarted; once the topic is back, a new worker decides the records that waited,
    each once."""
    async with _deployed(kafka_bootstrap, tmp_path, "nosink") as (deployment, worker):
        topics = deployment.topics
        _produce(kafka_bootstrap, topics.source, [{"value": _event(1)}])
        await _drained(deployment, worker, 1)
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        for future in admin.delete_topics([topics.sink]).values():
            future.result(30)
        _produce(kafka_bootstrap, topics.source, [{"value": _event(2)}])
        await asyncio.to_thread(worker.wait_exit, 120)
        assert worker.returncode == 1
        stopping = f"enforcer stopping: the sink topic '{topics.sink}' was deleted"
        assert worker.log_count(stopping) == 1, worker.log_tail()
        assert worker.log_count("enforcer stopping:") == 1, worker.log_tail()
        await deployment.create_topics_named([topics.sink], 1)
        again = await _started(deployment, "again")
        await _drained(deployment, again, 2)
        forwarded, _ = await _outputs(deployment, sink=1, dead=0)
        assert again.stop() == 0, again.log_tail()
    assert _ids(forwarded) == ["evt-2"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ENFORCER_SINK_TOPIC": "identity.events"}, "the sink topic and the source topic"),
        ({"ENFORCER_VIOLATIONS_TOPIC": "audience.building"}, "the violations topic and the sink"),
        ({"ENFORCER_BOOTSTRAP_SERVERS": "127.0.0.1:notaport"}, "is not host:port"),
        ({"ENFORCER_DATA_DIR": "/dev/null/state"}, "for local state"),
        (
            {"ENFORCER_CREATE_TOPICS": "true", "ENFORCER_SOURCE_TOPIC": "bad name!"},
            "Kafka refused to create topic 'bad name!'",
        ),
    ],
)
def test_configuration_errors_are_one_line_and_exit_2(
    kafka_bootstrap: str, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    """Aliasing topic names, a port that is no port, an unusable state directory, a
    topic Kafka will not create: one line on stderr, exit status 2, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "enforcer.cli", "run"],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ENFORCER_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "ENFORCER_FINGERPRINT_KEY": generate_key(),
            "ENFORCER_DATA_DIR": str(tmp_path),
            "ENFORCER_HTTP_PORT": "0",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


async def test_sigterm_ends_a_worker_that_cannot_commit(
    private_kafka: LocalKafka, tmp_path: Path
) -> None:
    """With records decided but not committed and the broker frozen (every client call
    hangs), a SIGTERM still ends the worker within the shutdown deadline (30 s), and
    nothing is committed for the waiting record."""
    bootstrap = private_kafka.bootstrap_servers
    topics = EnforcerTopics.unique("termstuck")
    group = unique_topic_name("termstuck-group")
    # A commit interval longer than the test: the decided record stays uncommitted.
    with Deployment(bootstrap, topics, group, generate_key(), tmp_path, 3600.0) as deployment:
        await deployment.create_topics(1)
        worker = await _started(deployment)
        _produce(bootstrap, topics.source, [{"value": _event(1)}])
        # Decided and sent inside the open transaction: visible read_uncommitted only.
        sent = await read_topic(
            bootstrap, topics.sink, expected=1, isolation_level="read_uncommitted"
        )
        assert len(sent) == 1
        broker = int((private_kafka.state_dir / "kafka.pid").read_text())
        os.kill(broker, signal.SIGSTOP)
        try:
            status = await asyncio.to_thread(worker.stop, 45)
        finally:
            os.kill(broker, signal.SIGCONT)
        assert status in (0, 1), worker.log_tail()
        assert worker.log_count("SIGTERM received") == 1
        assert await read_committed(bootstrap, topics.sink, expected=0, settle_s=1.0) == []
