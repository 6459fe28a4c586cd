"""The image's files: the health check, the build context, the lock and the SBOM.

No Docker engine runs here, so these check files and run what can run without one: the
health check's own command, against a real HTTP server on a free port.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
LOCK = ROOT / "requirements.lock"
SBOM = ROOT / "sbom.cdx.json"


def _instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def _healthcheck_command() -> list[str]:
    [line] = [i for i in _instructions() if i.startswith("HEALTHCHECK")]
    command: list[str] = json.loads(line[line.index("CMD") + len("CMD") :].strip())
    return command


class _Healthz(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def healthz_port() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _run_healthcheck(env: dict[str, str]) -> int:
    command = _healthcheck_command()
    assert command[0] == "python"
    result = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30, check=False
    )
    return result.returncode


def test_the_health_check_follows_the_configured_port(healthz_port: int) -> None:
    """The image's HEALTHCHECK asks /healthz on ENFORCER_HTTP_PORT: healthy on the port
    the server listens on, unhealthy when nothing answers there (before, it always asked
    8080, so the lag exporter on 9308 was "unhealthy" forever)."""
    assert _run_healthcheck({"ENFORCER_HTTP_PORT": str(healthz_port)}) == 0
    with socket_port_nobody_listens_on() as idle:
        assert _run_healthcheck({"ENFORCER_HTTP_PORT": str(idle)}) != 0


class socket_port_nobody_listens_on:  # noqa: N801 - reads as a phrase in the with-statement
    """A port bound (so no one else takes it) but not listening: connections are refused."""

    def __enter__(self) -> int:
        import socket

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        port: int = self._socket.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self._socket.close()


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_services_of_the_image_can_become_healthy() -> None:
    """Each service built from the image either serves /healthz on its ENFORCER_HTTP_PORT
    (which the health check now follows) or has the check disabled: the sample producer
    and the key generator serve no HTTP."""
    built = {n: s for n, s in _compose()["services"].items() if s.get("build") == "."}
    assert {"enforcer", "enforcer-lag", "producer", "keygen"} <= set(built)
    serving = {"enforcer": "run", "enforcer-lag": "lag-exporter"}
    for name, service in built.items():
        if name in serving:
            assert service["command"][0] == serving[name]
            assert service["environment"]["ENFORCER_HTTP_PORT"].isdigit()
            assert "healthcheck" not in service, name
        else:
            assert service["healthcheck"] == {"disable": True}, name
    assert _compose()["services"]["enforcer-lag"]["environment"]["ENFORCER_HTTP_PORT"] == "9308"


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus **) as a regex over a relative path."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _in_build_context(path: str) -> bool:
    """Whether docker sends ``path`` with the build context: the last pattern matching
    the path or one of its parent directories decides."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for rule in rules:
        negated = rule.startswith("!")
        regex = _dockerignore_regex(rule.removeprefix("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            included = negated
    return included


def _copied_sources() -> list[str]:
    sources = []
    for line in _instructions():
        if line.startswith("COPY") and "--from" not in line:
            sources += shlex.split(line)[1:-1]
    return sources


def test_the_build_context_holds_what_the_dockerfile_copies_and_nothing_local() -> None:
    """What the Dockerfile copies is in the context; local state is not: virtualenvs
    (.venv-peers was 183 MB), the Kafka jars, .kafka, caches, .git, and anything else git
    ignores in this checkout."""
    sources = _copied_sources()
    assert {"requirements.lock", "sbom.cdx.json", "pyproject.toml", "enforcer"} <= set(sources)
    for source in sources:
        assert _in_build_context(source), source
    tracked = subprocess.run(
        ["git", "ls-files", "enforcer"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked and all(_in_build_context(path) for path in tracked)
    for path in [
        ".venv/bin/python",
        ".venv-peers/lib/python3.11/site-packages/quixstreams/__init__.py",
        ".venv-py3.12/bin/python",
        ".kafka/broker-1/meta.properties",
        "deploy/kafka/lib-3.9.1/kafka_2.13-3.9.1.jar",
        ".git/HEAD",
        ".mypy_cache/3.11/cache.db",
        ".pytest_cache/v/cache/nodeids",
        "enforcer/__pycache__/cli.cpython-311.pyc",
        "enforcer/core/__pycache__/x.cpython-311.pyc",
        "purpose_enforcer.egg-info/PKG-INFO",
        "bench/results/run.json",
        "tests/unit/test_image.py",
        "secrets/fingerprint.key",
    ]:
        assert not _in_build_context(path), path
    if shutil.which("git"):
        ignored = subprocess.run(
            ["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--directory"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for path in ignored:
            assert not _in_build_context(path.rstrip("/") + "/x"), path


def _locked() -> dict[str, tuple[Version, str]]:
    """``{name: (version, environment marker)}`` of requirements.lock, each with hashes."""
    text = LOCK.read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", re.sub(r"^#.*\n", "", text, flags=re.MULTILINE))
    locked: dict[str, tuple[Version, str]] = {}
    for entry in entries:
        if not entry.strip():
            continue
        head = entry.split("\\", 1)[0].strip()
        requirement = Requirement(head)
        [specifier] = list(requirement.specifier)
        assert specifier.operator == "==", head
        assert "--hash=sha256:" in entry, f"{head} has no hash"
        marker = str(requirement.marker) if requirement.marker else ""
        locked[canonicalize_name(requirement.name)] = (Version(specifier.version), marker)
    return locked


def test_the_lock_pins_every_runtime_dependency_with_hashes() -> None:
    """Every dependency in pyproject.toml (with its extras' packages) and the build
    backend is pinned in requirements.lock at a version its specifier allows, with
    hashes; the Dockerfile installs from it with --require-hashes."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    locked = _locked()
    wanted = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
    for text in wanted:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock: run scripts/lock.sh"
        assert locked[name][0] in requirement.specifier, (text, locked[name])
    # aiokafka's codec extras bring their packages (replay from compressed topics).
    assert "cramjam" in locked
    install = [i for i in _instructions() if "pip install" in i]
    assert any("--require-hashes -r requirements.lock" in i for i in install)
    # The package itself goes in alone, built by the locked setuptools.
    assert any("--no-deps --no-build-isolation ." in i for i in install)
    assert all("--require-hashes" in i or "--no-deps" in i for i in install), install
    assert "--upgrade pip" not in DOCKERFILE


def _linux_image_environment() -> dict[str, str]:
    environment = {key: str(value) for key, value in default_environment().items()}
    linux = {
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "python_version": "3.11",
        "implementation_name": "cpython",
    }
    return {**environment, **linux}


def test_the_sbom_lists_what_the_lock_installs_in_the_image() -> None:
    """sbom.cdx.json (CycloneDX, written by scripts/lock.sh) names purpose-enforcer at the
    project's version and lists each locked package the Linux image installs, at the
    locked version, with a package URL; the image carries it."""
    sbom = json.loads(SBOM.read_text())
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] in {"1.5", "1.6"}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    root = sbom["metadata"]["component"]
    assert (root["name"], root["version"]) == (project["name"], project["version"])
    components: dict[str, Any] = {canonicalize_name(c["name"]): c for c in sbom["components"]}
    environment = _linux_image_environment()
    installed = {
        name: version
        for name, (version, marker) in _locked().items()
        if not marker or Requirement(f"x; {marker}").marker.evaluate(environment)  # type: ignore[union-attr]
    }
    assert set(components) == set(installed), "stale SBOM: run scripts/lock.sh"
    for name, version in installed.items():
        assert Version(components[name]["version"]) == version, name
        assert components[name]["purl"].startswith(f"pkg:pypi/{name}@"), name
    assert "COPY sbom.cdx.json /opt/enforcer/sbom.cdx.json" in DOCKERFILE
