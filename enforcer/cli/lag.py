"""``enforcer lag-exporter``: serve the group's broker-side lag for Prometheus.

Run one beside the workers (not in them): it keeps answering when every worker is
down, which is when the lag alert must fire. Settings as for ``run`` (the cluster, its
security, the group and the source topic), from flags and ``ENFORCER_*`` variables.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType

from enforcer.cli.common import Parser, settings_from

_FLAG_NAMES = (
    "--bootstrap-servers",
    "--source-topic",
    "--group-id",
    "--kafka-config",
    "--http-host",
    "--http-port",
)
"""The flags of ``run`` that the exporter takes too (the same settings)."""

_OWN_HELP = {
    "--http-host": "address for /metrics and /healthz",
    "--http-port": "port for /metrics and /healthz (0: any free)",
}
"""Where the exporter's help differs from ``run``'s: it serves no ``/readyz`` (it has no
start-up to wait for; its probe is ``/healthz``, see docs/operations.md)."""


def add_flags(parser: Parser) -> None:
    """The exporter's flags."""
    from enforcer.cli.run import RUN_FLAGS, setting_help

    for flag in _FLAG_NAMES:
        field, kind, help_text = RUN_FLAGS[flag]
        help_text = _OWN_HELP.get(flag, help_text)
        parser.add_argument(flag, dest=field, type=kind, help=setting_help(field, help_text))
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=None,
        help="ENFORCER_LOG_LEVEL (default info)",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=None,
        help="one line per event, plain or one JSON object (ENFORCER_LOG_FORMAT, default text)",
    )


def command(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT; exit 0."""
    from enforcer.cli.run import RUN_FLAGS, check_http_port
    from enforcer.config.kafka_security import librdkafka_security
    from enforcer.config.logs import setup_logging
    from enforcer.live.http import HttpEndpoints, metrics_route
    from enforcer.live.lag_exporter import lag_registry

    fields = [RUN_FLAGS[flag][0] for flag in _FLAG_NAMES] + ["log_level", "log_format"]
    settings = settings_from(**{field: getattr(args, field) for field in fields})
    librdkafka_security(settings)  # a bad client-properties file: refused before anything starts
    check_http_port(settings.http_host, settings.http_port)
    setup_logging(settings.log_level, settings.log_format)
    log = logging.getLogger("enforcer.lag")
    stop = threading.Event()

    def _stop(signum: int, _: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    server = HttpEndpoints(
        settings.http_host,
        settings.http_port,
        {
            "/metrics": metrics_route(lag_registry(settings)),
            "/healthz": lambda: (200, "application/json", b'{"status": "ok"}'),
        },
    )
    server.start()
    log.info(
        "exporting the lag of group %s on %s",
        settings.group_id,
        settings.source_topic,
        extra={"group": settings.group_id, "topic": settings.source_topic},
    )
    try:
        stop.wait()
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log.info("stopped")
    return 0
