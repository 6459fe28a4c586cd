"""Sample account events in a topic's own shape, framed for a schema registry: Avro,
Protobuf or JSON Schema (``enforcer sample --format``, the demo's Avro variant).

The same 2019 story as :mod:`enforcer.demo.sample`, as a team's own topic would carry it:
no ``identifiers[]`` list, but fields of their own. Which fields hold identifiers, and
what they were collected for, is said by the schema's field tags (docs/formats.md, "Schema
tags"): ``two_factor_phone`` is a phone number given for ``security.mfa``,
``recovery_email`` an email given for ``security.account_recovery``, ``device_id`` a
device id for ``analytics.reporting``; ``contact_email`` is tagged as an email only, its
purposes are in the record's own ``contact_email_purposes`` list (a mapping in the policy
points there: ``policies/formats.yaml``). Deterministic for a seed; values are
synthetic (example.com, 555 numbers).
"""

from __future__ import annotations

import base64
import io
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import orjson

from enforcer.formats.framing import frame
from enforcer.formats.protobuf_files import META_EXTENSION_NUMBER, META_FILE, base_pool
from enforcer.formats.registry import Reference, SchemaType

SampleFormat = Literal["avro", "protobuf", "json-schema"]
FORMATS: tuple[SampleFormat, ...] = ("avro", "protobuf", "json-schema")
NAMESPACE = "com.example.identity"
RECORD = "AccountContact"
RECORD_NAME = f"{NAMESPACE}.{RECORD}"

CONTACT_PURPOSES = (
    ["marketing.advertising"],
    ["marketing.advertising.third_party.targeted", "analytics"],
    ["essential.service.notifications.email"],
    ["security.account_recovery"],
)

# The tags of the identifier fields; each may be emptied (null) by redaction.
_TAGGED: dict[str, list[str]] = {
    "two_factor_phone": ["PII_PHONE", "purpose:security.mfa"],
    "recovery_email": ["PII_EMAIL", "purpose:security.account_recovery"],
    "contact_email": ["PII_EMAIL"],
    "device_id": ["PII_DEVICE_ID", "purpose:analytics.reporting"],
}
_FIELDS = (
    ("event_id", "string"),
    ("account_id", "string"),
    ("occurred_at", "timestamp"),
    ("two_factor_phone", "identifier"),
    ("recovery_email", "identifier"),
    ("contact_email", "identifier"),
    ("contact_email_purposes", "strings"),
    ("device_id", "identifier"),
    ("client", "string"),
)


def sample_contacts(
    count: int, *, seed: int = 2019, start: datetime = datetime(2019, 10, 1, tzinfo=UTC)
) -> Iterator[dict[str, Any]]:
    """``count`` account events as plain values (``occurred_at`` in epoch milliseconds)."""
    rng = random.Random(seed)
    for number in range(count):
        account = rng.randrange(1, 50_000)
        at = start + timedelta(seconds=60 * number)
        yield {
            "event_id": f"evt-{number:010d}-{rng.getrandbits(48):012x}",
            "account_id": f"acct-{account:07d}",
            "occurred_at": int(at.timestamp() * 1000),
            "two_factor_phone": (
                f"+1 (415) 555-{account % 10000:04d}" if rng.random() < 0.6 else None
            ),
            "recovery_email": f"recover{account}@example.com" if rng.random() < 0.3 else None,
            "contact_email": f"user{account}@example.com",
            "contact_email_purposes": list(rng.choice(CONTACT_PURPOSES)),
            "device_id": f"{rng.getrandbits(128):032x}" if rng.random() < 0.5 else None,
            "client": rng.choice(["ios-8.2.1", "android-8.3.0", "web-2019.10"]),
        }


def avro_schema() -> dict[str, Any]:
    """The sample's Avro schema, identifier fields tagged (``confluent:tags``)."""
    types = {
        "string": "string",
        "timestamp": {"type": "long", "logicalType": "timestamp-millis"},
        "identifier": ["null", "string"],
        "strings": {"type": "array", "items": "string"},
    }
    fields: list[dict[str, Any]] = []
    for name, kind in _FIELDS:
        field: dict[str, Any] = {"name": name, "type": types[kind]}
        if kind == "identifier":
            field["default"] = None
            field["confluent:tags"] = _TAGGED[name]
        fields.append(field)
    return {"type": "record", "name": RECORD, "namespace": NAMESPACE, "fields": fields}


def json_schema() -> dict[str, Any]:
    """The sample's JSON Schema, identifier properties tagged (``confluent:tags``)."""
    types: dict[str, dict[str, Any]] = {
        "string": {"type": "string"},
        "timestamp": {"type": "integer"},
        "identifier": {"type": ["string", "null"]},
        "strings": {"type": "array", "items": {"type": "string"}},
    }
    properties: dict[str, Any] = {}
    for name, kind in _FIELDS:
        properties[name] = dict(types[kind])
        if kind == "identifier":
            properties[name]["confluent:tags"] = _TAGGED[name]
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": RECORD_NAME,
        "type": "object",
        "properties": properties,
        "required": ["event_id", "account_id", "occurred_at"],
    }


def protobuf_file() -> Any:
    """The sample's Protobuf file descriptor (a ``FileDescriptorProto``), identifier
    fields tagged with ``(confluent.field_meta).tags``."""
    from google.protobuf import descriptor_pb2

    field_type = descriptor_pb2.FieldDescriptorProto
    kinds = {
        "string": field_type.TYPE_STRING,
        "timestamp": field_type.TYPE_INT64,
        "identifier": field_type.TYPE_STRING,
        "strings": field_type.TYPE_STRING,
    }
    meta = _meta_class()
    message = descriptor_pb2.DescriptorProto(name=RECORD)
    for number, (name, kind) in enumerate(_FIELDS, start=1):
        label = field_type.LABEL_REPEATED if kind == "strings" else field_type.LABEL_OPTIONAL
        field = message.field.add(name=name, number=number, type=kinds[kind], label=label)
        if kind == "identifier":
            # (confluent.field_meta) is extension 1088 of FieldOptions: written as its
            # wire bytes, which is what a compiled option is.
            tags = meta(tags=_TAGGED[name]).SerializeToString()
            field.options.MergeFromString(_FIELD_META_KEY + _varint(len(tags)) + tags)
    return descriptor_pb2.FileDescriptorProto(
        name="com/example/identity/account_contact.proto",
        package=NAMESPACE,
        syntax="proto3",
        dependency=[META_FILE],
        message_type=[message],
    )


def _meta_class() -> Any:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(base_pool().FindMessageTypeByName("confluent.Meta"))


def _varint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


# Field 1088 (META_EXTENSION_NUMBER), wire type 2 (length-delimited).
_FIELD_META_KEY = _varint(META_EXTENSION_NUMBER << 3 | 2)


class Registering(Protocol):
    """What the sample needs of a schema registry: registering its schemas
    (:class:`~enforcer.formats.registry.SchemaRegistry`, or a stand-in for benchmarks)."""

    def register(
        self,
        subject: str,
        schema_type: SchemaType,
        text: str,
        references: tuple[Reference, ...] = (),
    ) -> int: ...

    def latest_version_number(self, subject: str) -> int: ...


class FramedSample:
    """Registers the sample's schema in a registry and frames sample values with it."""

    def __init__(self, sample_format: SampleFormat, registry: Registering, subject: str):
        self.format = sample_format
        if sample_format == "avro":
            import fastavro

            schema = avro_schema()
            self._avro = fastavro.parse_schema(schema)
            self.schema_id = registry.register(subject, "AVRO", json.dumps(schema))
        elif sample_format == "json-schema":
            self.schema_id = registry.register(subject, "JSON", json.dumps(json_schema()))
        else:
            self._message = _message_class(protobuf_file())
            self.schema_id = _register_protobuf(registry, subject, protobuf_file())

    def encode(self, contact: dict[str, Any]) -> bytes:
        """One sample value, framed with the registered schema's id."""
        if self.format == "avro":
            import fastavro

            out = io.BytesIO()
            at = datetime.fromtimestamp(contact["occurred_at"] / 1000, tz=UTC)
            fastavro.schemaless_writer(out, self._avro, {**contact, "occurred_at": at})
            return frame(self.schema_id, out.getvalue())
        if self.format == "json-schema":
            present = {k: v for k, v in contact.items() if v is not None}
            return frame(self.schema_id, orjson.dumps(present))
        present = {k: v for k, v in contact.items() if v is not None}
        # Message indexes [0] (the file's first message) are written as one zero byte.
        return frame(self.schema_id, b"\x00" + self._message(**present).SerializeToString())


def _message_class(file: Any) -> Any:
    from google.protobuf import message_factory

    pool = base_pool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(RECORD_NAME))


def _register_protobuf(registry: Registering, subject: str, file: Any) -> int:
    """The file and its import ``confluent/meta.proto`` as confluent-kafka's serializer
    registers them: serialized descriptors in base64, the import as a reference."""
    from google.protobuf import descriptor_pb2

    meta_file = descriptor_pb2.FileDescriptorProto()
    base_pool().FindFileByName(META_FILE).CopyToProto(meta_file)
    registry.register(META_FILE, "PROTOBUF", _base64(meta_file))
    reference = Reference(META_FILE, META_FILE, registry.latest_version_number(META_FILE))
    return registry.register(subject, "PROTOBUF", _base64(file), (reference,))


def _base64(file: Any) -> str:
    return base64.standard_b64encode(file.SerializeToString()).decode("ascii")
