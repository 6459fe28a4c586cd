"""What every command shares: exit statuses, the parser, settings and the policy.

Light on purpose: importing this module loads only the standard library, so listing
the commands (``enforcer --help``) stays fast. Each helper imports what it needs when
it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

    from enforcer.config.settings import EnforcerSettings
    from enforcer.core.policy.compiled import Policy
    from enforcer.formats.registry import SchemaRegistry
    from enforcer.replay.ledger import AsOf

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in how the command was called or configured (exit 2)."""


class HelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: …)`` to a flag's help when it has a default worth showing.

    A flag whose default is ``None`` (so that an ``ENFORCER_*`` variable shows through)
    or ``False`` (a switch) gets nothing: "default: None" would mislead. A help text
    that already names its default is left as it is.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            action.default in (None, False, argparse.SUPPRESS)
            or "default" in text
            or not (action.option_strings or action.nargs in (argparse.OPTIONAL, "*"))
        ):
            return action.help
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """Errors raise :class:`UsageError`; flags can be added on first use (``populate``).

    Abbreviations are off: a flag must be spelled out, so ``--bootstrap-server`` is an
    error rather than a silent ``--bootstrap-servers``.
    """

    def __init__(
        self, *args: Any, populate: Callable[[Parser], None] | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self._populate = populate

    def populated(self) -> Parser:
        """This parser with all its flags (added now if they were deferred)."""
        populate, self._populate = self._populate, None
        if populate is not None:
            populate(self)
        return self

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        return super(Parser, self.populated()).parse_known_args(args, namespace)

    def format_help(self) -> str:
        return super(Parser, self.populated()).format_help()

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        # argparse drops an OSError writing help or the version: on standard output,
        # a reader that stopped reading is seen instead, and said by its exit status
        # (enforcer/cli/__init__.py).
        if message and file is sys.stdout:
            file.write(message)
            return
        super()._print_message(message, file)


def policy_options(parser: argparse.ArgumentParser) -> None:
    """``--policy``, ``--destination``, ``--mode`` and ``--phone-region``."""
    from enforcer.core.models import Mode
    from enforcer.core.policy.compiled import DEFAULT_DESTINATION

    parser.add_argument(
        "--policy",
        type=Path,
        help="policy file (ENFORCER_POLICY_FILE, default: the built-in default)",
    )
    parser.add_argument(
        "--destination",
        help=f"destination for allow-lists (ENFORCER_DESTINATION, default: {DEFAULT_DESTINATION})",
    )
    parser.add_argument("--mode", choices=[m.value for m in Mode], help=MODE_HELP)
    parser.add_argument("--phone-region", metavar="CC", help=PHONE_REGION_HELP)


MODE_HELP = "override the policy's mode (ENFORCER_MODE, default: the policy's own)"

PHONE_REGION_HELP = (
    "region of phone numbers written without a country code, e.g. US or GB; "
    "ZZ for none (ENFORCER_PHONE_DEFAULT_REGION, default US)"
)


LEDGER_FILE_HELP = (
    "judge against a purpose ledger: JSON Lines of ledger values, in order "
    "(the latest per subject wins)"
)


def ledger_as_of_flag(parser: argparse.ArgumentParser) -> None:
    """``--ledger-as-of``: the ledger as it stood at a time."""
    parser.add_argument(
        "--ledger-as-of",
        type=_as_of,
        metavar="RFC3339",
        help="the ledger as it stood at this time: later values and tombstones are skipped",
    )


def _as_of(text: str) -> AsOf:
    from enforcer.replay.ledger import parse_as_of

    try:
        return parse_as_of(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def settings_from(**overrides: Any) -> EnforcerSettings:
    """Settings from the environment, with the flags that were given on top."""
    from pydantic import ValidationError

    from enforcer.config.settings import load_settings
    from enforcer.core.parse import format_location

    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return load_settings(**given)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a rule across settings: its message names them
            raise UsageError(f"settings: {message}") from None
        name = format_location(tuple(error["loc"]))
        raise UsageError(f"setting {name} (ENFORCER_{name.upper()}): {message}") from None


def policy_from(settings: EnforcerSettings) -> Policy:
    """The policy the settings name, with ``--mode`` applied."""
    from enforcer.core.policy.load import load_policy

    policy = load_policy(settings.policy_file, destination=settings.destination)
    return policy.with_mode(settings.mode) if settings.mode else policy


SCHEMA_REGISTRY_FLAGS: dict[str, tuple[str, type, str, str]] = {
    "--schema-registry-url": (
        "schema_registry_url",
        str,
        "URL",
        "Confluent-compatible schema registry for framed records (Apicurio: "
        "http://HOST:PORT/apis/ccompat/v7); default: none",
    ),
    "--schema-registry-user": ("schema_registry_user", str, "USER", "basic-auth user"),
    "--schema-registry-password-file": (
        "schema_registry_password_file",
        Path,
        "FILE",
        "file holding the basic-auth password (or ENFORCER_SCHEMA_REGISTRY_PASSWORD; "
        "never a flag, which a process list would show)",
    ),
    "--schema-registry-ca-file": (
        "schema_registry_ca_file",
        Path,
        "FILE",
        "CA bundle (PEM) to trust for an https:// registry",
    ),
    "--schema-registry-cert-file": (
        "schema_registry_cert_file",
        Path,
        "FILE",
        "client certificate (PEM), for a registry that asks for one",
    ),
    "--schema-registry-key-file": (
        "schema_registry_key_file",
        Path,
        "FILE",
        "client key (PEM); default: in the certificate file",
    ),
    "--schema-registry-timeout": (
        "schema_registry_timeout",
        float,
        "SECONDS",
        "most seconds one registry request may take, at most 20 (default 10)",
    ),
}
"""The schema registry's flags, the same on ``run``, ``replay`` and ``explain``: flag ->
(settings field, type, metavar, help). Each defaults to ``None`` so that its
``ENFORCER_*`` variable shows through."""

SCHEMA_REGISTRY_DEADLINE_FLAG = (
    "--schema-registry-deadline",
    "schema_registry_deadline",
    "most seconds to wait for an unreachable schema registry before giving up (default 120)",
)


def schema_registry_options(parser: argparse.ArgumentParser, *, waits: bool = True) -> None:
    """The schema registry's flags (:data:`SCHEMA_REGISTRY_FLAGS`), and its deadline for
    a command that ``waits`` for an unreachable registry (``explain`` does not)."""
    for flag, (field, kind, metavar, help_text) in SCHEMA_REGISTRY_FLAGS.items():
        parser.add_argument(
            flag,
            dest=field,
            type=kind,
            metavar=metavar,
            help=f"{help_text} (ENFORCER_{field.upper()})",
        )
    if not waits:
        return
    flag, field, help_text = SCHEMA_REGISTRY_DEADLINE_FLAG
    parser.add_argument(
        flag,
        dest=field,
        type=float,
        metavar="SECONDS",
        help=f"{help_text} (ENFORCER_{field.upper()})",
    )


def schema_registry_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The schema registry's settings given as flags, for :func:`settings_from`."""
    fields = [field for field, _, _, _ in SCHEMA_REGISTRY_FLAGS.values()]
    fields.append(SCHEMA_REGISTRY_DEADLINE_FLAG[1])
    return {field: getattr(args, field, None) for field in fields}


def schema_registry_from(settings: EnforcerSettings) -> SchemaRegistry | None:
    """The registry client the settings describe (``None`` without a URL); its password
    file and TLS files are read now, so that a problem with them is one line, exit 2."""
    if settings.schema_registry_url is None:
        return None
    import ssl

    from enforcer.config.schema_registry import RegistryConfigError, registry_basic_auth
    from enforcer.formats.registry import RegistrySettings, SchemaRegistry

    def text(path: Path | None) -> str | None:
        return None if path is None else str(path)

    try:
        return SchemaRegistry(
            RegistrySettings(
                settings.schema_registry_url,
                registry_basic_auth(settings),
                text(settings.schema_registry_ca_file),
                text(settings.schema_registry_cert_file),
                text(settings.schema_registry_key_file),
                settings.schema_registry_timeout,
            )
        )
    except RegistryConfigError as exc:
        raise UsageError(str(exc)) from None
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            "cannot use the schema registry's TLS files (--schema-registry-ca-file, "
            "--schema-registry-cert-file, --schema-registry-key-file): "
            f"{getattr(exc, 'strerror', None) or type(exc).__name__}"
        ) from None
