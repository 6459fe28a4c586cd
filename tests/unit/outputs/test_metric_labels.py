"""Bounded metric labels (docs/operations.md: metrics): identifier types outside the
configured set are counted as ``other``, so event data cannot grow the series without
bound; violations keep the real type."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from enforcer.config.settings import EnforcerSettings
from enforcer.core.clock import FixedClock
from enforcer.core.policy.compiled import Policy
from enforcer.core.step import InputRecord, Outcome, Source, Step
from enforcer.live.http import prometheus_text
from enforcer.outputs.metrics import (
    DEFAULT_METRIC_IDENTIFIER_TYPES,
    IDENTIFIERS_REDACTED,
    OTHER_IDENTIFIER_TYPE,
    BatchCounts,
    MetricsRecorder,
    metric_identifier_types,
)

from ..conftest import NOW, event, ident, make_step

SCRIPT = "<script>alert(1)</script>"
INVENTED = "Script:alert-1"
"""A type nothing names (types are names: markup is dead-lettered, never a label)."""
# Every security namespace is stopped (the guardrail refuses a policy that lets one
# through), and one rule is limited to a type.
_SECURITY = (
    "[security, essential.service.security, essential.service.authentication, "
    "essential.fraud_detection]"
)
BADGE_RULE_POLICY = f"""
format: 1
mode: enforce
rules:
  - name: security-only-badge
    when: all-within
    within: {_SECURITY}
    types: [badge_number]
    action: redact
  - name: security-only-purpose
    when: all-within
    within: {_SECURITY}
    action: redact
"""


def _recorder(step: Step, types: frozenset[str]) -> MetricsRecorder:
    return MetricsRecorder(
        "worker-1",
        step.policy.version,
        step.policy.mode,
        FixedClock(NOW),
        lambda: 0.0,
        types,
    )


def _flood(step: Step, kinds: list[str]) -> list[Outcome]:
    """One security-only identifier of each type: each is a finding."""
    return [
        step(
            InputRecord(
                None,
                orjson.dumps(event(ident(kind, f"+1 555 01{i % 100:02d}", ["security.mfa"]))),
                (),
                Source("identity.events", 0, i),
            )
        )
        for i, kind in enumerate(kinds)
    ]


def _label_values(text: bytes) -> set[str]:
    return {
        sample.labels["identifier_type"]
        for family in text_string_to_metric_families(text.decode())
        if family.name == IDENTIFIERS_REDACTED.name.removesuffix("_total")
        for sample in family.samples
        if sample.name == IDENTIFIERS_REDACTED.name
    }


def test_a_flood_of_invented_types_makes_at_most_n_plus_one_label_values() -> None:
    """2,000 distinct types (markup among them) yield the N configured ones plus
    ``other``; the scrape and the snapshot never carry an invented type."""
    step = make_step()
    types = metric_identifier_types(DEFAULT_METRIC_IDENTIFIER_TYPES, step.policy)
    invented = [f"type-{i}" for i in range(2000)]
    kinds = [*invented, INVENTED, f"{INVENTED}-2", "PHONE", "email", "device_id"]
    outcomes = _flood(step, kinds)
    assert all(o.findings for o in outcomes)
    recorder = _recorder(step, types)
    recorder(BatchCounts.of(outcomes, 0.0))

    scraped = prometheus_text(recorder, [])
    values = _label_values(scraped)
    assert len(values) <= len(types) + 1
    assert values == {"phone", "email", "device_id", OTHER_IDENTIFIER_TYPE}
    assert b"script" not in scraped.lower()
    assert not any(kind.encode() in scraped for kind in invented)
    snapshot = recorder.snapshot([])
    assert snapshot.identifiers_redacted_by_type == {
        "device_id": 1,
        "email": 1,
        "other": len(invented) + 2,
        "phone": 1,  # compared in lower case, as the decision does
    }
    assert "script" not in snapshot.model_dump_json().lower()


def test_violations_keep_the_real_type() -> None:
    """Only metrics are bounded: the violation names the type the event gave (in lower
    case, as the decision compares it)."""
    step = make_step()
    (outcome,) = _flood(step, [INVENTED])
    assert outcome.violation is not None
    assert outcome.violation["findings"][0]["identifier_type"] == INVENTED.lower()
    recorder = _recorder(step, frozenset(DEFAULT_METRIC_IDENTIFIER_TYPES))
    recorder(BatchCounts.of([outcome], 0.0))
    assert dict(recorder.by_type) == {OTHER_IDENTIFIER_TYPE: 1}


def test_the_types_a_policy_names_are_counted_by_name(
    policy_from: Callable[[str], Policy],
) -> None:
    """A type a rule is limited to is a label value of its own without configuring it."""
    policy = policy_from(BADGE_RULE_POLICY)
    types = metric_identifier_types(["email"], policy)
    assert types == {"email", "badge_number"}
    step = make_step(policy)
    recorder = _recorder(step, types)
    recorder(BatchCounts.of(_flood(step, ["badge_number", "email", "phone"]), 0.0))
    assert dict(recorder.by_type) == {"badge_number": 1, "email": 1, OTHER_IDENTIFIER_TYPE: 1}


def test_the_setting_defaults_to_the_common_types_and_takes_plain_names() -> None:
    """``ENFORCER_METRIC_IDENTIFIER_TYPES``: comma-separated, lower-cased; markup is
    refused at start (it would become a label value)."""
    assert EnforcerSettings().metric_identifier_types.split(",") == list(
        DEFAULT_METRIC_IDENTIFIER_TYPES
    )
    assert EnforcerSettings(metric_identifier_types=" Email, msisdn ,").metric_identifier_types == (
        "email,msisdn"
    )
    with pytest.raises(ValidationError, match="not a plain name"):
        EnforcerSettings(metric_identifier_types=f"email,{SCRIPT}")
