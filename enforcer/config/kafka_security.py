"""TLS and SASL to Kafka, from settings, for every client the enforcer makes.

One place turns ``ENFORCER_SECURITY_PROTOCOL``, ``ENFORCER_SSL_*``,
``ENFORCER_SASL_*`` and the client-properties file (``ENFORCER_KAFKA_CONFIG``) into
what librdkafka (the live engine, its admin check and metrics producer, the lag
exporter) and aiokafka (replay from topics, the test helpers) take, so every client
connects the same way. Secrets are read from ``SecretStr`` and the file only here, at
the moment a client is made.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from enforcer.config.client_properties import (
    ClientPropertiesError,
    canonical,
    read_properties,
)
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
    """Keyword arguments for aiokafka clients (consumer, producer, admin): the settings'
    security, with the client-properties file's security subset folded in."""
    settings = _aiokafka_view(settings)
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


def _own_librdkafka(settings: EnforcerSettings) -> dict[str, str]:
    """librdkafka properties (confluent-kafka clients) for the ``ENFORCER_*`` settings.

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
        # Without a client-properties file the settings hold all three (checked as a
        # whole); with one, the credentials may be in the file.
        options["sasl.mechanism"] = settings.sasl_mechanism
        if settings.sasl_username is not None:
            options["sasl.username"] = settings.sasl_username
        if settings.sasl_password is not None:
            options["sasl.password"] = settings.sasl_password.get_secret_value()
    return options


_FROM_FIELDS: dict[str, tuple[str, ...]] = {
    "security.protocol": ("security_protocol",),
    "ssl.ca.location": ("ssl_cafile",),
    "ssl.certificate.location": ("ssl_certfile",),
    "ssl.key.location": ("ssl_keyfile", "ssl_certfile"),
    "ssl.key.password": ("ssl_key_password",),
    "ssl.endpoint.identification.algorithm": ("ssl_check_hostname",),
    "sasl.mechanism": ("sasl_mechanism",),
    "sasl.username": ("sasl_username",),
    "sasl.password": ("sasl_password",),
}
"""Each security property the settings make, and the settings it comes from."""

_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def _variables(fields: tuple[str, ...]) -> str:
    return " / ".join(f"ENFORCER_{field.upper()}" for field in fields)


def client_properties(settings: EnforcerSettings) -> dict[str, str]:
    """The client-properties file's properties (none without one), checked; keyed by the
    names used in :mod:`enforcer.config.client_properties` (aliases folded)."""
    if settings.kafka_config is None:
        return {}
    properties = {canonical(k): v for k, v in read_properties(settings.kafka_config).items()}
    servers = properties.pop("bootstrap.servers", None)
    if servers is not None and _addresses(servers) != _addresses(settings.bootstrap_servers):
        raise ClientPropertiesError(
            f"bootstrap.servers in {settings.kafka_config} differs from "
            "ENFORCER_BOOTSTRAP_SERVERS (--bootstrap-servers), which the checks at start, "
            "replay and the lag exporter use too: set the cluster there"
        )
    return properties


def _addresses(servers: str) -> list[str]:
    return [address.strip() for address in servers.split(",") if address.strip()]


def _protocol(settings: EnforcerSettings, properties: dict[str, str]) -> str:
    """The protocol in force: the file's, unless ENFORCER_SECURITY_PROTOCOL is given
    (then both must agree)."""
    given = properties.get("security.protocol")
    if given is None:
        return settings.security_protocol
    protocol = given.strip().upper()
    if protocol not in _PROTOCOLS:
        raise ClientPropertiesError(
            f"security.protocol in {settings.kafka_config} must be one of "
            f"{', '.join(_PROTOCOLS)} (either case)"
        )
    if "security_protocol" in settings.model_fields_set and protocol != settings.security_protocol:
        raise _twice("security.protocol", settings)
    return protocol


def _twice(name: str, settings: EnforcerSettings) -> ClientPropertiesError:
    return ClientPropertiesError(
        f"{name} is set both by {_variables(_FROM_FIELDS[name])} and in "
        f"{settings.kafka_config}, differently: keep one"
    )


def librdkafka_security(settings: EnforcerSettings) -> dict[str, Any]:
    """Every librdkafka client's connection properties: the client-properties file, with
    the enforcer's own security settings on top.

    A security property both set explicitly (``ENFORCER_*`` or a flag) and in the file
    must agree; one the settings only default (the protocol, hostname checking) yields
    to the file. Refuses a SASL protocol without a mechanism from either place (else
    librdkafka would silently try GSSAPI) and a mechanism without a SASL protocol.
    """
    properties = client_properties(settings)
    protocol = _protocol(settings, properties)
    view = settings.model_copy(update={"security_protocol": protocol})
    own: dict[str, str] = _own_librdkafka(view)
    for name in list(own):
        if name not in properties or name == "security.protocol":
            continue
        if not settings.model_fields_set & set(_FROM_FIELDS[name]):
            del own[name]  # a default of the settings yields to the file
        elif own[name] != properties[name]:
            raise _twice(name, settings)
    merged = {**properties, **own}
    mechanism = merged.get("sasl.mechanism")
    if protocol.startswith("SASL_") and not mechanism:
        raise ClientPropertiesError(
            f"security protocol {protocol} needs a SASL mechanism: ENFORCER_SASL_MECHANISM, "
            "or sasl.mechanism in the client-properties file (--kafka-config)"
        )
    if mechanism and not protocol.startswith("SASL_"):
        raise ClientPropertiesError(
            f"a SASL mechanism is set but the security protocol is {protocol}: set "
            "ENFORCER_SECURITY_PROTOCOL, or security.protocol in the client-properties file"
        )
    return merged


AIOKAFKA_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
"""The SASL mechanisms replay from a topic takes from the client-properties file."""


def _aiokafka_view(settings: EnforcerSettings) -> EnforcerSettings:
    """The settings with the file's security subset (protocol, TLS files, PLAIN and SCRAM
    credentials) folded in; its other properties are for librdkafka only."""
    if settings.kafka_config is None:
        return settings
    merged = librdkafka_security(settings)  # the same checks as every librdkafka client
    mechanism = merged.get("sasl.mechanism")
    if mechanism is not None and mechanism.upper() not in AIOKAFKA_MECHANISMS:
        raise ClientPropertiesError(
            f"replay from a topic supports the SASL mechanisms {', '.join(AIOKAFKA_MECHANISMS)}; "
            f"{mechanism} (in {settings.kafka_config}) works for run and lag-exporter only "
            "(docs/security.md)"
        )
    update: dict[str, Any] = {"security_protocol": merged["security.protocol"].upper()}
    for name, field, convert in (
        ("ssl.ca.location", "ssl_cafile", Path),
        ("ssl.certificate.location", "ssl_certfile", Path),
        ("ssl.key.location", "ssl_keyfile", Path),
        ("ssl.key.password", "ssl_key_password", SecretStr),
        ("sasl.username", "sasl_username", str),
        ("sasl.password", "sasl_password", SecretStr),
    ):
        if name in merged:
            update[field] = convert(merged[name])
    if mechanism is not None:
        update["sasl_mechanism"] = mechanism.upper()
    algorithm = merged.get("ssl.endpoint.identification.algorithm")
    if algorithm is not None:
        update["ssl_check_hostname"] = algorithm.strip().lower() == "https"
    return settings.model_copy(update=update)
