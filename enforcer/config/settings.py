"""Settings: the one place the environment is read (``ENFORCER_*`` variables).

Command-line flags override variables; both end in one frozen object. Secrets are
``SecretStr``: hidden when printed or dumped.
"""

from __future__ import annotations

import difflib
import os
import socket
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from enforcer.core.fingerprint import (
    DEFAULT_PHONE_REGION,
    HOW_TO_MAKE_A_KEY,
    Fingerprinter,
    FingerprintKeyError,
    key_from_text,
    phone_regions,
    read_key_file,
)
from enforcer.core.identifier_types import TYPE_NAME_RULE, is_type_name
from enforcer.core.models import Mode
from enforcer.core.policy.compiled import DEFAULT_DESTINATION


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class EnforcerSettings(BaseSettings):
    """Everything the enforcer can be told. Field ``x`` is variable ``ENFORCER_X``."""

    model_config = SettingsConfigDict(env_prefix="ENFORCER_", frozen=True, extra="forbid")

    bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=1)
    source_topic: str = Field(default="identity.events", min_length=1)
    sink_topic: str = Field(default="audience.building", min_length=1)
    violations_topic: str = Field(default="enforcer.violations", min_length=1)
    deadletter_topic: str = Field(default="enforcer.deadletter", min_length=1)
    metrics_topic: str = Field(default="enforcer.metrics", min_length=1)
    ledger_topic: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "The purpose ledger (compacted, co-partitioned with the source, e.g. "
            "identity.purposes); unset: no ledger."
        ),
    )
    exposure_topic: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Exposure: what was forwarded to the sink, per subject (compacted, "
            "co-partitioned with the source, e.g. enforcer.exposure); unset: not kept, "
            "and ledger retractions are not exact (docs/exposure.md)."
        ),
    )
    exposure_store: Literal["memory", "disk"] = Field(
        default="memory",
        description=(
            "Where exposure lives: memory (the default; about 176 bytes per exposed "
            "identifier at worst) or disk (RocksDB under the data dir, rebuilt at each "
            "assignment)."
        ),
    )
    ledger_store: Literal["memory", "disk"] = Field(
        default="memory",
        description=(
            "Where the materialized ledger lives: memory (the default; about 160 MiB per "
            "10^6 identifiers at worst) or disk (RocksDB under the data dir, rebuilt at "
            "each assignment)."
        ),
    )
    group_id: str = Field(default="purpose-enforcer", min_length=1)
    instance_id: str = Field(default_factory=_default_instance_id, min_length=1)
    policy_file: Path | None = None
    policy_check_interval: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Seconds between checks of the policy file's content; a valid change is applied "
            "at the next transaction boundary, an invalid one refused (docs/rollout.md)."
        ),
    )
    destination: str = Field(default=DEFAULT_DESTINATION, min_length=1)
    mode: Mode | None = Field(default=None, description="Overrides the policy file's mode.")
    processing_guarantee: Literal["exactly_once", "at_least_once"] = "exactly_once"
    fingerprint_key: SecretStr | None = None
    fingerprint_key_file: Path | None = None
    previous_fingerprint_key_file: Path | None = Field(
        default=None,
        description=(
            "During a fingerprint key rotation: the file holding the key in force before "
            "it. With exposure, an identifier forwarded again takes over its entry made "
            'under that key instead of becoming a second one (docs/exposure.md, "Key '
            'rotation"); unset once the rotation is over.'
        ),
    )
    phone_default_region: str = Field(
        default=DEFAULT_PHONE_REGION,
        description=(
            "Region (ISO 3166 alpha-2) of phone numbers written without a country code, "
            "for fingerprints; ZZ for none."
        ),
    )
    commit_interval: float = Field(
        default=1.0, gt=0, description="Seconds between transaction commits."
    )
    batch_max: int = Field(default=500, ge=1, description="Most records decided per batch.")
    batch_within: float = Field(
        default=0.1, gt=0, description="Seconds to wait for a batch to fill."
    )
    session_timeout: float = Field(
        default=10.0,
        ge=6,
        description=(
            "Seconds before the group gives a silent worker's partitions to another "
            "(6 is the broker's minimum)."
        ),
    )
    transaction_timeout: float = Field(
        default=10.0,
        ge=1,
        description=(
            "Seconds after which Kafka aborts a transaction its worker left open (a crash "
            "with a new instance id); until then readers of that partition wait."
        ),
    )
    shutdown_timeout: float = Field(
        default=30.0, gt=0, description="Seconds a SIGTERM may take before the worker exits anyway."
    )
    consumer_prefetch_kbytes: int = Field(
        default=8192,
        ge=1024,
        le=2_097_151,
        description=(
            "Most KiB of records the consumer reads ahead of the engine, for all its "
            "partitions together (librdkafka queued.max.messages.kbytes; its default is 65536)."
        ),
    )
    consumer_prefetch_records: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description=(
            "Records per partition the consumer tries to keep read ahead (librdkafka "
            "queued.min.messages; its default is 100000)."
        ),
    )
    consumer_fetch_max_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1_000_000,
        le=2_147_483_135,
        description=(
            "Most bytes one fetch from a broker returns (librdkafka fetch.max.bytes; its "
            "default is 52428800); at least 1000000 and at most the prefetch."
        ),
    )
    producer_queue_kbytes: int = Field(
        default=16384,
        ge=1024,
        le=2_147_483_647,
        description=(
            "Most KiB of outputs waiting in the producer for the broker (librdkafka "
            "queue.buffering.max.kbytes; its default is 1048576); raised to the largest "
            "output a topic accepts. A full queue makes the engine wait for deliveries."
        ),
    )
    producer_queue_records: int = Field(
        default=100_000,
        ge=1000,
        le=2_147_483_647,
        description=(
            "Most outputs waiting in the producer for the broker (librdkafka "
            "queue.buffering.max.messages)."
        ),
    )
    kafka_debug: str | None = Field(
        default=None,
        description="librdkafka debug contexts (e.g. 'eos,cgrp'), for diagnosing the client.",
    )
    metrics_interval: float = Field(default=10.0, gt=0)
    metric_identifier_types: str = Field(
        default="email,phone,device_id,advertising_id,ip_address,cookie_id,user_id",
        description=(
            "Identifier types (comma-separated) that metrics count by name, besides those "
            "the policy's rules name; any other counts as 'other' (bounded label values)."
        ),
    )
    create_topics: bool = False
    topic_partitions: int = Field(default=1, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = Field(
        default="text", description="One line per event: plain text, or one JSON object."
    )
    deadletter_max_ratio: float = Field(default=0.5, gt=0, le=1)
    deadletter_window: int = Field(default=1000, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    ssl_cafile: Path | None = Field(default=None, description="CA bundle (PEM) to trust.")
    ssl_certfile: Path | None = Field(default=None, description="Client certificate (PEM).")
    ssl_keyfile: Path | None = Field(default=None, description="Client key (PEM).")
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    kafka_config: Path | None = Field(
        default=None,
        description=(
            "librdkafka client properties (name=value lines) merged under the enforcer's "
            "own settings: OAUTHBEARER, GSSAPI, cloud IAM, tuning (docs/security.md)."
        ),
    )
    schema_registry_url: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Base URL of a Confluent-compatible schema registry (Apicurio: …/apis/ccompat/v7), "
            "for records in the Confluent wire format; unset: no registry."
        ),
    )
    schema_registry_user: str | None = Field(
        default=None, min_length=1, description="Basic-auth user of the schema registry."
    )
    schema_registry_password: SecretStr | None = Field(
        default=None, description="Basic-auth password of the schema registry (variable only)."
    )
    schema_registry_password_file: Path | None = Field(
        default=None, description="File holding the schema registry's basic-auth password."
    )
    schema_registry_ca_file: Path | None = Field(
        default=None, description="CA bundle (PEM) to trust for an https:// schema registry."
    )
    schema_registry_cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM) for the schema registry."
    )
    schema_registry_key_file: Path | None = Field(
        default=None, description="Client key (PEM) for the schema registry."
    )
    schema_registry_timeout: float = Field(
        default=10.0,
        gt=0,
        le=20,
        description=(
            "Seconds one schema registry request may take (at most 20: a request never "
            "outlasts the worker's stall limit)."
        ),
    )
    schema_registry_deadline: float = Field(
        default=120.0,
        ge=1,
        description=(
            "Seconds the worker waits for an unreachable schema registry before it turns "
            "/healthz unhealthy and exits to be restarted."
        ),
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path(".enforcer-data")

    @field_validator("phone_default_region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        region = region.strip().upper()
        if region not in phone_regions():
            raise ValueError("must be a two-letter region code such as US or GB (ZZ for none)")
        return region

    @field_validator("metric_identifier_types")
    @classmethod
    def _label_values(cls, value: str) -> str:
        # They become Prometheus label values: plain names only, compared in lower case.
        kinds = [kind.strip().lower() for kind in value.split(",") if kind.strip()]
        for kind in kinds:
            if not is_type_name(kind):
                raise ValueError(
                    f"identifier type {kind[:70]!r} is not a plain name: {TYPE_NAME_RULE}"
                )
        return ",".join(kinds)

    @field_validator("bootstrap_servers")
    @classmethod
    def _addresses_have_ports(cls, value: str) -> str:
        for address in value.split(","):
            host, _, port = address.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    f"bootstrap server {address.strip()!r} is not host:port with a port "
                    "from 1 to 65535 (ENFORCER_BOOTSTRAP_SERVERS)"
                )
        return value

    @field_validator("schema_registry_url")
    @classmethod
    def _registry_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_registry_url(value)

    def topics_by_role(self) -> dict[str, str]:
        """Every topic the worker uses, by its role, source first."""
        roles = {
            "source": self.source_topic,
            "sink": self.sink_topic,
            "violations": self.violations_topic,
            "dead-letter": self.deadletter_topic,
            "metrics": self.metrics_topic,
        }
        if self.ledger_topic is not None:
            roles["ledger"] = self.ledger_topic
        if self.exposure_topic is not None:
            roles["exposure"] = self.exposure_topic
        return roles

    @model_validator(mode="after")
    def _topics_are_distinct(self) -> EnforcerSettings:
        # The enforcer must never read what it writes, nor mix two kinds of output.
        seen: dict[str, str] = {}
        for role, name in self.topics_by_role().items():
            if name in seen:
                raise ValueError(
                    f"the {role} topic and the {seen[name]} topic are both {name!r}; "
                    "each needs a topic of its own"
                )
            seen[name] = role
        return self

    @model_validator(mode="after")
    def _fetch_within_prefetch(self) -> EnforcerSettings:
        # The prefetch bound is checked before each fetch: one fetch may overshoot it
        # by its own size, so a fetch larger than the bound would make it meaningless.
        if self.consumer_fetch_max_bytes > self.consumer_prefetch_kbytes * 1024:
            raise ValueError(
                f"ENFORCER_CONSUMER_FETCH_MAX_BYTES ({self.consumer_fetch_max_bytes}) is more "
                f"than ENFORCER_CONSUMER_PREFETCH_KBYTES ({self.consumer_prefetch_kbytes} KiB); "
                "lower the one or raise the other"
            )
        return self

    @model_validator(mode="after")
    def _security_is_complete(self) -> EnforcerSettings:
        if self.kafka_config is not None:
            # The file may hold the protocol and the SASL settings: checked together
            # with it when a client is made (config/kafka_security.py).
            return self
        uses_sasl = self.security_protocol.startswith("SASL_")
        if uses_sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs ENFORCER_SASL_MECHANISM, "
                "ENFORCER_SASL_USERNAME and ENFORCER_SASL_PASSWORD"
            )
        if not uses_sasl and self.sasl_mechanism:
            raise ValueError(
                f"ENFORCER_SASL_MECHANISM is set but security_protocol is {self.security_protocol}"
            )
        return self

    @model_validator(mode="after")
    def _registry_access_is_complete(self) -> EnforcerSettings:
        problem = registry_access_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    def fingerprinter(self) -> Fingerprinter:
        """The fingerprinter for the configured key; refuses without one, and with two.

        Two sources (the variable and a key file) are refused rather than one silently
        preferred: an operator who passes a key file expects that key, and violations
        written under another would not correlate with anything made with it.
        """
        if self.fingerprint_key is not None and self.fingerprint_key_file is not None:
            raise FingerprintKeyError(
                "two fingerprint keys are configured: ENFORCER_FINGERPRINT_KEY and the key "
                f"file {self.fingerprint_key_file} (--fingerprint-key-file, "
                "ENFORCER_FINGERPRINT_KEY_FILE); keep one"
            )
        if self.fingerprint_key is not None:
            key = key_from_text(self.fingerprint_key.get_secret_value())
            return Fingerprinter(key, self.phone_default_region)
        if self.fingerprint_key_file is not None:
            return Fingerprinter(
                read_key_file(self.fingerprint_key_file), self.phone_default_region
            )
        raise FingerprintKeyError(f"no fingerprint key is configured; {HOW_TO_MAKE_A_KEY}")

    def previous_fingerprinter(self, current: Fingerprinter) -> Fingerprinter | None:
        """The fingerprinter of the key in force before a rotation (``None`` when no
        previous key file is configured). Refused, one line naming the setting, when the
        file cannot be read or used as a key, and when it holds the key in force
        (``current``): re-keying from a key to itself would be a mistake in the
        rotation, not a rotation."""
        path = self.previous_fingerprint_key_file
        if path is None:
            return None
        try:
            previous = Fingerprinter(read_key_file(path), self.phone_default_region)
        except FingerprintKeyError as exc:
            raise FingerprintKeyError(f"previous fingerprint key: {exc} ({_PREVIOUS})") from None
        if previous.key_id == current.key_id:
            raise FingerprintKeyError(
                f"the previous fingerprint key file {path} holds the key in force (key id "
                f"{current.key_id}): give it the key used before the rotation, or unset "
                f"it ({_PREVIOUS})"
            )
        return previous


_PREVIOUS = "--previous-fingerprint-key-file, ENFORCER_PREVIOUS_FINGERPRINT_KEY_FILE"


def check_registry_url(url: str) -> str:
    """``url`` when it can name a schema registry: http or https, a host, no credentials
    (they would show in logs and process lists), no query or fragment."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "must not hold credentials: set ENFORCER_SCHEMA_REGISTRY_USER and "
            "ENFORCER_SCHEMA_REGISTRY_PASSWORD (or --schema-registry-password-file)"
        )
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or a fragment")
    try:
        parts.port  # noqa: B018 - raises on a port that is no number or out of range
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    return url.strip()


def registry_access_problem(settings: EnforcerSettings) -> str | None:
    """Why the schema registry settings do not go together, or ``None``."""
    password = (
        settings.schema_registry_password is not None
        or settings.schema_registry_password_file is not None
    )
    user = settings.schema_registry_user is not None
    tls = [
        name
        for name, value in (
            ("ENFORCER_SCHEMA_REGISTRY_CA_FILE", settings.schema_registry_ca_file),
            ("ENFORCER_SCHEMA_REGISTRY_CERT_FILE", settings.schema_registry_cert_file),
            ("ENFORCER_SCHEMA_REGISTRY_KEY_FILE", settings.schema_registry_key_file),
        )
        if value is not None
    ]
    url = settings.schema_registry_url
    if url is None:
        given = [
            *(["ENFORCER_SCHEMA_REGISTRY_USER"] if user else []),
            *(["ENFORCER_SCHEMA_REGISTRY_PASSWORD(_FILE)"] if password else []),
            *tls,
        ]
        return (
            f"{given[0]} is set but no schema registry is (ENFORCER_SCHEMA_REGISTRY_URL)"
            if given
            else None
        )
    checks = (
        (
            settings.schema_registry_password is not None
            and settings.schema_registry_password_file is not None,
            "two schema registry passwords are configured: ENFORCER_SCHEMA_REGISTRY_PASSWORD "
            "and ENFORCER_SCHEMA_REGISTRY_PASSWORD_FILE (--schema-registry-password-file); "
            "keep one",
        ),
        (
            user and not password,
            "ENFORCER_SCHEMA_REGISTRY_USER needs a password: ENFORCER_SCHEMA_REGISTRY_PASSWORD "
            "or ENFORCER_SCHEMA_REGISTRY_PASSWORD_FILE (--schema-registry-password-file)",
        ),
        (
            password and not user,
            "a schema registry password is set without ENFORCER_SCHEMA_REGISTRY_USER",
        ),
        (
            settings.schema_registry_key_file is not None
            and settings.schema_registry_cert_file is None,
            "ENFORCER_SCHEMA_REGISTRY_KEY_FILE needs ENFORCER_SCHEMA_REGISTRY_CERT_FILE",
        ),
        (
            bool(tls) and not url.startswith("https://"),
            f"{tls[0] if tls else ''} is set but the schema registry URL is not https://",
        ),
    )
    return next((message for failed, message in checks if failed), None)


class UnknownVariableError(ValueError):
    """An ``ENFORCER_*`` variable that is no setting: most likely a misspelling."""


ENV_PREFIX = "ENFORCER_"
OTHER_VARIABLES = frozenset({"ENFORCER_DEBUG", "ENFORCER_COMPILE"})
"""Variables read outside the settings (``ENFORCER_DEBUG`` shows tracebacks;
``ENFORCER_COMPILE=0`` builds the package without its compiled core, setup.py, and may
stay exported where the enforcer then runs)."""
TEST_PREFIX = "ENFORCER_TEST_"
"""Reserved for the test suite's own variables."""


def known_variables() -> frozenset[str]:
    """Every ``ENFORCER_*`` variable the enforcer reads."""
    fields = {ENV_PREFIX + name.upper() for name in EnforcerSettings.model_fields}
    return frozenset(fields) | OTHER_VARIABLES


def check_variables(environ: Mapping[str, str]) -> None:
    """Refuse an ``ENFORCER_*`` variable that nothing reads, naming the closest one.

    A misspelled ``ENFORCER_MODEE=audit`` would otherwise be ignored silently and the
    worker would enforce when the operator asked for an audit.
    """
    known = known_variables()
    for name in sorted(environ):
        # pydantic-settings matches names without regard to case; so does this check.
        upper = name.upper()
        if (
            upper.startswith(ENV_PREFIX)
            and upper not in known
            and not upper.startswith(TEST_PREFIX)
        ):
            close = difflib.get_close_matches(upper, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UnknownVariableError(f"unknown variable {name}{hint}")


def load_settings(**overrides: Any) -> EnforcerSettings:
    """Settings from the environment (checked for misspellings) with ``overrides`` on top."""
    check_variables(os.environ)
    return EnforcerSettings(**overrides)
