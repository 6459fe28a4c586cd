"""The purpose ledger in the live agent, on the real broker (docs/ledger.md): restore before
the first decision, purpose-not-granted, retractions on withdrawal and erasure, and
the co-partitioning check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from enforcer.core.fingerprint import Fingerprinter, key_from_text
from enforcer.testing.consume import read_committed
from enforcer.testing.ledger import ledger_value, produce_ledger, retractions_read
from enforcer.testing.topics import create_topics, delete_topics, unique_topic_name
from enforcer.testing.worker import (
    Deployment,
    co_partitioned_deployment,
    end_offsets_of,
    produce,
    wait_for_commits,
)

pytestmark = pytest.mark.timeout(240)

T0 = "2026-11-01T09:00:00Z"
ADS = ("marketing.advertising",)
MFA = ("security.mfa",)


def event(
    event_id: str, subject: str, identifiers: list[tuple[str, str, tuple[str, ...]]]
) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "subject_id": subject,
            "occurred_at": "2026-11-02T10:00:00Z",
            "identifiers": [
                {"type": kind, "value": value, "purposes": list(purposes)}
                for kind, value, purposes in identifiers
            ],
        }
    )


@pytest.fixture
async def deployment(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    """A deployment with a ledger topic beside its source (3 partitions each)."""
    async with co_partitioned_deployment(
        kafka_bootstrap, tmp_path, "ledger", 3, {"ENFORCER_LEDGER_TOPIC": "purposes"}
    ) as deployment:
        yield deployment


def ledger_topic(deployment: Deployment) -> str:
    return deployment.extra_env["ENFORCER_LEDGER_TOPIC"]


@pytest.mark.parametrize("store", ["memory", "disk"])
async def test_restore_before_first_decision_then_withdrawal_and_erasure_retract_once(
    deployment: Deployment, store: str
) -> None:
    """Events already waiting are decided against the ledger as written before the
    worker started; a withdrawal and an erasure each retract exactly once. With either
    store (the disk store's files are gone once the worker has stopped)."""
    bootstrap, ledger = deployment.bootstrap, ledger_topic(deployment)
    entries = [
        ("s-2fa", ledger_value("s-2fa", T0, [("phone", "+14155550101", MFA)])),
        ("s-ads", ledger_value("s-ads", T0, [("email", "ads@example.org", ADS)])),
        ("s-gone", ledger_value("s-gone", T0, [("email", "gone@example.org", ADS)])),
    ]
    await produce_ledger(bootstrap, ledger, entries)
    first = [
        # The 2019 case: a 2FA-only number claimed for advertising.
        event("e1", "s-2fa", [("phone", "+1 415 555 0101", ADS)]),
        event("e2", "s-ads", [("email", "ads@example.org", ADS)]),
        # Unknown to the ledger: authoritative treats it as having no purpose.
        event("e3", "s-unknown", [("email", "who@example.org", ADS)]),
    ]
    inputs = await produce(bootstrap, deployment.topics.source, first)
    worker = deployment.worker("one", {"ENFORCER_LEDGER_STORE": store})
    worker.start()
    await wait_for_commits(
        bootstrap,
        deployment.group_id,
        deployment.topics.source,
        until=end_offsets_of(inputs),
        timeout_s=90,
        alive=[worker],
    )
    violations = await read_committed(
        bootstrap, deployment.topics.violations, expected=2, timeout_s=30, settle_s=1.0
    )
    rules = {
        orjson.loads(v.value or b"")["event_id"]: orjson.loads(v.value or b"")["findings"][0]
        for v in violations
    }
    assert rules["e1"]["rule"] == "purpose-not-granted"
    assert rules["e1"]["purposes"] == ["security.mfa"]
    assert rules["e1"]["claimed_purposes"] == ["marketing.advertising"]
    assert rules["e3"]["rule"] == "missing-purpose"
    assert "e2" not in rules

    # Consent for advertising withdrawn, and one subject erased.
    withdrawal = [
        (
            "s-ads",
            ledger_value("s-ads", "2026-11-03T00:00:00Z", [("email", "ads@example.org", MFA)]),
        ),
        ("s-gone", None),
        # Invalid: a value under another subject's key. Dead-lettered; s-2fa keeps no
        # purpose from then on (its MFA-only phone never passed: nothing to retract).
        ("s-2fa", ledger_value("s-other", T0, [("phone", "+14155550101", ADS)])),
    ]
    await produce_ledger(bootstrap, ledger, withdrawal)
    later = await produce(
        bootstrap,
        deployment.topics.source,
        [event("e4", "s-ads", [("email", "ads@example.org", ADS)])],
    )
    await wait_for_commits(
        bootstrap,
        deployment.group_id,
        deployment.topics.source,
        until=end_offsets_of(inputs + later),
        timeout_s=60,
        alive=[worker],
    )
    assert worker.stop() == 0, worker.log_tail()
    assert not list((deployment.work_dir / "one-data").rglob("*rocksdb*"))
    fingerprinter = Fingerprinter(key_from_text(deployment.fingerprint_key))
    sink = await read_committed(
        bootstrap, deployment.topics.sink, expected=3, timeout_s=30, settle_s=1.0
    )
    violations = await read_committed(
        bootstrap, deployment.topics.violations, expected=3, timeout_s=30, settle_s=1.0
    )
    forwarded = [orjson.loads(r.value or b"") for r in sink]
    assert [f["event_id"] for f in forwarded if "event_id" in f] == ["e2"]
    assert retractions_read(sink) == {
        ("s-ads", "email", fingerprinter("email", "ads@example.org"), "purpose-withdrawn"): 1,
        ("s-gone", "email", fingerprinter("email", "gone@example.org"), "subject-erased"): 1,
    }
    retraction = next(
        f["retraction"]
        for f in forwarded
        if f.get("retraction", {}).get("reason") == "purpose-withdrawn"
    )
    assert retraction["ledger_updated_at"] == "2026-11-03T00:00:00Z"
    after = {
        orjson.loads(v.value or b"")["event_id"]: orjson.loads(v.value or b"")["findings"][0]
        for v in violations
    }
    # After the withdrawal the same claim is no longer granted.
    assert after["e4"]["rule"] == "purpose-not-granted"
    assert after["e4"]["purposes"] == ["security.mfa"]
    assert len(violations) == 3
    dead = await read_committed(
        bootstrap, deployment.topics.deadletter, expected=1, timeout_s=30, settle_s=1.0
    )
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["enforcer.source.topic"] == ledger.encode()
    assert headers["enforcer.error.reason"] == b"schema"
    raw = b"".join(r.value or b"" for r in [*sink, *violations])
    for value in (b"+14155550101", b"gone@example.org", b"who@example.org"):
        assert value not in raw


async def test_an_unkeyed_ledger_value_is_a_dead_letter_and_changes_no_decision(
    deployment: Deployment,
) -> None:
    """A ledger value without a key is dead-lettered (docs/ledger.md), not applied: a
    value withdrawing advertising, written unkeyed into the subject's own ledger
    partition, leaves the subject's events decided as before and retracts nothing."""
    bootstrap, ledger = deployment.bootstrap, ledger_topic(deployment)
    granted = ledger_value("s-ads", T0, [("email", "ads@example.org", ADS)])
    withdrawn = ledger_value("s-ads", "2026-11-03T00:00:00Z", [("email", "ads@example.org", MFA)])
    claim: list[tuple[str, str, tuple[str, ...]]] = [("email", "ads@example.org", ADS)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        grant = await producer.send_and_wait(ledger, value=granted, key=b"s-ads")
        first = await produce(bootstrap, deployment.topics.source, [event("e1", "s-ads", claim)])
        assert first[0].source.partition == grant.partition  # co-partitioned by subject
        worker = deployment.worker("unkeyed")
        worker.start()
        await wait_for_commits(
            bootstrap,
            deployment.group_id,
            deployment.topics.source,
            until=end_offsets_of(first),
            timeout_s=90,
            alive=[worker],
        )
        # Into the partition that holds s-ads, where a keyed value would withdraw.
        unkeyed = await producer.send_and_wait(
            ledger, value=withdrawn, key=None, partition=grant.partition
        )
    finally:
        await producer.stop()
    await wait_for_commits(
        bootstrap,
        deployment.group_id,
        ledger,
        until={unkeyed.partition: unkeyed.offset + 1},
        timeout_s=60,
        alive=[worker],
    )
    later = await produce(bootstrap, deployment.topics.source, [event("e2", "s-ads", claim)])
    await wait_for_commits(
        bootstrap,
        deployment.group_id,
        deployment.topics.source,
        until=end_offsets_of(first + later),
        timeout_s=60,
        alive=[worker],
    )
    assert worker.stop() == 0, worker.log_tail()
    dead = await read_committed(
        bootstrap, deployment.topics.deadletter, expected=1, timeout_s=30, settle_s=1.0
    )
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["enforcer.source.topic"] == ledger.encode()
    assert headers["enforcer.source.partition"] == str(unkeyed.partition).encode()
    assert headers["enforcer.source.offset"] == str(unkeyed.offset).encode()
    assert headers["enforcer.error.reason"] == b"schema"
    assert b"no key" in headers["enforcer.error.message"]
    # Both events passed as granted; no retraction, no violation.
    sink = await read_committed(
        bootstrap, deployment.topics.sink, expected=2, timeout_s=30, settle_s=1.0
    )
    assert [orjson.loads(r.value or b"").get("event_id") for r in sink] == ["e1", "e2"]
    assert retractions_read(sink) == {}
    violations = await read_committed(
        bootstrap, deployment.topics.violations, expected=0, timeout_s=5, settle_s=1.0
    )
    assert violations == []


async def test_a_ledger_not_co_partitioned_with_the_source_is_refused(
    deployment: Deployment,
) -> None:
    """Exit 2 and one line naming both counts."""
    other = unique_topic_name("ledger-mismatch")
    await create_topics(deployment.bootstrap, [other], 2)
    try:
        worker = deployment.worker("mismatch")
        worker._env["ENFORCER_LEDGER_TOPIC"] = other
        worker.start()
        assert worker.wait_exit(60) == 2, worker.log_tail()
        tail = worker.log_tail()
        assert "has 2 partition(s)" in tail and "has 3" in tail, tail
        assert "Traceback" not in tail
    finally:
        await delete_topics(deployment.bootstrap, [other])


async def test_a_foreign_directory_where_the_disk_store_goes_is_refused_before_start(
    deployment: Deployment,
) -> None:
    """With the disk store, a non-empty directory that is not a disk ledger's where a
    ledger partition's store goes: exit 2 and one line naming the path and what to do
    (not "internal error (FileExistsError)", exit 1); the directory is left as it was."""
    worker = deployment.worker("foreign", {"ENFORCER_LEDGER_STORE": "disk"})
    foreign = deployment.work_dir / "foreign-data" / "ledger" / f"{ledger_topic(deployment)}-0"
    foreign.mkdir(parents=True)
    (foreign / "x.txt").write_text("someone else's")
    worker.start()
    assert worker.wait_exit(60) == 2, worker.log_tail()
    assert worker.log_path is not None
    # Refused before logging starts: stdout is empty, the log is stderr's one line.
    lines = worker.log_path.read_text().splitlines()
    assert len(lines) == 1, worker.log_tail()
    assert lines[0].startswith(f"enforcer: error: cannot use {foreign} for the disk ledger"), lines
    assert "move its contents away" in lines[0] and "ENFORCER_DATA_DIR" in lines[0]
    assert (foreign / "x.txt").read_text() == "someone else's"
