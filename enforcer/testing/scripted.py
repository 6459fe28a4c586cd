"""A local server driven by one of the project's shell scripts (``deploy/kafka/kafka.sh``,
``deploy/registry/registry.sh``): what the broker and the schema registry of the tests
share. The script is the one implementation of how the server is installed, started,
waited for and stopped; this class runs its commands (``start``, ``stop``, ``kill``,
``status``, ...) with the server's settings in the environment, and turns a failure or a
time-out into the server's own error, carrying the script's output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self


class ScriptedServer:
    """One server whose files live in ``state_dir``, run by ``script``."""

    error: ClassVar[type[RuntimeError]] = RuntimeError
    """What a failed command raises (the subclass's own error)."""

    def __init__(
        self,
        state_dir: Path,
        script: Path,
        *,
        start_timeout_s: float,
        stop_timeout_s: float,
        extra_env: Mapping[str, str] | None,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self._script = script
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._extra_env = dict(extra_env or {})
        if not self._script.is_file():
            raise self.error(
                f"{self._script} not found: {type(self).__name__} needs the project's "
                "source checkout"
            )

    def start(self) -> str:
        """Start the server; return its address."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server cleanly."""
        raise NotImplementedError

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash or an outage would. Idempotent."""
        self._run("kill", timeout_s=30.0)

    def is_running(self) -> bool:
        """Whether the server process of this state dir is alive (and was ready)."""
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

    def _settings(self) -> dict[str, str]:
        """The script's settings from this object (before ``extra_env``)."""
        return {}

    def _ports(self) -> dict[str, int | None]:
        """Port settings, after ``extra_env``: ``None`` lets the script choose."""
        return {}

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self._settings())
        # The script's helpers need a python3; the running one certainly exists.
        env["PYTHON"] = sys.executable
        env.update(self._extra_env)
        for name, value in self._ports().items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = str(value)
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
            raise self.error(
                f"{self._script.name} {command} did not finish within {timeout_s:.0f}s ({self!r})"
            ) from exc

    def _run(self, command: str, *, timeout_s: float) -> str:
        result = self._completed(command, timeout_s=timeout_s)
        if result.returncode != 0:
            raise self.error(
                f"{self._script.name} {command} failed with status {result.returncode} "
                f"({self!r})\n{result.stderr}{result.stdout}"
            )
        return result.stdout
