"""A field mapping compiled from the policy (docs/formats.md: "Field mappings"): which
records it reads, and how a decoded record's own fields become the event the core
judges (subject id, event id, ``occurred_at``, identifiers with their purposes) and where
each identifier sits, to be emptied by redaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, NamedTuple

import orjson

from enforcer.core.clock import rfc3339
from enforcer.core.models import DeadLetterReason
from enforcer.core.parse import ParseFailure
from enforcer.core.policy.spec import MappingSpec, PurposesPathSpec
from enforcer.core.purposes import normalize_tag
from enforcer.formats.codec import FieldInfo, Location
from enforcer.formats.direct import DirectRead, epoch_millis_text
from enforcer.formats.paths import (
    EVERY,
    MISSING,
    UNSURE,
    PathSyntaxError,
    PathTypeError,
    RecordPath,
    field_of,
    find,
    kind_of,
    location_text,
    lookup,
    parse_path,
)
from enforcer.formats.tags import TagConvention
from enforcer.formats.unambiguous import UnambiguousKeys

Fields = Mapping[str, FieldInfo]
PurposesFrom = RecordPath | tuple[str, ...] | Literal["schema-tags", "ledger"]
"""A tag list's path in the record, a fixed list, the schema's tags, or the ledger."""

_STRING_KINDS = frozenset({"string", "other"})
_ID_KINDS = frozenset({"string", "int", "other"})


class Read(NamedTuple):
    """A record read by a mapping: the event's fields as the identity event has them
    (for :func:`enforcer.core.parse.event_from_fields`) and where each identifier is."""

    fields: dict[str, Any]
    locations: tuple[Location, ...]


class IdentifierField(NamedTuple):
    """One identifier field of a mapping (or of the schema's tags)."""

    path: RecordPath
    type: str
    purposes: PurposesFrom
    place: str = ""
    """Its place in the policy (``identifiers[1]``), for start-time checks."""


class _WrongTypeError(Exception):
    """A mapped value of the wrong type: the record is dead-lettered (``schema``)."""


@dataclass(eq=False)
class FieldMapping:
    """A compiled mapping (``name`` ``(schema tags)`` for the fallback that reads framed
    records no mapping matches)."""

    name: str
    subject_id: RecordPath
    occurred_at: RecordPath
    event_id: RecordPath | None = None
    identifiers: tuple[IdentifierField, ...] = ()
    topics: frozenset[str] | None = None
    records: frozenset[str] | None = None
    remove_empty: bool = False
    schema_tags: bool = True
    _tagged: dict[int, tuple[Fields, tuple[IdentifierField, ...]]] = field(
        default_factory=dict, repr=False
    )
    _direct: dict[int, tuple[Fields | None, DirectRead | None]] = field(
        default_factory=dict, repr=False
    )
    key_names: frozenset[str] = field(init=False, repr=False)
    """Every field name on the mapping's paths."""
    quoted_key_names: tuple[tuple[str, bytes, bytes], ...] = field(init=False, repr=False)
    """Each of :attr:`key_names` with its JSON text (``"name"``), and that text with its
    ASCII letters in small case (as ``bytes.lower`` makes a record's)."""
    paths: tuple[RecordPath, ...] = field(init=False, repr=False)
    """Every path the mapping reads: the event's fields, identifiers, purposes."""
    unambiguous_keys: UnambiguousKeys | None = field(init=False, repr=False)
    """The cheap check that a plain JSON record's keys are unambiguous to the mapping
    (``None`` when a path goes through a list)."""
    plain_direct: DirectRead | None = field(init=False, repr=False)
    """The direct read of plain JSON records (:meth:`direct` without a schema)."""

    def __post_init__(self) -> None:
        paths = [self.subject_id, self.occurred_at, self.event_id]
        for item in self.identifiers:
            paths.append(item.path)
            if isinstance(item.purposes, RecordPath):
                paths.append(item.purposes)
        self.paths = tuple(path for path in paths if path is not None)
        self.key_names = frozenset(
            step for path in self.paths for step in path.steps if isinstance(step, str)
        )
        self.quoted_key_names = tuple(
            (name, orjson.dumps(name), orjson.dumps(name).lower())
            for name in sorted(self.key_names)
        )
        self.unambiguous_keys = UnambiguousKeys.of(self.paths)
        self.plain_direct = self.direct(None, None)

    @classmethod
    def of(cls, spec: MappingSpec) -> FieldMapping:
        """Compile a mapping of the policy file (its paths are known to parse)."""
        return cls(
            spec.name,
            parse_path(spec.subject_id),
            parse_path(spec.occurred_at),
            parse_path(spec.event_id) if spec.event_id is not None else None,
            tuple(
                IdentifierField(
                    parse_path(item.path),
                    item.type,
                    _purposes_from(item.purposes),
                    f"identifiers[{index}]",
                )
                for index, item in enumerate(spec.identifiers)
            ),
            frozenset(spec.topics) if spec.topics is not None else None,
            frozenset(spec.records) if spec.records is not None else None,
            spec.empty == "remove",
            spec.schema_tags,
        )

    def matches(self, topic: str, record_name: str | None) -> bool:
        """Whether it reads a record of ``topic`` whose schema's record name is
        ``record_name`` (``None``: plain JSON, which a mapping naming ``records`` does
        not read)."""
        if self.topics is not None and topic not in self.topics:
            return False
        return self.records is None or record_name in self.records

    def describe(self) -> str:
        """One line: what it applies to and what it reads."""
        topics = ", ".join(sorted(self.topics)) if self.topics is not None else "every topic"
        records = f"; records {', '.join(sorted(self.records))}" if self.records else ""
        paths = ", ".join(
            f"{i.path.text} ({i.type}, purposes {_describe(i.purposes)})" for i in self.identifiers
        )
        tags = " and every schema-tagged field" if self.schema_tags else ""
        event_id = (
            self.event_id.text if self.event_id is not None else "<topic>/<partition>/<offset>"
        )
        return (
            f"mapping '{self.name}': {topics}{records}; subject_id {self.subject_id.text}, "
            f"event_id {event_id}, occurred_at {self.occurred_at.text}; "
            f"identifiers {paths or 'none mapped'}{tags}"
        )

    def read(
        self,
        view: Any,
        topic: str,
        partition: int,
        offset: int,
        fields: Fields | None = None,
        tags: TagConvention | None = None,
        visited: set[tuple[int, str]] | None = None,
    ) -> Read | ParseFailure:
        """The event's fields and the identifiers' locations in ``view`` (a record
        decoded into dicts, lists and scalars; ``fields`` its schema's fields, ``None``
        for plain JSON), or the dead letter (``schema``) naming the path at fault.

        A mapped identifier the record does not have (or has as null or an empty
        string) is simply absent; a value of the wrong type is a dead letter."""
        try:
            event_id = (
                _id(view, self.event_id, visited)
                if self.event_id is not None
                else f"{topic}/{partition}/{offset}"
            )
            event: dict[str, Any] = {
                "event_id": event_id,
                "subject_id": _id(view, self.subject_id, visited),
                "occurred_at": _timestamp(view, self.occurred_at, visited),
            }
            identifiers: list[dict[str, Any]] = []
            locations: list[Location] = []
            seen: set[Location] = set()
            for item in self._fields_to_read(fields, tags):
                for location, value in _found(view, item.path, visited):
                    if value is None or value == "" or location in seen:
                        continue
                    if not isinstance(value, str):
                        raise _WrongTypeError(
                            f"{location_text(location)}: {kind_of(value)}, not a string"
                        )
                    seen.add(location)
                    purposes = _purposes(view, item, location, fields, tags, visited)
                    identifiers.append({"type": item.type, "value": value, "purposes": purposes})
                    locations.append(location)
        except PathTypeError as exc:
            return ParseFailure(DeadLetterReason.SCHEMA, str(exc))
        except _WrongTypeError as exc:
            return ParseFailure(DeadLetterReason.SCHEMA, str(exc))
        event["identifiers"] = identifiers
        return Read(event, tuple(locations))

    def direct(self, fields: Fields | None, tags: TagConvention | None) -> DirectRead | None:
        """The direct read of records under ``fields`` (``None``: plain JSON), when the
        mapping's paths allow one (:mod:`enforcer.formats.direct`): made once per
        schema. A record it vouches for gives the event :meth:`read` and the identity
        event's model would give."""
        known = self._direct.get(id(fields))
        if known is None or known[0] is not fields:
            items = self._fields_to_read(fields, tags)
            direct = DirectRead.of(
                self.event_id,
                self.subject_id,
                self.occurred_at,
                [(item.path, item.type, item.purposes) for item in items],
            )
            known = (fields, direct)
            self._direct[id(fields)] = known
        return known[1]

    def _fields_to_read(
        self, fields: Fields | None, tags: TagConvention | None
    ) -> tuple[IdentifierField, ...]:
        """The mapped identifier fields, then the schema's tagged ones it does not map;
        under a schema, purposes from its tags are read once, into fixed lists."""
        if fields is None or tags is None:
            return self.identifiers
        known = self._tagged.get(id(fields))
        if known is None or known[0] is not fields:
            mapped = tuple(
                item._replace(purposes=field_purposes(fields, item.path, tags))
                if item.purposes == "schema-tags"
                else item
                for item in self.identifiers
            )
            tagged = self.tagged_fields(fields, tags) if self.schema_tags else ()
            known = (fields, mapped + tagged)
            self._tagged[id(fields)] = known
        return known[1]

    def judged(self, fields: Fields, tags: TagConvention) -> FieldMapping:
        """This mapping with the schema's tagged fields among its identifiers: its
        :attr:`paths` and :attr:`key_names` are every place and name a record under
        ``fields`` is read at (for the checks of keys written twice or in other letter
        cases, which a JSON body can hold). Not for reading records."""
        return replace(
            self,
            identifiers=self._fields_to_read(fields, tags),
            schema_tags=False,
            _tagged={},
            _direct={},
        )

    def tagged_fields(self, fields: Fields, tags: TagConvention) -> tuple[IdentifierField, ...]:
        """The fields ``fields`` tag with an identifier type that the mapping does not
        map, each with its purpose tags (a tagged list: its items)."""
        mapped = {item.path.field_path for item in self.identifiers}
        found: dict[str, IdentifierField] = {}
        for path, info in fields.items():
            kind = tags.identifier_type(info.tags)
            if kind is None:
                continue
            target = _tagged_path(path, info)
            if target is None:
                continue  # a name no path writes: check reports it, no record is read
            if target.field_path not in mapped and target.field_path not in found:
                purposes = field_purposes(fields, target, tags)
                found[target.field_path] = IdentifierField(target, kind, purposes, path)
        return tuple(found.values())

    def check(self, fields: Fields, tags: TagConvention | None = None) -> list[str]:
        """Problems of this mapping under a schema's ``fields``, each ``place: problem``
        (a path the schema does not have, or one that names a record or a list where a
        string is needed, a schema tag that is not a purpose tag)."""
        problems: list[str] = []
        for place, path, kinds in (
            ("subject_id", self.subject_id, _ID_KINDS),
            ("event_id", self.event_id, _ID_KINDS),
            ("occurred_at", self.occurred_at, _ID_KINDS),
        ):
            if path is not None:
                problems += _check_path(fields, place, path, kinds, "an id or a timestamp")
        for item in self.identifiers:
            problems += _check_path(
                fields, f"{item.place}.path", item.path, _STRING_KINDS, "a string"
            )
            if isinstance(item.purposes, RecordPath):
                problems += _check_path(
                    fields,
                    f"{item.place}.purposes.path",
                    item.purposes,
                    frozenset({"list", "string", "other"}),
                    "a list of purpose tags",
                )
            elif item.purposes == "schema-tags" and tags is not None:
                problems += _check_tags(
                    item.place, item.path, field_purposes(fields, item.path, tags)
                )
        if tags is None or not self.schema_tags:
            return problems
        problems += [
            f"schema tags: field {json.dumps(path)[:80]} is tagged as {kind} but its name is "
            "not one a record path can write"
            for path, info in fields.items()
            if (kind := tags.identifier_type(info.tags)) is not None
            and _tagged_path(path, info) is None
        ]
        for item in self.tagged_fields(fields, tags):
            info = fields.get(item.path.field_path)
            if info is not None and info.kind not in _STRING_KINDS:
                problems.append(
                    f"schema tags: field '{item.place}' is tagged as {item.type} "
                    f"but {'its items are' if item.path.field_path != item.place else 'is'} "
                    f"{_a(info.kind)}, not a string"
                )
            assert isinstance(item.purposes, tuple)
            problems += _check_tags("schema tags", item.path, item.purposes)
        return problems


def _tagged_path(path: str, info: FieldInfo) -> RecordPath | None:
    """Where a tagged field's values are (a list's items for a list), or ``None`` when
    its path is not one (a name with a space, ``]``, ``.`` or ``[0]`` in it). Codecs
    refuse such schemas (JSON Schema and Avro: a tagged name no path writes; Protobuf's
    runtime refuses any name that is not an identifier), so this is a last guard: never
    an error while records are read or the mappings checked at start."""
    try:
        return parse_path(f"{path}[*]" if info.kind == "list" else path)
    except PathSyntaxError:
        return None


def field_purposes(fields: Fields, path: RecordPath, tags: TagConvention) -> tuple[str, ...]:
    """The purpose tags of the schema's field at ``path``; a list's items without tags
    of their own have the list's."""
    info = fields.get(path.field_path)
    found = tags.purposes(info.tags) if info is not None else []
    if not found and len(path.steps) > 1 and not isinstance(path.steps[-1], str):
        owner = fields.get(RecordPath("", path.steps[:-1]).field_path)
        found = tags.purposes(owner.tags) if owner is not None else []
    return tuple(found)


def _check_tags(place: str, path: RecordPath, purposes: tuple[str, ...]) -> list[str]:
    return [
        f"{place}: field '{path.field_path}' has a purpose tag that is not a purpose tag "
        "(dot-separated segments of [a-z0-9_-])"
        for tag in purposes
        if normalize_tag(tag) is None
    ][:1]


def _describe(purposes: PurposesFrom) -> str:
    if isinstance(purposes, RecordPath):
        return f"from {purposes.text}"
    if isinstance(purposes, tuple):
        return "[" + ", ".join(purposes) + "]"
    return "from the schema's tags" if purposes == "schema-tags" else "from the ledger"


def _purposes_from(spec: PurposesPathSpec | list[str] | str) -> PurposesFrom:
    if isinstance(spec, PurposesPathSpec):
        return parse_path(spec.path)
    if isinstance(spec, list):
        return tuple(spec)
    return "ledger" if spec == "ledger" else "schema-tags"


def fallback_mapping(fields: Fields) -> FieldMapping:
    """How a framed record no mapping matches is read: its schema-tagged fields, with
    the event's fields at the top level (``subject_id``, ``occurred_at``, and
    ``event_id`` when the schema has one; else the record's coordinates)."""
    return FieldMapping(
        "(schema tags)",
        parse_path("subject_id"),
        parse_path("occurred_at"),
        parse_path("event_id") if "event_id" in fields else None,
    )


def _check_path(
    fields: Fields, place: str, path: RecordPath, kinds: frozenset[str], needed: str
) -> list[str]:
    info = field_of(fields, path)
    if isinstance(info, str):
        return [f"{place}: {info}"]
    if info.kind == "map" and info.path != path.field_path:
        return []  # keys under a map are the record's, not the schema's
    if info.kind not in kinds:
        hint = f" (every item: '{path.text}[*]')" if info.kind == "list" else ""
        return [f"{place}: '{path.text}' is {_a(info.kind)}, where {needed} is needed{hint}"]
    return []


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _found(
    view: Any, path: RecordPath, visited: set[tuple[int, str]] | None
) -> Sequence[tuple[Location, Any]]:
    """:func:`find`, with the common case (names through objects) taken first."""
    location = path.concrete
    if location is not None and visited is None:
        value = lookup(view, location)
        if value is MISSING:
            return ()
        if value is not UNSURE:
            return ((location, value),)
    return find(view, path, visited)


def _single(view: Any, path: RecordPath, visited: set[tuple[int, str]] | None) -> Any:
    """The value at a path without ``[*]``, or ``None``."""
    found = _found(view, path, visited)
    return found[0][1] if found else None


def _id(view: Any, path: RecordPath, visited: set[tuple[int, str]] | None) -> str:
    """An id: a string, or an integer written in decimal (a ``long`` user id)."""
    value = _single(view, path, visited)
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if value is None:
        raise _WrongTypeError(f"{path.text}: missing")
    raise _WrongTypeError(f"{path.text}: {kind_of(value)}, not a string")


def _timestamp(view: Any, path: RecordPath, visited: set[tuple[int, str]] | None) -> str:
    """``occurred_at``: RFC 3339 text as written (the event's rules check it), integer
    epoch milliseconds, or a schema timestamp (an aware datetime), the latter two as
    RFC 3339 in UTC with milliseconds."""
    value = _single(view, path, visited)
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _WrongTypeError(f"{path.text}: a timestamp without a time zone")
        return rfc3339(value)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return epoch_millis_text(value)
        except OverflowError:
            raise _WrongTypeError(f"{path.text}: epoch milliseconds out of range") from None
    if value is None:
        raise _WrongTypeError(f"{path.text}: missing")
    raise _WrongTypeError(f"{path.text}: {kind_of(value)}, not a timestamp")


def _purposes(
    view: Any,
    item: IdentifierField,
    location: Location,
    fields: Fields | None,
    tags: TagConvention | None,
    visited: set[tuple[int, str]] | None,
) -> list[str] | None:
    source = item.purposes
    if isinstance(source, tuple):
        return list(source) if source else None
    if source == "ledger":
        return None
    if source == "schema-tags":
        return None  # plain JSON: no schema (under one, its tags were read into a list)
    return _purposes_at(view, item, source, location, visited)


def _purposes_at(
    view: Any,
    item: IdentifierField,
    source: RecordPath,
    location: Location,
    visited: set[tuple[int, str]] | None,
) -> list[str] | None:
    """The tag list at ``source``, its ``[*]`` taking the identifier's list positions."""
    if source.concrete is None:
        positions = [location[i] for i, step in enumerate(item.path.steps) if step is EVERY]
        source = source.bind(p for p in positions if isinstance(p, int))
    found = _found(view, source, visited)
    if not found or found[0][1] is None:
        return None
    where, value = found[0]
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list | tuple):
        raise _WrongTypeError(
            f"{location_text(where)}: {kind_of(value)}, not a list of purpose tags"
        )
    for index, tag in enumerate(value):
        if not isinstance(tag, str):
            raise _WrongTypeError(f"{location_text((*where, index))}: {kind_of(tag)}, not a string")
    return list(value)
