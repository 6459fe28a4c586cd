"""``enforcer run``: the live agent, from flags and ``ENFORCER_*`` variables."""

from __future__ import annotations

import argparse
import logging
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from enforcer.cli.common import (
    MODE_HELP,
    PHONE_REGION_HELP,
    Parser,
    UsageError,
    policy_from,
    schema_registry_from,
    schema_registry_options,
    schema_registry_settings,
    settings_from,
)
from enforcer.config.logs import setup_logging
from enforcer.core.ledger_view import LedgerMode
from enforcer.core.models import Mode

if TYPE_CHECKING:
    from enforcer.core.policy.compiled import Policy
    from enforcer.formats.registry import SchemaRegistry
    from enforcer.live.signals import StopSignal

# flag name -> settings field; every flag defaults to None so variables show through.
RUN_FLAGS: dict[str, tuple[str, type, str]] = {
    "--bootstrap-servers": ("bootstrap_servers", str, "host:port[,host:port]"),
    "--source-topic": ("source_topic", str, "identity events"),
    "--sink-topic": ("sink_topic", str, "audience building"),
    "--violations-topic": ("violations_topic", str, "violation events"),
    "--deadletter-topic": ("deadletter_topic", str, "dead letters"),
    "--metrics-topic": ("metrics_topic", str, "metrics snapshots"),
    "--ledger-topic": (
        "ledger_topic",
        str,
        "purpose ledger, co-partitioned with the source (default: none)",
    ),
    "--exposure-topic": (
        "exposure_topic",
        str,
        "what was forwarded, per subject, co-partitioned with the source: makes "
        "retractions exact and lets a policy change retract (default: none)",
    ),
    "--group-id": ("group_id", str, "consumer group (and prefix of the transactional id)"),
    "--instance-id": (
        "instance_id",
        str,
        "this worker's name in metrics and its transactional id; keep it stable across "
        "restarts of the same worker (a StatefulSet pod name) for the fastest recovery; "
        "default: <hostname>-<pid>",
    ),
    "--policy": ("policy_file", Path, "policy file (default: built-in)"),
    "--destination": ("destination", str, "destination for allow-lists"),
    "--fingerprint-key-file": ("fingerprint_key_file", Path, "file holding the key"),
    "--previous-fingerprint-key-file": (
        "previous_fingerprint_key_file",
        Path,
        "during a key rotation, the file holding the key used before it: exposure "
        "re-keys an identifier forwarded again instead of keeping a second entry "
        "(default: none; docs/security.md)",
    ),
    "--kafka-config": (
        "kafka_config",
        Path,
        "librdkafka client properties (name=value lines: OAUTHBEARER, GSSAPI, tuning), "
        "merged under the enforcer's own settings; see docs/security.md",
    ),
    "--commit-interval": ("commit_interval", float, "seconds between commits"),
    "--metrics-interval": ("metrics_interval", float, "seconds between snapshots"),
    "--topic-partitions": ("topic_partitions", int, "partitions for --create-topics"),
    "--consumer-prefetch-kbytes": (
        "consumer_prefetch_kbytes",
        int,
        "KiB of records the consumer reads ahead, all partitions together",
    ),
    "--consumer-prefetch-records": (
        "consumer_prefetch_records",
        int,
        "records per partition the consumer tries to keep read ahead",
    ),
    "--consumer-fetch-max-bytes": (
        "consumer_fetch_max_bytes",
        int,
        "most bytes one fetch returns (at most the prefetch)",
    ),
    "--producer-queue-kbytes": (
        "producer_queue_kbytes",
        int,
        "KiB of outputs that may wait for the broker",
    ),
    "--producer-queue-records": (
        "producer_queue_records",
        int,
        "outputs that may wait for the broker",
    ),
    "--http-host": ("http_host", str, "address for /metrics, /healthz, /readyz"),
    "--http-port": ("http_port", int, "port for /metrics, /healthz, /readyz (0: any free)"),
    "--data-dir": ("data_dir", Path, "directory for local state"),
}


def setting_help(field: str, help_text: str) -> str:
    """A flag's help: what it sets, its ``ENFORCER_*`` variable, and the setting's default
    when it has one (the flag itself defaults to ``None`` so that the variable shows
    through)."""
    from pydantic_core import PydanticUndefined

    from enforcer.config.settings import EnforcerSettings

    default = EnforcerSettings.model_fields[field].get_default(call_default_factory=False)
    if default in (None, PydanticUndefined) or callable(default) or "default" in help_text:
        return f"{help_text} (ENFORCER_{field.upper()})"
    return f"{help_text} (ENFORCER_{field.upper()}, default: {default})"


class HttpPortError(RuntimeError):
    """The metrics and health port cannot be bound (exit 2)."""


class DataDirError(RuntimeError):
    """The local state directory cannot be made (exit 2)."""


def prepare_data_dir(path: Path) -> None:
    """Make ``path`` (and its parents) for local state, or say in one line why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(
            f"cannot use {path} for local state (--data-dir, ENFORCER_DATA_DIR): "
            f"{exc.strerror or type(exc).__name__}"
        ) from None


def check_ledger_store_dirs(
    data_dir: Path, topic: str, room: str = "ledger", store: str = "disk ledger store"
) -> None:
    """Refuse to start, in one line naming the path and what to do, when a directory a
    disk store would open (``data_dir/{room}/{topic}-{partition}``: the ledger's, or
    exposure's) exists and is not a disk store's working copy, so opening it would have
    to wipe it."""
    from enforcer.ledger.disk import REMEDY, DiskStoreError, check_store_dir

    root = data_dir / room
    stores = re.compile(re.escape(topic) + r"-[0-9]+")
    try:
        if root.exists() and not root.is_dir():
            raise DiskStoreError(
                f"cannot use {root} for the {store}: it is not a directory; "
                f"move it away, or {REMEDY}"
            )
        for path in sorted(root.iterdir()) if root.is_dir() else []:
            if stores.fullmatch(path.name):
                check_store_dir(path, store)
    except DiskStoreError as exc:
        raise DataDirError(str(exc)) from None
    except OSError as exc:
        raise DataDirError(
            f"cannot use {root} for the {store}: {exc.strerror or type(exc).__name__}; {REMEDY}"
        ) from None


def check_http_port(host: str, port: int) -> None:
    """Fail before starting the worker when ``host:port`` cannot be served.

    The worker binds it again moments later; this only turns the common mistake (a
    port in use) into a one-line error instead of a crash inside the worker.
    """
    if port == 0:
        return
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise HttpPortError(
            f"cannot serve /metrics on {host}:{port}: {exc.strerror} "
            "(--http-host/--http-port, ENFORCER_HTTP_HOST/ENFORCER_HTTP_PORT; 0 picks a free port)"
        ) from None


def add_flags(run: Parser) -> None:
    """The flags of ``run``: one per setting, each naming its ``ENFORCER_*`` variable."""
    for flag, (field, kind, help_text) in RUN_FLAGS.items():
        run.add_argument(flag, dest=field, type=kind, help=setting_help(field, help_text))
    run.add_argument("--mode", choices=[m.value for m in Mode], help=MODE_HELP)
    run.add_argument(
        "--processing-guarantee",
        choices=["exactly_once", "at_least_once"],
        default=None,
        help=(
            "exactly_once: outputs and offsets in one Kafka transaction "
            "(ENFORCER_PROCESSING_GUARANTEE, default: exactly_once)"
        ),
    )
    run.add_argument(
        "--create-topics",
        action="store_true",
        default=None,
        help="create missing topics (ENFORCER_CREATE_TOPICS)",
    )
    run.add_argument(
        "--ledger-store",
        choices=["memory", "disk"],
        default=None,
        help="where the materialized ledger lives (ENFORCER_LEDGER_STORE, default memory)",
    )
    run.add_argument(
        "--exposure-store",
        choices=["memory", "disk"],
        default=None,
        help="where exposure lives (ENFORCER_EXPOSURE_STORE, default memory)",
    )
    run.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=None,
        help="ENFORCER_LOG_LEVEL (default info)",
    )
    run.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=None,
        help="one line per event, plain or one JSON object (ENFORCER_LOG_FORMAT, default text)",
    )
    run.add_argument(
        "--phone-region",
        dest="phone_default_region",
        metavar="CC",
        help=PHONE_REGION_HELP,
    )
    schema_registry_options(run)


def command(args: argparse.Namespace) -> int:
    """Start the worker; return its exit status."""
    from enforcer.live.signals import install_stop_signal, uninstall_stop_signal

    stop = install_stop_signal()  # main() installed it first thing; this finds it
    try:
        return _run(args, stop)
    finally:
        uninstall_stop_signal()


def _run(args: argparse.Namespace, stop: StopSignal) -> int:
    from enforcer.config.client_memory import check_memory_bounds
    from enforcer.config.kafka_security import librdkafka_security
    from enforcer.live.admin import prepare_topics
    from enforcer.live.worker import run_worker

    fields = [field for field, _, _ in RUN_FLAGS.values()]
    fields += [
        "mode",
        "processing_guarantee",
        "create_topics",
        "log_level",
        "log_format",
        "ledger_store",
        "exposure_store",
        "phone_default_region",
    ]
    settings = settings_from(
        **{field: getattr(args, field) for field in fields}, **schema_registry_settings(args)
    )
    fingerprinter = settings.fingerprinter()
    previous = settings.previous_fingerprinter(fingerprinter)
    registry = schema_registry_from(settings)  # its password and TLS files, read now
    librdkafka_security(settings)  # a bad client-properties file: refused before anything starts
    check_memory_bounds(settings)
    policy = policy_from(settings)
    unchecked = _check_mappings(policy, registry, settings.source_topic)
    ledger_mode = policy.ledger_mode(settings.ledger_topic is not None)
    check_http_port(settings.http_host, settings.http_port)
    prepare_data_dir(settings.data_dir)
    if (
        settings.ledger_store == "disk"
        and settings.ledger_topic is not None
        and ledger_mode is not LedgerMode.OFF
    ):
        check_ledger_store_dirs(settings.data_dir, settings.ledger_topic)
    if settings.exposure_store == "disk" and settings.exposure_topic is not None:
        check_ledger_store_dirs(
            settings.data_dir, settings.exposure_topic, "exposure", "disk exposure store"
        )
    setup_logging(settings.log_level, settings.log_format)
    log = logging.getLogger("enforcer")
    created, limits = prepare_topics(settings)
    log.info("starting worker %s", settings.instance_id)
    if created:
        log.info("created topics: %s", ", ".join(created))
    log.info(
        "enforcing %s -> %s with policy %s (%s), mode %s, %s",
        settings.source_topic,
        settings.sink_topic,
        policy.version,
        policy.origin,
        policy.mode.value,
        settings.processing_guarantee,
    )
    if settings.ledger_topic is not None:
        log.info("purpose ledger %s, ledger: %s", settings.ledger_topic, ledger_mode.value)
    if settings.exposure_topic is not None:
        log.info(
            "exposure %s (%s store): retractions are exact",
            settings.exposure_topic,
            settings.exposure_store,
        )
    elif settings.ledger_topic is not None and ledger_mode is not LedgerMode.OFF:
        log.warning(
            "no exposure topic: ledger retractions may name identifiers that never reached "
            "the sink, and a policy change retracts nothing (--exposure-topic; "
            "docs/exposure.md)"
        )
    if previous is not None:
        if settings.exposure_topic is None:
            log.warning(
                "the previous fingerprint key (key id %s) is not used without an exposure "
                "topic (--exposure-topic)",
                previous.key_id,
            )
            previous = None
        else:
            log.info(
                "key rotation: exposure entries of key id %s are re-keyed to key id %s "
                "when their identifier is seen again",
                previous.key_id,
                fingerprinter.key_id,
            )
    if registry is not None:
        log.info("schema registry %s", registry.settings.url)
    if unchecked is not None:
        log.warning(
            "field mappings not checked against the registered schema at start (%s): each "
            "schema is checked when its first record comes, and records under one the "
            "mappings do not fit are dead-lettered (schema)",
            unchecked,
        )
    if stop():
        log.info("stopped before starting")
        return 0
    return run_worker(settings, policy, fingerprinter, limits, stop, registry, previous)


def _check_mappings(policy: Policy, registry: SchemaRegistry | None, topic: str) -> str | None:
    """Refuse to start (exit 2) when the policy's field mappings do not fit the source
    topic's registered schema: each problem one line. Returns why they were not
    checked when the registry does not answer (the worker then waits for it as it would
    for any schema)."""
    if registry is None or policy.formats is None:
        return None
    from enforcer.formats.registry import RegistryUnavailableError
    from enforcer.live.schemas import mapping_problems, schema_loader

    try:
        problems = mapping_problems(policy, schema_loader(registry), topic)
    except RegistryUnavailableError as exc:
        return str(exc)
    if problems:
        raise UsageError("\n".join(problems))
    return None
