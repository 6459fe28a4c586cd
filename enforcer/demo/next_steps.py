"""What the demo leaves behind for the user: the sample events and the purpose ledger as
files, the HTML report of the same events replayed, and the next commands to try.

The report comes from ``enforcer replay`` run as a separate process, the way a user
runs it, over the files written here. It judges every event against the ledger as it
stands at the end, withdrawals and erasures applied: what audience building holds once
it has applied the retractions. (The live run judged the first half of the events
before the withdrawals, forwarded some of them, then retracted those; a replay judges
against one state of the ledger, so its counts differ from the live summary's for the
accounts that withdrew or were erased.)
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from enforcer.demo.ledger import DemoLedger


@dataclass(frozen=True)
class DemoFiles:
    """The files the demo writes for the next commands."""

    events: Path
    """The identity events the demo produced, one a line, in the order sent."""
    ledger: Path
    """The purpose ledger at the end (JSON Lines of values): withdrawals applied, and
    erased accounts left out (a file holds no tombstones; unknown to the ledger is what
    an erasure leaves)."""
    report_dir: Path
    """Where ``enforcer replay`` writes its outputs and ``report.html``."""
    key: Path | None
    """The demo's fingerprint key, when the demo made it (none given in the environment)."""

    @property
    def report(self) -> Path:
        return self.report_dir / "report.html"


def write_files(out: Path, demo: DemoLedger, key: str | None) -> DemoFiles:
    """Write the events, the ledger at the end and, when given, the key under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    key_file = write_key(out, key)
    files = DemoFiles(out / "events.jsonl", out / "ledger.jsonl", out / "report", key_file)
    files.events.write_bytes(b"".join(value + b"\n" for value in demo.events))
    final: dict[str, bytes] = {}
    for subject, value in [*demo.ledger, *demo.withdrawals]:
        if value is None:
            final.pop(subject, None)
        else:
            final[subject] = value
    files.ledger.write_bytes(b"".join(value + b"\n" for value in final.values()))
    return files


def write_key(out: Path, key: str | None) -> Path | None:
    """Write ``key`` (the fingerprint key the demo made) to ``out/fingerprint.key``,
    readable by its owner only; ``None`` when there is no key to write."""
    if key is None:
        return None
    key_file = out / "fingerprint.key"
    key_file.unlink(missing_ok=True)
    # Readable by its owner only, as a key file must be (docs/security.md).
    key_file.touch(mode=0o600)
    key_file.write_text(key + "\n", encoding="utf-8")
    return key_file


def key_flag(key: Path | None) -> list[str]:
    """The flag that hands ``key`` (the demo's key file) to a command, if there is one."""
    return [] if key is None else ["--fingerprint-key-file", shown(key)]


def write_report(files: DemoFiles, env: Mapping[str, str]) -> str | None:
    """Replay the events against the ledger into ``files.report_dir``; return ``None``
    when done, else the replay's last line of complaint."""
    return run_replay(
        [
            "--from-file",
            str(files.events),
            "--ledger-file",
            str(files.ledger),
            "--out",
            str(files.report_dir),
        ],
        env,
        files.key,
    )


def run_replay(flags: Sequence[str], env: Mapping[str, str], key: Path | None) -> str | None:
    """Run ``enforcer replay`` with ``flags`` as a user runs it, a process of its own,
    without a progress bar; return ``None`` when it succeeded, else its last line of
    complaint."""
    done = subprocess.run(
        [sys.executable, "-m", "enforcer.cli", "replay", *flags, "--no-progress", *key_flag(key)],
        env=replay_environment(env, key),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        return lines[-1]
    return None


def first_not_granted(demo: DemoLedger, sent: Sequence[bytes]) -> int | None:
    """The line of the first event a careless producer rewrote to claim advertising for
    a 2FA-only number (the ledger does not grant it), if any."""
    for line, (value, original) in enumerate(zip(demo.events, sent, strict=True)):
        if value != original:
            return line
    return None


def next_commands(files: DemoFiles, not_granted_line: int | None) -> list[str]:
    """Three commands that carry on from what the demo did, with paths a user can paste."""
    enforcer = enforcer_program()
    events, ledger = shown(files.events), shown(files.ledger)
    policies = policies_dir()
    line = 0 if not_granted_line is None else not_granted_line
    key = " ".join(key_flag(files.key))
    return [
        f"{enforcer} explain {events} --line {line} --ledger-file {ledger}",
        f"{enforcer} replay --from-file {events} --ledger-file {ledger} "
        f"--policy {policies}/advertising-allow-list.yaml "
        f"--out {shown(files.report_dir.with_name('report-strict'))}" + (f" {key}" if key else ""),
        f"{enforcer} policy test {policies}/*.test.yaml",
    ]


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def enforcer_program() -> str:
    """The ``enforcer`` command of the environment the demo runs in, as a user types it."""
    return shown(Path(sys.executable).with_name("enforcer"))


def policies_dir() -> str:
    """The project's ``policies/`` folder, as a user types it."""
    found = shown(Path(__file__).resolve().parents[2] / "policies")
    return found if Path(found).is_dir() else "policies"


def replay_environment(env: Mapping[str, str], key: Path | None) -> dict[str, str]:
    """The worker's environment for the replay, without the worker's settings: the key
    comes from the key file the demo wrote (``key``), or else from the user's own
    variable."""
    kept = {k: v for k, v in env.items() if not k.startswith("ENFORCER_")}
    if key is None:
        kept["ENFORCER_FINGERPRINT_KEY"] = env["ENFORCER_FINGERPRINT_KEY"]
    return kept
