"""``enforcer policy test``: test cases kept next to a policy, run like ``opa test``.

A test file (YAML)::

    policy: default.yaml          # relative to this file; omitted: the built-in default
    destination: audience-building  # optional
    cases:
      - name: a 2FA-only phone is redacted
        record: {event_id: e1, subject_id: a1, occurred_at: "2019-10-01T00:00:00Z",
                 identifiers: [{type: phone, value: "+1 555 0100", purposes: [security.mfa]}]}
        expect:
          outcome: dropped                # passed | redacted | dropped | deadlettered
          decisions: [security-only-purpose]  # per identifier: a rule name, or pass
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter, generate_key
from enforcer.core.parse import format_location
from enforcer.core.policy.compiled import DEFAULT_DESTINATION
from enforcer.core.policy.load import PolicyLoadError, load_policy
from enforcer.core.step import InputRecord, Source, Step
from enforcer.formats.reader import build_reader

_FILE = ConfigDict(extra="forbid", frozen=True)


class Expectation(BaseModel):
    """What a case expects."""

    model_config = _FILE

    outcome: Literal["passed", "redacted", "dropped", "deadlettered"]
    decisions: list[str] | None = None
    reason: str | None = None


class Case(BaseModel):
    """One record and what the policy should do with it."""

    model_config = _FILE

    name: str = Field(min_length=1)
    record: object = Field(
        description="The identity event, or a record the policy's field mappings read; "
        "a string is taken as raw bytes."
    )
    topic: str | None = Field(
        default=None,
        description="The source topic the record comes from, for mappings that name "
        "topics (default: the test file's name).",
    )
    expect: Expectation


class TestFile(BaseModel):
    """A policy test file."""

    model_config = _FILE

    policy: str | None = None
    destination: str = DEFAULT_DESTINATION
    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True)
class CaseResult:
    """One case's result; ``problem`` is empty when it passed."""

    name: str
    problem: str


def run_test_file(path: Path) -> list[CaseResult]:
    """Run every case of one test file. Raises ``PolicyLoadError`` on a bad file."""
    try:
        document = yaml.safe_load(path.read_bytes())
        tests = TestFile.model_validate(document)
    except OSError as exc:
        raise PolicyLoadError(f"{path}: cannot read test file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        # One line, as for a policy file: the error's own text runs over several.
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["?"])[0]
        raise PolicyLoadError(f"{path}{where}: invalid YAML: {problem}") from None
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        place = format_location(tuple(error["loc"])) or "(top level)"
        raise PolicyLoadError(f"{path}: at {place}: {error['msg']}") from None
    policy_path = (path.parent / tests.policy) if tests.policy else None
    policy = load_policy(policy_path, destination=tests.destination)
    # Test runs need no secret: fingerprints are not part of what a case checks.
    # Cases judge the rules on the events' tags: a policy's ledger setting is for runs
    # with a ledger (replay --ledger-file tests it).
    rules_only = dataclasses.replace(policy, ledger=None)
    step = Step(
        rules_only,
        Fingerprinter(generate_key().encode()),
        FixedClock(datetime.now(UTC)),
        reader=build_reader(rules_only, None),
    )
    results = []
    for number, case in enumerate(tests.cases):
        value = _record_bytes(path, number, case.record)
        record = InputRecord(None, value, (), Source(case.topic or path.name, 0, number))
        outcome, decision = step.explain(record)
        problems = []
        if outcome.kind.value != case.expect.outcome:
            problems.append(f"outcome {outcome.kind.value}, expected {case.expect.outcome}")
        if case.expect.decisions is not None:
            got = [
                j.rule.name if j.rule else "pass"
                for j in (decision.identifiers if decision else ())
            ]
            if got != case.expect.decisions:
                problems.append(f"decisions {got}, expected {case.expect.decisions}")
        if case.expect.reason is not None and str(outcome.error_reason) != case.expect.reason:
            problems.append(f"reason {outcome.error_reason}, expected {case.expect.reason}")
        results.append(CaseResult(case.name, "; ".join(problems)))
    return results


def _record_bytes(path: Path, number: int, raw: object) -> bytes:
    """A case's record as the bytes of a record value: a string as UTF-8, anything else
    as JSON. Raises ``PolicyLoadError`` for one that is neither (a lone surrogate, a
    key that is no string, binary data, an integer beyond 64 bits)."""
    where = f"{path}: at cases[{number}].record"
    if isinstance(raw, str):
        try:
            return raw.encode()
        except UnicodeEncodeError:
            raise PolicyLoadError(f"{where}: a string with no UTF-8 form") from None
    try:
        return orjson.dumps(raw)
    except orjson.JSONEncodeError as exc:
        raise PolicyLoadError(
            f"{where}: cannot be written as JSON ({exc}); write the record as a string"
        ) from None
