"""``scripts/test.sh``, the project's test command: a selection of unit tests only starts
no Kafka broker; anything else still gets one.

The script's own decision is asked for with ``ENFORCER_TEST_PLAN=1``, which prints it
and stops before installing or starting anything (the same branch the real run takes).
A copy of the script runs, alone in a temporary folder: should it ever ignore the plan
request it fails at once (no setup.sh beside it) instead of running the test suite,
this test included, again.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "test.sh"


def _plan(args: str, tmp_path: Path) -> str:
    copy = tmp_path / "scripts" / "test.sh"
    copy.parent.mkdir()
    copy.write_bytes(SCRIPT.read_bytes())
    env = {**os.environ, "ENFORCER_TEST_PLAN": "1"}
    done = subprocess.run(
        ["bash", str(copy), *shlex.split(args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.parametrize(
    "args", ["-m unit", "tests/unit", "tests/unit/cli -q", "-m unit -x -k explain"]
)
def test_a_unit_only_selection_starts_no_broker(args: str, tmp_path: Path) -> None:
    assert _plan(args, tmp_path) == "broker: none"


@pytest.mark.parametrize(
    "args",
    [
        "",
        "-m integration",
        "-m 'unit or integration'",
        "-m unit tests/integration",
        "tests/unit/../integration",
        "tests/integration/test_demo.py",
        "-k demo",
        "-m unit --some-plugin-option",
    ],
)
def test_anything_else_starts_the_broker(args: str, tmp_path: Path) -> None:
    assert _plan(args, tmp_path) == "broker: start"
