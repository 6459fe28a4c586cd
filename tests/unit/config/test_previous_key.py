"""The previous fingerprint key of a key rotation (docs/security.md, "Rotating the
fingerprint key"): read from a file like the key in force, refused in one line (exit 2)
when it cannot be read or used, or when it is the key in force."""

from __future__ import annotations

from pathlib import Path

import pytest

from enforcer.cli import build_parser, main
from enforcer.config.settings import EnforcerSettings
from enforcer.core.fingerprint import Fingerprinter, FingerprintKeyError, key_from_text

KEY_TEXT = "0123456789abcdef0123456789abcdef"
OLD_TEXT = "fedcba9876543210fedcba9876543210"
FLAG = "--previous-fingerprint-key-file"


def key_file(tmp_path: Path, name: str, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def settings(tmp_path: Path, previous: Path | None) -> EnforcerSettings:
    return EnforcerSettings(
        fingerprint_key_file=key_file(tmp_path, "fingerprint.key", KEY_TEXT),
        previous_fingerprint_key_file=previous,
    )


def test_without_a_previous_key_there_is_none(tmp_path: Path) -> None:
    configured = settings(tmp_path, None)
    assert configured.previous_fingerprinter(configured.fingerprinter()) is None


def test_the_previous_key_is_read_from_its_file(tmp_path: Path) -> None:
    configured = settings(tmp_path, key_file(tmp_path, "old.key", OLD_TEXT, 0o400))
    previous = configured.previous_fingerprinter(configured.fingerprinter())
    assert previous is not None
    assert previous.key_id == Fingerprinter(key_from_text(OLD_TEXT)).key_id


def test_the_variable_names_the_previous_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = key_file(tmp_path, "old.key", OLD_TEXT)
    monkeypatch.setenv("ENFORCER_PREVIOUS_FINGERPRINT_KEY_FILE", str(path))
    assert EnforcerSettings().previous_fingerprint_key_file == path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "cannot read fingerprint key file"),
        ("empty", "the fingerprint key is empty"),
        ("short", "at least 16 bytes"),
        ("open", "chmod 600"),
        ("same", "holds the key in force"),
    ],
)
def test_a_previous_key_that_cannot_be_used_is_refused_in_one_line(
    tmp_path: Path, case: str, expected: str
) -> None:
    paths = {
        "missing": tmp_path / "absent.key",
        "empty": key_file(tmp_path, "empty.key", ""),
        "short": key_file(tmp_path, "short.key", "tooshort"),
        "open": key_file(tmp_path, "open.key", OLD_TEXT, 0o644),
        "same": key_file(tmp_path, "same.key", KEY_TEXT),
    }
    configured = settings(tmp_path, paths[case])
    with pytest.raises(FingerprintKeyError) as caught:
        configured.previous_fingerprinter(configured.fingerprinter())
    message = str(caught.value)
    assert expected in message
    assert "ENFORCER_PREVIOUS_FINGERPRINT_KEY_FILE" in message
    assert "\n" not in message and KEY_TEXT not in message and OLD_TEXT not in message


@pytest.mark.parametrize("same", [True, False])
def test_run_refuses_an_unusable_previous_key_with_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    same: bool,
) -> None:
    """Before anything connects: one line on stderr, no key material."""
    monkeypatch.delenv("ENFORCER_FINGERPRINT_KEY", raising=False)
    current = key_file(tmp_path, "fingerprint.key", KEY_TEXT)
    previous = current if same else tmp_path / "absent.key"
    code = main(
        ["run", "--fingerprint-key-file", str(current), FLAG, str(previous), "--http-port", "0"]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1
    assert ("holds the key in force" if same else "cannot read fingerprint key file") in err
    assert KEY_TEXT not in err


def test_run_lists_the_flag_with_its_variable(capsys: pytest.CaptureFixture[str]) -> None:
    # The parser alone: main(["run", ...]) takes over SIGTERM first, and --help exits
    # before the command would give it back.
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert FLAG in out and "ENFORCER_PREVIOUS_FINGERPRINT_KEY_FILE" in out
