"""A policy with a security override is flagged where operators look: the gauge
enforcer_policy_security_override, /readyz, and the start-up log (docs/policy.md)."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from enforcer.core.clock import FixedClock
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.load import load_policy, parse_policy
from enforcer.live.health import Health
from enforcer.live.http import prometheus_text
from enforcer.live.worker import _flag_policy
from enforcer.outputs.metrics import MetricsRecorder

from ..conftest import NOW

STATED = """
rules: [{name: missing-purpose, when: no-purpose}]
destinations: {audience-building: {allow: [marketing.advertisment, security]}}
security_override: {reason: Fraud-team lookalikes (PRIV-123)}
"""


def _parts(policy: Policy) -> tuple[Health, MetricsRecorder]:
    health = Health(lambda: 0.0, stalled_after_s=30)
    recorder = MetricsRecorder("w1", policy.version, policy.mode, FixedClock(NOW), lambda: 0.0)
    return health, recorder


def _gauge(recorder: MetricsRecorder) -> float:
    text = prometheus_text(recorder, []).decode()
    for family in text_string_to_metric_families(text):
        if family.name == "enforcer_policy_security_override":
            return float(family.samples[0].value)
    raise AssertionError("enforcer_policy_security_override is not exposed")


def test_a_policy_with_an_override_is_flagged_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Gauge 1, /readyz says so with the reason (still ready), and WARNING lines name
    the override and the misspelt allow-list namespace."""
    policy = parse_policy(STATED.encode(), origin="stated.yaml")
    health, recorder = _parts(policy)
    with caplog.at_level(logging.WARNING):
        _flag_policy(policy, health, recorder)
    assert _gauge(recorder) == 1
    health.on_started()
    ready = health.ready()
    assert ready.ok
    assert ready.detail["security_override"] is True
    assert ready.detail["security_override_reason"] == "Fraud-team lookalikes (PRIV-123)"
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'marketing.advertisment' is not in the Fides taxonomy" in m for m in messages)
    assert any(
        m.startswith("policy stated.yaml: security override:") and "PRIV-123" in m for m in messages
    )


def test_the_default_policy_is_not_flagged(caplog: pytest.LogCaptureFixture) -> None:
    """Gauge 0, /readyz false, and nothing logged."""
    policy = load_policy(None)
    health, recorder = _parts(policy)
    with caplog.at_level(logging.WARNING):
        _flag_policy(policy, health, recorder)
    assert _gauge(recorder) == 0
    assert health.ready().detail["security_override"] is False
    assert "security_override_reason" not in health.ready().detail
    assert caplog.records == []
