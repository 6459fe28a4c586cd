"""Our codecs against the real registry, on records framed by another client.

confluent-kafka's own Avro, Protobuf and JSON Schema serializers register schemas in
the session's Apicurio Registry and frame records; the enforcer's ``SchemaCache`` (through
its own registry client) finds the ids, builds the codecs, reads each record (the view
equals the record, the schema's tags are found), writes it again with a field emptied,
and confluent-kafka's deserializers read that back under the same schema id. A schema
registered later is found by its new id, an id nobody registered stays unknown, and a
registry that stops answering is an outage (docs/formats.md, "The schema registry").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.confluent import meta_pb2
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from enforcer.core.clock import FixedClock
from enforcer.formats.codec import Codec
from enforcer.formats.framing import HEADER, frame, schema_id_of
from enforcer.formats.protobuf import ProtobufCodec
from enforcer.formats.registry import RegistrySettings, RegistryUnavailableError, SchemaRegistry
from enforcer.formats.schemas import SchemaCache
from enforcer.testing.schema_registry import LocalSchemaRegistry
from enforcer.testing.topics import unique_topic_name

# As in test_registry_clients.py: the subject named by the topic, a timeout on every
# request (Apicurio sometimes never answers the route confluent-kafka 2.16 asks first).
CLIENT_TIMEOUT_S = 10
SERIALIZER_CONF: dict[str, Any] = {"subject.name.strategy": topic_subject_name_strategy}
FIELD_META: Any = meta_pb2.DESCRIPTOR.extensions_by_name["field_meta"]
NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
PHONE_TAGS = ["PII_PHONE", "purpose:security.mfa"]

RECORD: dict[str, Any] = {
    "subject_id": "user-1",
    "phone": "+15550100",
    "emails": ["a@example.com", "b@example.com"],
}

AVRO_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Contact",
    "namespace": "test.enforcer.codecs",
    "fields": [
        {"name": "subject_id", "type": "string"},
        {
            "name": "phone",
            "type": ["null", "string"],
            "default": None,
            "confluent:tags": PHONE_TAGS,
        },
        {
            "name": "emails",
            "type": {"type": "array", "items": "string"},
            "confluent:tags": ["PII_EMAIL"],
        },
    ],
}

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Contact",
    "type": "object",
    "properties": {
        "subject_id": {"type": "string"},
        "phone": {"type": ["string", "null"], "confluent:tags": PHONE_TAGS},
        "emails": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["subject_id", "phone"],
}


@pytest.fixture(scope="module")
def client(schema_registry_url: str) -> Iterator[SchemaRegistryClient]:
    config = {"url": schema_registry_url, "timeout": CLIENT_TIMEOUT_S, "max.retries": 2}
    with SchemaRegistryClient(config) as registry_client:
        yield registry_client


@pytest.fixture
def cache(schema_registry_url: str) -> SchemaCache:
    return SchemaCache(SchemaRegistry(RegistrySettings(schema_registry_url)), FixedClock(NOW))


def _context() -> SerializationContext:
    return SerializationContext(unique_topic_name("codecs"), MessageField.VALUE)


def _loaded(cache: SchemaCache, framed: bytes) -> Codec:
    """The codec of ``framed``'s schema id, loaded the way a driver does."""
    schema_id = schema_id_of(framed)
    assert schema_id is not None
    assert cache.missing([framed]) == {schema_id}
    cache.load(cache.missing([framed]))
    codec = cache.codec(schema_id)
    assert codec is not None
    assert cache.missing([framed]) == set()
    return codec


def test_avro_read_emptied_and_read_back_by_confluent(
    client: SchemaRegistryClient, cache: SchemaCache
) -> None:
    ctx = _context()
    framed = AvroSerializer(client, json.dumps(AVRO_SCHEMA), conf=SERIALIZER_CONF)(RECORD, ctx)
    assert framed is not None
    codec = _loaded(cache, framed)
    assert codec.record_name == "test.enforcer.codecs.Contact"
    assert codec.fields["phone"].tags == tuple(PHONE_TAGS)
    assert codec.fields["emails"].tags == ("PII_EMAIL",)

    native, view = codec.decode(framed[HEADER.size :])
    assert view == RECORD
    body = codec.encode_without(native, [("phone",), ("emails", 0)])
    assert isinstance(body, bytes)
    read = AvroDeserializer(client)(frame(codec.schema_id, body), ctx)
    assert read == {"subject_id": "user-1", "phone": None, "emails": ["b@example.com"]}


def _proto_classes() -> tuple[Any, Any]:
    """Two messages in one file, built at run time: ``Contact`` (its ``phone`` tagged
    with ``(confluent.field_meta).tags``) and ``Device`` (the second message: framed with
    message indexes ``[1]``)."""
    field = descriptor_pb2.FieldDescriptorProto
    proto_file = descriptor_pb2.FileDescriptorProto(
        name="test_enforcer_codecs.proto",
        package="test.enforcer.codecs",
        syntax="proto3",
        dependency=[meta_pb2.DESCRIPTOR.name],
    )
    contact = proto_file.message_type.add(name="Contact")
    contact.field.add(
        name="subject_id", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL
    )
    phone = contact.field.add(
        name="phone", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL
    )
    phone.options.Extensions[FIELD_META].tags.extend(PHONE_TAGS)
    contact.field.add(name="emails", number=3, type=field.TYPE_STRING, label=field.LABEL_REPEATED)
    device = proto_file.message_type.add(name="Device")
    device_id = device.field.add(
        name="device_id", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL
    )
    device_id.options.Extensions[FIELD_META].tags.append("PII_DEVICE")
    pool = descriptor_pool.DescriptorPool()
    for dependency in (descriptor_pb2.DESCRIPTOR, meta_pb2.DESCRIPTOR):
        dependency_proto = descriptor_pb2.FileDescriptorProto()
        dependency.CopyToProto(dependency_proto)
        pool.Add(dependency_proto)
    pool.Add(proto_file)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("test.enforcer.codecs.Contact")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("test.enforcer.codecs.Device")),
    )


@pytest.mark.parametrize("skip_known_types", [True, False])
def test_protobuf_read_cleared_and_read_back_by_confluent(
    client: SchemaRegistryClient, cache: SchemaCache, skip_known_types: bool
) -> None:
    """The registry holds the file as the serializer sent it (a base64 descriptor that
    imports ``confluent/meta.proto``); our codec reads it with its tags, whether the
    serializer registered the import as a reference or (by default) left it out as a
    "known type" for the reader to bring."""
    contact_type, _ = _proto_classes()
    ctx = _context()
    conf = {"use.deprecated.format": False, **SERIALIZER_CONF}
    serializer_conf = {**conf, "skip.known.types": skip_known_types}
    framed = ProtobufSerializer(contact_type, client, serializer_conf)(contact_type(**RECORD), ctx)
    assert framed is not None
    codec = _loaded(cache, framed)
    assert codec.record_name == "test.enforcer.codecs.Contact"
    assert codec.fields["phone"].tags == tuple(PHONE_TAGS)
    registered = client.get_latest_version(f"{ctx.topic}-value").schema
    assert bool(registered.references) is not skip_known_types

    native, view = codec.decode(framed[HEADER.size :])
    assert view == RECORD
    body = codec.encode_without(native, [("phone",), ("emails", 1)])
    assert isinstance(body, bytes)
    read = ProtobufDeserializer(contact_type, conf)(frame(codec.schema_id, body), ctx)
    assert read == contact_type(subject_id="user-1", emails=["a@example.com"])


def test_protobuf_second_message_by_its_indexes(
    client: SchemaRegistryClient, cache: SchemaCache
) -> None:
    """A record of the file's second message is framed with indexes ``[1]``; it is
    decoded as that message, by that message's own codec, and written back with the
    same indexes."""
    _, device_type = _proto_classes()
    ctx = _context()
    conf = {"use.deprecated.format": False, **SERIALIZER_CONF}
    framed = ProtobufSerializer(device_type, client, conf)(device_type(device_id="dev-1"), ctx)
    assert framed is not None
    assert framed[HEADER.size : HEADER.size + 2] == b"\x02\x02"  # one index: 1
    loaded = _loaded(cache, framed)
    assert isinstance(loaded, ProtobufCodec)
    codec = loaded.message_codec(framed[HEADER.size :])
    assert codec.record_name is not None and codec.record_name.endswith("Device")
    native, view = codec.decode(framed[HEADER.size :])
    assert view == {"device_id": "dev-1"}
    body = codec.encode_without(native, [("device_id",)])
    assert isinstance(body, bytes)
    assert body.startswith(b"\x02\x02")
    assert (
        ProtobufDeserializer(device_type, conf)(frame(codec.schema_id, body), ctx) == device_type()
    )


def test_json_schema_read_emptied_and_read_back_by_confluent(
    client: SchemaRegistryClient, cache: SchemaCache
) -> None:
    ctx = _context()
    framed = JSONSerializer(json.dumps(JSON_SCHEMA), client, conf=SERIALIZER_CONF)(RECORD, ctx)
    assert framed is not None
    codec = _loaded(cache, framed)
    assert codec.record_name == "Contact"
    assert codec.fields["phone"].tags == tuple(PHONE_TAGS)

    native, view = codec.decode(framed[HEADER.size :])
    assert view == RECORD
    body = codec.encode_without(native, [("phone",), ("emails",)])
    assert isinstance(body, bytes)
    read = JSONDeserializer(None, schema_registry_client=client)(frame(codec.schema_id, body), ctx)
    assert read == {"subject_id": "user-1", "phone": None}


def test_a_schema_registered_later_is_found_by_its_id(
    client: SchemaRegistryClient, cache: SchemaCache
) -> None:
    """Schema evolution mid-stream: version 2 of the subject gets a new id, which the
    cache misses, loads and reads; version 1's records still read as before."""
    ctx = _context()
    first = AvroSerializer(client, json.dumps(AVRO_SCHEMA), conf=SERIALIZER_CONF)(RECORD, ctx)
    assert first is not None
    old = _loaded(cache, first)
    evolved = {
        **AVRO_SCHEMA,
        "fields": [
            *AVRO_SCHEMA["fields"],
            {
                "name": "recovery_email",
                "type": ["null", "string"],
                "default": None,
                "confluent:tags": ["PII_EMAIL"],
            },
        ],
    }
    record = {**RECORD, "recovery_email": "r@example.com"}
    second = AvroSerializer(client, json.dumps(evolved), conf=SERIALIZER_CONF)(record, ctx)
    assert second is not None
    assert schema_id_of(second) != old.schema_id
    new = _loaded(cache, second)
    assert new.fields["recovery_email"].tags == ("PII_EMAIL",)
    assert new.decode(second[HEADER.size :])[1] == record
    assert old.decode(first[HEADER.size :])[1] == RECORD


def test_an_id_nobody_registered_stays_unknown(cache: SchemaCache) -> None:
    unregistered = 2_000_000_000
    framed = frame(unregistered, b"\x00")
    cache.load(cache.missing([framed]))
    assert cache.codec(unregistered) is None
    assert cache.unknown_reason(unregistered) == f"the schema registry has no schema {unregistered}"
    assert cache.missing([framed]) == set()


def test_a_stopped_registry_is_an_outage(private_schema_registry: LocalSchemaRegistry) -> None:
    """A registry of this test's own: a schema loaded while it runs stays usable; once
    it is stopped, loading another id raises and marks nothing unknown."""
    registry_url = private_schema_registry.url
    client_config = {"url": registry_url, "timeout": CLIENT_TIMEOUT_S, "max.retries": 2}
    with SchemaRegistryClient(client_config) as private_client:
        framed = AvroSerializer(private_client, json.dumps(AVRO_SCHEMA), conf=SERIALIZER_CONF)(
            RECORD, _context()
        )
    assert framed is not None
    cache = SchemaCache(
        SchemaRegistry(RegistrySettings(registry_url, timeout_s=5)), FixedClock(NOW)
    )
    codec = _loaded(cache, framed)

    private_schema_registry.stop()
    later = frame(codec.schema_id + 1, b"")
    with pytest.raises(RegistryUnavailableError, match="did not answer"):
        cache.load(cache.missing([later]))
    assert cache.unknown_reason(codec.schema_id + 1) is None
    assert cache.missing([later]) == {codec.schema_id + 1}
    assert cache.codec(codec.schema_id) is codec
