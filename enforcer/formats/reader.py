"""The record reader the step is handed (docs/formats.md: "How a record is read"):
plain JSON in a topic's own shape through a field mapping, and framed records (the
Confluent wire format) through their schema's codec, a mapping or the schema's tags.
Plain JSON no mapping reads is left to the core's own path for the identity event."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import orjson

from enforcer.core.json_numbers import (
    has_long_digit_run,
    json_document_to_write,
    numbers_may_change,
)
from enforcer.core.models import DeadLetterReason, Event, EventIdentifier
from enforcer.core.parse import (
    KELVIN_SIGN,
    ParseFailure,
    case_blind,
    event_from_fields,
    parse_event,
    plain_event_fields,
    plain_type_and_tags,
    repeats_a_key,
)
from enforcer.core.policy.compiled import Policy
from enforcer.core.record_format import Decoded, Unredactable
from enforcer.formats.avro import AvroCodec
from enforcer.formats.codec import (
    Codec,
    CodecLookup,
    DecodeError,
    Location,
    UnjudgedMessageError,
)
from enforcer.formats.direct import DirectRead
from enforcer.formats.framing import frame, schema_id_of
from enforcer.formats.mapping import FieldMapping, Read, fallback_mapping
from enforcer.formats.paths import EVERY, RecordPath, emptied, location_text
from enforcer.formats.protobuf import ProtobufCodec
from enforcer.formats.tags import TagConvention

log = logging.getLogger("enforcer.formats")


class _Plain(NamedTuple):
    """A plain JSON record as read: the document, the identifiers' locations, and how
    to write it back."""

    document: Any
    locations: tuple[Location, ...]
    remove: bool
    direct: bool
    """Read by the direct read: its locations are names through objects, each found,
    and the document is the read's own, changed by nothing else."""
    mapping: FieldMapping
    """The mapping that read it (a rejection's path is named by it)."""
    value: bytes
    """The record's value (written back with its numbers as they were)."""


class _Framed(NamedTuple):
    codec: Codec
    native: Any
    locations: tuple[Location, ...]
    body: bytes
    """The bytes ``native`` was decoded from (an Avro body is patched, not written again)."""
    mapping: FieldMapping


_FramedRead = tuple[
    Codec, FieldMapping, DirectRead | None, ParseFailure | None, FieldMapping | None
]
"""How one schema's records on one topic are read (:meth:`FormatReader._framed_read`)."""

# Every field given: tuple.__new__ directly, without a NamedTuple's own __new__ (Python
# code that fills defaults; a few percent of a framed record's cost in the pipeline).
_new = tuple.__new__
_NO_OBJECT = ParseFailure(DeadLetterReason.NOT_AN_OBJECT, "the value is not a JSON object")
_REPEATED = ParseFailure(
    DeadLetterReason.SCHEMA, "a field the enforcer judges appears twice in one object"
)
_OTHER_CASE = ParseFailure(
    DeadLetterReason.SCHEMA,
    "a field the enforcer judges is also written in other letter cases (a consumer that "
    "matches names without case could read it instead)",
)


class FormatReader:
    """A :class:`~enforcer.core.record_format.RecordReader` over the policy's mappings
    and the codecs of a schema registry."""

    def __init__(
        self,
        tags: TagConvention,
        mappings: Sequence[FieldMapping],
        codecs: CodecLookup | Callable[[int], Codec | None] | None,
        origin: str = "the policy",
    ) -> None:
        self.origin = origin
        """The policy file's name, for start-time problems."""
        self.tags = tags
        self.mappings = tuple(mappings)
        self._codec = codecs.codec if isinstance(codecs, CodecLookup) else codecs
        self._plain_by_topic: dict[str, FieldMapping | None] = {}
        self._fallbacks: dict[tuple[int, str | None], tuple[Codec, FieldMapping]] = {}
        # (topic, schema id, record name) → the codec it was found for, the mapping that
        # reads its records, that mapping's direct read (mapping.direct), and why the
        # mapping does not fit the schema (None: it does): per record, one lookup. The
        # record name tells a Protobuf file's messages apart (one schema id).
        self._framed: dict[tuple[str, int, str | None], _FramedRead] = {}
        # (topic, schema id) of the schemas the log has a line about: one none of the
        # matching mappings fits, or one read by another than the first that matches.
        self._said: set[tuple[str, int]] = set()

    def read(
        self, topic: str, partition: int, offset: int, value: bytes | None
    ) -> Decoded | ParseFailure | None:
        """The event in ``value``, why it cannot be judged, or ``None`` (plain JSON no
        mapping reads: an identity event for the core)."""
        if not value:
            return None
        if value[0] == 0:
            return self._read_framed(topic, partition, offset, value)
        mapping = self.plain_mapping(topic)
        if mapping is None:
            return None
        return self._read_plain(mapping, topic, partition, offset, value)

    def plain_mapping(self, topic: str) -> FieldMapping | None:
        """The mapping that reads plain JSON on ``topic``, if any."""
        try:
            return self._plain_by_topic[topic]
        except KeyError:
            found = next((m for m in self.mappings if m.matches(topic, None)), None)
            self._plain_by_topic[topic] = found
            return found

    def mapping_for(self, topic: str, codec: Codec) -> FieldMapping:
        """The mapping that reads ``codec``'s records on ``topic``: the first that
        matches and fits the schema, else the first that matches (its problems are the
        schema's: its records are dead letters), else the schema's tags
        (:func:`fallback_mapping`). Several mappings of one topic and record thus serve
        the versions of a schema that renamed a mapped field, one mapping each
        (docs/formats.md)."""
        matching = self._matching(topic, codec)
        for mapping in matching:
            if not mapping.check(codec.fields, self.tags):
                return mapping
        if matching:
            return matching[0]
        known = self._fallbacks.get((codec.schema_id, codec.record_name))
        if known is None or known[0] is not codec:
            known = (codec, fallback_mapping(codec.fields))
            self._fallbacks[(codec.schema_id, codec.record_name)] = known
        return known[1]

    def check(self, topic: str, codec: Codec) -> list[str]:
        """Problems of the mapping that reads ``codec``'s records on ``topic`` (the
        topic's registered schema, checked at start), each one line as a policy error
        names them: ``file: at formats.mappings[i].place: problem (schema ...)``. A
        schema no mapping reads is read by its tags; its problems have no place in the
        file."""
        mapping = self.mapping_for(topic, codec)
        schema = f"schema id {codec.schema_id}"
        if codec.record_name:
            schema = f"{codec.record_name}, {schema}"
        if mapping in self.mappings:
            where = f"at formats.mappings[{self.mappings.index(mapping)}]"
        else:
            where = f"topic {topic}, read by its schema's tags (no mapping reads it)"
        lines = []
        for problem in mapping.check(codec.fields, self.tags):
            place, _, text = problem.partition(": ")
            if place.startswith(("identifiers[", "subject_id", "event_id", "occurred_at")) and (
                where.startswith("at ")
            ):
                lines.append(f"{self.origin}: {where}.{place}: {text} ({schema})")
            else:
                lines.append(f"{self.origin}: {where}: {problem} ({schema})")
        return lines

    def _read_plain(  # noqa: PLR0911 - each check hands the record back as a dead letter
        self, mapping: FieldMapping, topic: str, partition: int, offset: int, value: bytes
    ) -> Decoded | ParseFailure:
        try:
            document = orjson.loads(value)
        except orjson.JSONDecodeError:
            return _invalid_json(value)
        if type(document) is not dict:
            return _NO_OBJECT
        # Most records: the direct read vouches for the event, on keys plainly
        # unambiguous. It reads strings and an integer time only, which orjson reads as
        # written (an integer beyond 64 bits, read as a float, is one it hands back); the
        # numbers are looked at only if the record is written back (redact).
        direct = mapping.plain_direct
        unambiguous = mapping.unambiguous_keys
        if direct is not None and unambiguous is not None and unambiguous.plainly(value, document):
            decoded = _read_directly(direct, mapping, document, topic, partition, offset, value)
            if decoded is not None:
                return decoded
            direct = None  # it handed the record back: the general read decides
        # orjson reads integers beyond 64 bits as floats: the exact parser reads such a
        # record, so that the general read judges (and a redaction writes) their values.
        if has_long_digit_run(value):
            document = json.loads(value)
        # A key on a mapped path written more than once, in other letter cases, or
        # escaped (or in look-alike letters) may repeat in one object: the objects the
        # mapping visits are then counted, to tell.
        suspects = mapping.key_names if _may_disguise_a_key(value) else _seen_twice(value, mapping)
        if not suspects and direct is not None:
            decoded = _read_directly(direct, mapping, document, topic, partition, offset, value)
            if decoded is not None:
                return decoded
        visited: set[tuple[int, str]] | None = set() if suspects else None
        read = mapping.read(document, topic, partition, offset, visited=visited)
        if isinstance(read, ParseFailure):
            return read
        conflict = None if visited is None else _conflict(value, document, mapping, visited)
        if conflict is not None:
            return conflict
        return _decoded(
            read,
            mapping,
            _Plain(document, read.locations, mapping.remove_empty, False, mapping, value),
        )

    def _read_framed(  # noqa: PLR0911 - each check hands the record back as a dead letter
        self, topic: str, partition: int, offset: int, value: bytes
    ) -> Decoded | ParseFailure:
        codec = self._framed_codec(value)
        if isinstance(codec, ParseFailure):
            return codec
        if isinstance(codec, ProtobufCodec):  # another message of the file: its own fields
            codec = codec.message_codec(value[5:])
        known = self._framed.get((topic, codec.schema_id, codec.record_name))
        if known is None or known[0] is not codec:
            known = self._framed_read(topic, codec)
        if known[3] is not None:
            return known[3]
        body = value[5:]
        try:
            native, view = codec.decode(body)
        except DecodeError as exc:
            unjudged = isinstance(exc, UnjudgedMessageError)
            reason = DeadLetterReason.UNKNOWN_SCHEMA if unjudged else DeadLetterReason.UNDECODABLE
            return ParseFailure(reason, f"schema id {codec.schema_id}: {exc}")
        if known[4] is not None:
            conflict = _json_body_conflict(body, view, known[4])
            if conflict is not None:
                return conflict
        mapping, direct = known[1], known[2]
        found = direct.read(view, topic, partition, offset) if direct else None
        if found is not None:
            framed = _new(_Framed, (codec, native, found.locations, body, mapping))
            return _new(Decoded, (found.event, found.texts, framed))
        read = mapping.read(view, topic, partition, offset, codec.fields, self.tags)
        if isinstance(read, ParseFailure):
            return read
        return _decoded(read, mapping, _Framed(codec, native, read.locations, body, mapping))

    def _framed_read(self, topic: str, codec: Codec) -> _FramedRead:
        """How ``codec``'s records on ``topic`` are read, found once per schema: the
        mapping, its direct read, and why none can be read when the mapping does not fit
        the schema (a mapped path the schema does not have, or of the wrong type).

        The check at start covers the subject's latest schema only, and only when the
        registry answers then; a schema met later (a new version that renamed a mapped
        field, or any schema after a start without the registry) is checked here, so a
        field the mapping no longer finds is never forwarded unjudged: its records are
        dead-lettered (``schema``), named by the problem, never by a value."""
        mapping = self.mapping_for(topic, codec)
        problems = mapping.check(codec.fields, self.tags)
        self._say_passed_over(topic, codec, mapping)
        unfit = None
        if problems:
            unfit = ParseFailure(
                DeadLetterReason.SCHEMA,
                f"schema id {codec.schema_id}: the field mapping does not fit the schema: "
                + "; ".join(problems),
            )
            if (topic, codec.schema_id) not in self._said:
                # Said once per topic and schema: without it, a version no mapping fits
                # shows only as dead letters and their metric.
                self._said.add((topic, codec.schema_id))
                log.warning(
                    "%s: records of schema id %d on %s are dead letters (schema): no "
                    "mapping fits the schema: %s",
                    self.origin,
                    codec.schema_id,
                    topic,
                    "; ".join(problems),
                )
        # A JSON body, like plain JSON, may write a key twice or in other letter cases.
        judged = mapping.judged(codec.fields, self.tags) if codec.schema_type == "JSON" else None
        known = (codec, mapping, mapping.direct(codec.fields, self.tags), unfit, judged)
        if len(self._framed) >= _FRAMED_LIMIT:
            self._framed.clear()
        self._framed[(topic, codec.schema_id, codec.record_name)] = known
        return known

    def _matching(self, topic: str, codec: Codec) -> list[FieldMapping]:
        """The mappings whose ``topics`` and ``records`` match ``codec``'s records on
        ``topic``, in the policy's order."""
        return [m for m in self.mappings if m.matches(topic, codec.record_name)]

    def _say_passed_over(self, topic: str, codec: Codec, mapping: FieldMapping) -> None:
        """Log once per topic and schema id when the mapping that reads the schema's
        records is not the first that matches them: a field only an earlier mapping
        names (renamed in this version, say) is then judged only if the schema tags it,
        so the operator is told which mapping reads the schema and why not the first."""
        matching = self._matching(topic, codec)
        if not matching or matching[0] is mapping or (topic, codec.schema_id) in self._said:
            return
        self._said.add((topic, codec.schema_id))
        first = matching[0]
        log.warning(
            "%s: records of schema id %d on %s are read by mapping %r: the mapping %r "
            "before it does not fit the schema (%s)",
            self.origin,
            codec.schema_id,
            topic,
            mapping.name,
            first.name,
            "; ".join(first.check(codec.fields, self.tags)),
        )

    def _framed_codec(self, value: bytes) -> Codec | ParseFailure:
        """The codec a framed value's schema id names, or why there is none."""
        schema_id = schema_id_of(value)
        if schema_id is None or schema_id < 0:
            return ParseFailure(
                DeadLetterReason.UNKNOWN_SCHEMA, "a framed value too short to hold a schema id"
            )
        if self._codec is None:
            return ParseFailure(
                DeadLetterReason.UNKNOWN_SCHEMA,
                f"schema id {schema_id}: no schema registry is configured",
            )
        codec = self._codec(schema_id)
        if codec is None:
            return ParseFailure(
                DeadLetterReason.UNKNOWN_SCHEMA, f"schema id {schema_id}: not in the registry"
            )
        return codec

    def record_path(self, decoded: Decoded, path: str) -> str:
        """A problem's path in the event (``identifiers[i]…``) as the record's own: the
        identifier's location, and for its purposes the tag list the mapping read them
        from (``contact.tags[1]``, not ``contact.email.purposes[1]``)."""
        found = _IDENTIFIER.match(path)
        if found is None or int(found.group(1)) >= len(decoded.locations):
            return path
        index, rest = int(found.group(1)), path[found.end() :]
        native = decoded.native
        if rest.startswith(".purposes") and isinstance(native, _Plain | _Framed):
            source = _purposes_path(native.mapping, native.locations[index])
            if source is not None:
                return source + rest[len(".purposes") :]
        return decoded.locations[index] + rest

    def redact(self, decoded: Decoded, removed: frozenset[int]) -> bytes | Unredactable:
        """The record without the identifiers at ``removed``: plain JSON with their
        fields null or removed (the mapping's ``empty``), a framed record re-encoded by
        its codec under the same schema id."""
        native = decoded.native
        if isinstance(native, _Framed):
            locations = [native.locations[i] for i in sorted(removed)]
            codec = native.codec
            if isinstance(codec, AvroCodec):
                body = codec.encode_body_without(native.body, native.native, locations)
            else:
                body = codec.encode_without(native.native, locations)
            if isinstance(body, Unredactable):
                return body
            return frame(native.codec.schema_id, body)
        assert isinstance(native, _Plain)
        locations = [native.locations[i] for i in sorted(removed)]
        document = json_document_to_write(
            native.value, native.document, numbers_may_change(native.value)
        )
        if native.direct:
            return orjson.dumps(_emptied_in_place(document, locations, native.remove))
        return orjson.dumps(emptied(document, locations, remove=native.remove))


def _decoded(read: Read, mapping: FieldMapping, native: _Plain | _Framed) -> Decoded | ParseFailure:
    event = _event(read.fields)
    if isinstance(event, ParseFailure):
        return _in_record_terms(event, read, mapping)
    return Decoded(event, tuple(_text(location) for location in read.locations), native)


def _read_directly(
    direct: DirectRead,
    mapping: FieldMapping,
    document: dict[str, Any],
    topic: str,
    partition: int,
    offset: int,
    value: bytes,
) -> Decoded | None:
    """The plain record as ``direct`` reads ``document`` (parsed from ``value``);
    ``None`` when it hands the record back."""
    found = direct.read(document, topic, partition, offset)
    if found is None:
        return None
    plain = _new(_Plain, (document, found.locations, mapping.remove_empty, True, mapping, value))
    return _new(Decoded, (found.event, found.texts, plain))


def _emptied_in_place(
    document: dict[str, Any], locations: list[Location], remove: bool
) -> dict[str, Any]:
    """``document`` with the values at ``locations`` (names through objects, each found
    there by the direct read) set to null, or removed: changed in place, as
    :func:`~enforcer.formats.paths.emptied` would copy it (the same keys in the same
    order)."""
    for location in locations:
        node: Any = document
        for name in location[:-1]:
            node = node[name]
        if remove:
            del node[location[-1]]
        else:
            node[location[-1]] = None
    return document


def _text(location: Location) -> str:
    # Most locations are names only: joined without the general renderer.
    try:
        return ".".join(location)  # type: ignore[arg-type]
    except TypeError:
        return location_text(location)


def _event(fields: dict[str, Any]) -> Event | ParseFailure:
    """The event, vouched for directly when plainly valid (as the core's own parser
    does), else by the identity event's model. A mapping gives every identifier a
    non-empty string value and purposes that are null or a list of strings, so only its
    type is left to vouch for (once per type)."""
    plain = plain_event_fields(fields)
    if plain is not None:
        identifiers = []
        for item in plain[3]:
            kind = item["type"]
            known = _PLAIN_TYPES.get(kind)
            if known is None:
                known = _PLAIN_TYPES[kind] = plain_type_and_tags(kind, None)
            if not known:
                break
            identifiers.append(EventIdentifier(kind, item["value"], item["purposes"]))
        else:
            return Event(plain[0], plain[1], plain[2], tuple(identifiers))
    return event_from_fields(fields)


_PLAIN_TYPES: dict[str, bool] = {}
"""Identifier types (from policies and schema tags: a few) and whether they need no
trimming."""


def _in_record_terms(failure: ParseFailure, read: Read, mapping: FieldMapping) -> ParseFailure:
    """A problem the identity event's rules found, named by the record's own path (an
    identifier's location, or the path the mapping read an event field from)."""
    message = failure.message
    paths = {
        "subject_id": mapping.subject_id.text,
        "occurred_at": mapping.occurred_at.text,
        "event_id": mapping.event_id.text if mapping.event_id is not None else "event_id",
    }
    for name, path in paths.items():
        if message.startswith(f"{name}:"):
            return ParseFailure(failure.reason, path + message[len(name) :])
    found = _IDENTIFIER.match(message)
    if found is not None and int(found.group(1)) < len(read.locations):
        place = location_text(read.locations[int(found.group(1))])
        return ParseFailure(failure.reason, place + message[found.end() :])
    return failure


_IDENTIFIER = re.compile(r"identifiers\[(\d+)\]")


def _purposes_path(mapping: FieldMapping, location: Location) -> str | None:
    """Where the mapping read the purposes of the identifier at ``location``: its
    purposes path with the identifier's list positions, or ``None`` when they came from
    no path of the record (a fixed list, the schema's tags, the ledger)."""
    for item in mapping.identifiers:
        steps = item.path.steps
        if not isinstance(item.purposes, RecordPath) or len(steps) != len(location):
            continue
        pairs = list(zip(steps, location, strict=True))
        if all(step == at or (step is EVERY and isinstance(at, int)) for step, at in pairs):
            positions = [at for step, at in pairs if step is EVERY and isinstance(at, int)]
            return item.purposes.bind(positions).text
    return None


def _invalid_json(value: bytes) -> ParseFailure:
    """The dead letter the core gives a value that is not JSON."""
    failure = parse_event(value)
    if isinstance(failure, ParseFailure) and failure.reason is DeadLetterReason.INVALID_JSON:
        return failure
    return ParseFailure(DeadLetterReason.INVALID_JSON, "not valid UTF-8 JSON")


def _seen_twice(value: bytes, mapping: FieldMapping) -> frozenset[str]:
    """The mapped key names whose quoted form occurs, counted case-blind, more than once
    in ``value``, or more often than written exactly (written in other letter cases)."""
    # A record without a capital ASCII letter (bytes.islower) is its own small case:
    # no copy, and a name written in small letters occurs exactly as often as counted.
    own = value.islower()
    lowered = value if own else value.lower()
    twice = []
    for name, quoted, small in mapping.quoted_key_names:
        seen = lowered.count(small)
        if seen > 1 or (seen and not (own and quoted == small) and value.count(quoted) != seen):
            twice.append(name)
    return frozenset(twice) if twice else _NONE


def _conflict(
    value: bytes, document: Any, mapping: FieldMapping, visited: set[tuple[int, str]]
) -> ParseFailure | None:
    """Why a record whose mapped keys looked suspect cannot be judged: a key on a mapped
    path twice in one object, or in other letter cases where the mapping reads it."""
    suspects = mapping.key_names
    if _may_repeat(value, visited, suspects) and repeats_a_key(value, suspects):
        return _REPEATED
    if _other_case_on_paths(document, mapping):
        return _OTHER_CASE
    return None


def _may_disguise_a_key(text: bytes) -> bool:
    """Whether JSON ``text`` may write a key so that counting names misses it: escaped
    (a backslash), or with a letter of U+0100 to U+017F (UTF-8 lead bytes 0xC4, 0xC5)
    or the Kelvin sign, the look-alikes a case-blind match takes for ASCII letters."""
    return 92 in text or 0xC4 in text or 0xC5 in text or (0xE2 in text and _KELVIN in text)


def _json_body_conflict(body: bytes, document: Any, judged: FieldMapping) -> ParseFailure | None:
    """Why a JSON Schema body cannot be judged, as for plain JSON (:meth:`_read_plain`):
    a name ``judged`` reads (a mapped one, also a key of a map the schema does not name,
    or a tagged property's) written twice in one object, or in other letter cases
    where it is read. A consumer matching names without case (Go's ``encoding/json``,
    which takes the last match) would read the copy nobody judged."""
    if not _may_disguise_a_key(body) and not _seen_twice(body, judged):
        return None
    if repeats_a_key(body, judged.key_names):
        return _REPEATED
    if _other_case_on_paths(document, judged):
        return _OTHER_CASE
    return None


def _other_case_on_paths(document: Any, mapping: FieldMapping) -> bool:
    """Whether an object the mapping reads holds a key a case-blind match takes for the
    name the mapping reads there (``EMAIL`` or ``Email`` where it reads ``email``), with
    or without the name itself: a consumer matching names without case could read it
    instead of the judged one. Objects off the mapping's paths are not looked at."""
    for path in mapping.paths:
        nodes = [document]
        for step in path.steps:
            following: list[Any] = []
            for node in nodes:
                if isinstance(step, str):
                    if type(node) is not dict:
                        continue
                    blind = case_blind(step)
                    if any(key != step and case_blind(key) == blind for key in node):
                        return True
                    if step in node:
                        following.append(node[step])
                elif type(node) is list:
                    following.extend(node if step is EVERY else node[step : step + 1])
            nodes = following
    return False


_NONE: frozenset[str] = frozenset()
_KELVIN = KELVIN_SIGN.encode()
_FRAMED_LIMIT = 4096


def _may_repeat(value: bytes, visited: set[tuple[int, str]], names: frozenset[str]) -> bool:
    """A cheap, conservative check that none of ``names`` repeats: without escapes a key
    is written as its quoted name, so a name seen no more often than the objects found to
    have it cannot repeat in one of them."""
    if 92 in value:  # a backslash: a key may be escaped
        return True
    counts = dict.fromkeys(names, 0)
    for _, name in visited:
        if name in counts:
            counts[name] += 1
    return any(value.count(orjson.dumps(name)) > count for name, count in counts.items())


def build_reader(policy: Policy, codecs: CodecLookup | None) -> FormatReader | None:
    """The reader for ``policy``'s mappings and a registry's codecs, or ``None`` when the
    policy has no ``formats`` section and no registry is configured (every record is then
    a plain identity event, on the core's path)."""
    if policy.formats is None and codecs is None:
        return None
    spec = policy.formats
    mappings = [FieldMapping.of(m) for m in spec.mappings] if spec is not None else []
    tags = TagConvention.of(spec.tags if spec is not None else None)
    return FormatReader(tags, mappings, codecs, policy.origin)
