"""Sample traffic: a mix that exercises every rule of the default, in real vocabulary."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from random import Random

import orjson

from enforcer.core.policy.load import load_policy
from enforcer.core.policy.vocabulary import FIDES, builtin_vocabulary
from enforcer.core.purposes import within
from enforcer.core.step import InputRecord, OutcomeKind, Source
from enforcer.demo.sample import sample_event, sample_values

from ..conftest import make_step

POLICIES = Path(__file__).resolve().parents[3] / "policies"


def _outcomes(policy_file: Path | None, count: int = 2000) -> tuple[Counter[str], Counter[str]]:
    step = make_step(load_policy(policy_file))
    kinds: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    for offset, value in enumerate(sample_values(count, seed=7)):
        outcome = step(InputRecord(None, value, (), Source("sample", 0, offset)))
        kinds[outcome.kind.value] += 1
        rules.update(finding.rule for finding in outcome.findings)
    return kinds, rules


def test_samples_exercise_every_outcome_and_every_default_rule() -> None:
    """The demo shows the 2019 case, missing purposes and non-advertising purposes."""
    kinds, rules = _outcomes(None)
    assert set(kinds) == {"passed", "redacted", "dropped", "deadlettered"}
    assert set(rules) == {"security-only-purpose", "missing-purpose", "purpose-not-allowed"}
    assert rules["purpose-not-allowed"] > 0.1 * sum(kinds.values())


def test_sample_purposes_are_fides_data_uses_or_security() -> None:
    """Only the malformed samples are dead letters, even under a taxonomy that rejects."""
    fides = builtin_vocabulary(FIDES).keys
    for value in sample_values(500, seed=3, invalid_share=0):
        for identifier in orjson.loads(value)["identifiers"]:
            for purpose in identifier.get("purposes", []):
                assert purpose in fides or within(purpose, "security"), purpose
    strict, _ = _outcomes(POLICIES / "advertising-allow-list.yaml")
    default, _ = _outcomes(None)
    assert strict["deadlettered"] == default["deadlettered"]


def test_samples_are_deterministic_for_a_seed() -> None:
    """The same seed gives the same bytes; the benchmark's two fixed events keep their
    outcome under the default (one passes, one is redacted)."""
    assert list(sample_values(50, seed=5)) == list(sample_values(50, seed=5))
    at = datetime(2019, 10, 8, 12, 0, tzinfo=UTC)
    step = make_step()
    passing = sample_event(Random(1), 1, False, at)
    redacting = sample_event(Random(1), 1, True, at)
    source = Source("identity.events", 0, 1)
    assert step(InputRecord(None, passing, (), source)).kind is OutcomeKind.PASSED
    assert step(InputRecord(None, redacting, (), source)).kind is OutcomeKind.REDACTED
