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
import re
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from enforcer.config.client_memory import (
    CONSUMER_BOUNDS,
    CONSUMER_FIXED,
    PRODUCER_BOUNDS,
    memory_bounds,
)
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

TRANSIENT_DELIVERY = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.KAFKA_STORAGE_ERROR,
    }
)
"""Failed deliveries of a broker that stalled or moved a leader: the transaction they
fail is aborted and its records decided again in a new one (a stall longer than the
watchdog's limit still ends the worker). Any other failed delivery (a record too large,
a topic gone) would fail again the same way: the worker stops, naming it."""


def kafka_error(exc: KafkaException) -> KafkaError:
    """The error a client exception carries (one standing in for it if it has none)."""
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError):
        return error
    return KafkaError(KafkaError._FAIL, str(exc))


def denied_cause(error: KafkaError, topic: str | None = None) -> str:
    """The one-line reason a worker stops for a missing permission (on ``topic``, when
    the error concerns one)."""
    where = f" on topic '{topic}'" if topic else ""
    return (
        f"not authorized{where}: {error.name()} ({error.str()}); grant the ACLs listed in "
        "docs/security.md, then restart"
    )


@dataclass(frozen=True)
class Cause:
    """Why a transaction failed, as the broker or librdkafka reported it: the error, and
    the topic it concerns when that is known."""

    error: KafkaError
    topic: str | None = None
    abortable: bool = False
    """Aborting the transaction clears the error, and its records can be decided again
    in a new one: the transaction itself failed (librdkafka's ``TXNERR``), or a delivery
    failed for a broker that stalled (:data:`TRANSIENT_DELIVERY`)."""

    @property
    def denied(self) -> bool:
        """A missing permission: waiting or aborting will not cure it."""
        return self.error.code() in DENIED

    def __str__(self) -> str:
        where = f" on topic '{self.topic}'" if self.topic else ""
        return f"{self.error.name()} ({self.error.str()}){where}"


_THREAD = re.compile(r"^\[thrd:[^\]]*\]: ")
_ADDPARTS = re.compile(
    r'Failed to add partition "(?P<topic>[^"]+)" \[\d+\] to transaction: (?P<why>.+)$'
)
_ERROR_NAME = re.compile(r" \((?P<name>_?[A-Z][A-Z0-9_]*)\)$")
_NOT_ATTEMPTED = "Operation not attempted"  # another partition's error stopped this one


class TransactionReports:
    """What the output producer says about its open transaction outside the call that
    later fails, kept so that a stop line can name it:

    - the first failed delivery report (its error and topic), other than the purge of
      queued records that follows any transaction error;
    - librdkafka's ``TXNERR`` log line ("Current transaction failed … (CODE)"), which
      holds the error that makes the next ``produce`` fail with ``_STATE`` and the next
      commit fail; asking the commit for it would commit what may be committed;
    - the partition a ``TXNERR`` came from, when an ``ADDPARTS`` line names it (a topic
      the producer may not write to).

    Given to the producer as its ``logger`` (every line goes on to the client log) and
    its ``on_delivery`` (with ``delivery.report.only.error``); :meth:`clear` at each
    new transaction.
    """

    def __init__(self) -> None:
        self._delivery: Cause | None = None
        self._failed: str | None = None
        self._partition: tuple[str, str] | None = None

    def clear(self) -> None:
        """Forget what concerned the previous transaction."""
        self._delivery = None
        self._failed = None
        self._partition = None

    def log(self, level: int, fmt: str, *args: object) -> None:
        """librdkafka's log line ``fmt % (facility, client name, message)``."""
        client_log.log(level, fmt, *args)
        if len(args) != 3:
            return
        facility, message = str(args[0]), _THREAD.sub("", str(args[2]))
        if facility == "TXNERR" and self._failed is None:
            self._failed = message
        elif facility == "ADDPARTS" and self._partition is None:
            found = _ADDPARTS.search(message)
            if found is not None and _NOT_ATTEMPTED not in found["why"]:
                self._partition = (found["topic"], found["why"])

    def delivered(self, error: KafkaError | None, message: Any) -> None:
        """A delivery report (failed ones only, with ``delivery.report.only.error``)."""
        if error is None or error.code() == KafkaError._PURGE_QUEUE or self._delivery:
            return
        self._delivery = Cause(error, message.topic(), error.code() in TRANSIENT_DELIVERY)

    def cause(self) -> Cause | None:
        """The best cause known: a failed delivery, else the transaction's error."""
        if self._delivery is not None:
            return self._delivery
        if self._failed is None:
            return None
        found = _ERROR_NAME.search(self._failed)
        code = getattr(KafkaError, found["name"], None) if found else None
        if not isinstance(code, int):
            return Cause(KafkaError(KafkaError._FAIL, self._failed), abortable=True)
        if self._partition is not None:
            topic, why = self._partition
            return Cause(KafkaError(code, why), topic, abortable=True)
        text = self._failed[: found.start()] if found else self._failed
        return Cause(KafkaError(code, text), abortable=True)


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
        # The client-properties file and the security settings first: the enforcer's
        # own settings below win (the file may not set them: config/client_properties).
        **librdkafka_security(settings),
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": f"enforcer-{role}-{settings.instance_id}",
        "logger": client_log,
        "error_cb": errors,
        # librdkafka 2.10+ re-bootstraps when every broker is down (KIP-899); with it,
        # a transactional commit after a broker restart was seen to block for good
        # (librdkafka 2.16.0: stuck in commit_transaction past its timeout). Without it
        # the clients reconnect to the known brokers, and rode out the same restarts.
        "metadata.recovery.strategy": "none",
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
        # How far it reads ahead of the engine: bounded (config/client_memory.py).
        **memory_bounds(settings, CONSUMER_BOUNDS, CONSUMER_FIXED),
    }


def producer_config(
    settings: EnforcerSettings, errors: ClientErrors, reports: TransactionReports | None = None
) -> dict[str, Any]:
    """The output producer (transactional with the exactly-once guarantee; ``reports``
    keeps what it says about its transaction)."""
    config = {
        **_common(settings, errors, "producer"),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        # How much waits for the broker: bounded (config/client_memory.py).
        **memory_bounds(settings, PRODUCER_BOUNDS),
    }
    if settings.processing_guarantee == "exactly_once":
        config["transactional.id"] = transactional_id(settings)
        config["transaction.timeout.ms"] = round(settings.transaction_timeout * 1000)
    if reports is not None:
        config["logger"] = reports
        config["on_delivery"] = reports.delivered
        config["delivery.report.only.error"] = True
    return config


def metrics_producer_config(settings: EnforcerSettings, errors: ClientErrors) -> dict[str, Any]:
    """The metrics snapshot producer."""
    return {**_common(settings, errors, "metrics"), "acks": 1, "linger.ms": 0}
