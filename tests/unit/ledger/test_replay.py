"""A ledger file: in order, the latest value per subject wins, bad lines collected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.models import DeadLetterReason, parse_rfc3339
from enforcer.ledger.replay import LineFailure, replay_ledger_file, replay_ledger_lines

from ..conftest import KEY

FP = Fingerprinter(KEY)
ADS, MFA = "marketing.advertising", "security.mfa"
PHONE = "+14155550100"


def line(subject: str, updated_at: str, *purposes: str) -> bytes:
    value: dict[str, Any] = {
        "subject_id": subject,
        "updated_at": updated_at,
        "identifiers": [{"type": "phone", "value": PHONE, "purposes": list(purposes)}],
    }
    return orjson.dumps(value) + b"\n"


LINES = [
    line("acct-1", "2019-01-01T00:00:00Z", MFA),
    b"\n",
    b"not json\n",
    line("acct-1", "2019-06-01T00:00:00Z", MFA, ADS),
    b'{"subject_id": "acct-2"}\n',
    line("acct-2", "2019-03-01T00:00:00Z", ADS),
    b"null\n",
]


def phone_purposes(state: Any, subject: str) -> tuple[str, ...] | None:
    result: tuple[str, ...] | None = state.purposes(subject, "phone", FP("phone", PHONE))
    return result


def test_the_latest_value_per_subject_wins_and_bad_lines_are_collected() -> None:
    """Valid lines apply in order; invalid ones are failures with their line numbers."""
    result = replay_ledger_lines(LINES, FP)
    assert phone_purposes(result.state, "acct-1") == (ADS, MFA)
    assert phone_purposes(result.state, "acct-2") == (ADS,)
    assert (result.applied, result.after_as_of) == (3, 0)
    assert [(f.line, f.reason) for f in result.failures] == [
        (3, DeadLetterReason.INVALID_JSON),
        (5, DeadLetterReason.SCHEMA),
        (7, DeadLetterReason.NOT_AN_OBJECT),
    ]
    assert all(PHONE not in f.message for f in result.failures)


def test_as_of_ignores_values_updated_after_it() -> None:
    """The ledger as it stood at a time: later values are skipped and counted."""
    result = replay_ledger_lines(LINES, FP, as_of=parse_rfc3339("2019-02-01T00:00:00+00:00"))
    assert phone_purposes(result.state, "acct-1") == (MFA,)
    assert phone_purposes(result.state, "acct-2") is None
    assert (result.applied, result.after_as_of) == (1, 2)


def test_a_file_replays_like_its_lines(tmp_path: Path) -> None:
    """The file reader is the line reader over the file's lines."""
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b"".join(LINES))
    result = replay_ledger_file(path, FP)
    assert phone_purposes(result.state, "acct-1") == (ADS, MFA)
    assert result.failures[0] == LineFailure(
        3, DeadLetterReason.INVALID_JSON, result.failures[0].message
    )
