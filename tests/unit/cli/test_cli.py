"""The command line: exit codes, one-line errors, and each command end to end."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from enforcer.cli import main

from ..conftest import event, ident

KEY_TEXT = "0123456789abcdef0123456789abcdef"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        orjson.dumps(
            event(
                ident("phone", "+1 555 0100", ["security.mfa"]),
                ident("e", "x", ["marketing.advertising"]),
            )
        )
        + b"\n"
        + orjson.dumps(event(ident("email", "a@b.c", ["marketing.advertising"])))
        + b"\n"
    )
    return path


def test_replay_refuses_to_start_without_a_key(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    events_file: Path,
    tmp_path: Path,
) -> None:
    """Exit 2 and one line that says how to make a key."""
    monkeypatch.delenv("ENFORCER_FINGERPRINT_KEY", raising=False)
    code, _, err = run(
        capsys, "replay", "--from-file", str(events_file), "--out", str(tmp_path / "o")
    )
    assert code == 2
    assert err.count("\n") == 1 and "enforcer keygen" in err


def test_replay_with_key_file_and_fail_on_violation(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    events_file: Path,
    tmp_path: Path,
) -> None:
    """--fail-on-violation exits 1 when a violation was found; the outputs are written."""
    monkeypatch.delenv("ENFORCER_FINGERPRINT_KEY", raising=False)
    key = tmp_path / "key"
    key.write_text(KEY_TEXT + "\n")
    key.chmod(0o600)  # a key file others may read is refused (tests/unit/config/test_keys.py)
    out = tmp_path / "o"
    args = [
        "replay",
        "--from-file",
        str(events_file),
        "--out",
        str(out),
        "--fingerprint-key-file",
        str(key),
    ]
    assert run(capsys, *args)[0] == 0
    code, _, err = run(capsys, *args, "--fail-on-violation")
    assert code == 1
    summary = err.splitlines()[0]
    assert summary.startswith("replayed 2 records; they would have been: 1 passed, 1 redacted")
    assert "; 1 violation affecting 1 account. " in summary  # one of each: no plural
    reason = err.splitlines()[-1]
    assert reason.startswith("enforcer: failing (--fail-on-violation): 1 record would have")
    assert err.count("--fail-on-violation") == 1
    assert {p.name for p in out.iterdir()} == {
        "forwarded.jsonl",
        "violations.jsonl",
        "deadletter.jsonl",
        "report.json",
        "report.html",
    }


def test_replay_of_a_missing_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A missing input is a one-line error, exit 2."""
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", KEY_TEXT)
    code, _, err = run(
        capsys, "replay", "--from-file", str(tmp_path / "nope"), "--out", str(tmp_path / "o")
    )
    assert code == 2 and err.startswith("enforcer: error:") and err.count("\n") == 1


def test_invalid_policy_is_refused_with_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`policy check` on a bad file: exit 2, file and place named."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: r\n    when: maybe\n")
    code, _, err = run(capsys, "policy", "check", str(bad))
    assert code == 2
    assert f"{bad}:3: at rules[0].when" in err and err.count("\n") == 1


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown commands and bad flags: exit 2, one line."""
    for argv in (["nope"], ["replay"], ["explain", "--line", "x"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, (argv, err)


def test_bad_setting_in_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, events_file: Path
) -> None:
    """An invalid ENFORCER_* variable is named in a one-line error."""
    monkeypatch.setenv("ENFORCER_MODE", "loud")
    code, _, err = run(capsys, "explain", str(events_file), "--line", "0")
    assert code == 2 and "ENFORCER_MODE" in err


def test_explain_text_and_json(capsys: pytest.CaptureFixture[str], events_file: Path) -> None:
    """Each identifier's normalized purposes, decision and rule; no values."""
    code, out, _ = run(capsys, "explain", str(events_file), "--line", "0")
    assert code == 0
    assert "outcome: redacted" in out and "security-only-purpose" in out and "555" not in out
    code, out, _ = run(capsys, "explain", str(events_file), "--line", "0", "--json")
    data = json.loads(out)
    assert data["outcome"] == "redacted"
    assert [(i["type"], i["decision"], i["rule"]) for i in data["identifiers"]] == [
        ("phone", "redact", "security-only-purpose"),
        ("e", "pass", None),
    ]
    assert data["allowed_purposes"] == ["marketing.advertising"]
    assert data["identifiers"][1]["why"] == (
        "marketing.advertising lies within marketing.advertising, which audience-building allows"
    )


def test_explain_names_the_allow_list_rule_and_what_it_allows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A phone given for SMS notifications: purpose-not-allowed, and what would be allowed."""
    path = tmp_path / "e.json"
    path.write_bytes(
        orjson.dumps(event(ident("phone", "+1 555 0100", ["essential.service.notifications.sms"])))
    )
    code, out, _ = run(capsys, "explain", str(path))
    assert code == 0
    assert "outcome: dropped" in out
    assert "destination audience-building (allows only: marketing.advertising)" in out
    assert "-> redact  by rule purpose-not-allowed: Given for other purposes" in out
    assert "(audience-building allows only: marketing.advertising)" in out.splitlines()[-1]
    assert "555" not in out


def test_explain_reads_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-` (the default) reads one record from standard input."""
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"[1]")))
    code, out, _ = run(capsys, "explain", "--json")
    assert code == 0 and json.loads(out)["dead_letter"]["reason"] == "not-an-object"


def test_policy_test_reports_failures(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A failing case prints FAIL and the command exits 1."""
    cases = tmp_path / "t.test.yaml"
    cases.write_text(
        "cases:\n  - name: wrong\n    record: {event_id: e, subject_id: s,"
        " occurred_at: '2019-10-08T00:00:00Z',"
        " identifiers: [{type: phone, value: '1', purposes: [security]}]}\n"
        "    expect: {outcome: passed}\n"
    )
    code, out, _ = run(capsys, "policy", "test", str(cases))
    assert code == 1
    assert (
        "FAIL" in out and "outcome dropped, expected passed" in out and "0 passed, 1 failed" in out
    )


def test_shipped_policy_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    """The example policies' own tests pass."""
    root = Path(__file__).resolve().parents[3] / "policies"
    code, out, _ = run(capsys, "policy", "test", *map(str, sorted(root.glob("*.test.yaml"))))
    assert code == 0, out
    assert " 0 failed" in out


def test_policy_check_warns_about_rule_namespaces_outside_the_taxonomy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The policy is valid (exit 0), and each suspicious namespace gets one warning line."""
    path = tmp_path / "p.yaml"
    path.write_text(
        "rules: [{name: ads, when: none-within, within: [marketing.advertizing]}]\n"
        "taxonomy: {include: [fides]}\n"
    )
    code, out, err = run(capsys, "policy", "check", str(path))
    assert code == 0 and ": ok (" in out
    assert err == (
        f"{path}: warning: rule 'ads': 'marketing.advertizing' is not in the policy's taxonomy\n"
    )


def test_keygen_and_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """keygen prints a 256-bit hex key; schema prints JSON Schema."""
    code, out, _ = run(capsys, "keygen")
    assert code == 0 and len(bytes.fromhex(out.strip())) == 32
    code, out, _ = run(capsys, "policy", "schema")
    assert code == 0 and json.loads(out)["title"] == "PolicyFile"


def test_policy_errors_list_every_problem_in_file_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Three mistakes, three places named, in one line."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n  - name: r\n    when: maybe\n"
        "  - name: s\n    when: no-purpose\n    action: zap\nmode: loud\n"
    )
    code, _, err = run(capsys, "policy", "check", str(bad))
    assert code == 2 and err.count("\n") == 1
    places = [f"{bad}:3: at rules[0].when", f"{bad}:6: at rules[1].action", f"{bad}:7: at mode"]
    positions = [err.index(place) for place in places]
    assert positions == sorted(positions)


def test_explain_says_whether_phones_are_e164_under_the_region(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--phone-region decides how a national number is read; the value never shows."""
    path = tmp_path / "e.json"
    path.write_bytes(orjson.dumps(event(ident("phone", "030 1234 5678", ["security.mfa"]))))
    formats = {}
    for region in ("DE", "US"):
        code, out, _ = run(capsys, "explain", str(path), "--json", "--phone-region", region)
        assert code == 0 and "1234" not in out
        formats[region] = json.loads(out)["identifiers"][0]["phone_format"]
    assert formats["DE"] == "e164" and formats["US"] != "e164"
    code, _, err = run(capsys, "explain", str(path), "--phone-region", "Atlantis")
    assert code == 2 and "ENFORCER_PHONE_DEFAULT_REGION" in err and err.count("\n") == 1


def test_explain_refuses_a_json_lines_file_without_line(
    capsys: pytest.CaptureFixture[str], events_file: Path
) -> None:
    """Several records and no --line: exit 2 and one line saying to pass --line N,
    instead of one misleading dead letter for the whole file."""
    code, out, err = run(capsys, "explain", str(events_file))
    assert code == 2 and out == ""
    assert err == (
        f"enforcer: error: {events_file} holds 2 non-blank lines and is not one JSON record: "
        "pass --line N to explain its 0-based line N\n"
    )


def test_explain_reads_one_pretty_printed_record(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A single record written over several lines is one record, explained as such."""
    path = tmp_path / "e.json"
    record = event(ident("phone", "+1 555 0100", ["security.mfa"]))
    path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    code, out, _ = run(capsys, "explain", str(path))
    assert code == 0 and "outcome: dropped" in out


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("cases: [\n", "t.test.yaml:2:1: invalid YAML: expected the node content"),
        (b"cases: \xff\n", "t.test.yaml: invalid YAML: unacceptable character #x00ff"),
        (
            'cases:\n  - {name: x, record: "\\ud800", expect: {outcome: passed}}\n',
            "t.test.yaml: at cases[0].record: a string with no UTF-8 form",
        ),
        (
            "cases:\n  - {name: x, record: {a: !!binary aGk=}, expect: {outcome: passed}}\n",
            "t.test.yaml: at cases[0].record: cannot be written as JSON",
        ),
        (
            "cases:\n  - {name: x, record: {1: 2}, expect: {outcome: passed}}\n",
            "t.test.yaml: at cases[0].record: cannot be written as JSON",
        ),
        (
            "cases:\n  - {name: x, record: {a: 123456789012345678901234567890},"
            " expect: {outcome: passed}}\n",
            "t.test.yaml: at cases[0].record: cannot be written as JSON",
        ),
    ],
)
def test_a_bad_policy_test_file_is_a_one_line_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str | bytes, said: str
) -> None:
    """Exit 2 and one line naming the file and the place (docs/contract.md: exit
    status), never an internal error or YAML's own text over several lines."""
    cases = tmp_path / "t.test.yaml"
    if isinstance(text, bytes):
        cases.write_bytes(text)
    else:
        cases.write_text(text)
    code, _, err = run(capsys, "policy", "test", str(cases))
    assert code == 2
    assert err.count("\n") == 1 and said in err, err


def test_explain_line_n_is_the_record_replay_numbers_n(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A carriage return between a record's tokens does not end its line: ``explain
    --line N`` explains the record replay reports at offset N (docs/contract.md:
    command line), not a piece of another one."""
    path = tmp_path / "events.jsonl"
    passed = orjson.dumps(event(ident("email", "a@b.c", ["marketing.advertising"])))
    stopped = orjson.dumps(event(ident("phone", "+1 555 0100", ["security.mfa"])))
    path.write_bytes(passed.replace(b",", b",\r", 1) + b"\r\n" + stopped + b"\n")
    out_dir = tmp_path / "out"
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", KEY_TEXT)
    code, _, _ = run(capsys, "replay", "--from-file", str(path), "--out", str(out_dir))
    assert code == 0
    violation = json.loads((out_dir / "violations.jsonl").read_text())
    assert violation["source"]["offset"] == 1
    code, out, _ = run(capsys, "explain", str(path), "--line", "1", "--json")
    assert code == 0 and json.loads(out)["outcome"] == "dropped"
    code, out, _ = run(capsys, "explain", str(path), "--line", "0", "--json")
    assert code == 0 and json.loads(out)["outcome"] == "passed"
    code, _, err = run(capsys, "explain", str(path), "--line", "2")
    assert code == 2 and "(it has 2)" in err


def test_explain_of_a_record_orjson_cannot_read_says_each_phones_format(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A valid event holding a number beyond a float's range (``1e400``, which orjson
    refuses) is explained like any other, not an internal error."""
    path = tmp_path / "e.json"
    record = event(
        ident("phone", "+1 415 555 0101"), ident("email", "a@b.c", ["marketing.advertising"])
    )
    for text in (orjson.dumps(record), orjson.dumps(record, option=orjson.OPT_INDENT_2)):
        path.write_bytes(text[:-1] + b',"x":1e400}')
        code, out, err = run(capsys, "explain", str(path), "--json")
        assert code == 0, err
        explained = json.loads(out)
        assert explained["outcome"] == "redacted"
        assert explained["identifiers"][0]["phone_format"] == "e164"
        assert "415" not in out


def test_an_unreachable_ledger_topic_is_one_line_for_remediate_too(tmp_path: Path) -> None:
    """``remediate plan --ledger-topic`` with no broker: one line, exit 2; aiokafka's own
    log line about the refused connection is not printed besides (a fresh process, whose
    logging nothing else has set up)."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    argv = ["remediate", "plan", "--out", str(tmp_path / "p.json"), "--ledger-topic", "led"]
    done = subprocess.run(
        [sys.executable, "-m", "enforcer", *argv, "--bootstrap-servers", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "ENFORCER_FINGERPRINT_KEY": KEY_TEXT, "PYTHONPATH": str(root)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "cannot reach Kafka" in done.stderr, done.stderr
