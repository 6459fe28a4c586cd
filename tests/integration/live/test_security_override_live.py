"""`enforcer run` under a policy that states `security_override` (docs/policy.md, "The
security guardrail"): it forwards what the policy says, and a real worker is flagged in
its log, `/metrics`, `/readyz` and every violation; a policy that does not state it is
refused at start."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from enforcer.core.clock import SystemClock
from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.core.policy.load import load_policy
from enforcer.core.step import Step
from enforcer.testing.consume import read_committed
from enforcer.testing.kafka_broker import free_port
from enforcer.testing.worker import (
    Deployment,
    EnforcerTopics,
    check_outcomes,
    end_offsets_of,
    produce,
    wait_for_commits,
)

pytestmark = pytest.mark.timeout(240)

ALLOWS_SECURITY = """\
format: 1
rules:
  - name: missing-purpose
    when: no-purpose
destinations:
  audience-building:
    allow: [marketing.advertising, security]
"""
OVERRIDE = "security_override:\n  reason: Fraud-team lookalikes, approved in PRIV-123.\n"


def _event(n: int) -> bytes:
    """A 2FA-only phone (forwarded under the override) beside a no-purpose device id."""
    return orjson.dumps(
        {
            "event_id": f"e{n}",
            "subject_id": f"acct-{n}",
            "occurred_at": "2019-10-08T12:00:00Z",
            "identifiers": [
                {"type": "phone", "value": f"+1 415 555 01{n:02d}", "purposes": ["security.mfa"]},
                {"type": "device_id", "value": f"d-{n}"},
            ],
        }
    )


async def _poll(url: str, timeout_s: float) -> bytes:
    """GET ``url`` until it answers 200 (the server starts with the worker)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return await response.read()
            except aiohttp.ClientError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{url} did not answer 200 within {timeout_s}s")
            await asyncio.sleep(0.2)


async def test_a_worker_under_a_security_override_is_flagged(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Outcomes as the step decides under that policy; every violation, the gauge,
    /readyz and the start-up log say so."""
    policy_path = tmp_path / "stated.yaml"
    policy_path.write_text(ALLOWS_SECURITY + OVERRIDE)
    topics = EnforcerTopics.unique("override")
    port = free_port()
    with Deployment(
        kafka_bootstrap, topics, f"group-{topics.source}", generate_key(), tmp_path
    ) as deployment:
        await deployment.create_topics(partitions=1)
        try:
            worker = deployment.worker(
                "flagged",
                {"ENFORCER_POLICY_FILE": str(policy_path), "ENFORCER_HTTP_PORT": str(port)},
            )
            worker.start()
            inputs = await produce(kafka_bootstrap, topics.source, [_event(n) for n in range(5)])
            await wait_for_commits(
                kafka_bootstrap,
                deployment.group_id,
                topics.source,
                until=end_offsets_of(inputs),
                timeout_s=120,
                alive=[worker],
            )
            base = f"http://127.0.0.1:{port}"
            ready = orjson.loads(await _poll(base + "/readyz", 30))
            metrics = (await _poll(base + "/metrics", 30)).decode()
            assert worker.stop() == 0, worker.log_tail()

            policy = load_policy(policy_path)
            key = key_from_text(deployment.fingerprint_key)
            step = Step(policy, Fingerprinter(key), SystemClock())
            check = await check_outcomes(
                kafka_bootstrap,
                topics,
                inputs,
                fingerprint_key=deployment.fingerprint_key,
                step=step,
            )
            # The checker's invariant "no security-only identifier in the sink" is what
            # the override sets aside, for these five phones and nothing else.
            problems = check.problems()
            assert [p for p in problems if "security-only" not in p] == []
            assert [p.split(",")[0] for p in problems] == [
                "5 security-only or unpurposed identifiers in the sink"
            ]
            assert check.observed["redacted"] == 5  # each 2FA phone forwarded, as stated
            violations = await read_committed(kafka_bootstrap, topics.violations, expected=5)
        finally:
            deployment.close()
            await deployment.delete_topics()

    assert len(violations) == 5
    for record in violations:
        assert record.value is not None
        assert orjson.loads(record.value)["security_override"] is True
    assert ready["security_override"] is True
    assert ready["security_override_reason"] == "Fraud-team lookalikes, approved in PRIV-123."
    gauges = {
        family.name: family.samples[0].value
        for family in text_string_to_metric_families(metrics)
        if family.name == "enforcer_policy_security_override"
    }
    assert gauges == {"enforcer_policy_security_override": 1.0}
    assert worker.log_path is not None
    log = worker.log_path.read_text()
    assert "security override: identifiers given only to secure an account" in log
    assert "+1 415" not in log


def test_run_refuses_the_policy_without_the_statement(tmp_path: Path) -> None:
    """Exit 2 and one line, before any connection to Kafka."""
    policy_path = tmp_path / "allows-security.yaml"
    policy_path.write_text(ALLOWS_SECURITY)
    result = subprocess.run(
        [sys.executable, "-m", "enforcer.cli", "run", "--policy", str(policy_path)],
        env={
            "PATH": "/usr/bin:/bin",
            "ENFORCER_FINGERPRINT_KEY": generate_key(),
            "ENFORCER_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "at destinations.audience-building.allow" in result.stderr
