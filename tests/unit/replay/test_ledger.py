"""Replay and explain against a purpose ledger (docs/contract.md: command line; docs/ledger.md): the
report's ledger part, as-of, topic records with tombstones, and one-line errors for bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from enforcer.cli import main
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.models import DeadLetterReason, parse_rfc3339
from enforcer.ledger.replay import LedgerRecord, replay_ledger_lines, replay_ledger_records

from ..conftest import KEY, event, ident

KEY_TEXT = "0123456789abcdef0123456789abcdef"
ADS, MFA = "marketing.advertising", "security.mfa"
PHONE_1, PHONE_2 = "+14155550100", "+14155550199"
EMAIL_2, EMAIL_3 = "two@example.com", "three@example.com"
RAW_VALUES = (PHONE_1, PHONE_2, EMAIL_2, EMAIL_3, "4155550100", "example.com")


def ledger_line(subject: str, updated_at: str, *identifiers: tuple[str, str, list[str]]) -> bytes:
    value = {
        "subject_id": subject,
        "updated_at": updated_at,
        "identifiers": [{"type": t, "value": v, "purposes": p} for t, v, p in identifiers],
    }
    return orjson.dumps(value) + b"\n"


# acct-1: a 2FA-only phone throughout. acct-2: a phone for 2FA, an email first granted
# for advertising, then (after 2019-06) for 2FA only. acct-3 is not in the ledger.
LEDGER = [
    ledger_line("acct-1", "2019-01-01T00:00:00Z", ("phone", PHONE_1, [MFA])),
    b"not json\n",
    ledger_line(
        "acct-2", "2019-01-01T00:00:00Z", ("phone", PHONE_2, [MFA]), ("email", EMAIL_2, [ADS])
    ),
    ledger_line(
        "acct-2", "2019-07-01T00:00:00Z", ("phone", PHONE_2, [MFA]), ("email", EMAIL_2, [MFA])
    ),
]

EVENTS = [
    event(
        ident("phone", PHONE_1, [ADS]),
        event_id="e1",
        subject_id="acct-1",
        occurred_at="2019-10-08T09:00:00Z",
    ),
    event(
        ident("phone", PHONE_1, [MFA]),
        event_id="e2",
        subject_id="acct-1",
        occurred_at="2019-10-08T10:00:00Z",
    ),
    event(
        ident("email", EMAIL_2, [ADS]),
        ident("phone", PHONE_2, [ADS]),
        event_id="e3",
        subject_id="acct-2",
        occurred_at="2019-10-09T08:30:00+02:00",
    ),
    event(
        ident("email", EMAIL_3, [ADS]),
        event_id="e4",
        subject_id="acct-3",
        occurred_at="2019-10-10T12:00:00Z",
    ),
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(events file, ledger file), and a fingerprint key in the environment."""
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", KEY_TEXT)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in EVENTS))
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_bytes(b"".join(LEDGER))
    return events, ledger


def replay(
    capsys: pytest.CaptureFixture[str], out: Path, events: Path, *extra: str
) -> tuple[dict[str, Any], str]:
    code, stdout, err = run(
        capsys, "replay", "--no-progress", "--from-file", str(events), "--out", str(out), *extra
    )
    assert code == 0, err
    report: dict[str, Any] = json.loads((out / "report.json").read_bytes())
    return report, stdout + err


def assert_no_raw_values(*texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        for raw in RAW_VALUES:
            assert raw.encode() not in data, raw


def test_replay_against_a_ledger_file_reports_whose_2fa_identifier_was_claimed(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    """The ledger part: source, state, records, identifiers known and unknown, and the
    purpose-not-granted findings by account, time and day; no raw value anywhere."""
    events, ledger = files
    out = tmp_path / "out"
    report, said = replay(capsys, out, events, "--ledger-file", str(ledger))
    part = report["ledger"]
    assert part["source"]["kind"] == "file" and part["source"]["name"] == str(ledger)
    assert len(part["source"]["sha256"]) == 64
    assert (part["as_of"], part["mode"]) == (None, "authoritative")
    assert part["state"] == {"subjects": 2, "identifiers": 3}
    assert part["records"] == {"applied": 3, "erased": 0, "invalid": 1, "after_as_of": 0}
    # e1 phone, e2 phone, e3 email and phone are known; e4's email is not.
    assert part["identifiers_judged"] == {"known": 4, "unknown": 1}
    # e1's phone and e3's email and phone: claimed for advertising, granted for 2FA only.
    assert part["purpose_not_granted"] == {
        "findings": 3,
        "affected_subjects": 2,
        "first_seen": "2019-10-08T09:00:00Z",
        "last_seen": "2019-10-09T08:30:00+02:00",
        "by_day": [
            {"day": "2019-10-08", "findings": 1, "affected_subjects": 1},
            {"day": "2019-10-09", "findings": 2, "affected_subjects": 1},
        ],
    }
    # e2's phone claims only what was granted: its usual rule, not purpose-not-granted.
    assert report["violations_by_rule"] == {
        "missing-purpose": 1,
        "purpose-not-granted": 3,
        "security-only-purpose": 1,
    }
    [rule] = [r for r in report["rules"] if r["rule"] == "purpose-not-granted"]
    assert "ledger does not grant" in rule["description"]
    violations = (out / "violations.jsonl").read_bytes()
    findings = [f for line in violations.splitlines() for f in json.loads(line)["findings"]]
    assert {(f["rule"], f["ledger"]) for f in findings} == {
        ("purpose-not-granted", "known"),
        ("security-only-purpose", "known"),
        ("missing-purpose", "unknown"),
    }
    html = (out / "report.html").read_text()
    assert "Against the purpose ledger" in html and "3 known" not in html
    assert "4 known to the ledger, 1 unknown to it" in html
    assert "1 invalid" in said and "purpose-not-granted findings affecting 2 accounts" in said
    assert_no_raw_values(said, (out / "report.json").read_bytes(), html, violations)


def test_as_of_judges_against_the_ledger_as_it_stood(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    """Before acct-2's email lost its advertising grant, e3's email would have passed."""
    events, ledger = files
    report, said = replay(
        capsys,
        tmp_path / "out",
        events,
        "--ledger-file",
        str(ledger),
        "--ledger-as-of",
        "2019-03-01T00:00:00Z",
    )
    part = report["ledger"]
    assert part["as_of"] == "2019-03-01T00:00:00Z"
    assert part["records"] == {"applied": 2, "erased": 0, "invalid": 1, "after_as_of": 1}
    found = part["purpose_not_granted"]
    assert (found["findings"], found["affected_subjects"]) == (2, 2)
    assert found["last_seen"] == "2019-10-09T08:30:00+02:00"
    assert "as of 2019-03-01T00:00:00Z" in said


def test_without_a_ledger_the_report_has_no_ledger_part(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    """report.json and the HTML are as before when no ledger is given."""
    events, _ = files
    report, said = replay(capsys, tmp_path / "out", events)
    assert "ledger" not in report
    assert "purpose ledger" not in (tmp_path / "out" / "report.html").read_text()
    assert "ledger (" not in said and "ledger file" not in said


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--ledger-file", "L", "--ledger-topic", "t"], "not allowed with"),
        (["--ledger-as-of", "2019-01-01T00:00:00Z"], "--ledger-as-of goes with"),
        (["--ledger-file", "L", "--ledger-as-of", "last tuesday"], "RFC 3339"),
        (["--ledger-file", "MISSING"], "No such file"),
    ],
)
def test_bad_ledger_flags_are_one_line_errors(
    capsys: pytest.CaptureFixture[str],
    files: tuple[Path, Path],
    tmp_path: Path,
    extra: list[str],
    names: str,
) -> None:
    """Exit 2 with one line; nothing is written."""
    events, ledger = files
    argv = [
        str(ledger) if word == "L" else str(tmp_path / "nope") if word == "MISSING" else word
        for word in extra
    ]
    out = tmp_path / "out"
    code, _, err = run(
        capsys, "replay", "--from-file", str(events), "--out", str(out), "--no-progress", *argv
    )
    assert code == 2, err
    assert err.startswith("enforcer: error:") and err.count("\n") == 1 and names in err
    assert not out.exists()


def test_a_policy_that_asks_for_a_ledger_needs_one(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    """``ledger: fallback`` without --ledger-file: exit 2, one line, for replay and explain;
    with one, the setting is in effect."""
    events, ledger = files
    policy = tmp_path / "policy.yaml"
    default = Path(__file__).resolve().parents[3] / "policies" / "default.yaml"
    policy.write_text(default.read_text() + "\nledger: fallback\n")
    out = tmp_path / "out"
    base = ["--from-file", str(events), "--out", str(out), "--policy", str(policy)]
    code, _, err = run(capsys, "replay", *base)
    assert code == 2 and err.count("\n") == 1 and "ledger: fallback" in err
    assert not out.exists()
    code, _, err = run(capsys, "explain", str(events), "--line", "0", "--policy", str(policy))
    assert code == 2 and err.count("\n") == 1 and "ledger: fallback" in err
    report, _ = replay(capsys, out, events, "--policy", str(policy), "--ledger-file", str(ledger))
    assert report["ledger"]["mode"] == "fallback"
    # Fallback judges acct-3's unknown email by its tags: advertising, so it passes.
    assert report["violations_by_rule"] == {"purpose-not-granted": 3, "security-only-purpose": 1}


def test_explain_shows_the_ledger_beside_the_claim(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path]
) -> None:
    """Per identifier: the ledger's purposes or 'unknown', the event's claim, the rule."""
    events, ledger = files
    args = ["explain", str(events), "--line", "2", "--ledger-file", str(ledger)]
    code, out, _ = run(capsys, *args, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["ledger"]["mode"] == "authoritative" and data["ledger"]["as_of"] is None
    assert [
        (i["type"], i["ledger"], i["ledger_purposes"], i["claimed_purposes"], i["rule"])
        for i in data["identifiers"]
    ] == [
        ("email", "known", [MFA], [ADS], "purpose-not-granted"),
        ("phone", "known", [MFA], [ADS], "purpose-not-granted"),
    ]
    assert "does not grant" in data["identifiers"][0]["why"]
    code, text, _ = run(capsys, *args)
    assert code == 0 and "by rule purpose-not-granted" in text
    assert f"ledger: {MFA}; the event claims: {ADS}" in text
    code, text, _ = run(capsys, *args, "--ledger-as-of", "2019-03-01T00:00:00Z")
    assert "as of 2019-03-01T00:00:00Z" in text and f"ledger: {ADS}; the event claims" in text
    code, unknown, _ = run(
        capsys, "explain", str(events), "--line", "3", "--ledger-file", str(ledger)
    )
    assert "unknown to the ledger" in unknown and "by rule missing-purpose" in unknown
    assert_no_raw_values(out, text, unknown)


def test_explain_without_a_ledger_shows_no_ledger_fields(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path]
) -> None:
    """The explanation is as before when no ledger is given: the event's claim of
    advertising for a 2FA-only phone goes unchallenged (the 2019 failure)."""
    events, _ = files
    code, out, _ = run(capsys, "explain", str(events), "--line", "0", "--json")
    data = json.loads(out)
    assert code == 0 and "ledger" not in data
    assert "ledger" not in data["identifiers"][0]
    assert (data["identifiers"][0]["decision"], data["identifiers"][0]["rule"]) == ("pass", None)


def _at(text: str) -> datetime:
    return parse_rfc3339(text).astimezone(UTC)


def test_topic_records_tombstones_key_checks_and_as_of() -> None:
    """A tombstone erases its subject (as of its record time); a value whose subject is
    not its key is invalid, and withholds its key's subject (known, no purpose)."""
    fingerprinter = Fingerprinter(KEY)
    value = ledger_line("acct-1", "2019-01-01T00:00:00Z", ("phone", PHONE_1, [MFA])).strip()
    records = [
        LedgerRecord(b"acct-1", value, _at("2019-01-01T00:00:01Z"), 0, 0),
        LedgerRecord(b"acct-9", value, _at("2019-01-02T00:00:00Z"), 0, 1),
        LedgerRecord(b"acct-1", None, _at("2019-05-01T00:00:00Z"), 0, 2),
        LedgerRecord(None, None, _at("2019-05-01T00:00:00Z"), 1, 0),
    ]
    mark = fingerprinter("phone", PHONE_1)
    result = replay_ledger_records(records, fingerprinter)
    assert result.state.purposes("acct-1", "phone", mark) == ()  # erased: no purpose
    assert result.state.grants_nothing("acct-9")  # withheld by its refused value
    assert (result.applied, result.erased, result.after_as_of, result.invalid) == (2, 1, 0, 2)
    assert [(f.partition, f.offset, f.reason) for f in result.record_failures] == [
        (0, 1, DeadLetterReason.SCHEMA),
        (1, 0, DeadLetterReason.INVALID_JSON),
    ]
    before = replay_ledger_records(records, fingerprinter, as_of=_at("2019-03-01T00:00:00Z"))
    assert before.state.purposes("acct-1", "phone", mark) == (MFA,)
    assert (before.applied, before.erased, before.after_as_of) == (1, 0, 1)


def test_a_topic_value_without_a_key_is_invalid_and_changes_nothing() -> None:
    """Replay judges a ledger topic's records as the live worker does: an unkeyed value
    is counted invalid, with its partition and offset, and grants nothing."""
    fingerprinter = Fingerprinter(KEY)
    value = ledger_line("acct-1", "2019-01-01T00:00:00Z", ("phone", PHONE_1, [MFA])).strip()
    records = [LedgerRecord(None, value, _at("2019-01-01T00:00:01Z"), 2, 5)]
    result = replay_ledger_records(records, fingerprinter)
    assert result.state.purposes("acct-1", "phone", fingerprinter("phone", PHONE_1)) is None
    assert (result.applied, result.invalid) == (0, 1)
    (failure,) = result.record_failures
    assert (failure.partition, failure.offset, failure.reason) == (2, 5, DeadLetterReason.SCHEMA)
    assert "no key" in failure.message


def test_a_mistaken_withdrawal_withholds_its_subject_as_of_its_record_time() -> None:
    """A topic's invalid value (here a purpose tag that is no tag) leaves its key's
    subject no purpose from its record's time on, as live: --ledger-as-of before it
    still sees the grant; a later valid value is the subject's state again. A file's
    invalid line (no key) changes nothing."""
    fingerprinter = Fingerprinter(KEY)
    granted = ledger_line("acct-1", "2019-01-01T00:00:00Z", ("phone", PHONE_1, [ADS])).strip()
    mistaken = granted.replace(ADS.encode(), b"Security MFA")
    records = [
        LedgerRecord(b"acct-1", granted, _at("2019-01-01T00:00:01Z"), 0, 0),
        LedgerRecord(b"acct-1", mistaken, _at("2019-02-01T00:00:00Z"), 0, 1),
    ]
    mark = fingerprinter("phone", PHONE_1)
    result = replay_ledger_records(records, fingerprinter)
    assert result.state.purposes("acct-1", "phone", mark) == ()
    assert (result.applied, result.invalid) == (1, 1)
    assert result.record_failures[0].reason is DeadLetterReason.SCHEMA
    before = replay_ledger_records(records, fingerprinter, as_of=_at("2019-01-15T00:00:00Z"))
    assert before.state.purposes("acct-1", "phone", mark) == (ADS,)
    later = LedgerRecord(b"acct-1", granted, _at("2019-03-01T00:00:00Z"), 0, 2)
    again = replay_ledger_records([*records, later], fingerprinter)
    assert again.state.purposes("acct-1", "phone", mark) == (ADS,)
    lines = replay_ledger_lines([granted + b"\n", mistaken + b"\n"], fingerprinter)
    assert lines.state.purposes("acct-1", "phone", mark) == (ADS,) and lines.invalid == 1
