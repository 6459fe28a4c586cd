"""The project's commands: ``scripts/test.sh`` starts no Kafka broker for a selection of
unit tests only (anything else still gets one); ``scripts/demo.sh`` installs only what
the demo uses (not the benchmark's peer environment nor the schema registry, which
``scripts/setup.sh`` still installs for the tests).

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

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "test.sh"


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


def _stub(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/usr/bin/env bash\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of setup.sh and demo.sh in a tree where everything they call is a stub
    that records its call: the virtualenv (installed already), kafka.sh, registry.sh, the
    peers' setup, and the system tools setup.sh would otherwise install."""
    import hashlib

    for name in ("setup.sh", "demo.sh"):
        (tmp_path / "scripts").mkdir(exist_ok=True)
        (tmp_path / "scripts" / name).write_bytes((ROOT / "scripts" / name).read_bytes())
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[project]\n")
    stamp = hashlib.sha256(pyproject.read_bytes()).hexdigest()[:16]
    _stub(tmp_path / ".venv" / "bin" / "python", 'echo "python $*" >>"$CALLS"')
    (tmp_path / ".venv" / f".installed-{stamp}").touch()
    _stub(
        tmp_path / "deploy" / "kafka" / "kafka.sh", 'echo "kafka $1" >>"$CALLS"; echo 127.0.0.1:1'
    )
    _stub(tmp_path / "deploy" / "registry" / "registry.sh", 'echo "registry $1" >>"$CALLS"; echo /')
    _stub(tmp_path / "bench" / "setup-peers.sh", 'echo "peers" >>"$CALLS"')
    _stub(tmp_path / "deploy" / "helm" / "build-helm.sh", 'echo "helm" >>"$CALLS"')
    for tool in ("docker-compose", "promtool"):
        _stub(tmp_path / "tools" / tool, "true")
    return tmp_path


def _calls(checkout: Path, script: str, *args: str) -> list[str]:
    calls = checkout / "calls.txt"
    calls.write_text("")
    env = {
        **os.environ,
        "CALLS": str(calls),
        "PATH": f"{checkout / 'tools'}:{os.environ['PATH']}",
        "KAFKA_STATE_DIR": str(checkout / "state"),
    }
    subprocess.run(
        ["bash", str(checkout / "scripts" / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return calls.read_text().splitlines()


def test_the_demo_does_not_install_the_benchmark_peers(checkout: Path) -> None:
    calls = _calls(checkout, "demo.sh", "--records", "10")
    assert "peers" not in calls and "helm" not in calls  # test-only tools
    assert not [call for call in calls if call.startswith("registry")]
    assert "python -m enforcer.demo --bootstrap 127.0.0.1:1 --records 10" in calls


def test_setup_still_installs_them_for_the_tests(checkout: Path) -> None:
    assert {"peers", "helm"} <= set(_calls(checkout, "setup.sh"))
    assert "peers" not in _calls(checkout, "setup.sh", "--demo")


def test_setup_installs_the_schema_registry_and_its_java_for_the_tests_only(
    checkout: Path,
) -> None:
    """The format tests' registry (and a Java 21+ for it) comes with the tests' setup;
    the demo's setup leaves it out."""
    assert {"registry install", "registry java"} <= set(_calls(checkout, "setup.sh"))
    demo = _calls(checkout, "setup.sh", "--demo")
    assert not [call for call in demo if call.startswith("registry")]
