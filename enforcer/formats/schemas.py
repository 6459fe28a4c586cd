"""The schemas framed records name, by schema id: fetched from the registry by the
driver before a batch is decided, then read by the record reader without I/O
(docs/formats.md, "The schema registry").

A driver calls :meth:`SchemaCache.missing` with a batch's values and
:meth:`SchemaCache.load` with what it returns, then decides the batch; the reader asks
:meth:`SchemaCache.codec`. ``None`` there means unknown: an id the registry does not
have, or a schema the enforcer cannot read (a dead letter, ``unknown-schema``), or one
never loaded (a driver that skipped ``load``). An unknown id is asked again after
:data:`RETRY_UNKNOWN_AFTER`, so a schema registered later is found; a registry that does
not answer raises :class:`RegistryUnavailableError` and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from enforcer.core.clock import Clock
from enforcer.formats.codec import Codec
from enforcer.formats.framing import schema_ids
from enforcer.formats.registry import RegisteredSchema, RegistryUnavailableError
from enforcer.formats.schema_error import UnusableSchemaError

__all__ = ["RETRY_UNKNOWN_AFTER", "RegistryUnavailableError", "SchemaCache", "SchemaSource"]

RETRY_UNKNOWN_AFTER = timedelta(seconds=60)
"""How long an unknown id stays unknown before the registry is asked again."""
MAX_REFERENCE_DEPTH = 32
"""References of references deeper than this make a schema unusable (a cycle, or a
registry serving nonsense)."""

log = logging.getLogger("enforcer.formats")


class SchemaSource(Protocol):
    """What the cache asks of a registry (:class:`~enforcer.formats.registry.SchemaRegistry`
    is one): ``None`` is "no such schema", :class:`RegistryUnavailableError` an outage."""

    def schema_by_id(self, schema_id: int) -> RegisteredSchema | None:
        """The schema registered under ``schema_id``."""
        ...

    def subject_version(
        self, subject: str, version: int | str = "latest"
    ) -> RegisteredSchema | None:
        """A subject's version."""
        ...


class _Unknown(NamedTuple):
    reason: str
    ask_again_at: datetime


class SchemaCache:
    """Codecs by schema id, and the ids known to be unknown."""

    def __init__(
        self,
        registry: SchemaSource,
        clock: Clock,
        *,
        retry_unknown_after: timedelta = RETRY_UNKNOWN_AFTER,
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._retry_after = retry_unknown_after
        self._codecs: dict[int, Codec] = {}
        self._unknown: dict[int, _Unknown] = {}
        # A subject's version never changes, so a referenced schema is fetched once.
        self._referenced: dict[tuple[str, int], RegisteredSchema] = {}
        self._logged: set[tuple[int, str]] = set()

    def codec(self, schema_id: int) -> Codec | None:
        """The codec of ``schema_id``, or ``None`` when it is unknown or not loaded."""
        return self._codecs.get(schema_id)

    def unknown_reason(self, schema_id: int) -> str | None:
        """Why ``schema_id`` is unknown (one line, no record data), or ``None`` when it
        is loaded or was never asked for."""
        unknown = self._unknown.get(schema_id)
        return None if unknown is None else unknown.reason

    def missing(self, values: Iterable[bytes | None]) -> set[int]:
        """The schema ids ``values`` are framed with that are neither loaded nor known
        unknown (an unknown id is missing again once it is due to be asked again)."""
        now = self._clock.now()
        return {
            schema_id
            for schema_id in schema_ids(values)
            if schema_id not in self._codecs
            and (schema_id not in self._unknown or self._unknown[schema_id].ask_again_at <= now)
        }

    def load(self, ids: Iterable[int]) -> None:
        """Fetch and build the codecs of ``ids``. An id the registry does not have, or a
        schema that cannot be read, is remembered as unknown (the reason logged once).
        Raises :class:`RegistryUnavailableError` when the registry does not answer,
        leaving the cache as it was."""
        built: dict[int, Codec] = {}
        unknown: dict[int, str] = {}
        referenced = dict(self._referenced)
        for schema_id in sorted(set(ids) - self._codecs.keys()):
            try:
                registered = self._registry.schema_by_id(schema_id)
                if registered is None:
                    unknown[schema_id] = f"the schema registry has no schema {schema_id}"
                    continue
                built[schema_id] = self._built(registered, referenced)
            except UnusableSchemaError as exc:
                unknown[schema_id] = str(exc)
        # Nothing above raised: take it all in.
        self._referenced = referenced
        self._codecs.update(built)
        ask_again_at = self._clock.now() + self._retry_after
        for schema_id in built:
            self._unknown.pop(schema_id, None)
        for schema_id, reason in unknown.items():
            self._unknown[schema_id] = _Unknown(reason, ask_again_at)
            if (schema_id, reason) not in self._logged:
                self._logged.add((schema_id, reason))
                log.warning(
                    "schema %d cannot be used, records framed with it are dead letters "
                    "(unknown-schema): %s",
                    schema_id,
                    reason,
                )

    def latest_for_subject(self, subject: str) -> Codec | None:
        """The codec of ``subject``'s latest version, or ``None`` when the registry has
        no such subject (a mapping checked at start). Raises
        :class:`UnusableSchemaError` when the schema cannot be read and
        :class:`RegistryUnavailableError` when the registry does not answer."""
        registered = self._registry.subject_version(subject)
        if registered is None:
            return None
        codec = self._codecs.get(registered.schema_id)
        if codec is None:
            referenced = dict(self._referenced)
            codec = self._built(registered, referenced)
            self._referenced = referenced
            self._codecs[registered.schema_id] = codec
            self._unknown.pop(registered.schema_id, None)
        return codec

    def _built(
        self, registered: RegisteredSchema, referenced: dict[tuple[str, int], RegisteredSchema]
    ) -> Codec:
        imports = self._imports(registered, referenced, [], set(), 0)
        try:
            return _codec(registered, imports)
        except UnusableSchemaError:
            raise
        except Exception as exc:  # a schema no library foresaw (deep, odd): unusable, not a crash
            raise UnusableSchemaError(
                f"schema {registered.schema_id} could not be built: {type(exc).__name__}"
            ) from None

    def _imports(
        self,
        registered: RegisteredSchema,
        referenced: dict[tuple[str, int], RegisteredSchema],
        found: list[tuple[str, RegisteredSchema]],
        seen: set[tuple[str, int]],
        depth: int,
    ) -> Sequence[tuple[str, RegisteredSchema]]:
        """The schemas ``registered`` references, directly or not, each after the ones
        it references itself, by the name it is referenced by."""
        if depth > MAX_REFERENCE_DEPTH:
            raise UnusableSchemaError(
                f"schema {registered.schema_id}: references nest deeper than {MAX_REFERENCE_DEPTH}"
            )
        for reference in registered.references:
            key = (reference.subject, reference.version)
            if key in seen:
                continue
            seen.add(key)
            schema = referenced.get(key)
            if schema is None:
                schema = self._registry.subject_version(reference.subject, reference.version)
                if schema is None:
                    raise UnusableSchemaError(
                        f"schema {registered.schema_id} references {reference.name} "
                        f"({reference.subject} version {reference.version}), which the "
                        "schema registry does not have"
                    )
                referenced[key] = schema
            self._imports(schema, referenced, found, seen, depth + 1)
            found.append((reference.name, schema))
        return found


def _codec(registered: RegisteredSchema, imports: Sequence[tuple[str, RegisteredSchema]]) -> Codec:
    # Imported here: a command that never meets a framed record loads no codec library.
    if registered.schema_type == "AVRO":
        from enforcer.formats.avro import avro_codec

        return avro_codec(registered, [schema.text for _, schema in imports])
    if registered.schema_type == "PROTOBUF":
        from enforcer.formats.protobuf import protobuf_codec

        return protobuf_codec(registered, [(name, schema.text) for name, schema in imports])
    if imports:
        raise UnusableSchemaError(
            f"JSON Schema {registered.schema_id} has references, which the enforcer "
            "does not read yet"
        )
    from enforcer.formats.json_schema import json_schema_codec

    return json_schema_codec(registered)
