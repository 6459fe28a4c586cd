"""The schema registry's credentials, read from the settings at the moment its client
is made (like the Kafka secrets in :mod:`enforcer.config.kafka_security`): the password
comes from ``ENFORCER_SCHEMA_REGISTRY_PASSWORD`` or a file, never from a flag, so it
never shows in a process list."""

from __future__ import annotations

from enforcer.config.settings import EnforcerSettings


class RegistryConfigError(ValueError):
    """The registry's credentials or TLS files cannot be used (the message names the file
    and the problem, never the file's content)."""


def registry_basic_auth(settings: EnforcerSettings) -> tuple[str, str] | None:
    """The registry's basic-auth user and password, or ``None`` without a user.

    The settings have checked that a user comes with exactly one password source."""
    user = settings.schema_registry_user
    if user is None:
        return None
    if settings.schema_registry_password is not None:
        return user, settings.schema_registry_password.get_secret_value()
    path = settings.schema_registry_password_file
    assert path is not None  # checked by the settings
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryConfigError(
            f"cannot read the schema registry password file {path} "
            f"(--schema-registry-password-file, ENFORCER_SCHEMA_REGISTRY_PASSWORD_FILE): "
            f"{exc.strerror or type(exc).__name__}"
        ) from None
    except UnicodeDecodeError:
        raise RegistryConfigError(
            f"the schema registry password file {path} is not UTF-8 text"
        ) from None
    # A file written by an editor or `echo` ends in a newline that is no part of it.
    password = text.rstrip("\r\n")
    if not password:
        raise RegistryConfigError(f"the schema registry password file {path} is empty")
    return user, password
