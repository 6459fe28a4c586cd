"""librdkafka settings for the worker's clients, from :class:`EnforcerSettings`.

- the consumer reads ``read_committed``, commits nothing itself, and uses the range
  assignor: partition ``i`` of every subscribed topic goes to the same worker, which
  keeps co-partitioned topics (a ledger beside the source) together;
- the output producer is transactional, with an id stable for the worker's instance
  id, so a restarted worker fences its previous incarnation immediately;
- the metrics producer is plain: snapshots are not part of any record's outcome.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from enforcer.config.kafka_security import librdkafka_security
from enforcer.config.settings import EnforcerSettings

client_log = logging.getLogger("enforcer.kafka")


DENIED = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    }
)
"""Errors that waiting will not cure: the worker stops, naming the permission."""


def kafka_error(exc: KafkaException) -> KafkaError:
    """The error a client exception carries (one standing in for it if it has none)."""
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError):
        return error
    return KafkaError(KafkaError._FAIL, str(exc))


def denied_cause(error: KafkaError) -> str:
    """The one-line reason a worker stops for a missing permission."""
    return (
        f"not authorized: {error.name()} ({error.str()}); grant the ACLs listed in "
        "docs/security.md, then restart"
    )


class ClientErrors:
    """The ``error_cb`` of every client: each kind of error logged once per interval
    (an unreachable broker is reported by librdkafka many times a second), and a
    missing permission remembered, so that the loop stops on it."""

    def __init__(self, every_s: float = 10.0) -> None:
        self._every_s = every_s
        self._last: dict[str, float] = {}
        self.last_error: KafkaError | None = None
        self.denied: KafkaError | None = None

    def __call__(self, error: KafkaError) -> None:
        self.last_error = error
        if error.code() in DENIED:
            self.denied = error
        now = time.monotonic()
        if now - self._last.get(error.name(), -self._every_s) >= self._every_s:
            self._last[error.name()] = now
            client_log.warning("kafka: %s (%s)", error.name(), error.str())


def _common(settings: EnforcerSettings, errors: ClientErrors, role: str) -> dict[str, Any]:
    config = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": f"enforcer-{role}-{settings.instance_id}",
        "logger": client_log,
        "error_cb": errors,
        # librdkafka 2.10+ re-bootstraps when every broker is down (KIP-899); with it,
        # a transactional commit after a broker restart was seen to block for good
        # (librdkafka 2.16.0: stuck in commit_transaction past its timeout). Without it
        # the clients reconnect to the known brokers, and rode out the same restarts.
        "metadata.recovery.strategy": "none",
        **librdkafka_security(settings),
    }
    if settings.kafka_debug:
        config["debug"] = settings.kafka_debug
    return config


def transactional_id(settings: EnforcerSettings) -> str:
    """The output producer's transactional id: one per worker instance id."""
    return f"{settings.group_id}-{settings.instance_id}"


def consumer_config(settings: EnforcerSettings, errors: ClientErrors) -> dict[str, Any]:
    """The source consumer."""
    session_ms = round(settings.session_timeout * 1000)
    return {
        **_common(settings, errors, "consumer"),
        "group.id": settings.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "range",
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": max(100, min(3000, session_ms // 3)),
    }


def producer_config(settings: EnforcerSettings, errors: ClientErrors) -> dict[str, Any]:
    """The output producer (transactional with the exactly-once guarantee)."""
    config = {
        **_common(settings, errors, "producer"),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
    }
    if settings.processing_guarantee == "exactly_once":
        config["transactional.id"] = transactional_id(settings)
        config["transaction.timeout.ms"] = round(settings.transaction_timeout * 1000)
    return config


def metrics_producer_config(settings: EnforcerSettings, errors: ClientErrors) -> dict[str, Any]:
    """The metrics snapshot producer."""
    return {**_common(settings, errors, "metrics"), "acks": 1, "linger.ms": 0}
