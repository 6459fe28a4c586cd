"""Schemas fetched before a batch is decided, and what the worker does while the schema
registry cannot be reached (docs/formats.md: running with a schema registry).

The record reader does no I/O: before the engine decides a batch it asks the loader
which schema ids the batch's framed values name that it does not hold yet, and loads
them. A registry that does not answer is an outage, never bad input: the batch's source
records are held (their partitions paused and read again from the first held offset
once the registry answers), nothing is decided, dead-lettered or committed for them,
and the worker says so in one line at once. It asks again with a growing pause, and
stops (``/healthz`` unhealthy, exit 1, the same path as a denied permission) when the
registry stays down past the deadline.

:class:`RegistryWait` is the state machine, pure (the clock is passed in); the engine
holds and releases the records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol

from enforcer.core.clock import SystemClock
from enforcer.core.policy.compiled import Policy
from enforcer.core.record_format import RecordReader
from enforcer.formats.reader import build_reader
from enforcer.formats.registry import RegistryUnavailableError, SchemaRegistry
from enforcer.formats.schema_error import UnusableSchemaError
from enforcer.formats.schemas import SchemaCache
from enforcer.live.failures import WorkerStopError

log = logging.getLogger("enforcer.schemas")

FIRST_RETRY_S = 0.5
"""The pause before the registry is asked again after it first failed to answer."""
LONGEST_RETRY_S = 5.0
"""The pause grows (doubling) up to this: a registry that is back is noticed soon."""


class SchemaLoader(Protocol):
    """What the driver asks of the schema cache before records are decided."""

    def missing(self, values: Iterable[bytes | None]) -> set[int]:
        """The schema ids the framed ``values`` name that are not loaded yet (an id the
        registry said it does not have counts as loaded: its records are bad input)."""
        ...

    def load(self, ids: Iterable[int]) -> None:
        """Fetch ``ids`` from the registry. Raises
        :class:`enforcer.formats.registry.RegistryUnavailableError` on an outage."""
        ...


def schema_loader(registry: SchemaRegistry) -> SchemaCache:
    """The loader the drivers use for ``registry``: the schema cache, whose codecs the
    record reader decodes with."""
    return SchemaCache(registry, SystemClock())


def step_reader(policy: Policy, schemas: SchemaCache | None) -> RecordReader | None:
    """The record reader every driver hands to :class:`enforcer.core.step.Step`: the one
    place the formats are wired in. ``None`` when the policy maps no fields and no
    registry is configured: every record is then a plain identity event."""
    return build_reader(policy, schemas)


class LatestSchemaCheck(NamedTuple):
    """The field mappings checked against the latest schema registered for a topic."""

    subject: str
    """The subject looked up: ``<topic>-value``."""
    schema_id: int | None
    """The schema checked; ``None`` when the subject has none, or it cannot be read."""
    problems: list[str]
    """Each problem one line, as a policy error names it; empty when they fit."""
    unreadable: str | None = None
    """Why the latest schema cannot be read, when it cannot (nothing was checked)."""


def check_latest_schema(
    policy: Policy, schemas: SchemaCache, topic: str
) -> LatestSchemaCheck | None:
    """The mapping that reads ``topic``'s records, checked against the latest schema
    registered for the topic (subject ``<topic>-value``); ``None`` when the policy maps
    no fields and no registry is configured. Raises :class:`RegistryUnavailableError`
    when the registry does not answer."""
    reader = build_reader(policy, schemas)
    if reader is None:
        return None
    subject = f"{topic}-value"
    try:
        codec = schemas.latest_for_subject(subject)
    except UnusableSchemaError as exc:
        return LatestSchemaCheck(subject, None, [], str(exc))
    if codec is None:
        return LatestSchemaCheck(subject, None, [])
    return LatestSchemaCheck(subject, codec.schema_id, reader.check(topic, codec))


def mapping_problems(policy: Policy, schemas: SchemaCache, topic: str) -> list[str]:
    """What is wrong with the mapping that reads ``topic``'s records, checked against the
    latest schema registered for the topic (:func:`check_latest_schema`), what was
    checked logged in one line. None when the subject is not registered, or its schema
    cannot be read (then its records are ``unknown-schema``: logged once). Raises
    :class:`RegistryUnavailableError` when the registry does not answer."""
    checked = check_latest_schema(policy, schemas, topic)
    if checked is None:
        return []
    subject = checked.subject
    if checked.unreadable is not None:
        log.warning(
            "latest schema of %s unreadable, mappings not checked: %s",
            subject,
            checked.unreadable,
        )
    elif checked.schema_id is None:
        log.info(
            "no schema registered as %s: the field mappings are checked against each "
            "schema as its records arrive",
            subject,
        )
    elif not checked.problems:
        log.info(
            "field mappings checked against the latest schema of %s (schema id %d): they fit",
            subject,
            checked.schema_id,
        )
    return checked.problems


class RegistryWait:
    """Whether a batch's schemas are loaded, and the outage while they cannot be."""

    def __init__(
        self,
        loader: SchemaLoader,
        monotonic: Callable[[], float],
        deadline_s: float,
        first_retry_s: float = FIRST_RETRY_S,
        longest_retry_s: float = LONGEST_RETRY_S,
    ) -> None:
        self._loader = loader
        self._monotonic = monotonic
        self._deadline_s = deadline_s
        self._first_retry_s = first_retry_s
        self._longest_retry_s = longest_retry_s
        self._since: float | None = None
        self._next_try = 0.0
        self._pause = first_retry_s
        self._ids: set[int] = set()
        self.cause: str | None = None
        """The last failure's one-line cause while the registry is down."""
        self.failures = 0
        """Requests the registry did not answer, since the worker started."""

    @property
    def down(self) -> bool:
        """Whether the registry is in an outage (records are held)."""
        return self._since is not None

    def ready(self, values: Iterable[bytes | None]) -> bool:
        """True when every schema ``values`` name is loaded (fetched now if need be);
        False when the registry is down: the caller holds the records. Raises
        :class:`WorkerStopError` once the outage has lasted the deadline."""
        if self._since is not None:
            self._check_deadline(self._monotonic())
            return False
        missing = self._loader.missing(values)
        return not missing or self._load(missing)

    def retry(self) -> bool:
        """While down: True once the registry answered (the held records may be read
        again), False before the next try is due or when it failed again. Raises
        :class:`WorkerStopError` once the outage has lasted the deadline."""
        if self._since is None:
            return True
        now = self._monotonic()
        if now < self._next_try:
            self._check_deadline(now)
            return False
        return self._load(self._ids)

    def _load(self, ids: set[int]) -> bool:
        try:
            self._loader.load(ids)
        except RegistryUnavailableError as exc:
            self._failed(ids, str(exc))
            return False
        if self._since is not None:
            log.info(
                "the schema registry answers again after %.0f s: the held records are "
                "read again and decided",
                self._monotonic() - self._since,
            )
        self._since, self.cause, self._ids = None, None, set()
        return True

    def _failed(self, ids: set[int], cause: str) -> None:
        now = self._monotonic()
        self.failures += 1
        self.cause = cause
        if self._since is None:
            self._since, self._pause, self._ids = now, self._first_retry_s, set(ids)
            # The one line that says why the worker waits (more only at the end of it).
            log.warning(
                "%s; waiting for it: no record is dead-lettered for it, none is decided "
                "until it answers, and the worker exits if it stays down for %.0f s",
                cause,
                self._deadline_s,
            )
        else:
            self._pause = min(self._pause * 2, self._longest_retry_s)
        self._next_try = now + self._pause
        self._check_deadline(now)

    def _check_deadline(self, now: float) -> None:
        if self._since is not None and now - self._since >= self._deadline_s:
            raise WorkerStopError(
                f"{self.cause} (the schema registry has not answered for "
                f"{now - self._since:.0f} s; ENFORCER_SCHEMA_REGISTRY_DEADLINE is "
                f"{self._deadline_s:.0f} s); exiting to be restarted"
            )
