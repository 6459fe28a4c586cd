"""Rotating the fingerprint key (docs/security.md: rotating the fingerprint key): stop
the workers, start them with the new key. The violations' ``key_id`` changes with the
key, and the purpose ledger, whose fingerprints are recomputed from its raw values at
every restore, decides the same after the restart, with either ledger store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.testing.consume import read_committed
from enforcer.testing.ledger import ledger_value, produce_ledger
from enforcer.testing.worker import (
    Deployment,
    co_partitioned_deployment,
    end_offsets_of,
    produce,
    wait_for_commits,
)

pytestmark = pytest.mark.timeout(240)

T0 = "2026-11-01T09:00:00Z"
ADS = ["marketing.advertising"]
MFA = ("security.mfa",)
PHONE, EMAIL = "+14155550123", "granted@example.org"


def event(event_id: str, subject: str, kind: str, value: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "subject_id": subject,
            "occurred_at": "2026-11-02T10:00:00Z",
            "identifiers": [{"type": kind, "value": value, "purposes": ADS}],
        }
    )


@pytest.fixture
async def deployment(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    """A deployment with a ledger topic beside its source (2 partitions each)."""
    async with co_partitioned_deployment(
        kafka_bootstrap, tmp_path, "rotate", 2, {"ENFORCER_LEDGER_TOPIC": "purposes"}
    ) as deployment:
        yield deployment


@pytest.mark.parametrize("store", ["memory", "disk"])
async def test_a_restart_with_a_new_key_changes_key_id_and_the_ledger_still_decides(
    deployment: Deployment, store: str
) -> None:
    """Old key: the 2FA phone claimed for advertising is a purpose-not-granted violation
    under the old key id, the granted email flows. After a restart with the new key (same
    data dir, so a disk store's files from the old run are there): the same claims are
    decided the same, the violation carries the new key id and the new key's
    fingerprint, which differs from the old one for the same phone."""
    bootstrap = deployment.bootstrap
    ledger = deployment.extra_env["ENFORCER_LEDGER_TOPIC"]
    await produce_ledger(
        bootstrap,
        ledger,
        [
            ("s-2fa", ledger_value("s-2fa", T0, [("phone", PHONE, MFA)])),
            ("s-ads", ledger_value("s-ads", T0, [("email", EMAIL, tuple(ADS))])),
        ],
    )
    old_key, new_key = deployment.fingerprint_key, generate_key()
    data_dir = deployment.work_dir / "old-data"
    settings = {"ENFORCER_LEDGER_STORE": store, "ENFORCER_DATA_DIR": str(data_dir)}
    inputs = []
    for run, key in (("old", old_key), ("new", new_key)):
        inputs += await produce(
            bootstrap,
            deployment.topics.source,
            [
                event(f"{run}-phone", "s-2fa", "phone", "+1 (415) 555-0123"),
                event(f"{run}-email", "s-ads", "email", EMAIL),
            ],
        )
        worker = deployment.worker(run, {**settings, "ENFORCER_FINGERPRINT_KEY": key})
        worker.start()
        await wait_for_commits(
            bootstrap,
            deployment.group_id,
            deployment.topics.source,
            until=end_offsets_of(inputs),
            timeout_s=90,
            alive=[worker],
        )
        assert worker.stop() == 0, worker.log_tail()

    records = await read_committed(
        bootstrap, deployment.topics.violations, expected=2, timeout_s=30, settle_s=1.0
    )
    violations: dict[str, Any] = {
        found["event_id"]: found for found in (orjson.loads(r.value or b"") for r in records)
    }
    assert set(violations) == {"old-phone", "new-phone"}
    old, new = Fingerprinter(key_from_text(old_key)), Fingerprinter(key_from_text(new_key))
    assert old.key_id != new.key_id
    for run, fingerprinter in (("old", old), ("new", new)):
        violation = violations[f"{run}-phone"]
        assert violation["key_id"] == fingerprinter.key_id
        (finding,) = violation["findings"]
        assert finding["rule"] == "purpose-not-granted"
        assert finding["purposes"] == list(MFA)
        assert finding["fingerprint"] == fingerprinter("phone", PHONE)
    assert (
        violations["old-phone"]["findings"][0]["fingerprint"]
        != (violations["new-phone"]["findings"][0]["fingerprint"])
    )
    sink = await read_committed(
        bootstrap, deployment.topics.sink, expected=2, timeout_s=30, settle_s=1.0
    )
    forwarded = sorted(orjson.loads(r.value or b"").get("event_id", "") for r in sink)
    assert forwarded == ["new-email", "old-email"]
