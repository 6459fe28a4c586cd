"""Replay a file of events against a compacted ledger topic (docs/contract.md: command line;
docs/ledger.md): every partition read from the beginning, a tombstone erases its subject, a value
under another subject's key grants nothing (its key's subject keeps no purpose), and
``--ledger-as-of`` skips what came later (for a tombstone, by its record time)."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from enforcer.cli import main
from enforcer.core.fingerprint import generate_key
from enforcer.testing.topics import create_topics, delete_topics, unique_topic_name

ADS, MFA = "marketing.advertising", "security.mfa"
PHONE, EMAIL = "+14155550100", "gone@example.com"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str) -> str:
    """A clean ENFORCER_* environment with a key; returns the bootstrap address."""
    for name in [n for n in os.environ if n.startswith("ENFORCER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", generate_key())
    monkeypatch.setenv("ENFORCER_BOOTSTRAP_SERVERS", kafka_bootstrap)
    return kafka_bootstrap


def _value(subject: str, kind: str, value: str, purposes: list[str]) -> bytes:
    return orjson.dumps(
        {
            "subject_id": subject,
            "updated_at": "2019-01-01T00:00:00Z",
            "identifiers": [{"type": kind, "value": value, "purposes": purposes}],
        }
    )


def _event(event_id: str, subject: str, kind: str, value: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "subject_id": subject,
            "occurred_at": "2019-10-08T12:00:00Z",
            "identifiers": [{"type": kind, "value": value, "purposes": [ADS]}],
        }
    )


async def _produce(bootstrap: str, topic: str, now: datetime) -> None:
    """acct-1: a 2FA-only phone; acct-2: an email for advertising, erased an hour ago;
    a value for acct-1 under acct-9's key (invalid)."""
    earlier, erased = now - timedelta(hours=2), now - timedelta(hours=1)
    records: list[tuple[bytes, bytes | None, datetime]] = [
        (b"acct-1", _value("acct-1", "phone", PHONE, [MFA]), earlier),
        (b"acct-2", _value("acct-2", "email", EMAIL, [ADS]), earlier),
        (b"acct-9", _value("acct-1", "phone", PHONE, [ADS]), earlier),
        (b"acct-2", None, erased),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value, at in records:
            await producer.send_and_wait(
                topic, value=value, key=key, timestamp_ms=int(at.timestamp() * 1000)
            )
    finally:
        await producer.stop()


async def _replay(*argv: str) -> int:
    # The command line runs its own event loop: give it a thread.
    return await asyncio.to_thread(main, ["replay", "--no-progress", *argv])


def _ledger(out: Path) -> dict[str, Any]:
    part: dict[str, Any] = json.loads((out / "report.json").read_bytes())["ledger"]
    return part


@pytest.mark.timeout(90)
async def test_replay_against_a_ledger_topic(env: str, tmp_path: Path) -> None:
    bootstrap = env
    topic = unique_topic_name("ledger")
    await create_topics(bootstrap, [topic], 2, configs={"cleanup.policy": "compact"})
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        await _produce(bootstrap, topic, now)
        events = tmp_path / "events.jsonl"
        events.write_bytes(
            _event("e1", "acct-1", "phone", PHONE) + b"\n" + _event("e2", "acct-2", "email", EMAIL)
        )

        out = tmp_path / "latest"
        code = await _replay("--from-file", str(events), "--ledger-topic", topic, "--out", str(out))
        assert code == 0
        part = _ledger(out)
        assert part["source"]["kind"] == "topic" and part["source"]["name"] == topic
        assert sum(r["end"] for r in part["source"]["offsets"]) == 4
        assert part["state"] == {"subjects": 1, "identifiers": 1}
        assert part["records"] == {"applied": 3, "erased": 1, "invalid": 1, "after_as_of": 0}
        # acct-1's phone: claimed for advertising, granted for 2FA. acct-2 is erased, so
        # the ledger knows it with no purpose at all: its claim is not granted either.
        assert part["identifiers_judged"] == {"known": 2, "unknown": 0}
        assert part["purpose_not_granted"]["findings"] == 2
        assert part["purpose_not_granted"]["affected_subjects"] == 2
        report = json.loads((out / "report.json").read_bytes())
        assert report["violations_by_rule"] == {"purpose-not-granted": 2}

        # Before the tombstone's record time, acct-2's email was granted for advertising.
        out = tmp_path / "as-of"
        as_of = (now - timedelta(minutes=90)).isoformat().replace("+00:00", "Z")
        code = await _replay(
            "--from-file",
            str(events),
            "--ledger-topic",
            topic,
            "--ledger-as-of",
            as_of,
            "--out",
            str(out),
        )
        assert code == 0
        part = _ledger(out)
        assert part["as_of"] == as_of
        assert part["records"] == {"applied": 2, "erased": 0, "invalid": 1, "after_as_of": 1}
        assert part["identifiers_judged"] == {"known": 2, "unknown": 0}
        report = json.loads((out / "report.json").read_bytes())
        assert report["violations_by_rule"] == {"purpose-not-granted": 1}
        for name in ("report.json", "report.html", "violations.jsonl"):
            data = (out / name).read_bytes()
            assert PHONE.encode() not in data and EMAIL.encode() not in data
    finally:
        await delete_topics(bootstrap, [topic])


@pytest.mark.timeout(90)
async def test_an_unkeyed_ledger_value_is_counted_invalid(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ledger value without a key is invalid in replay as it is live (docs/ledger.md):
    counted, named on stderr by partition and offset, and it grants nothing, so the
    subject it names stays unknown to the ledger."""
    bootstrap = env
    topic = unique_topic_name("ledger-unkeyed")
    # Not compacted: Kafka refuses a record without a key on a compacted topic, but a
    # ledger topic created otherwise takes one.
    await create_topics(bootstrap, [topic], 1)
    try:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(
                topic, value=_value("acct-1", "phone", PHONE, [MFA]), key=None
            )
        finally:
            await producer.stop()
        events = tmp_path / "events.jsonl"
        events.write_bytes(_event("e1", "acct-1", "phone", PHONE) + b"\n")

        out = tmp_path / "out"
        code = await _replay("--from-file", str(events), "--ledger-topic", topic, "--out", str(out))
        assert code == 0
        part = _ledger(out)
        assert part["records"] == {"applied": 0, "erased": 0, "invalid": 1, "after_as_of": 0}
        assert part["state"] == {"subjects": 0, "identifiers": 0}
        # Applied, the value would make the phone known (purpose-not-granted); unkeyed, the
        # ledger does not know it: authoritative finds no purpose.
        assert part["identifiers_judged"] == {"known": 0, "unknown": 1}
        report = json.loads((out / "report.json").read_bytes())
        assert report["violations_by_rule"] == {"missing-purpose": 1}
        err = capsys.readouterr().err
        assert (
            "1 invalid skipped (first: partition 0 offset 0: subject_id: the record has no key"
            in err
        )
        assert PHONE not in err
    finally:
        await delete_topics(bootstrap, [topic])
