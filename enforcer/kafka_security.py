"""TLS and SASL to Kafka, from settings, for every client the enforcer makes.

One place turns ``ENFORCER_SECURITY_PROTOCOL``, ``ENFORCER_SSL_*`` and
``ENFORCER_SASL_*`` into what aiokafka and faust take, so the agent, the admin check,
the metrics producer and replay all connect the same way. Secrets are read from
``SecretStr`` only here, at the moment a client is made.
"""

from __future__ import annotations

import ssl
from typing import Any

from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import CredentialsT

from enforcer.settings import EnforcerSettings


class KafkaSecurityError(ValueError):
    """TLS files that cannot be used (the message names the file, not its content)."""


def ssl_context(settings: EnforcerSettings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL, or ``None`` for plaintext protocols."""
    if not settings.security_protocol.endswith("SSL"):
        return None
    try:
        context = ssl.create_default_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
        )
        if settings.ssl_certfile:
            password = settings.ssl_key_password
            context.load_cert_chain(
                str(settings.ssl_certfile),
                str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
                password.get_secret_value() if password else None,
            )
    except (OSError, ssl.SSLError) as exc:
        raise KafkaSecurityError(
            f"cannot use the TLS files (ENFORCER_SSL_CAFILE, ENFORCER_SSL_CERTFILE, "
            f"ENFORCER_SSL_KEYFILE): {getattr(exc, 'strerror', None) or type(exc).__name__}"
        ) from None
    context.check_hostname = settings.ssl_check_hostname
    return context


def aiokafka_security(settings: EnforcerSettings) -> dict[str, Any]:
    """Keyword arguments for aiokafka clients (consumer, producer, admin)."""
    options: dict[str, Any] = {"security_protocol": settings.security_protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.sasl_mechanism:
        assert settings.sasl_password is not None  # settings validate SASL as a whole
        options.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password.get_secret_value(),
        )
    return options


def faust_credentials(settings: EnforcerSettings) -> CredentialsT | None:
    """``broker_credentials`` for the faust app."""
    context = ssl_context(settings)
    if settings.sasl_mechanism:
        assert settings.sasl_password is not None
        return SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return SSLCredentials(context)
    return None
