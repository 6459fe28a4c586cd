"""The real schema-registry path, end to end, with clients other than ours.

confluent-kafka's own ``SchemaRegistryClient`` and its Avro, Protobuf and JSON Schema
serializers register schemas in the test session's Apicurio Registry and frame one record
each; the frames are checked byte by byte (magic byte 0, 4-byte big-endian schema id,
then the body; Protobuf with its message-index list), the schema fetched back by id keeps
its field tags (Avro and JSON Schema inline, Protobuf as a field option), and
confluent-kafka's deserializers read the records back. This is the ground the format
support of docs/contract.md stands on: if the registry or the clients changed any of it,
these tests say so before the enforcer's own tests do. No Kafka broker is involved:
serializers frame bytes, the registry serves schemas.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    topic_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.confluent import meta_pb2
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from enforcer.testing.topics import unique_topic_name

MAGIC_BYTE = 0
HEADER = struct.Struct(">bI")  # magic byte, schema id

# The field option ``(confluent.field_meta)`` that carries a Protobuf field's tags. Any:
# the generated meta_pb2 has no stubs, and the stubs type extension keys only for them.
FIELD_META: Any = meta_pb2.DESCRIPTOR.extensions_by_name["field_meta"]

PHONE = "+15550100"
RECORD: dict[str, Any] = {"subject_id": "user-1", "phone": PHONE}

AVRO_SCHEMA = {
    "type": "record",
    "name": "Contact",
    "namespace": "test.enforcer.formats",
    "fields": [
        {"name": "subject_id", "type": "string"},
        {
            "name": "phone",
            "type": ["null", "string"],
            "default": None,
            "confluent:tags": ["PII_PHONE", "purpose:security.mfa"],
        },
    ],
}

JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Contact",
    "type": "object",
    "properties": {
        "subject_id": {"type": "string"},
        "phone": {"type": ["string", "null"], "confluent:tags": ["PII_PHONE"]},
    },
    "required": ["subject_id"],
}


# confluent-kafka 2.16's serializers name the subject by asking the registry for the
# topic's "associations" first, a route Apicurio does not have. Apicurio answers an
# unknown route with 404, but now and then (seen in about 1 of 10 requests in the first
# seconds after start) not at all, and the client waits without a timeout by default. So
# the serializers here name the subject by the topic (``<topic>-value``, the strategy
# before 2.16), and every request has a timeout after which the client retries: a
# registry that stops answering fails the test in seconds, not at pytest's 600 s limit.
CLIENT_TIMEOUT_S = 10
SERIALIZER_CONF: dict[str, Any] = {"subject.name.strategy": topic_subject_name_strategy}


@pytest.fixture(scope="module")
def client(schema_registry_url: str) -> Iterator[SchemaRegistryClient]:
    config = {"url": schema_registry_url, "timeout": CLIENT_TIMEOUT_S, "max.retries": 2}
    with SchemaRegistryClient(config) as registry_client:
        yield registry_client


def _value_context() -> SerializationContext:
    # A unique topic, so its subject (``<topic>-value``) is new in the shared registry.
    return SerializationContext(unique_topic_name("formats"), MessageField.VALUE)


def _schema_id(framed: bytes) -> int:
    magic, schema_id = HEADER.unpack_from(framed)
    assert magic == MAGIC_BYTE
    return int(schema_id)


def _contact_message_type() -> type[Message]:
    """A Protobuf message class built from a descriptor at run time (no protoc), its
    ``phone`` field tagged with ``(confluent.field_meta).tags``."""
    field = descriptor_pb2.FieldDescriptorProto
    proto_file = descriptor_pb2.FileDescriptorProto(
        name="test_enforcer_formats_contact.proto",
        package="test.enforcer.formats",
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
    phone.options.Extensions[FIELD_META].tags.append("PII_PHONE")
    pool = descriptor_pool.DescriptorPool()
    for dependency in (descriptor_pb2.DESCRIPTOR, meta_pb2.DESCRIPTOR):
        dependency_proto = descriptor_pb2.FileDescriptorProto()
        dependency.CopyToProto(dependency_proto)
        pool.Add(dependency_proto)
    pool.Add(proto_file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("test.enforcer.formats.Contact")
    )


def test_avro_frame_schema_by_id_with_its_inline_tags_and_round_trip(
    client: SchemaRegistryClient,
) -> None:
    """AvroSerializer registers the schema and frames the record; the registry gives the
    schema back by that id with the field's inline ``confluent:tags``; AvroDeserializer
    reads the record."""
    ctx = _value_context()
    framed = AvroSerializer(client, json.dumps(AVRO_SCHEMA), conf=SERIALIZER_CONF)(RECORD, ctx)
    assert framed is not None

    schema_id = _schema_id(framed)
    body = framed[HEADER.size :]
    # Avro binary: the string as zig-zag length then bytes; the union branch index 1.
    assert body.startswith(b"\x0c" + b"user-1" + b"\x02")
    assert body.endswith(PHONE.encode())

    fetched = client.get_schema(schema_id)
    assert fetched.schema_type == "AVRO"
    assert fetched.schema_str is not None
    phone = next(f for f in json.loads(fetched.schema_str)["fields"] if f["name"] == "phone")
    assert phone["confluent:tags"] == ["PII_PHONE", "purpose:security.mfa"]
    assert client.get_latest_version(f"{ctx.topic}-value").schema_id == schema_id

    assert AvroDeserializer(client)(framed, ctx) == RECORD


def test_protobuf_frame_with_message_indexes_and_round_trip(
    client: SchemaRegistryClient,
) -> None:
    """ProtobufSerializer registers the file descriptor and frames the message with its
    message-index list (a single 0 for the file's first message); the schema fetched by
    id keeps the field's ``(confluent.field_meta).tags``; ProtobufDeserializer reads the
    message back."""
    contact_type = _contact_message_type()
    ctx = _value_context()
    conf = {"use.deprecated.format": False, **SERIALIZER_CONF}
    framed = ProtobufSerializer(contact_type, client, conf)(contact_type(**RECORD), ctx)
    assert framed is not None

    schema_id = _schema_id(framed)
    assert framed[HEADER.size] == 0  # message indexes [0], written as one zero byte
    message = contact_type()
    message.ParseFromString(framed[HEADER.size + 1 :])
    assert message == contact_type(**RECORD)

    fetched = client.get_schema(schema_id)
    assert fetched.schema_type == "PROTOBUF"
    # Stored as the serializer sent it: a base64 FileDescriptorProto, field options kept.
    assert fetched.schema_str is not None
    stored = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(fetched.schema_str))
    assert list(stored.dependency) == ["confluent/meta.proto"]
    stored_phone = next(f for f in stored.message_type[0].field if f.name == "phone")
    assert list(stored_phone.options.Extensions[FIELD_META].tags) == ["PII_PHONE"]

    read = ProtobufDeserializer(contact_type, conf)(framed, ctx)
    assert read == contact_type(**RECORD)


def test_json_schema_frame_schema_by_id_with_its_inline_tags_and_round_trip(
    client: SchemaRegistryClient,
) -> None:
    """JSONSerializer validates and frames the record (the body is the JSON text); the
    registry keeps the property's inline tags; JSONDeserializer, with no schema of its
    own, fetches it by id and reads the record back."""
    ctx = _value_context()
    framed = JSONSerializer(json.dumps(JSON_SCHEMA), client, conf=SERIALIZER_CONF)(RECORD, ctx)
    assert framed is not None

    schema_id = _schema_id(framed)
    assert json.loads(framed[HEADER.size :]) == RECORD

    fetched = client.get_schema(schema_id)
    assert fetched.schema_type == "JSON"
    assert fetched.schema_str is not None
    tags = json.loads(fetched.schema_str)["properties"]["phone"]["confluent:tags"]
    assert tags == ["PII_PHONE"]

    assert JSONDeserializer(None, schema_registry_client=client)(framed, ctx) == RECORD


def test_the_three_formats_get_distinct_ids_and_a_known_schema_keeps_its_id(
    client: SchemaRegistryClient,
) -> None:
    """Registering the same schema under the same subject again returns the same id (the
    enforcer re-encodes with the id it read); each format's schema has its own id."""
    subject = f"{unique_topic_name('formats')}-value"
    avro = Schema(json.dumps(AVRO_SCHEMA), "AVRO")
    first = client.register_schema(subject, avro)
    assert client.register_schema(subject, avro) == first
    json_id = client.register_schema(
        f"{unique_topic_name('formats')}-value", Schema(json.dumps(JSON_SCHEMA), "JSON")
    )
    assert json_id != first
