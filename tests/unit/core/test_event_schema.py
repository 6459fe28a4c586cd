"""The identity event's JSON Schema, the example events file and `enforcer sample`."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from enforcer.cli import main
from enforcer.core.clock import FixedClock
from enforcer.core.models import IdentityEvent
from enforcer.core.policy.spec import PolicyFile
from enforcer.core.step import Outcome, OutcomeKind
from enforcer.demo.sample import sample_values
from enforcer.outputs.report.model import ReplaySource
from enforcer.replay.loop import replay
from enforcer.replay.sources.jsonl import read_jsonl

from ..conftest import NOW, make_step

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
