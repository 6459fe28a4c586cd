"""The schema registry's flags on run, replay, explain and policy check: the same
everywhere, no password flag, a bad value one line and exit 2 (docs/operations.md)."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path
from typing import Any

import pytest

from enforcer.cli import build_parser, main
from enforcer.cli.common import SCHEMA_REGISTRY_FLAGS, UsageError
from enforcer.core.fingerprint import generate_key
from enforcer.formats.framing import frame


def _flags(command: str) -> set[str]:
    parser: Any = build_parser()
    for name in command.split():
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name].populated()
    return {flag for action in parser._actions for flag in action.option_strings}


@pytest.mark.parametrize("command", ["run", "replay", "explain", "policy check"])
def test_every_driver_takes_the_same_registry_flags_and_no_password(command: str) -> None:
    """explain decides one record now or not at all, and policy check checks now: they
    have no deadline to wait for."""
    flags = _flags(command)
    assert set(SCHEMA_REGISTRY_FLAGS) <= flags
    assert ("--schema-registry-deadline" in flags) == (command in {"run", "replay"})
    assert not {flag for flag in flags if "password" in flag} - {"--schema-registry-password-file"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(autouse=True)
def _no_registry_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("URL", "USER", "PASSWORD", "PASSWORD_FILE", "CA_FILE", "CERT_FILE", "KEY_FILE"):
        monkeypatch.delenv(f"ENFORCER_SCHEMA_REGISTRY_{name}", raising=False)
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", generate_key())


@pytest.mark.parametrize("command", [["explain"], ["run"], ["replay", "--from-file", "x"]])
def test_a_bad_url_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], command: list[str], tmp_path: Path
) -> None:
    argv = [*command, "--schema-registry-url", "ftp://registry:8081"]
    if command[0] == "replay":
        argv += ["--out", str(tmp_path)]
    assert main(argv) == 2
    err = _one_line(capsys)
    assert "ENFORCER_SCHEMA_REGISTRY_URL" in err and "http:// or https://" in err


def test_a_missing_password_file_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Read before the worker connects to anything."""
    missing = tmp_path / "no-such-password"
    argv = ["run", "--schema-registry-url", "http://127.0.0.1:1/apis/ccompat/v7"]
    argv += ["--schema-registry-user", "enforcer", "--schema-registry-password-file", str(missing)]
    assert main(argv) == 2
    err = _one_line(capsys)
    assert f"cannot read the schema registry password file {missing}" in err


def test_a_missing_ca_file_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["replay", "--from-file", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "out")]
    argv += ["--schema-registry-url", "https://registry:8081"]
    argv += ["--schema-registry-ca-file", str(tmp_path / "no-ca.pem")]
    assert main(argv) == 2
    assert "cannot use the schema registry's TLS files" in _one_line(capsys)


def test_run_hands_the_registry_flags_to_its_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import enforcer.cli.run as cli_run

    given: dict[str, Any] = {}

    def settings_from(**overrides: Any) -> Any:
        given.update(overrides)
        raise UsageError("stop here: no broker in a unit test")

    monkeypatch.setattr(cli_run, "settings_from", settings_from)
    args = build_parser().parse_args(
        ["run", "--schema-registry-url", "http://r:8081", "--schema-registry-timeout", "3"]
    )
    with pytest.raises(UsageError, match="stop here"):
        cli_run.command(args)
    assert given["schema_registry_url"] == "http://r:8081"
    assert given["schema_registry_timeout"] == 3.0


def test_explain_with_the_registry_down_says_so_and_decides_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A framed record's schema cannot be fetched: one line naming the registry, exit 2,
    and no dead letter printed for the record."""
    record = tmp_path / "record.bin"
    record.write_bytes(frame(7, b"\x02\x0aavro body"))
    url = f"http://127.0.0.1:{_free_port()}/apis/ccompat/v7"
    assert main(["explain", str(record), "--schema-registry-url", url]) == 2
    err = _one_line(capsys)
    assert f"schema registry {url} did not answer schemas/ids/7" in err
    assert "the record was not decided" in err
    assert "dead letter" not in capsys.readouterr().out


def test_replay_waits_for_the_registry_then_stops_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The framed record is neither decided nor dead-lettered: one line says the replay
    waits, one that it stopped (exit 2)."""
    source = tmp_path / "in.jsonl"
    source.write_bytes(frame(7, b'{"subject_id": "a"}') + b"\n")
    url = f"http://127.0.0.1:{_free_port()}/apis/ccompat/v7"
    out = tmp_path / "out"
    argv = ["replay", "--from-file", str(source), "--out", str(out), "--no-progress"]
    argv += ["--schema-registry-url", url, "--schema-registry-deadline", "1"]
    assert main(argv) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"enforcer: schema registry {url} did not answer schemas/ids/7")
    assert "waiting for it (no record is dead-lettered for it" in lines[0]
    assert lines[1].startswith("enforcer: error: schema registry") and "replay stopped" in lines[1]
    assert not (out / "deadletter.jsonl").exists() or (out / "deadletter.jsonl").read_bytes() == b""


MAPPED = b"""
formats:
  mappings:
    - name: accounts
      subject_id: id
      occurred_at: at
      identifiers:
        - {path: email, type: email, purposes: [marketing.advertising]}
"""


def test_policy_check_with_the_registry_down_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Asked to check the mappings against the registry, it cannot: it says so, and the
    policy is not called good."""
    from enforcer.core.policy.load import default_policy_bytes

    policy = tmp_path / "mapped.yaml"
    policy.write_bytes(default_policy_bytes() + MAPPED)
    url = f"http://127.0.0.1:{_free_port()}/apis/ccompat/v7"
    assert main(["policy", "check", str(policy), "--schema-registry-url", url]) == 2
    err = _one_line(capsys)
    assert f"{policy}: field mappings not checked:" in err and "127.0.0.1" in err


def test_policy_check_asks_no_registry_of_a_policy_without_mappings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Nothing to check against a schema: the registry, down here, is never asked."""
    from enforcer.core.policy.load import default_policy_bytes

    policy = tmp_path / "plain.yaml"
    policy.write_bytes(default_policy_bytes())
    url = f"http://127.0.0.1:{_free_port()}/apis/ccompat/v7"
    assert main(["policy", "check", str(policy), "--schema-registry-url", url]) == 0
    assert capsys.readouterr().out.count("\n") == 1
