"""The README's main job, as a user runs it (minus the broker start-up): the demo with
its purpose ledger prints a summary in which every record is accounted for, claims the
ledger does not grant are caught, and withdrawals are retracted; it names a log that
holds the worker's info lines, ends with an HTML report and three commands that work,
and prints the same numbers every time for the same seed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

RECORDS = "800"


def _demo(bootstrap: str, where: Path, *flags: str) -> str:
    """Run the demo in ``where`` (its state and working directory); return its stdout."""
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    env["KAFKA_STATE_DIR"] = str(where)
    done = subprocess.run(
        [sys.executable, "-m", "enforcer.demo", "--bootstrap", bootstrap, *flags],
        env=env,
        cwd=where,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def _summary(out: str) -> str:
    """The numbers: from the header of the summary to the report line."""
    return out[out.index("what the enforcer did") : out.index("\nreport: ")]


def _next_commands(out: str) -> list[str]:
    return [line.strip() for line in out.split("\nnext, try:\n", 1)[1].splitlines()]


@pytest.mark.timeout(600)
def test_the_demo_accounts_for_every_record_and_retracts_withdrawals(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    out = _demo(kafka_bootstrap, tmp_path / "first", "--records", RECORDS)
    assert "(every record has exactly one outcome)" in out, out
    not_granted = re.search(r"claims the ledger does not grant: ([\d,]+) identifiers", out)
    retracted = re.search(r"retractions sent to audience building: ([\d,]+)", out)
    assert not_granted and int(not_granted.group(1).replace(",", "")) > 0, out
    assert retracted and int(retracted.group(1).replace(",", "")) > 0, out

    # The log it names holds the worker's info lines (the default level is info).
    logs = set(re.findall(r"its log: (\S+)", out))
    assert len(logs) == 1, out
    log = Path(logs.pop())
    assert " INFO enforcer" in log.read_text(), log

    # The HTML report exists, with the report.json beside it.
    report = re.search(r"^report: (\S+)$", out, re.M)
    assert report, out
    page = tmp_path / "first" / report.group(1)
    assert page.name == "report.html" and "<html" in page.read_text()[:500].lower()
    assert (page.parent / "report.json").is_file()

    # Three next commands, each of which works as printed.
    commands = _next_commands(out)
    assert len(commands) == 3, out
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path / "first",
            env={k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (command, done.stdout, done.stderr)

    # The same seed (the default, and given explicitly): the same numbers.
    again = _demo(kafka_bootstrap, tmp_path / "second", "--records", RECORDS, "--seed", "2019")
    assert _summary(again) == _summary(out)
