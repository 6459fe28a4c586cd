"""Settings: the one place the environment is read (``ENFORCER_*`` variables).

Command-line flags override variables; both end in one frozen object. Secrets are
``SecretStr``: hidden when printed or dumped.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from enforcer.fingerprint import (
    HOW_TO_MAKE_A_KEY,
    Fingerprinter,
    FingerprintKeyError,
    key_from_text,
)
from enforcer.models import Mode
from enforcer.policy.compiled import DEFAULT_DESTINATION


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
    group_id: str = Field(default="purpose-enforcer", min_length=1)
    instance_id: str = Field(default_factory=_default_instance_id, min_length=1)
    policy_file: Path | None = None
    destination: str = Field(default=DEFAULT_DESTINATION, min_length=1)
    mode: Mode | None = Field(default=None, description="Overrides the policy file's mode.")
    processing_guarantee: Literal["exactly_once", "at_least_once"] = "exactly_once"
    fingerprint_key: SecretStr | None = None
    fingerprint_key_file: Path | None = None
    commit_interval: float = Field(
        default=1.0, gt=0, description="Seconds between transaction commits."
    )
    batch_max: int = Field(default=500, ge=1, description="Most records decided per batch.")
    batch_within: float = Field(
        default=0.1, gt=0, description="Seconds to wait for a batch to fill."
    )
    metrics_interval: float = Field(default=10.0, gt=0)
    create_topics: bool = False
    topic_partitions: int = Field(default=1, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    deadletter_max_ratio: float = Field(default=0.5, gt=0, le=1)
    deadletter_window: int = Field(default=1000, ge=1)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path(".enforcer-data")

    def fingerprinter(self) -> Fingerprinter:
        """The fingerprinter for the configured key; refuses without one."""
        if self.fingerprint_key is not None:
            return Fingerprinter(key_from_text(self.fingerprint_key.get_secret_value()))
        if self.fingerprint_key_file is not None:
            try:
                text = self.fingerprint_key_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise FingerprintKeyError(
                    f"cannot read fingerprint key file {self.fingerprint_key_file}: {exc.strerror}"
                ) from None
            except UnicodeDecodeError:
                raise FingerprintKeyError(
                    f"fingerprint key file {self.fingerprint_key_file} is not UTF-8 text"
                ) from None
            return Fingerprinter(key_from_text(text))
        raise FingerprintKeyError(f"no fingerprint key is configured; {HOW_TO_MAKE_A_KEY}")
