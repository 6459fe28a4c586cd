"""A fingerprint key rotation with exposure, on the real broker (docs/exposure.md, "Key
rotation"; docs/security.md, "Rotating the fingerprint key"): a worker with key A
forwards; restarted with key B and A as the previous key, an identifier forwarded again
takes over its entry (one entry, B's key id, the first forwarded time of A's), and a
ledger withdrawal retracts, once each, both the re-keyed entry and an entry still under
A (whose identifier was not forwarded again), the latter under A's key id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.exposure.model import SubjectExposure, parse_exposure_record
from enforcer.testing.consume import read_committed
from enforcer.testing.ledger import ledger_value, produce_ledger, retractions_read
from enforcer.testing.topics import create_topics, delete_topics, unique_topic_name
from enforcer.testing.worker import (
    Deployment,
    co_partitioned_deployment,
    decided,
    wait_for_commits,
)

pytestmark = pytest.mark.timeout(300)

T0 = "2026-11-01T09:00:00Z"
LATER = "2026-11-05T09:00:00Z"
ADS, MFA = ("marketing.advertising",), ("security.mfa",)
AGAIN, ONCE = "again@example.org", "once@example.org"


def event(event_id: str, subject: str, email: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "subject_id": subject,
            "occurred_at": "2026-11-02T10:00:00Z",
            "identifiers": [{"type": "email", "value": email, "purposes": list(ADS)}],
        }
    )


@pytest.fixture
async def ledger(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A ledger topic of 2 partitions."""
    name = unique_topic_name("rekey-ledger")
    await create_topics(kafka_bootstrap, [name], 2)
    try:
        yield name
    finally:
        await delete_topics(kafka_bootstrap, [name])


@pytest.fixture
async def deployment(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    """A deployment keeping exposure (2 partitions each)."""
    async with co_partitioned_deployment(
        kafka_bootstrap, tmp_path, "rekey", 2, {"ENFORCER_EXPOSURE_TOPIC": "state"}
    ) as deployment:
        yield deployment


async def exposure_now(deployment: Deployment, expected: int) -> dict[str, SubjectExposure]:
    """The exposure topic's latest value per subject."""
    records = await read_committed(
        deployment.bootstrap,
        deployment.extra_env["ENFORCER_EXPOSURE_TOPIC"],
        expected=expected,
        timeout_s=30,
        settle_s=1.0,
    )
    latest: dict[str, SubjectExposure] = {}
    for record in records:
        parsed = parse_exposure_record(record.key, record.value)
        assert isinstance(parsed, SubjectExposure), parsed
        latest[parsed.subject_id] = parsed
    return latest


async def ledger_ends(deployment: Deployment, ledger: str, expected: int) -> dict[int, int]:
    records = await read_committed(deployment.bootstrap, ledger, expected=expected, timeout_s=30)
    ends: dict[int, int] = {}
    for record in records:
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    return ends


@pytest.mark.parametrize("store", ["memory", "disk"])
async def test_a_rotation_with_the_previous_key_re_keys_exposure_and_retracts_once(
    deployment: Deployment, ledger: str, store: str
) -> None:
    bootstrap = deployment.bootstrap
    await produce_ledger(
        bootstrap,
        ledger,
        [
            ("s-again", ledger_value("s-again", T0, [("email", AGAIN, ADS)])),
            ("s-once", ledger_value("s-once", T0, [("email", ONCE, ADS)])),
        ],
    )
    key_a, key_b = deployment.fingerprint_key, generate_key()
    a, b = Fingerprinter(key_from_text(key_a)), Fingerprinter(key_from_text(key_b))
    env = {"ENFORCER_LEDGER_TOPIC": ledger, "ENFORCER_EXPOSURE_STORE": store}

    first = deployment.worker("key-a", env)
    first.start()
    inputs = await decided(
        deployment, first, [event("e1", "s-again", AGAIN), event("e2", "s-once", ONCE)], []
    )
    assert first.stop() == 0, first.log_tail()
    before = await exposure_now(deployment, expected=2)
    (original,) = before["s-again"].entries
    assert (original.key_id, original.fingerprint) == (a.key_id, a("email", AGAIN))

    previous = deployment.work_dir / "previous.key"
    previous.write_text(key_a + "\n")
    previous.chmod(0o600)
    second = deployment.worker(
        "key-b",
        {
            **env,
            "ENFORCER_FINGERPRINT_KEY": key_b,
            "ENFORCER_PREVIOUS_FINGERPRINT_KEY_FILE": str(previous),
        },
    )
    second.start()
    inputs = await decided(deployment, second, [event("e3", "s-again", AGAIN)], inputs)
    after = await exposure_now(deployment, expected=3)
    (rekeyed,) = after["s-again"].entries
    assert (rekeyed.key_id, rekeyed.fingerprint) == (b.key_id, b("email", AGAIN))
    assert rekeyed.first_forwarded_at == original.first_forwarded_at
    assert rekeyed.last_forwarded_at >= original.last_forwarded_at
    (untouched,) = after["s-once"].entries
    assert (untouched.key_id, untouched.fingerprint) == (a.key_id, a("email", ONCE))

    # Both subjects withdraw advertising: each exposed email is retracted once, each
    # under the key its entry is made under.
    await produce_ledger(
        bootstrap,
        ledger,
        [
            ("s-again", ledger_value("s-again", LATER, [("email", AGAIN, MFA)])),
            ("s-once", ledger_value("s-once", LATER, [("email", ONCE, MFA)])),
        ],
    )
    await wait_for_commits(
        bootstrap,
        deployment.group_id,
        ledger,
        until=await ledger_ends(deployment, ledger, expected=4),
        timeout_s=90,
        alive=[second],
    )
    assert second.stop() == 0, second.log_tail()
    assert second.log_count("key rotation: exposure entries of key id " + a.key_id) == 1

    sink = await read_committed(bootstrap, deployment.topics.sink, expected=5, timeout_s=30)
    assert retractions_read(sink) == {
        ("s-again", "email", b("email", AGAIN), "purpose-withdrawn"): 1,
        ("s-once", "email", a("email", ONCE), "purpose-withdrawn"): 1,
    }
    bodies = [
        orjson.loads(r.value or b"{}")["retraction"]
        for r in sink
        if dict(r.headers).get("enforcer.action") == b"retracted"
    ]
    key_ids = {body["subject_id"]: body["key_id"] for body in bodies}
    assert key_ids == {"s-again": b.key_id, "s-once": a.key_id}
    final = await exposure_now(deployment, expected=5)
    assert final["s-again"].entries == () and final["s-once"].entries == ()
