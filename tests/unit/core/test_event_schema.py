"""The identity event's JSON Schema, the example events file and `enforcer sample`."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcer.cli import main
from enforcer.core.clock import FixedClock
from enforcer.core.models import IdentityEvent
from enforcer.core.policy.spec import PolicyFile
from enforcer.core.purposes import normalize_tag
from enforcer.core.step import Outcome, OutcomeKind
from enforcer.demo.sample import sample_values
from enforcer.outputs.report.model import ReplaySource
from enforcer.replay.loop import replay
from enforcer.replay.sources.jsonl import read_jsonl

from ..conftest import NOW, make_step, record

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "docs" / "examples" / "events.jsonl"


def test_published_event_schema_matches_the_model() -> None:
    """The JSON Schema shipped in the package is the one the validating model generates."""
    shipped = json.loads(resources.files("enforcer.core").joinpath("event.schema.json").read_text())
    assert shipped == IdentityEvent.model_json_schema()
    assert shipped["required"] == ["event_id", "subject_id", "occurred_at", "identifiers"]


def test_schema_command_prints_the_shipped_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    """`enforcer schema event` and `enforcer schema policy` print valid JSON Schema."""
    assert main(["schema", "event"]) == 0
    assert json.loads(capsys.readouterr().out) == IdentityEvent.model_json_schema()
    assert main(["schema", "policy"]) == 0
    assert json.loads(capsys.readouterr().out) == PolicyFile.model_json_schema()
    assert main(["schema", "ledger"]) == 2


class _Collect:
    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    def write(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


def test_the_example_events_show_every_outcome() -> None:
    """docs/examples/events.jsonl: passed, redacted, dropped and dead-lettered records."""
    sink = _Collect()
    with EXAMPLES.open("rb") as stream:
        replay(
            read_jsonl(stream, EXAMPLES.name),
            make_step(),
            sink,
            ReplaySource(kind="file", name=str(EXAMPLES)),
            FixedClock(NOW),
        )
    kinds = {outcome.kind for outcome in sink.outcomes}
    assert kinds == set(OutcomeKind)
    for outcome in sink.outcomes:
        if outcome.kind is not OutcomeKind.DEADLETTERED:
            IdentityEvent.model_validate_json(outcome.record.value or b"")


def test_sample_writes_the_generators_records(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`enforcer sample` writes sample_values, one a line, to stdout or --out."""
    expected = b"".join(value + b"\n" for value in sample_values(60, seed=7))
    out = tmp_path / "events.jsonl"
    assert main(["sample", "--records", "60", "--seed", "7", "--out", str(out)]) == 0
    assert out.read_bytes() == expected
    assert main(["sample", "--records", "60", "--seed", "8", "--out", str(out)]) == 0
    assert out.read_bytes() != expected
    assert main(["sample", "--records", "-1"]) == 2
    assert "--records" in capsys.readouterr().err


def test_sample_to_stdout(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    """Without --out the records go to standard output."""
    assert main(["sample", "--records", "5"]) == 0
    lines = capfdbinary.readouterr().out.splitlines()
    assert lines == list(sample_values(5, seed=2019))


def _event_with_tag(tag: str) -> dict[str, Any]:
    return {
        "event_id": "e-1",
        "subject_id": "acct-1",
        "occurred_at": "2019-10-08T12:00:00Z",
        "identifiers": [{"type": "email", "value": "a@example.com", "purposes": [tag]}],
    }


def _published_validator() -> jsonschema.protocols.Validator:
    shipped = json.loads(resources.files("enforcer.core").joinpath("event.schema.json").read_text())
    validator_class = jsonschema.validators.validator_for(shipped)
    validator_class.check_schema(shipped)
    return validator_class(shipped)


def test_the_published_schema_names_its_dialect_and_id() -> None:
    """Producers' tools know which JSON Schema dialect to apply and what they validate by."""
    shipped = json.loads(resources.files("enforcer.core").joinpath("event.schema.json").read_text())
    assert shipped["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert shipped["$id"] == "urn:purpose-enforcer:schema:identity-event"
    assert jsonschema.validators.validator_for(shipped) is jsonschema.Draft202012Validator


@pytest.mark.parametrize(
    ("tag", "valid"),
    [
        ("<script>alert(2)</script>", False),
        ("security..mfa", False),
        ("", False),
        ("  Security.MFA ", True),
        ("marketing.advertising.first_party", True),
        ("\u212aey", True),  # KELVIN SIGN lower-cases to "k"
    ],
)
def test_a_tag_valid_under_the_published_schema_is_one_the_decision_accepts(
    tag: str, valid: bool
) -> None:
    """The schema's verdict on a tag is the decision's: no record passes one and is
    dead-lettered as ``schema`` by the other."""
    assert _published_validator().is_valid(_event_with_tag(tag)) is valid
    outcome = make_step()(record(_event_with_tag(tag)))
    assert (outcome.kind is not OutcomeKind.DEADLETTERED) is valid


_TAG_ALPHABET = st.sampled_from(
    [*"abzAZ09_-.<>/ \t\n\x0b\x1c\x1f\x85\xa0", "\u2000", "\u3000", "\u212a", "\u0130", "é", "\x00"]
)


@given(st.text(_TAG_ALPHABET, max_size=12))
def test_the_schema_pattern_accepts_exactly_what_the_parser_accepts(tag: str) -> None:
    """Property: for any raw tag, the published pattern and normalize_tag agree."""
    assert _published_validator().is_valid(_event_with_tag(tag)) is (normalize_tag(tag) is not None)


def _event_with_type(kind: str) -> dict[str, Any]:
    return {
        "event_id": "e-1",
        "subject_id": "acct-1",
        "occurred_at": "2019-10-08T12:00:00Z",
        "identifiers": [
            {"type": kind, "value": "+1 415 555 0100", "purposes": ["marketing.advertising"]}
        ],
    }


@pytest.mark.parametrize(
    ("kind", "valid"),
    [
        ("phone", True),
        ("  Phone ", True),
        ("hashed:email", True),
        ("device_id", True),
        ("ip.v4-address", True),
        ("\u212aey", True),  # KELVIN SIGN lower-cases to "k"
        ("x" * 64, True),
        ("x" * 65, False),
        ("+1 415 555 0100", False),  # a value where the type belongs
        ("14155550100", False),
        ("1-415-555-0100", False),
        ("ann@example.com", False),
        ("ph\u03bfne", False),  # a Greek omicron: a look-alike no rule names
        ("<script>x</script>", False),
        ("email address", False),
        ("", False),
        ("   ", False),
    ],
)
def test_a_type_valid_under_the_published_schema_is_one_the_decision_accepts(
    kind: str, valid: bool
) -> None:
    """An identifier type is a name; anything else (a phone number or email address
    written where the type belongs, a look-alike letter) is dead-lettered as
    ``schema``, and the published schema says the same. The dead letter's message
    names the rule, never the value."""
    assert _published_validator().is_valid(_event_with_type(kind)) is valid
    outcome = make_step()(record(_event_with_type(kind)))
    assert (outcome.kind is not OutcomeKind.DEADLETTERED) is valid
    if not valid:
        assert outcome.error_reason == "schema"
        message = outcome.error_message or ""
        assert message.startswith("identifiers[0].type: ")
        if kind.strip():  # an empty one is too short, as before
            assert "must be an identifier type" in message
            assert kind.strip() not in message


@given(st.text(_TAG_ALPHABET | st.sampled_from(":+@\u03bf"), max_size=70))
def test_the_type_pattern_accepts_exactly_what_the_decision_accepts(kind: str) -> None:
    """Property: for any raw type, the published pattern and the decision agree, on the
    fast path (plain JSON) and the model's alike."""
    published = _published_validator().is_valid(_event_with_type(kind))
    outcome = make_step()(record(_event_with_type(kind)))
    assert (outcome.kind is not OutcomeKind.DEADLETTERED) is published
