"""A running worker follows its policy file (docs/rollout.md: changing the policy of a
running worker), against a real broker: a ConfigMap-style symlink swap and a rewrite in
place are each applied at a transaction boundary (records before under the old version,
after under the new, in order, never interleaved); an invalid edit is refused in one
line and a metric, and the last good policy stays in force, in outputs and ``/readyz``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from enforcer.core.fingerprint import generate_key
from enforcer.core.policy.load import policy_version
from enforcer.core.step import HEADER_POLICY, InputRecord
from enforcer.live.policy_reload import REFUSED_LOG, RELOADED_LOG
from enforcer.testing.consume import ReadRecord, read_committed
from enforcer.testing.kafka_broker import free_port
from enforcer.testing.worker import (
    Deployment,
    EnforcerTopics,
    EnforcerWorker,
    end_offsets_of,
    produce,
    wait_for_commits,
)

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[3]
SECURITY_ONLY = (ROOT / "policies" / "security-only.yaml").read_bytes()
DEFAULT = (ROOT / "policies" / "default.yaml").read_bytes()
# The third version: the same rules as the first, another content (so another version).
SECURITY_ONLY_AGAIN = SECURITY_ONLY + b"\n# re-applied by an in-place rewrite\n"
INVALID = b"rules: [{name: broken, when: no-such-condition}]\n"


def _event(n: int) -> bytes:
    """Forwarded under every policy here (an advertising email), with a security-only
    device id (a finding under every policy) and an analytics phone (a finding under the
    default's purpose compatibility only)."""
    return orjson.dumps(
        {
            "event_id": f"e{n}",
            "subject_id": f"acct-{n}",
            "occurred_at": "2019-10-08T12:00:00Z",
            "identifiers": [
                {"type": "email", "value": f"u{n}@x.io", "purposes": ["marketing.advertising"]},
                {"type": "phone", "value": f"+1 415 555 {n:04d}", "purposes": ["analytics"]},
                {"type": "device_id", "value": f"d-{n}", "purposes": ["security.mfa"]},
            ],
        }
    )


async def _get(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, (url, response.status)
        return await response.read()


async def _send_and_commit(
    deployment: Deployment, worker: EnforcerWorker, first: int, count: int
) -> list[InputRecord]:
    inputs = await produce(
        deployment.bootstrap,
        deployment.topics.source,
        [_event(n) for n in range(first, first + count)],
    )
    await wait_for_commits(
        deployment.bootstrap,
        deployment.group_id,
        deployment.topics.source,
        until=end_offsets_of(inputs),
        timeout_s=120,
        alive=[worker],
    )
    return inputs


def _versions_by_offset(records: list[ReadRecord], key: str) -> dict[int, str]:
    """Source offset -> policy version, from sink headers or violation values."""
    found: dict[int, str] = {}
    for record in records:
        assert record.value is not None
        value = orjson.loads(record.value)
        if key == "sink":
            offset = int(value["event_id"].removeprefix("e"))
            found[offset] = dict(record.headers)[HEADER_POLICY].decode()
        else:
            found[int(value["source"]["offset"])] = value["policy_version"]
    return found


def _configmap(root: Path, content: bytes) -> Path:
    """A directory laid out as the kubelet mounts a ConfigMap: ``policy.yaml ->
    ..data/policy.yaml``, ``..data -> ..<timestamp>``; returns the mounted path."""
    first = root / "..2026_12_06_00_00_00.1"
    first.mkdir(parents=True)
    (first / "policy.yaml").write_bytes(content)
    (root / "..data").symlink_to(first.name)
    path = root / "policy.yaml"
    path.symlink_to("..data/policy.yaml")
    return path


def _swap(root: Path, name: str, content: bytes) -> None:
    """Publish ``content`` as the kubelet does: a new directory, ``..data`` renamed over."""
    new = root / name
    new.mkdir()
    (new / "policy.yaml").write_bytes(content)
    staged = root / "..data_tmp"
    staged.symlink_to(new.name)
    staged.replace(root / "..data")


async def test_a_running_worker_follows_its_policy_file(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    mount = tmp_path / "policy-mount"
    path = _configmap(mount, SECURITY_ONLY)
    v1, v2, v3 = (policy_version(c) for c in (SECURITY_ONLY, DEFAULT, SECURITY_ONLY_AGAIN))
    topics = EnforcerTopics.unique("reload")
    port = free_port()
    with Deployment(
        kafka_bootstrap, topics, f"group-{topics.source}", generate_key(), tmp_path
    ) as deployment:
        await deployment.create_topics(partitions=1)
        try:
            worker = deployment.worker(
                "reloading",
                {
                    "ENFORCER_POLICY_FILE": str(path),
                    "ENFORCER_POLICY_CHECK_INTERVAL": "0.2",
                    "ENFORCER_HTTP_PORT": str(port),
                },
            )
            worker.start()
            base = f"http://127.0.0.1:{port}"
            await _send_and_commit(deployment, worker, 0, 20)

            # A ConfigMap update: the symlink swapped while records keep coming.
            _swap(mount, "..2026_12_06_00_01_00.2", DEFAULT)
            during = asyncio.create_task(
                produce(kafka_bootstrap, topics.source, [_event(n) for n in range(20, 60)])
            )
            await worker.wait_for_log(RELOADED_LOG, timeout_s=60)
            await during
            await _send_and_commit(deployment, worker, 60, 10)
            assert orjson.loads(await _get(base + "/readyz"))["policy_version"] == v2

            # A rewrite in place, through the mounted path.
            path.write_bytes(SECURITY_ONLY_AGAIN)
            await worker.wait_for_log(RELOADED_LOG, at_least=2, timeout_s=60)
            await _send_and_commit(deployment, worker, 70, 10)

            # An invalid edit: refused once, the third version stays in force.
            path.write_bytes(INVALID)
            await worker.wait_for_log(REFUSED_LOG, timeout_s=60)
            await _send_and_commit(deployment, worker, 80, 10)
            await _send_and_commit(deployment, worker, 90, 10)  # many checks meanwhile
            ready = orjson.loads(await _get(base + "/readyz"))
            metrics = (await _get(base + "/metrics")).decode()
            assert worker.stop() == 0, worker.log_tail()

            sink = await read_committed(kafka_bootstrap, topics.sink, expected=100)
            violations = await read_committed(kafka_bootstrap, topics.violations, expected=100)
        finally:
            deployment.close()
            await deployment.delete_topics()

    assert worker.log_path is not None
    log = worker.log_path.read_text()
    reloaded = [line for line in log.splitlines() if RELOADED_LOG in line]
    assert len(reloaded) == 2
    assert f"{v1} -> {v2}" in reloaded[0] and f"{v2} -> {v3}" in reloaded[1]
    refused = [line for line in log.splitlines() if REFUSED_LOG in line]
    assert len(refused) == 1, refused
    assert str(path) in refused[0] and "at rules[0].when" in refused[0]
    assert f"policy {v3} stays in force" in refused[0]
    assert "+1 415" not in log

    assert ready["policy_version"] == v3
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
    }
    assert samples["enforcer_policy_reloads_total"] == 2
    assert samples["enforcer_policy_reload_failures_total"] == 1
    assert samples["enforcer_policy_file_refused"] == 1

    forwarded = _versions_by_offset(sink, "sink")
    judged = _versions_by_offset(violations, "violations")
    assert sorted(forwarded) == sorted(judged) == list(range(100))
    for versions in (forwarded, judged):
        assert {versions[n] for n in range(20)} == {v1}  # committed before the change
        assert {versions[n] for n in range(60, 70)} == {v2}  # after the first reload
        assert {versions[n] for n in range(70, 100)} == {v3}  # after the second; kept
        # Around the swap: the old version, then the new, never back (in source order).
        around = [versions[n] for n in range(20, 60)]
        switch = around.index(v2) if v2 in around else len(around)
        assert set(around[:switch]) <= {v1} and set(around[switch:]) <= {v2}
    assert forwarded == judged
    # Under the default (v2) the analytics phone is a finding too; not under v1 or v3.
    phones = {
        int(orjson.loads(r.value or b"{}")["source"]["offset"])
        for r in violations
        if any(f["identifier_type"] == "phone" for f in orjson.loads(r.value or b"{}")["findings"])
    }
    assert phones == {n for n in range(100) if forwarded[n] == v2}
