"""Replay from a topic (docs/contract.md: command line): the same report as from a file, ranges by
offset and time, read_committed, and outputs to prefixed topics.

The topic has three partitions and three phases of records (Kafka timestamps two
hours ago, now, and half an hour ahead: brokers refuse timestamps further ahead, and
transaction markers carry the broker's clock, so the transactional phase is "now").
The middle phase is written in transactions, one of them aborted, so the ranges hold
transaction markers and records a read_committed reader must skip.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from enforcer.cli import main
from enforcer.core.fingerprint import generate_key
from enforcer.demo.sample import sample_values, subject_key
from enforcer.testing.consume import read_topic
from enforcer.testing.topics import TopicFactory, delete_topics

PARTITIONS = 3


@dataclass(frozen=True)
class Produced:
    """One record as written: where it landed, and whether its transaction committed."""

    value: bytes
    partition: int
    offset: int
    phase: str
    committed: bool


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str) -> str:
    """A clean ENFORCER_* environment with a key; returns the bootstrap address."""
    for name in [n for n in os.environ if n.startswith("ENFORCER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", generate_key())
    monkeypatch.setenv("ENFORCER_BOOTSTRAP_SERVERS", kafka_bootstrap)
    return kafka_bootstrap


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


async def _produce(bootstrap: str, topic: str, now: datetime) -> list[Produced]:
    values = list(sample_values(360, seed=21))
    phases = {"a": values[:120], "b": values[120:240], "c": values[240:]}
    produced: list[Produced] = []

    async def send(
        producer: AIOKafkaProducer, value: bytes, phase: str, at: datetime, committed: bool
    ) -> None:
        meta = await (
            await producer.send(topic, value=value, key=subject_key(value), timestamp_ms=_ms(at))
        )
        produced.append(Produced(value, meta.partition, meta.offset, phase, committed))

    plain = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await plain.start()
    try:
        for i, value in enumerate(phases["a"]):
            await send(plain, value, "a", now - timedelta(hours=2) + timedelta(seconds=i), True)
    finally:
        await plain.stop()
    txn = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{topic}-txn")
    await txn.start()
    try:
        b = phases["b"]
        # Committed, aborted (repeating some values), committed.
        for chunk, commit in ((b[:60], True), (b[:40], False), (b[60:], True)):
            await txn.begin_transaction()
            for i, value in enumerate(chunk):
                await send(txn, value, "b", now + timedelta(seconds=i), commit)
            await (txn.commit_transaction() if commit else txn.abort_transaction())
    finally:
        await txn.stop()
    plain = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await plain.start()
    try:
        for i, value in enumerate(phases["c"]):
            await send(plain, value, "c", now + timedelta(minutes=30, seconds=i), True)
    finally:
        await plain.stop()
    return produced


async def _replay(*argv: str) -> int:
    # The command line runs its own event loop: give it a thread.
    return await asyncio.to_thread(main, ["replay", "--no-progress", *argv])


async def _file_report(tmp_path: Path, name: str, records: list[Produced]) -> dict[str, Any]:
    ordered = sorted(records, key=lambda r: (r.partition, r.offset))
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(b"".join(r.value + b"\n" for r in ordered))
    out = tmp_path / f"{name}-file"
    assert await _replay("--from-file", str(path), "--out", str(out)) == 0
    return _report(out)


def _report(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "report.json").read_bytes())
    return data


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in {"source", "generated_at"}}


def _lines(path: Path) -> Counter[bytes]:
    return Counter(path.read_bytes().splitlines())


@pytest.mark.timeout(90)
async def test_replay_from_a_topic(env: str, new_topic: TopicFactory, tmp_path: Path) -> None:
    """Whole topic, offset range, time range and prefixed output topics: each gives the
    report a file of exactly the committed records in that range gives."""
    bootstrap = env
    topic = await new_topic("replay-source", PARTITIONS)
    now = datetime.now(UTC).replace(microsecond=0)
    produced = await _produce(bootstrap, topic, now)
    committed = [r for r in produced if r.committed]
    assert len(committed) == 360 and len(produced) == 400
    assert {r.partition for r in produced} == set(range(PARTITIONS))

    # Everything: earliest to latest, the defaults.
    out = tmp_path / "all"
    code = await _replay("--topic", topic, "--bootstrap-servers", bootstrap, "--out", str(out))
    assert code == 0
    report = _report(out)
    assert _comparable(report) == _comparable(await _file_report(tmp_path, "all", committed))
    assert report["records"]["in"] == 360  # the aborted records are not read
    assert report["source"]["kind"] == "topic" and report["source"]["name"] == topic
    assert report["source"]["start"] == "earliest" and report["source"]["end"] == "latest"
    file_out = tmp_path / "all-file"
    assert _lines(out / "forwarded.jsonl") == _lines(file_out / "forwarded.jsonl")
    event_ids = [
        json.loads(v)["event_id"] for v in (out / "violations.jsonl").read_bytes().splitlines()
    ]
    assert Counter(event_ids) == Counter(
        json.loads(v)["event_id"] for v in (file_out / "violations.jsonl").read_bytes().splitlines()
    )
    assert (
        len((out / "deadletter.jsonl").read_bytes().splitlines())
        == report["records"]["deadlettered"]
    )

    # By offset: [5, 30) on every partition.
    out = tmp_path / "offsets"
    assert await _replay("--topic", topic, "--start", "5", "--end", "30", "--out", str(out)) == 0
    report = _report(out)
    wanted = [r for r in committed if 5 <= r.offset < 30]
    assert report["records"]["in"] == len(wanted)
    assert _comparable(report) == _comparable(await _file_report(tmp_path, "offsets", wanted))
    assert report["source"]["offsets"] == [
        {"partition": p, "start": 5, "end": 30} for p in range(PARTITIONS)
    ]

    # By time: the middle phase only (Kafka timestamps, not occurred_at).
    out = tmp_path / "times"
    start = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    end = (now + timedelta(minutes=20)).isoformat().replace("+00:00", "Z")
    assert await _replay("--topic", topic, "--start", start, "--end", end, "--out", str(out)) == 0
    report = _report(out)
    middle = [r for r in committed if r.phase == "b"]
    assert report["records"]["in"] == len(middle) == 120
    assert _comparable(report) == _comparable(await _file_report(tmp_path, "times", middle))
    assert (report["source"]["start"], report["source"]["end"]) == (start, end)

    # To topics with a prefix instead of files; --out gets the report only.
    prefix = f"{topic}.replay."
    out = tmp_path / "to-topics"
    try:
        code = await _replay("--topic", topic, "--output-topic-prefix", prefix, "--out", str(out))
        assert code == 0
        assert {p.name for p in out.iterdir()} == {"report.json", "report.html"}
        report = _report(out)
        records = report["records"]
        forwarded = await read_topic(
            bootstrap,
            f"{prefix}audience.building",
            expected=records["passed"] + records["redacted"],
            settle_s=0.3,
        )
        assert Counter(r.value for r in forwarded) == _lines(file_out / "forwarded.jsonl")
        actions = Counter(dict(r.headers)["enforcer.action"] for r in forwarded)
        assert actions == {b"passed": records["passed"], b"redacted": records["redacted"]}
        violations = await read_topic(
            bootstrap, f"{prefix}enforcer.violations", expected=report["violations"], settle_s=0.3
        )
        assert len(violations) == report["violations"]
        assert all(r.key == orjson.loads(r.value or b"")["subject_id"].encode() for r in violations)
    finally:
        await delete_topics(
            bootstrap,
            [
                f"{prefix}{name}"
                for name in ("audience.building", "enforcer.violations", "enforcer.deadletter")
            ],
        )


async def test_bad_ranges_are_one_line_errors(
    env: str,
    new_topic: TopicFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A missing topic, a start after the end, and a prefix naming a live topic: exit 2
    with one line, and nothing written."""
    topic = await new_topic("replay-errors")
    out = str(tmp_path / "o")
    times = ["--start", "2019-10-09T00:00:00Z", "--end", "2019-10-08T00:00:00Z"]
    for argv, problem in (
        (["--topic", f"{topic}-missing", "--out", out], "not found"),
        (["--topic", topic, *times, "--out", out], "is after --end"),
        (["--topic", topic, "--output-topic-prefix", "x.", "--out", out], "live topic 'x.sink'"),
    ):
        if "--output-topic-prefix" in argv:
            # x. + the sink's name is the live source topic: replay must refuse it.
            monkeypatch.setenv("ENFORCER_SINK_TOPIC", "sink")
            monkeypatch.setenv("ENFORCER_SOURCE_TOPIC", "x.sink")
        capsys.readouterr()
        assert await _replay(*argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("enforcer: error:") and err.count("\n") == 1, err
        assert problem in err, err
    assert not (tmp_path / "o").exists()
