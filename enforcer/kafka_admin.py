"""Check that the enforcer's topics exist, or create them when asked (SPEC §2)."""

from __future__ import annotations

import logging
import ssl

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from enforcer.kafka_security import aiokafka_security
from enforcer.settings import EnforcerSettings


class TopicSetupError(RuntimeError):
    """The topics are not there, or Kafka cannot be reached (the message says which)."""


def _topics(settings: EnforcerSettings) -> dict[str, str]:
    return {
        "source": settings.source_topic,
        "sink": settings.sink_topic,
        "violations": settings.violations_topic,
        "dead-letter": settings.deadletter_topic,
        "metrics": settings.metrics_topic,
    }


class _BootstrapErrors(logging.Handler):
    """Collects the exceptions aiokafka logs while it tries the bootstrap servers."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        self.errors += [arg for arg in args if isinstance(arg, BaseException)]


def _why_unreachable(settings: EnforcerSettings, errors: list[BaseException]) -> str:
    where = settings.bootstrap_servers
    if any(isinstance(e, _AUTH_ERRORS) for e in errors):
        return (
            f"Kafka at {where} refused the credentials of {settings.sasl_username!r} "
            f"({settings.sasl_mechanism}); check ENFORCER_SASL_USERNAME and ENFORCER_SASL_PASSWORD"
        )
    tls = next((e for e in errors if isinstance(e, ssl.SSLError)), None)
    if tls is not None:
        return (
            f"TLS to {where} failed ({tls.reason or type(tls).__name__}); "
            "check ENFORCER_SSL_CAFILE and ENFORCER_SECURITY_PROTOCOL"
        )
    return f"cannot reach Kafka at {where} (ENFORCER_BOOTSTRAP_SERVERS)"


_AUTH_ERRORS = (AuthenticationFailedError, SaslAuthenticationFailed, UnsupportedSaslMechanismError)


async def ensure_topics(settings: EnforcerSettings) -> list[str]:
    """Raise unless every topic exists; with ``create_topics`` create the missing ones.

    Returns the names of the topics it created.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=15000,
        **aiokafka_security(settings),
    )
    causes = _BootstrapErrors()
    client_log = logging.getLogger("aiokafka")
    client_log.addHandler(causes)
    try:
        await admin.start()
    except KafkaError as exc:
        # aiokafka reports "unable to bootstrap" and logs why: say which it was.
        raise TopicSetupError(_why_unreachable(settings, [exc, *causes.errors])) from None
    finally:
        client_log.removeHandler(causes)
    try:
        existing = set(await admin.list_topics())
        missing = {role: name for role, name in _topics(settings).items() if name not in existing}
        if not missing:
            return []
        if not settings.create_topics:
            listed = ", ".join(f"{role} topic '{name}'" for role, name in missing.items())
            raise TopicSetupError(
                f"missing on {settings.bootstrap_servers}: {listed}; create them, "
                "or pass --create-topics (ENFORCER_CREATE_TOPICS=true)"
            )
        names = sorted(set(missing.values()))
        await admin.create_topics(
            [
                NewTopic(name, settings.topic_partitions, settings.topic_replication_factor)
                for name in names
            ]
        )
        return names
    except KafkaError as exc:
        raise TopicSetupError(f"Kafka refused the topic check: {type(exc).__name__}") from None
    finally:
        await admin.close()
