"""Where the fingerprint key comes from (docs/security.md: the fingerprint key): one
source only, and a key file no one else may read."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from enforcer.cli import main
from enforcer.config.settings import EnforcerSettings
from enforcer.core.fingerprint import (
    Fingerprinter,
    FingerprintKeyError,
    key_from_text,
    read_key_file,
)

KEY_TEXT = "0123456789abcdef0123456789abcdef"
OTHER_KEY = "fedcba9876543210fedcba9876543210"


def key_file(tmp_path: Path, mode: int, text: str = KEY_TEXT) -> Path:
    path = tmp_path / "fingerprint.key"
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def test_a_key_in_the_variable_and_a_key_file_are_refused_together(tmp_path: Path) -> None:
    """Before, the variable silently won over an explicit key file."""
    settings = EnforcerSettings(
        fingerprint_key=OTHER_KEY, fingerprint_key_file=key_file(tmp_path, 0o600)
    )
    with pytest.raises(FingerprintKeyError, match=r"^two fingerprint keys are configured: "):
        settings.fingerprinter()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o620])
def test_a_key_file_others_may_access_is_refused_with_the_chmod_to_run(
    tmp_path: Path, mode: int
) -> None:
    path = key_file(tmp_path, mode)
    with pytest.raises(FingerprintKeyError) as caught:
        EnforcerSettings(fingerprint_key_file=path).fingerprinter()
    message = str(caught.value)
    assert f"run `chmod 600 {path}`" in message
    assert f"(mode {mode:04o})" in message
    assert KEY_TEXT not in message and "\n" not in message


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_key_file_only_its_owner_may_read_is_used(tmp_path: Path, mode: int) -> None:
    fingerprinter = EnforcerSettings(fingerprint_key_file=key_file(tmp_path, mode)).fingerprinter()
    assert fingerprinter.key_id == Fingerprinter(key_from_text(KEY_TEXT)).key_id


WORKER_UID = 54321  # a user that is not root, as a pod's runAsUser


def _read_as_a_worker_in_our_group(owner: int, mode: int) -> str:
    """Read a key file owned by ``owner`` with ``mode`` and our group, as another user
    in our group would (a pod's runAsUser with fsGroup): the effective user id is
    switched for the read and back. Needs root, as CI runs."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    folder = Path(tempfile.mkdtemp(prefix="enforcer-key-"))
    try:
        folder.chmod(0o755)
        path = key_file(folder, mode)
        os.chown(path, owner, os.getegid())
        os.seteuid(WORKER_UID)
        try:
            read_key_file(path)
            return "used"
        except FingerprintKeyError as exc:
            return f"refused: {exc}"
        finally:
            os.seteuid(0)
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize(
    ("owner", "mode", "used"),
    [(0, 0o440, True), (0, 0o400, False), (0, 0o460, False), (12345, 0o440, False)],
)
def test_a_root_owned_key_file_read_through_our_group_may_be_group_readable(
    owner: int, mode: int, used: bool
) -> None:
    """Kubernetes mounts a Secret owned by root, group fsGroup, mode 0440 for a pod that
    does not run as root: group read is how the worker reads it, so it is allowed.
    Group write is not, nor a group-readable file another (non-root) user owns. (0400
    owned by root the worker cannot read at all.)"""
    outcome = _read_as_a_worker_in_our_group(owner, mode)
    if used:
        assert outcome == "used", outcome
    else:
        assert outcome.startswith("refused:"), outcome
        if mode & 0o077:
            assert "chmod 600" in outcome


def test_a_group_readable_key_file_of_our_own_is_refused(tmp_path: Path) -> None:
    """Owned by us, group read is not needed: 0440 is refused (only others in the group
    would use it)."""
    with pytest.raises(FingerprintKeyError, match="chmod 600"):
        EnforcerSettings(fingerprint_key_file=key_file(tmp_path, 0o440)).fingerprinter()


def test_run_and_replay_refuse_two_keys_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Exit 2, one line naming both sources, neither key."""
    path = key_file(tmp_path, 0o600)
    events = tmp_path / "events.jsonl"
    events.write_text("")
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", OTHER_KEY)
    for argv in (
        [
            "replay",
            "--from-file",
            str(events),
            "--out",
            str(tmp_path / "o"),
            "--fingerprint-key-file",
            str(path),
        ],
        ["run", "--fingerprint-key-file", str(path), "--http-port", "0"],
    ):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.count("\n") == 1
        assert "ENFORCER_FINGERPRINT_KEY and the key file" in err
        assert KEY_TEXT not in err and OTHER_KEY not in err


def test_a_world_readable_key_file_stops_replay_with_the_chmod(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ENFORCER_FINGERPRINT_KEY", raising=False)
    path = key_file(tmp_path, 0o644)
    events = tmp_path / "events.jsonl"
    events.write_text("")
    code = main(
        [
            "replay",
            "--from-file",
            str(events),
            "--out",
            str(tmp_path / "o"),
            "--fingerprint-key-file",
            str(path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"chmod 600 {path}" in err
