"""Exposure in the live agent, on the real broker (docs/exposure.md): forwards are kept
in the exposure topic in the forwarded record's transaction; a ledger withdrawal or
erasure retracts exactly what was forwarded, never an identifier that was not; a new
policy at a restart, or by a reload of the policy file, retracts what it no longer
allows, once; audit mode counts what it let through once, and enforce retracts it."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from enforcer.core.fingerprint import Fingerprinter, key_from_text
from enforcer.core.policy.load import default_policy_bytes, policy_version
from enforcer.core.step import HEADER_POLICY
from enforcer.exposure.model import SubjectExposure, parse_exposure_record
from enforcer.live.exposure import REJUDGED_LOG, RESTORED_LOG
from enforcer.live.policy_reload import RELOADED_LOG
from enforcer.testing.consume import ReadRecord, end_offsets, read_committed, read_topic
from enforcer.testing.ledger import ledger_value, produce_ledger, retractions_read
from enforcer.testing.policies import phones_never_for_advertising
from enforcer.testing.topics import create_topics, delete_topics, unique_topic_name
from enforcer.testing.worker import (
    Deployment,
    co_partitioned_deployment,
    decided,
    wait_for_commits,
)

pytestmark = pytest.mark.timeout(300)

DEFAULT = default_policy_bytes()
NO_PHONES = phones_never_for_advertising()
T0 = "2026-11-01T09:00:00Z"
ADS = ("marketing.advertising",)
MFA = ("security.mfa",)

Identifier = tuple[str, str, tuple[str, ...]]


def event(event_id: str, subject: str, identifiers: list[Identifier]) -> bytes:
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
async def ledger(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A ledger topic of 3 partitions, read only by workers given it."""
    name = unique_topic_name("exposure-ledger")
    await create_topics(kafka_bootstrap, [name], 3)
    try:
        yield name
    finally:
        await delete_topics(kafka_bootstrap, [name])


@pytest.fixture
async def deployment(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    """A deployment keeping exposure (3 partitions each)."""
    async with co_partitioned_deployment(
        kafka_bootstrap, tmp_path, "exposure", 3, {"ENFORCER_EXPOSURE_TOPIC": "state"}
    ) as deployment:
        yield deployment


def exposure_topic(deployment: Deployment) -> str:
    return deployment.extra_env["ENFORCER_EXPOSURE_TOPIC"]


async def exposure_now(deployment: Deployment, expected: int) -> dict[str, SubjectExposure]:
    """The exposure topic's latest value per subject, as a restore reads it."""
    records = await read_committed(
        deployment.bootstrap, exposure_topic(deployment), expected=expected, timeout_s=30
    )
    latest: dict[str, SubjectExposure] = {}
    for record in records:
        parsed = parse_exposure_record(record.key, record.value)
        assert isinstance(parsed, SubjectExposure), parsed
        latest[parsed.subject_id] = parsed
    return latest


def retraction_bodies(sink: list[ReadRecord]) -> list[dict[str, str]]:
    return [
        orjson.loads(r.value or b"{}")["retraction"]
        for r in sink
        if dict(r.headers).get("enforcer.action") == b"retracted"
    ]


@pytest.mark.parametrize("store", ["memory", "disk"])
async def test_ledger_updates_retract_exactly_what_was_forwarded(
    deployment: Deployment, ledger: str, store: str
) -> None:
    """Withdrawn consent and an erasure retract the identifiers that reached the sink,
    each once; identifiers the ledger also withdrew but that never flowed (a subject
    with no event, a phone number never sent) are not retracted. The exposure topic
    follows: the forwards, then tombstones once nothing stays exposed. With either
    store (the disk store's files are gone once the worker has stopped)."""
    bootstrap = deployment.bootstrap
    await produce_ledger(
        bootstrap,
        ledger,
        [
            ("s-ads", ledger_value("s-ads", T0, [("email", "ads@example.org", ADS)])),
            ("s-quiet", ledger_value("s-quiet", T0, [("email", "quiet@example.org", ADS)])),
            (
                "s-gone",
                ledger_value(
                    "s-gone",
                    T0,
                    [("email", "gone@example.org", ADS), ("phone", "+14155550109", ADS)],
                ),
            ),
        ],
    )
    worker = deployment.worker(
        "one", {"ENFORCER_LEDGER_TOPIC": ledger, "ENFORCER_EXPOSURE_STORE": store}
    )
    worker.start()
    inputs = await decided(
        deployment,
        worker,
        [
            event("e1", "s-ads", [("email", "ads@example.org", ADS)]),
            event("e2", "s-gone", [("email", "gone@example.org", ADS)]),
        ],
        [],
    )
    forwarded = await exposure_now(deployment, expected=2)
    assert {s: len(e.entries) for s, e in forwarded.items()} == {"s-ads": 1, "s-gone": 1}
    await produce_ledger(
        bootstrap,
        ledger,
        [
            (
                "s-ads",
                ledger_value("s-ads", "2026-11-03T00:00:00Z", [("email", "ads@example.org", MFA)]),
            ),
            (
                "s-quiet",
                ledger_value(
                    "s-quiet", "2026-11-03T00:00:00Z", [("email", "quiet@example.org", MFA)]
                ),
            ),
            ("s-gone", None),
        ],
    )
    # An event after the ledger updates: committed after them in its partition's order
    # only if they were read, so wait for the ledger's own commits.
    await wait_for_commits(
        bootstrap,
        deployment.group_id,
        ledger,
        until=await _ledger_ends(deployment, ledger),
        timeout_s=90,
        alive=[worker],
    )
    await decided(deployment, worker, [event("e3", "s-other", [("email", "o@x.io", ADS)])], inputs)
    assert worker.stop() == 0, worker.log_tail()
    assert worker.log_count(f"({store} store): retractions are exact") == 1
    assert not list((deployment.work_dir / "one-data").rglob("*rocksdb*"))

    fingerprinter = Fingerprinter(key_from_text(deployment.fingerprint_key))
    sink = await read_committed(bootstrap, deployment.topics.sink, expected=4, timeout_s=30)
    assert retractions_read(sink) == {
        ("s-ads", "email", fingerprinter("email", "ads@example.org"), "purpose-withdrawn"): 1,
        ("s-gone", "email", fingerprinter("email", "gone@example.org"), "subject-erased"): 1,
    }
    for body in retraction_bodies(sink):
        assert body["key_id"] == fingerprinter.key_id
    # The two forwards, then a tombstone for each subject; e3's subject, whom the ledger
    # does not know, had nothing forwarded.
    after = await exposure_now(deployment, expected=4)
    assert after["s-ads"].entries == ()
    assert after["s-gone"].entries == ()
    raw = await read_committed(bootstrap, exposure_topic(deployment), expected=4, timeout_s=10)
    assert len(raw) == 4
    text = b"".join(r.value or b"" for r in raw)
    for value in (b"ads@example.org", b"gone@example.org", b"+14155550109"):
        assert value not in text
    assert worker.log_count(RESTORED_LOG) == 3


async def _ledger_ends(deployment: Deployment, ledger: str) -> dict[int, int]:
    records = await read_committed(deployment.bootstrap, ledger, expected=6, timeout_s=30)
    ends: dict[int, int] = {}
    for record in records:
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    return ends


async def test_a_new_policy_at_restart_retracts_what_it_forbids_once(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Forwarded under the default, phone numbers and emails are exposed; a worker
    started with a policy that keeps phones from advertising retracts each exposed
    phone once (``policy-changed``, naming the new version) and nothing else; a
    second restart under the same policy retracts nothing more."""
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_bytes(DEFAULT)
    new.write_bytes(NO_PHONES)
    subjects = [f"acct-{n}" for n in range(6)]
    values = [
        event(
            f"e{n}",
            subject,
            [("email", f"u{n}@x.io", ADS), ("phone", f"+1 415 555 {n:04d}", ADS)],
        )
        for n, subject in enumerate(subjects)
    ]
    first = deployment.worker("old", {"ENFORCER_POLICY_FILE": str(old)})
    first.start()
    inputs = await decided(deployment, first, values, [])
    assert first.stop() == 0, first.log_tail()
    exposed = await exposure_now(deployment, expected=6)
    assert sum(len(e.entries) for e in exposed.values()) == 12

    for run in range(2):
        worker = deployment.worker(f"new-{run}", {"ENFORCER_POLICY_FILE": str(new)})
        worker.start()
        inputs = await decided(
            deployment,
            worker,
            [event(f"later-{run}", "acct-x", [("email", "x@x.io", ADS)])],
            inputs,
        )
        assert worker.stop() == 0, worker.log_tail()
        retracting = worker.log_count(REJUDGED_LOG)
        assert retracting >= 1 if run == 0 else retracting == 0, worker.log_tail()

    fingerprinter = Fingerprinter(key_from_text(deployment.fingerprint_key))
    sink = await read_committed(deployment.bootstrap, deployment.topics.sink, expected=14)
    assert retractions_read(sink) == Counter(
        {
            (s, "phone", fingerprinter("phone", f"+1 415 555 {n:04d}"), "policy-changed"): 1
            for n, s in enumerate(subjects)
        }
    )
    version = policy_version(NO_PHONES)
    assert {b["policy_version"] for b in retraction_bodies(sink)} == {version}
    after = await exposure_now(deployment, expected=6 + 6 + 1)
    for subject in subjects:
        assert [e.identifier_type for e in after[subject].entries] == ["email"]
    # Each worker's last snapshot on the metrics topic (written at its stop) counts what
    # it did: the first restart retracted six phones and wrote seven values (the six
    # subjects without their phones, acct-x's first); the second, nothing new.
    last = await last_snapshots(deployment)
    group = deployment.group_id
    first_restart = last[f"{group}-new-0"]["exposure"]
    second_restart = last[f"{group}-new-1"]["exposure"]
    assert first_restart["retractions_by_reason"] == {"policy-changed": 6}
    assert first_restart["writes"] == 7
    assert second_restart["retractions_by_reason"] == {}
    assert second_restart["writes"] == 0


async def test_audit_mode_counts_nothing_again_at_a_restart_and_enforce_retracts_it(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Audit mode forwards phone numbers its policy stops, and exposure keeps them. A
    restart in audit mode under the same policy counts no would-be retraction (they
    flowed under it); the same policy switched to enforce retracts each once."""
    path = tmp_path / "no-phones.yaml"
    path.write_bytes(NO_PHONES)
    subjects = [f"acct-{n}" for n in range(4)]
    values = [
        event(f"e{n}", s, [("phone", f"+1 415 555 {n:04d}", ADS)]) for n, s in enumerate(subjects)
    ]
    inputs: list[Any] = []
    for run, mode in enumerate(("audit", "audit", "enforce")):
        worker = deployment.worker(
            f"{mode}-{run}", {"ENFORCER_POLICY_FILE": str(path), "ENFORCER_MODE": mode}
        )
        worker.start()
        batch = (
            values if run == 0 else [event(f"later-{run}", "acct-x", [("email", "x@x.io", ADS)])]
        )
        inputs = await decided(deployment, worker, batch, inputs)
        assert worker.stop() == 0, worker.log_tail()
    last = await last_snapshots(deployment)
    group = deployment.group_id
    assert last[f"{group}-audit-1"]["exposure"]["retractions_by_reason"] == {}
    assert last[f"{group}-enforce-2"]["exposure"]["retractions_by_reason"] == {"policy-changed": 4}
    fingerprinter = Fingerprinter(key_from_text(deployment.fingerprint_key))
    # 4 phones forwarded unchanged by audit mode, 2 emails, 4 retractions.
    sink = await read_committed(deployment.bootstrap, deployment.topics.sink, expected=10)
    assert retractions_read(sink) == Counter(
        {
            (s, "phone", fingerprinter("phone", f"+1 415 555 {n:04d}"), "policy-changed"): 1
            for n, s in enumerate(subjects)
        }
    )


async def last_snapshots(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """Each instance's latest snapshot on the metrics topic, read to its end (the
    workers have stopped: every snapshot is written)."""
    topic = deployment.topics.metrics
    count = sum((await end_offsets(deployment.bootstrap, topic)).values())
    records = await read_topic(deployment.bootstrap, topic, expected=count, settle_s=0)
    assert len(records) == count
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        snapshot = orjson.loads(record.value or b"{}")
        latest[snapshot["instance_id"]] = snapshot
    return latest


async def test_a_reloaded_policy_retracts_what_it_forbids_before_the_next_event(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A policy file rewritten under a running worker: once the reload is applied,
    each exposed phone number is retracted once, before events decided under it."""
    path = tmp_path / "policy.yaml"
    path.write_bytes(DEFAULT)
    worker = deployment.worker(
        "reloading",
        {"ENFORCER_POLICY_FILE": str(path), "ENFORCER_POLICY_CHECK_INTERVAL": "0.2"},
    )
    worker.start()
    subjects = [f"acct-{n}" for n in range(4)]
    inputs = await decided(
        deployment,
        worker,
        [
            event(f"e{n}", s, [("phone", f"+1 415 555 {n:04d}", ADS)])
            for n, s in enumerate(subjects)
        ],
        [],
    )
    staged = tmp_path / "policy.yaml.new"
    staged.write_bytes(NO_PHONES)
    staged.replace(path)
    await worker.wait_for_log(RELOADED_LOG, timeout_s=60)
    await worker.wait_for_log(REJUDGED_LOG, timeout_s=60)
    await decided(
        deployment, worker, [event("after", "acct-y", [("email", "y@x.io", ADS)])], inputs
    )
    assert worker.stop() == 0, worker.log_tail()
    fingerprinter = Fingerprinter(key_from_text(deployment.fingerprint_key))
    sink = await read_committed(deployment.bootstrap, deployment.topics.sink, expected=9)
    assert retractions_read(sink) == Counter(
        {
            (s, "phone", fingerprinter("phone", f"+1 415 555 {n:04d}"), "policy-changed"): 1
            for n, s in enumerate(subjects)
        }
    )
    version = policy_version(NO_PHONES)
    assert {b["policy_version"] for b in retraction_bodies(sink)} == {version}
    last = next(r for r in sink if b'"after"' in (r.value or b""))
    assert dict(last.headers)[HEADER_POLICY] == version.encode()


async def test_a_record_whose_exposure_cannot_be_written_is_dead_lettered(
    deployment: Deployment,
) -> None:
    """An exposure topic that accepts small records only: a subject whose exposure would
    outgrow it gets its record dead-lettered (``output-too-large``), not forwarded
    unrecorded, and the worker goes on with the next records."""
    small = unique_topic_name("exposure-small")
    configs = {"max.message.bytes": "2000", "cleanup.policy": "compact"}
    await create_topics(deployment.bootstrap, [small], 3, configs=configs)
    try:
        worker = deployment.worker("small", {"ENFORCER_EXPOSURE_TOPIC": small})
        worker.start()
        many: list[Identifier] = [("email", f"m{n}@x.io", ADS) for n in range(12)]
        inputs = await decided(
            deployment,
            worker,
            [
                event("few", "acct-few", [("email", "few@x.io", ADS)]),
                event("many", "acct-many", many),
                event("after", "acct-after", [("email", "after@x.io", ADS)]),
            ],
            [],
        )
        assert len(inputs) == 3
        assert worker.stop() == 0, worker.log_tail()
    finally:
        await delete_topics(deployment.bootstrap, [small])
    sink = await read_committed(deployment.bootstrap, deployment.topics.sink, expected=2)
    assert sorted(orjson.loads(r.value or b"")["event_id"] for r in sink) == ["after", "few"]
    dead = await read_committed(deployment.bootstrap, deployment.topics.deadletter, expected=1)
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["enforcer.error.reason"] == b"output-too-large"
    assert b"exposure" in headers["enforcer.error.message"]


async def test_an_exposure_topic_that_is_not_compacted_is_refused(
    deployment: Deployment,
) -> None:
    """Exit 2 and one line: retention would delete subjects' values, and a restore would
    forget what was forwarded (never retracted after)."""
    deleting = unique_topic_name("exposure-deleting")
    await create_topics(deployment.bootstrap, [deleting], 3, configs={"cleanup.policy": "delete"})
    try:
        worker = deployment.worker("deleting", {"ENFORCER_EXPOSURE_TOPIC": deleting})
        worker.start()
        assert worker.wait_exit(60) == 2, worker.log_tail()
        tail = worker.log_tail()
        assert f"the exposure topic '{deleting}' is not compacted" in tail, tail
        assert "Traceback" not in tail
    finally:
        await delete_topics(deployment.bootstrap, [deleting])
