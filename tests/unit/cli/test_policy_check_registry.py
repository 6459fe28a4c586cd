"""``enforcer policy check`` with a schema registry (docs/formats.md, "Field
mappings"): the worker's check at start, against the latest schema of the source topic
and of every topic a mapping names; a misfit, or a registry that does not answer (or
answers as no registry would), one line a problem and exit 2, never an internal error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from enforcer.cli import main
from enforcer.core.fingerprint import generate_key
from enforcer.core.policy.load import default_policy_bytes

from ..formats.fake_registry import avro_record, fake_registry

MAPPINGS = b"""
formats:
  mappings:
    - name: accounts
      topics: [users.events]
      subject_id: id
      occurred_at: at
      identifiers:
        - {path: email, type: email, purposes: [marketing.advertising]}
    - name: logins
      topics: [logins.events]
      subject_id: uid
      occurred_at: at
      identifiers:
        - {path: ip, type: ip_address, purposes: [security.mfa]}
"""
ACCOUNT = avro_record("Account", "id", "at", "email")
LOGIN = avro_record("Login", "uid", "at", "ip")


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("URL", "USER", "PASSWORD", "PASSWORD_FILE", "CA_FILE", "CERT_FILE", "KEY_FILE"):
        monkeypatch.delenv(f"ENFORCER_SCHEMA_REGISTRY_{name}", raising=False)
    monkeypatch.delenv("ENFORCER_SOURCE_TOPIC", raising=False)
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", generate_key())


def _policy(tmp_path: Path) -> Path:
    path = tmp_path / "mapped.yaml"
    path.write_bytes(default_policy_bytes() + MAPPINGS)
    return path


def test_each_topic_checked_is_one_line_in_topic_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The source topic (unregistered here) and both mapped topics: one line each."""
    policy = _policy(tmp_path)
    with fake_registry() as registry:
        registry.latest("users.events-value", 200, {"id": 3, "version": 1, "schema": ACCOUNT})
        registry.latest("logins.events-value", 200, {"id": 4, "version": 2, "schema": LOGIN})
        assert main(["policy", "check", str(policy), "--schema-registry-url", registry.url]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if ": topic " in line]
    assert lines == [
        f"{policy}: topic identity.events: no schema registered as identity.events-value; "
        "the worker checks each schema as its first record arrives",
        f"{policy}: topic logins.events: the field mappings fit the latest schema of "
        "logins.events-value (schema id 4)",
        f"{policy}: topic users.events: the field mappings fit the latest schema of "
        "users.events-value (schema id 3)",
    ]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error_code": 40101}),
        (500, b"oops"),
        (200, b"<html>a login page</html>"),
        (200, {"version": 1, "schema": ACCOUNT}),
        (200, {"id": "3", "version": 1, "schema": ACCOUNT}),
        (200, {"id": 3, "version": 1, "schema": ACCOUNT, "references": [{"name": "x"}]}),
    ],
)
def test_a_registry_that_does_not_answer_as_one_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, status: int, body: Any
) -> None:
    """Refused credentials, a server error, a page that is not JSON, a schema without
    an id or with references that name nothing: the mappings were not checked, and the
    policy is not called good."""
    policy = _policy(tmp_path)
    with fake_registry() as registry:
        registry.latest("users.events-value", status, body)
        code = main(["policy", "check", str(policy), "--schema-registry-url", registry.url])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and "internal error" not in captured.err
    assert captured.err.startswith(f"enforcer: error: {policy}: field mappings not checked:")


def test_a_misfit_in_one_topic_is_exit_2_with_its_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    policy = _policy(tmp_path)
    with fake_registry() as registry:
        registry.latest("users.events-value", 200, {"id": 3, "version": 1, "schema": ACCOUNT})
        without_ip = avro_record("Login", "uid", "at")
        registry.latest("logins.events-value", 200, {"id": 5, "version": 3, "schema": without_ip})
        code = main(["policy", "check", str(policy), "--schema-registry-url", registry.url])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.splitlines() == [
        f"enforcer: error: {policy}: at formats.mappings[1].identifiers[0].path: 'ip' is not "
        "a field of the schema (Login, schema id 5, topic logins.events)"
    ]


def test_the_registry_flags_come_from_the_environment_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ENFORCER_SCHEMA_REGISTRY_URL and ENFORCER_SOURCE_TOPIC, as the worker reads them."""
    policy = _policy(tmp_path)
    with fake_registry() as registry:
        registry.latest("users.events-value", 200, {"id": 3, "version": 1, "schema": ACCOUNT})
        monkeypatch.setenv("ENFORCER_SCHEMA_REGISTRY_URL", registry.url)
        monkeypatch.setenv("ENFORCER_SOURCE_TOPIC", "users.events")
        assert main(["policy", "check", str(policy)]) == 0
        assert sorted(set(registry.asked)) == [
            "/subjects/logins.events-value/versions/latest",
            "/subjects/users.events-value/versions/latest",
        ]
    assert "topic identity.events" not in capsys.readouterr().out


def test_a_latest_schema_it_cannot_read_is_a_warning_and_the_others_are_checked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """As the worker at start: a latest schema that cannot be read (another type here)
    is said on stderr and not checked against; the other topics are, and the policy
    passes (its records will be unknown-schema dead letters, said when they come)."""
    policy = _policy(tmp_path)
    with fake_registry() as registry:
        registry.latest("users.events-value", 200, {"id": 3, "version": 1, "schema": ACCOUNT})
        xml = {"id": 9, "version": 1, "schema": "<login/>", "schemaType": "XML"}
        registry.latest("logins.events-value", 200, xml)
        assert main(["policy", "check", str(policy), "--schema-registry-url", registry.url]) == 0
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if ": topic " in line]
    assert warned == [
        f"{policy}: topic logins.events: warning: the latest schema of logins.events-value "
        "cannot be read, so the mappings were not checked against it: schema 9 has a type "
        "the enforcer cannot read: 'XML'"
    ]
    assert f"{policy}: topic users.events: the field mappings fit" in captured.out
