"""A real single-node Kafka broker on 127.0.0.1 for tests.

:class:`LocalKafka` drives ``deploy/kafka/kafka.sh`` so that the shell script stays the
one implementation of "configure, format, start, wait, stop" used by developers, CI and
the test fixtures alike. The script needs ``bash``, ``java`` (17+) and, the first time a
Kafka version is used, ``mvn`` to fetch the jars.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

from enforcer.testing.scripted import ScriptedServer

DEFAULT_KAFKA_VERSION = "3.9.1"

# Time allowed for Maven to download a Kafka version the first time it is used.
_JARS_TIMEOUT_S = 900.0


def default_script() -> Path:
    """Return ``deploy/kafka/kafka.sh`` of the source checkout this package runs from."""
    return Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "kafka.sh"


class KafkaBrokerError(RuntimeError):
    """``kafka.sh`` failed; the message carries its output, including the broker log tail."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a server of the tests (a broker listener, an
    HTTP endpoint), below the kernel's ephemeral range like ``kafka.sh``'s own choice:
    a client reconnecting to a stopped server on an ephemeral port can be given that
    very port as its source and connect to itself, taking the port."""
    low = 32768
    ranges = Path("/proc/sys/net/ipv4/ip_local_port_range")
    if ranges.exists():
        low = int(ranges.read_text().split()[0])
    for _ in range(200):
        port = random.randrange(15000, max(15001, min(low, 32768)))  # noqa: S311 - not secret
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalKafka(ScriptedServer):
    """One single-node KRaft broker (broker and controller roles) whose files live in
    ``state_dir``.

    The first :meth:`start` picks free ports (unless given), writes the configuration and
    formats the storage; later starts in the same ``state_dir`` reuse them, so
    :meth:`restart` brings the broker back on the same address with the same topics,
    committed offsets and transaction state. Use it as a context manager to start it and
    to stop it whatever happens in the block::

        with LocalKafka(tmp_path / "kafka") as kafka:
            use(kafka.bootstrap_servers)
    """

    error = KafkaBrokerError

    def __init__(
        self,
        state_dir: Path,
        *,
        version: str = DEFAULT_KAFKA_VERSION,
        port: int | None = None,
        controller_port: int | None = None,
        start_timeout_s: float = 60.0,
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
        self.version = version
        self._port = port
        self._controller_port = controller_port
        self._bootstrap: str | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:PORT`` of the running broker; raises if it was never started."""
        if self._bootstrap is None:
            raise KafkaBrokerError("the broker has not been started")
        return self._bootstrap

    @property
    def log_path(self) -> Path:
        """The broker's own log file (look here when a test fails mysteriously)."""
        return self.state_dir / "logs" / "server.log"

    def start(self) -> str:
        """Start the broker (a no-op when it runs already); return the bootstrap address.

        Returns only once the broker answers a metadata request. Fetches the jars of
        :attr:`version` with Maven first if they are not cached yet.
        """
        self._run("jars", timeout_s=_JARS_TIMEOUT_S)
        output = self._run("start", timeout_s=self._start_timeout_s + 60.0)
        self._bootstrap = output.strip().splitlines()[-1]
        return self._bootstrap

    def stop(self) -> None:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after the stop timeout).

        Idempotent. Storage and configuration stay, so :meth:`start` resumes the cluster.
        """
        self._run("stop", timeout_s=self._stop_timeout_s + 30.0)

    def restart(self, *, crash: bool = False) -> None:
        """Stop the broker (or kill it, with ``crash=True``) and start it again.

        The address stays the same, so clients may keep their bootstrap setting. After a
        crash the controller waits one broker session (a few seconds) before the broker
        may register again, so that restart is slower.
        """
        before = self._bootstrap
        if crash:
            self.kill()
        else:
            self.stop()
        after = self.start()
        if before is not None and after != before:
            raise KafkaBrokerError(f"broker came back on {after}, not {before}")

    def __repr__(self) -> str:
        return f"LocalKafka(version={self.version!r}, state_dir={str(self.state_dir)!r})"

    def _settings(self) -> dict[str, str]:
        return {
            "KAFKA_VERSION": self.version,
            "KAFKA_STATE_DIR": str(self.state_dir),
            "KAFKA_START_TIMEOUT": str(round(self._start_timeout_s)),
            "KAFKA_STOP_TIMEOUT": str(round(self._stop_timeout_s)),
        }

    def _ports(self) -> dict[str, int | None]:
        return {"KAFKA_PORT": self._port, "KAFKA_CONTROLLER_PORT": self._controller_port}


OAUTHBEARER_LISTENER = "SASL_PLAINTEXT"
"""The listener name :func:`unsecured_oauthbearer_config` adds."""


def unsecured_oauthbearer_config() -> str:
    """Broker properties (for ``KAFKA_EXTRA_CONFIG``) that make the ``SASL_PLAINTEXT``
    listener take OAUTHBEARER in Kafka's own
    **unsecured-JWT** mode: ``OAuthBearerLoginModule`` with the broker's default
    validator for it, which accepts an unsigned token (``alg: none``) naming its
    principal in ``sub``. For tests of the client side only: it checks no signature,
    so any client may claim any principal. Clients use librdkafka's
    ``enable.sasl.oauthbearer.unsecure.jwt=true``.

    The caller lists ``SASL_PLAINTEXT://127.0.0.1:<port>`` in ``listeners``,
    ``advertised.listeners`` and the protocol map (one line each, shared with its other
    listeners), and gives any other SASL listener its own
    ``listener.name.<name>.sasl.enabled.mechanisms``.
    """
    listener = OAUTHBEARER_LISTENER.lower()
    return (
        f"listener.name.{listener}.sasl.enabled.mechanisms=OAUTHBEARER\n"
        f"listener.name.{listener}.oauthbearer.sasl.jaas.config="
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
        'unsecuredLoginStringClaim_sub="broker";\n'
    )
