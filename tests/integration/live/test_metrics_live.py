"""Metrics of a real ``enforcer run`` (docs/contract.md: metrics): snapshots and the HTTP endpoints.

A known stream goes through a worker subprocess; the snapshots on the metrics topic
and the Prometheus scrape must then equal what the decision step says about the
same records, and never carry an identifier value.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from enforcer.core.clock import SystemClock
from enforcer.core.fingerprint import Fingerprinter, generate_key
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, OutcomeKind, Source, Step
from enforcer.demo.sample import sample_values, subject_key
from enforcer.outputs.metrics import MetricsSnapshot
from enforcer.testing.consume import ReadRecord, read_topic
from enforcer.testing.kafka_broker import free_port
from enforcer.testing.topics import TopicFactory

PARTITIONS = 2


def _values() -> list[bytes]:
    """Sample traffic plus records that end dropped and dead-lettered."""
    crafted = [
        orjson.dumps(
            {
                "event_id": f"drop-{i}",
                "subject_id": f"acct-drop-{i}",
                "occurred_at": "2019-10-08T12:00:00Z",
                "identifiers": [{"type": "phone", "value": f"+1 555 01{i:02d}"}],
            }
        )
        for i in range(7)
    ]
    return [*sample_values(500, seed=8), *crafted, b"[1, 2]"]


def _identifier_values(values: list[bytes]) -> set[bytes]:
    found = set()
    for value in values:
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict):
            found |= {str(i["value"]).encode() for i in event.get("identifiers", [])}
    return found


@pytest.fixture
def worker_log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "worker.log"
    yield path
    if path.exists():
        print(path.read_text()[-4000:])  # shown by pytest when the test fails


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    try:
        async with session.get(url) as response:
            return response.status, await response.read()
    except aiohttp.ClientError:
        return 0, b""


async def _wait_for(
    session: aiohttp.ClientSession,
    url: str,
    timeout_s: float,
    until: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> bytes:
    """Poll ``url`` until it answers 200 with a JSON body for which ``until`` holds."""
    deadline = time.monotonic() + timeout_s
    body = b""
    while time.monotonic() < deadline:
        status, body = await _get(session, url)
        if status == 200 and until(orjson.loads(body) if body.startswith(b"{") else {}):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never answered as wanted in {timeout_s}s: {body!r}")


async def _snapshots(bootstrap: str, topic: str) -> list[ReadRecord]:
    return await read_topic(bootstrap, topic, expected=10**9, timeout_s=0.5, settle_s=0.2)


@pytest.mark.timeout(120)
async def test_snapshots_and_scrape_equal_the_truth(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path, worker_log: Path
) -> None:
    """After a known stream, the latest snapshot and /metrics count exactly what the step
    decides for those records; lag is 0 on every partition; the final snapshot on
    shutdown still has the totals; latency covers each record in exactly one interval."""
    source = await new_topic("metrics-source", PARTITIONS)
    names = {
        "SINK": await new_topic("metrics-sink"),
        "VIOLATIONS": await new_topic("metrics-violations"),
        "DEADLETTER": await new_topic("metrics-deadletter"),
        "METRICS": await new_topic("metrics-metrics"),
    }
    values = _values()
    step = Step(load_policy(None), Fingerprinter(b"k" * 32), SystemClock())
    truth = [step(InputRecord(None, v, (), Source(source, 0, i))) for i, v in enumerate(values)]
    kinds = Counter(o.kind for o in truth)
    by_rule = Counter(f.rule for o in truth for f in o.findings)
    by_type = Counter(f.identifier_type for o in truth for f in o.findings)
    assert all(kinds[kind] for kind in OutcomeKind), kinds  # the stream has every outcome

    port = free_port()
    instance = f"metrics-test-{os.getpid()}-{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    env.update(
        ENFORCER_BOOTSTRAP_SERVERS=kafka_bootstrap,
        ENFORCER_SOURCE_TOPIC=source,
        ENFORCER_SINK_TOPIC=names["SINK"],
        ENFORCER_VIOLATIONS_TOPIC=names["VIOLATIONS"],
        ENFORCER_DEADLETTER_TOPIC=names["DEADLETTER"],
        ENFORCER_METRICS_TOPIC=names["METRICS"],
        ENFORCER_GROUP_ID=f"{instance}-group",
        ENFORCER_INSTANCE_ID=instance,
        ENFORCER_FINGERPRINT_KEY=generate_key(),
        ENFORCER_DATA_DIR=str(tmp_path / "data"),
        ENFORCER_METRICS_INTERVAL="0.5",
        ENFORCER_HTTP_PORT=str(port),
        ENFORCER_LOG_LEVEL="info",
    )
    base = f"http://127.0.0.1:{port}"
    with worker_log.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "enforcer.cli", "run"], env=env, stdout=log, stderr=log
        )
        try:
            async with aiohttp.ClientSession() as session:
                await _wait_for(session, f"{base}/healthz", 30)
                # Ready as soon as it can take partitions (a standby is ready too); then
                # the group gives it both.
                await _wait_for(
                    session,
                    f"{base}/readyz",
                    30,
                    until=lambda ready: ready["assigned_partitions"] == PARTITIONS,
                )

                producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
                await producer.start()
                try:
                    for value in values:
                        await producer.send(source, value=value, key=subject_key(value))
                    await producer.flush()
                finally:
                    await producer.stop()

                latest = await _latest_complete(kafka_bootstrap, names["METRICS"], len(values))
                _, scraped = await _get(session, f"{base}/metrics")
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                code = worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
                raise
    assert code == 0

    snapshot = MetricsSnapshot.model_validate_json(latest.value or b"")
    assert latest.key == instance.encode()
    assert snapshot.instance_id == instance
    assert snapshot.policy_version == step.policy.version
    assert snapshot.mode.value == "enforce"
    assert snapshot.records.model_dump(by_alias=True) == {
        "in": len(values),
        "passed": kinds[OutcomeKind.PASSED],
        "redacted": kinds[OutcomeKind.REDACTED],
        "dropped": kinds[OutcomeKind.DROPPED],
        "deadlettered": kinds[OutcomeKind.DEADLETTERED],
    }
    assert snapshot.violations == sum(1 for o in truth if o.findings)
    assert snapshot.violations_by_rule == dict(by_rule)
    assert snapshot.identifiers_redacted_by_type == dict(by_type)
    assert [(lag.partition, lag.lag) for lag in snapshot.consumer_lag] == [(0, 0), (1, 0)]
    assert sum(lag.end_offset for lag in snapshot.consumer_lag) == len(values)

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped.decode())
        for s in family.samples
    }
    assert samples[("enforcer_records_in_total", ())] == len(values)
    for kind in OutcomeKind:
        assert samples[("enforcer_records_total", (("outcome", kind.value),))] == kinds[kind]
    for rule, n in by_rule.items():
        assert samples[("enforcer_rule_violations_total", (("rule", rule),))] == n
    for kind_name, n in by_type.items():
        key = ("enforcer_identifiers_redacted_total", (("identifier_type", kind_name),))
        assert samples[key] == n
    assert samples[("enforcer_processing_latency_seconds_count", ())] == len(values)
    for partition in range(PARTITIONS):
        labels = (("partition", str(partition)), ("topic", source))
        assert samples[("enforcer_consumer_lag", labels)] == 0

    everything = await _snapshots(kafka_bootstrap, names["METRICS"])
    parsed = [MetricsSnapshot.model_validate_json(r.value or b"") for r in everything]
    assert parsed[-1].records.in_ == len(values)  # the last one, sent on shutdown
    assert sum(s.latency.records for s in parsed) == len(values)
    for s in parsed:
        if s.latency.records:
            assert s.latency.p50_seconds is not None and s.latency.p99_seconds is not None
            assert (
                0 < s.latency.p50_seconds <= s.latency.p99_seconds <= (s.latency.max_seconds or 0)
            )
    secrets = _identifier_values(values)
    assert secrets
    for record in everything:
        assert not any(secret in (record.value or b"") for secret in secrets)
    assert not any(secret in scraped for secret in secrets)


async def _latest_complete(bootstrap: str, topic: str, total: int) -> ReadRecord:
    """The first snapshot that has counted every record with no lag left."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for record in reversed(await _snapshots(bootstrap, topic)):
            data = orjson.loads(record.value or b"{}")
            lags = data.get("consumer_lag", [])
            if data["records"]["in"] == total and lags and all(x["lag"] == 0 for x in lags):
                return record
        await asyncio.sleep(0.3)
    raise AssertionError("no snapshot counted every record in 60s")


def _samples(scraped: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped.decode())
        for s in family.samples
    }


async def _scrape_until(
    session: aiohttp.ClientSession,
    url: str,
    until: Callable[[dict[tuple[str, tuple[tuple[str, str], ...]], float]], bool],
    timeout_s: float = 30,
) -> None:
    deadline = time.monotonic() + timeout_s
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    while time.monotonic() < deadline:
        status, body = await _get(session, url)
        if status == 200:
            samples = _samples(body)
            if until(samples):
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never showed what was waited for: {samples}")


@pytest.mark.timeout(120)
async def test_the_snapshot_at_stop_measures_lag_after_the_final_commit(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path, worker_log: Path
) -> None:
    """A SIGTERM while decided records wait for their commit: the stop commits them, and
    the snapshot written then says lag 0, not the lag measured before that commit (the
    demo's only snapshot said 5,000 in and lag 2,500). An invented identifier type is
    counted as `other`, never as a label or key of its own."""
    source = await new_topic("stoplag-source")
    names = {
        "SINK": await new_topic("stoplag-sink"),
        "VIOLATIONS": await new_topic("stoplag-violations"),
        "DEADLETTER": await new_topic("stoplag-deadletter"),
        "METRICS": await new_topic("stoplag-metrics"),
    }

    def passing(i: int) -> bytes:
        return orjson.dumps(
            {
                "event_id": f"pass-{i}",
                "subject_id": f"acct-{i}",
                "occurred_at": "2019-10-08T12:00:00Z",
                "identifiers": [
                    {"type": "email", "value": f"u{i}@x.io", "purposes": ["marketing.advertising"]}
                ],
            }
        )

    # Every record ends on the sink (passed, or redacted: the invented type's).
    first = [passing(i) for i in range(20)]
    invented = orjson.dumps(
        {
            "event_id": "invented-type",
            "subject_id": "acct-invented",
            "occurred_at": "2019-10-08T12:00:00Z",
            "identifiers": [
                {"type": "Script:invented-1", "value": "+1 555 0199", "purposes": ["security"]},
                {"type": "email", "value": "v@x.io", "purposes": ["marketing.advertising"]},
            ],
        }
    )
    second = [*(passing(i) for i in range(20, 49)), invented]
    total = len(first) + len(second)

    port = free_port()
    instance = f"stoplag-test-{os.getpid()}-{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    env.update(
        ENFORCER_BOOTSTRAP_SERVERS=kafka_bootstrap,
        ENFORCER_SOURCE_TOPIC=source,
        ENFORCER_SINK_TOPIC=names["SINK"],
        ENFORCER_VIOLATIONS_TOPIC=names["VIOLATIONS"],
        ENFORCER_DEADLETTER_TOPIC=names["DEADLETTER"],
        ENFORCER_METRICS_TOPIC=names["METRICS"],
        ENFORCER_GROUP_ID=f"{instance}-group",
        ENFORCER_INSTANCE_ID=instance,
        ENFORCER_FINGERPRINT_KEY=generate_key(),
        ENFORCER_DATA_DIR=str(tmp_path / "data"),
        # Only the snapshot at stop; a commit interval wide enough to send the SIGTERM
        # while the second batch waits for its commit.
        ENFORCER_METRICS_INTERVAL="3600",
        ENFORCER_COMMIT_INTERVAL="8",
        ENFORCER_HTTP_PORT=str(port),
        ENFORCER_LOG_LEVEL="info",
    )
    base = f"http://127.0.0.1:{port}"
    lag_key = ("enforcer_consumer_lag", (("partition", "0"), ("topic", source)))
    in_key = ("enforcer_records_in_total", ())
    with worker_log.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "enforcer.cli", "run"], env=env, stdout=log, stderr=log
        )
        try:
            async with aiohttp.ClientSession() as session:
                await _wait_for(
                    session, f"{base}/readyz", 30, until=lambda r: r["assigned_partitions"] == 1
                )
                producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
                await producer.start()
                try:
                    for value in first:
                        await producer.send(source, value=value)
                    await producer.flush()
                    # The first batch is committed: the recorder knows its next offset.
                    await _scrape_until(
                        session, f"{base}/metrics", lambda s: s.get(in_key) == len(first)
                    )
                    for value in second:
                        await producer.send(source, value=value)
                    await producer.flush()
                finally:
                    await producer.stop()
                # Every record is decided and sent inside the open transaction ...
                sent = await read_topic(
                    kafka_bootstrap,
                    names["SINK"],
                    expected=total,
                    settle_s=0,
                    isolation_level="read_uncommitted",
                )
                assert len(sent) == total
                # ... and the lag measured meanwhile counts the uncommitted ones.
                await _scrape_until(
                    session,
                    f"{base}/metrics",
                    lambda s: s.get(in_key) == len(first) and s.get(lag_key) == len(second),
                )
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                code = worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
                raise
    assert code == 0

    everything = await _snapshots(kafka_bootstrap, names["METRICS"])
    last = MetricsSnapshot.model_validate_json(everything[-1].value or b"")
    assert last.records.in_ == total
    assert [(x.partition, x.end_offset, x.lag) for x in last.consumer_lag] == [(0, total, 0)]
    assert last.identifiers_redacted_by_type.get("other") == 1
    assert not any(b"script" in (r.value or b"") for r in everything)
