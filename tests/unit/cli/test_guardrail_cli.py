"""The security guardrail from the command line: `policy check`, `policy test` and
`replay` refuse a policy that lets security-only identifiers through unless it says so,
and a replay under a policy that says so marks every violation (docs/policy.md)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from enforcer.cli import main

from ..conftest import event, ident

KEY_TEXT = "0123456789abcdef0123456789abcdef"
ALLOWS_SECURITY = """\
format: 1
rules:
  - name: missing-purpose
    when: no-purpose
destinations:
  audience-building:
    allow: [marketing.advertising, security]
"""
REASON = "Fraud-team lookalikes, approved in PRIV-123."
OVERRIDE = f"security_override:\n  reason: {REASON}\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_policy_check_refuses_a_policy_allowing_security(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Exit 2, one line naming the file, the line and the place; no "ok"."""
    path = tmp_path / "allows-security.yaml"
    path.write_text(ALLOWS_SECURITY)
    code, out, err = run(capsys, "policy", "check", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"enforcer: error: {path}:7: at destinations.audience-building.allow: ")


def test_policy_check_accepts_it_with_a_reason_and_warns(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Exit 0, and a warning line with the stated reason on stderr."""
    path = tmp_path / "stated.yaml"
    path.write_text(ALLOWS_SECURITY + OVERRIDE)
    code, out, err = run(capsys, "policy", "check", str(path))
    assert code == 0 and ": ok (" in out
    assert err == (
        f"{path}: warning: security override: identifiers given only to secure an account may "
        f"reach audience-building ({REASON}); the worker is flagged in metrics, /readyz and "
        "every violation\n"
    )


def test_policy_check_warns_about_a_misspelt_allow_list_without_a_taxonomy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The case the warning is for: `marketing.advertisment` and no taxonomy declared."""
    path = tmp_path / "typo.yaml"
    path.write_text(
        "rules: [{name: security-only, when: all-within, within: [security, essential]}]\n"
        "destinations: {audience-building: {allow: [marketing.advertisment]}}\n"
    )
    code, _, err = run(capsys, "policy", "check", str(path))
    assert code == 0
    assert err == (
        f"{path}: warning: destination 'audience-building': allowed namespace "
        "'marketing.advertisment' is not in the Fides taxonomy (the policy declares no "
        "taxonomy of its own)\n"
    )


def test_policy_test_refuses_a_policy_allowing_security(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A test file whose policy would be refused at start fails to load, exit 2."""
    (tmp_path / "p.yaml").write_text(ALLOWS_SECURITY)
    cases = tmp_path / "p.test.yaml"
    cases.write_text(
        "policy: p.yaml\ncases:\n  - name: no identifiers\n"
        "    record: {event_id: e, subject_id: s, occurred_at: '2019-10-08T12:00:00Z', "
        "identifiers: []}\n    expect: {outcome: passed, decisions: []}\n"
    )
    code, _, err = run(capsys, "policy", "test", str(cases))
    assert code == 2 and "at destinations.audience-building.allow" in err


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """Three records: a 2FA-only phone, an advertising email, and a no-purpose device
    beside a recovery-only phone."""
    path = tmp_path / "events.jsonl"
    records = [
        event(ident("phone", "+1 415 555 0100", ["security.mfa"]), event_id="e1"),
        event(ident("email", "a@example.com", ["marketing.advertising"]), event_id="e2"),
        event(
            ident("device_id", "d-1"),
            ident("phone", "+1 415 555 0101", ["security.recovery"]),
            event_id="e3",
        ),
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def _replay(
    capsys: pytest.CaptureFixture[str], events: Path, policy: Path, out: Path
) -> tuple[int, str]:
    code, _, err = run(
        capsys, "replay", "--from-file", str(events), "--out", str(out), "--policy", str(policy)
    )
    return code, err


def test_replay_refuses_the_policy_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sample: Path,
    tmp_path: Path,
) -> None:
    """Such a policy's replay forwarded security-only identifiers; now it does not start."""
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", KEY_TEXT)
    policy = tmp_path / "allows-security.yaml"
    policy.write_text(ALLOWS_SECURITY)
    out = tmp_path / "out"
    code, err = _replay(capsys, sample, policy, out)
    assert code == 2 and err.count("\n") == 1
    assert not out.exists() or not any(out.iterdir())


def test_replay_under_the_override_marks_every_violation(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sample: Path,
    tmp_path: Path,
) -> None:
    """Security-only identifiers are forwarded as the policy states, and every violation
    says it was found under a security override; without one no violation says so."""
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", KEY_TEXT)
    policy = tmp_path / "stated.yaml"
    policy.write_text(ALLOWS_SECURITY + OVERRIDE)
    out = tmp_path / "out"
    assert _replay(capsys, sample, policy, out)[0] == 0
    forwarded = [json.loads(line) for line in (out / "forwarded.jsonl").read_text().splitlines()]
    assert len(forwarded) == 3
    assert forwarded[0]["identifiers"][0]["purposes"] == ["security.mfa"]  # as stated
    assert [i["type"] for i in forwarded[2]["identifiers"]] == ["phone"]
    violations = [json.loads(line) for line in (out / "violations.jsonl").read_text().splitlines()]
    assert [v["event_id"] for v in violations] == ["e3"]
    assert all(v["security_override"] is True for v in violations)

    plain = tmp_path / "plain"
    assert (
        _replay(capsys, sample, Path(__file__).parents[3] / "policies" / "default.yaml", plain)[0]
        == 0
    )
    defaults = [json.loads(line) for line in (plain / "violations.jsonl").read_text().splitlines()]
    assert defaults and all("security_override" not in v for v in defaults)


PARTNER_ALLOWS_SECURITY = """\
format: 1
rules:
  - name: missing-purpose
    when: no-purpose
destinations:
  audience-building:
    allow: [marketing.advertising]
  partner-audiences:
    allow: [marketing.advertising, security]
"""


def test_policy_check_checks_the_destination_the_environment_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`policy check` judges the allow-list of ENFORCER_DESTINATION, as the worker would:
    a policy letting security-only identifiers reach that destination is refused, and
    `--destination` still wins over the variable."""
    path = tmp_path / "partner.yaml"
    path.write_text(PARTNER_ALLOWS_SECURITY)
    code, out, _ = run(capsys, "policy", "check", str(path))
    assert code == 0 and ": ok (" in out  # the default destination allows no security
    monkeypatch.setenv("ENFORCER_DESTINATION", "partner-audiences")
    code, out, err = run(capsys, "policy", "check", str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"enforcer: error: {path}:9: at destinations.partner-audiences.allow: ")
    code, out, _ = run(capsys, "policy", "check", str(path), "--destination", "audience-building")
    assert code == 0 and ": ok (" in out
