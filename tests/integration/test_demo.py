"""The README's main job, as a user runs it (minus the broker start-up): the demo with
its purpose ledger prints a summary in which every record is accounted for, claims the
ledger does not grant are caught, and withdrawals are retracted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(240)
def test_the_demo_accounts_for_every_record_and_retracts_withdrawals(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    env["KAFKA_STATE_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "enforcer.demo", "--bootstrap", kafka_bootstrap, "--records", "800"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "(every record has exactly one outcome)" in out, out
    not_granted = re.search(r"claims the ledger does not grant: ([\d,]+) identifiers", out)
    retracted = re.search(r"retractions sent to audience building: ([\d,]+)", out)
    assert not_granted and int(not_granted.group(1).replace(",", "")) > 0, out
    assert retracted and int(retracted.group(1).replace(",", "")) > 0, out
    assert "Traceback" not in done.stderr
