"""TLS and SASL to Kafka, from settings, for every client the enforcer makes.

One place turns ``ENFORCER_SECURITY_PROTOCOL``, ``ENFORCER_SSL_*`` and
``ENFORCER_SASL_*`` into what librdkafka (the live engine, its admin check and metrics
producer) and aiokafka (replay from topics, the test helpers) take, so every client
connects the same way. Secrets are read from
``SecretStr`` only here, at the moment a client is made.
"""

from __future__ import annotations

import ssl
from typing import Any

from enforcer.config.settings import EnforcerSettings


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


def librdkafka_security(settings: EnforcerSettings) -> dict[str, str]:
    """librdkafka properties (confluent-kafka clients) for the same settings.

    librdkafka reads the TLS files itself when a client is made; :func:`ssl_context`
    is called first anyway so that an unusable file gives the same one-line error
    for every client.
    """
    options = {"security.protocol": settings.security_protocol.lower()}
    if ssl_context(settings) is not None:
        if settings.ssl_cafile:
            options["ssl.ca.location"] = str(settings.ssl_cafile)
        if settings.ssl_certfile:
            options["ssl.certificate.location"] = str(settings.ssl_certfile)
        if settings.ssl_keyfile or settings.ssl_certfile:
            # Without a key file the key is in the certificate's PEM, as for Python's ssl.
            options["ssl.key.location"] = str(settings.ssl_keyfile or settings.ssl_certfile)
        if settings.ssl_key_password:
            options["ssl.key.password"] = settings.ssl_key_password.get_secret_value()
        options["ssl.endpoint.identification.algorithm"] = (
            "https" if settings.ssl_check_hostname else "none"
        )
    if settings.sasl_mechanism:
        assert settings.sasl_password is not None  # settings validate SASL as a whole
        options.update(
            {
                "sasl.mechanism": settings.sasl_mechanism,
                "sasl.username": settings.sasl_username or "",
                "sasl.password": settings.sasl_password.get_secret_value(),
            }
        )
    return options
