"""The schema cache: codecs by schema id, unknown ids remembered and asked again later,
an outage that changes nothing (docs/formats.md, "The schema registry"). The registry
here is a dict behind the two calls the cache makes; the real one is in
tests/integration/formats/test_codecs_registry.py."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import descriptor_pb2

from enforcer.core.clock import FixedClock
from enforcer.formats.framing import frame
from enforcer.formats.registry import Reference, RegisteredSchema, RegistryUnavailableError
from enforcer.formats.schema_error import UnusableSchemaError
from enforcer.formats.schemas import RETRY_UNKNOWN_AFTER, SchemaCache

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
AVRO = json.dumps(
    {
        "type": "record",
        "name": "A",
        "fields": [{"name": "p", "type": ["null", "string"], "confluent:tags": ["PII_PHONE"]}],
    }
)
JSON_SCHEMA = json.dumps({"title": "J", "type": "object", "properties": {"e": {"type": "string"}}})


def _proto_text() -> str:
    file = descriptor_pb2.FileDescriptorProto(name="p.proto", package="p", syntax="proto3")
    file.message_type.add(name="P").field.add(
        name="a", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING, label=1
    )
    return base64.b64encode(file.SerializeToString()).decode()


class FakeRegistry:
    """Schemas by id and subject versions, counting the requests; ``down`` makes every
    request an outage."""

    def __init__(self) -> None:
        self.by_id: dict[int, RegisteredSchema] = {}
        self.versions: dict[tuple[str, int | str], RegisteredSchema] = {}
        self.asked: list[object] = []
        self.down = False

    def schema_by_id(self, schema_id: int) -> RegisteredSchema | None:
        self._answer(schema_id)
        return self.by_id.get(schema_id)

    def subject_version(
        self, subject: str, version: int | str = "latest"
    ) -> RegisteredSchema | None:
        self._answer((subject, version))
        return self.versions.get((subject, version))

    def _answer(self, what: object) -> None:
        self.asked.append(what)
        if self.down:
            raise RegistryUnavailableError("schema registry http://registry did not answer")


@pytest.fixture
def registry() -> FakeRegistry:
    fake = FakeRegistry()
    fake.by_id[1] = RegisteredSchema(1, "AVRO", AVRO, ())
    fake.by_id[2] = RegisteredSchema(2, "JSON", JSON_SCHEMA, ())
    fake.by_id[3] = RegisteredSchema(3, "PROTOBUF", _proto_text(), ())
    return fake


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


def test_missing_names_the_framed_ids_not_loaded(registry: FakeRegistry, clock: FixedClock) -> None:
    """Plain JSON, null values and frames too short for an id are nobody's schema."""
    cache = SchemaCache(registry, clock)
    values = [frame(1, b""), frame(2, b"{}"), frame(1, b"x"), b'{"plain": 1}', None, b"\x00\x00"]
    assert cache.missing(values) == {1, 2}
    assert cache.codec(1) is None  # not loaded yet: the reader calls that unknown
    cache.load({1, 2})
    assert cache.missing(values) == set()
    assert registry.asked == [1, 2]


def test_load_builds_a_codec_per_format(registry: FakeRegistry, clock: FixedClock) -> None:
    cache = SchemaCache(registry, clock)
    cache.load([1, 2, 3])
    codecs = [cache.codec(schema_id) for schema_id in (1, 2, 3)]
    assert [(c.schema_id, c.schema_type, c.record_name) for c in codecs if c] == [
        (1, "AVRO", "A"),
        (2, "JSON", "J"),
        (3, "PROTOBUF", "p.P"),
    ]
    cache.load([1, 2, 3])
    assert registry.asked == [1, 2, 3]  # a loaded id is never asked again


def test_an_id_the_registry_lacks_is_unknown_until_asked_again(
    registry: FakeRegistry, clock: FixedClock
) -> None:
    """Remembered as unknown, so a batch of its records costs one request; after
    RETRY_UNKNOWN_AFTER it is missing again, and a schema registered since is found."""
    cache = SchemaCache(registry, clock)
    cache.load([9])
    assert cache.codec(9) is None
    assert cache.unknown_reason(9) == "the schema registry has no schema 9"
    assert cache.missing([frame(9, b"")]) == set()
    clock.advance_to(T0 + RETRY_UNKNOWN_AFTER - timedelta(seconds=1))
    assert cache.missing([frame(9, b"")]) == set()
    registry.by_id[9] = RegisteredSchema(9, "AVRO", AVRO, ())
    clock.advance_to(T0 + RETRY_UNKNOWN_AFTER)
    assert cache.missing([frame(9, b"")]) == {9}
    cache.load([9])
    assert cache.codec(9) is not None
    assert cache.unknown_reason(9) is None


def test_a_schema_that_cannot_be_read_is_unknown_and_logged_once(
    registry: FakeRegistry, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    registry.by_id[4] = RegisteredSchema(4, "PROTOBUF", 'syntax = "proto3";', ())
    cache = SchemaCache(registry, clock)
    with caplog.at_level(logging.WARNING, logger="enforcer.formats"):
        cache.load([4])
        clock.advance_to(T0 + RETRY_UNKNOWN_AFTER)
        assert cache.missing([frame(4, b"")]) == {4}
        cache.load([4])
    assert cache.codec(4) is None
    reason = cache.unknown_reason(4)
    assert reason is not None
    assert ".proto source" in reason
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1
    assert "schema 4 cannot be used" in lines[0]
    assert reason in lines[0]
    assert registry.asked == [4, 4]


def test_an_outage_raises_and_changes_nothing(registry: FakeRegistry, clock: FixedClock) -> None:
    """Nothing half-loaded, nothing marked unknown: the driver waits and asks again."""
    cache = SchemaCache(registry, clock)
    registry.down = True
    with pytest.raises(RegistryUnavailableError):
        cache.load([1, 9])
    assert cache.codec(1) is None
    assert cache.unknown_reason(9) is None
    assert cache.missing([frame(1, b""), frame(9, b"")]) == {1, 9}
    registry.down = False
    cache.load([1, 9])
    assert cache.codec(1) is not None
    assert cache.unknown_reason(9) is not None


def test_an_outage_midway_keeps_the_ids_before_it_unloaded(
    registry: FakeRegistry, clock: FixedClock
) -> None:
    """Ids are asked in order; the first answered is not taken in when a later one fails."""

    class FailsSecond(FakeRegistry):
        def schema_by_id(self, schema_id: int) -> RegisteredSchema | None:
            if schema_id == 2:
                raise RegistryUnavailableError("down")
            return super().schema_by_id(schema_id)

    flaky = FailsSecond()
    flaky.by_id = registry.by_id
    cache = SchemaCache(flaky, clock)
    with pytest.raises(RegistryUnavailableError):
        cache.load([1, 2])
    assert cache.codec(1) is None


def test_references_are_fetched_by_subject_and_version(
    registry: FakeRegistry, clock: FixedClock
) -> None:
    """An Avro named type from another subject, itself using a third: fetched in order,
    each subject version once."""
    base = json.dumps(
        {"type": "record", "name": "shared.Email", "fields": [{"name": "a", "type": "string"}]}
    )
    contact = json.dumps(
        {
            "type": "record",
            "name": "shared.Contact",
            "fields": [{"name": "email", "type": "shared.Email"}],
        }
    )
    holder = json.dumps(
        {"type": "record", "name": "H", "fields": [{"name": "c", "type": "shared.Contact"}]}
    )
    registry.versions[("email", 1)] = RegisteredSchema(20, "AVRO", base, ())
    registry.versions[("contact", 2)] = RegisteredSchema(
        21, "AVRO", contact, (Reference("shared.Email", "email", 1),)
    )
    registry.by_id[22] = RegisteredSchema(
        22, "AVRO", holder, (Reference("shared.Contact", "contact", 2),)
    )
    registry.by_id[23] = RegisteredSchema(
        23, "AVRO", holder, (Reference("shared.Contact", "contact", 2),)
    )
    cache = SchemaCache(registry, clock)
    cache.load([22, 23])
    codec = cache.codec(22)
    assert codec is not None
    assert codec.fields["c.email.a"].kind == "string"
    assert cache.codec(23) is not None
    assert registry.asked == [22, ("contact", 2), ("email", 1), 23]


def test_a_reference_the_registry_lacks_makes_the_schema_unknown(
    registry: FakeRegistry, clock: FixedClock
) -> None:
    registry.by_id[24] = RegisteredSchema(24, "AVRO", AVRO, (Reference("x.Y", "gone", 3),))
    cache = SchemaCache(registry, clock)
    cache.load([24])
    assert cache.unknown_reason(24) == (
        "schema 24 references x.Y (gone version 3), which the schema registry does not have"
    )


def test_latest_for_subject(registry: FakeRegistry, clock: FixedClock) -> None:
    """For checking a mapping at start: the subject's latest schema, None for a subject
    the registry lacks, the reason for one the enforcer cannot read."""
    registry.versions[("accounts-value", "latest")] = registry.by_id[1]
    registry.versions[("proto-value", "latest")] = RegisteredSchema(
        5, "PROTOBUF", "message M {}", ()
    )
    cache = SchemaCache(registry, clock)
    codec = cache.latest_for_subject("accounts-value")
    assert codec is not None
    assert codec.fields["p"].tags == ("PII_PHONE",)
    assert cache.codec(1) is codec  # and records framed with its id use it
    assert cache.latest_for_subject("nobody-value") is None
    with pytest.raises(UnusableSchemaError, match=r"\.proto source"):
        cache.latest_for_subject("proto-value")
    registry.down = True
    with pytest.raises(RegistryUnavailableError):
        cache.latest_for_subject("accounts-value")


def test_a_schema_no_codec_foresaw_is_unknown_not_a_crash(
    registry: FakeRegistry, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a library raises while building a codec makes that schema unknown; the
    other ids of the load are still taken in."""
    import enforcer.formats.avro

    def explodes(*_: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(enforcer.formats.avro, "avro_codec", explodes)
    cache = SchemaCache(registry, clock)
    cache.load([1, 2])
    assert cache.codec(1) is None
    assert cache.unknown_reason(1) == "schema 1 could not be built: RecursionError"
    assert cache.codec(2) is not None


def test_json_schema_references_are_not_read_yet(registry: FakeRegistry, clock: FixedClock) -> None:
    registry.versions[("common", 1)] = RegisteredSchema(30, "JSON", JSON_SCHEMA, ())
    registry.by_id[31] = RegisteredSchema(
        31, "JSON", JSON_SCHEMA, (Reference("common.json", "common", 1),)
    )
    cache = SchemaCache(registry, clock)
    cache.load([31])
    assert (
        cache.unknown_reason(31)
        == "JSON Schema 31 has references, which the enforcer does not read yet"
    )


@pytest.mark.parametrize(
    ("schema_type", "text"),
    [
        (
            "JSON",
            json.dumps(
                {
                    "title": "J",
                    "type": "object",
                    "properties": {
                        "mfa phone": {"type": "string", "confluent:tags": ["PII_PHONE"]}
                    },
                }
            ),
        ),
        (
            "AVRO",
            json.dumps(
                {
                    "type": "record",
                    "name": "A",
                    "fields": [
                        {"name": "contact.email", "type": "string", "confluent:tags": ["x"]}
                    ],
                }
            ),
        ),
    ],
)
def test_a_tagged_field_no_path_can_name_is_an_unusable_schema(
    registry: FakeRegistry, clock: FixedClock, schema_type: str, text: str
) -> None:
    """Its records are ``unknown-schema`` with the reason logged once, and the check at
    start is told it cannot be read (the worker starts), never a PathSyntaxError on every
    record and at start (a worker that crash-loops)."""
    registry.by_id[9] = RegisteredSchema(9, schema_type, text, ())  # type: ignore[arg-type]
    registry.versions[("accounts-value", "latest")] = registry.by_id[9]
    cache = SchemaCache(registry, clock)
    cache.load([9])
    assert cache.codec(9) is None
    assert "no path can write" in (cache.unknown_reason(9) or "")
    with pytest.raises(UnusableSchemaError, match="no path can write"):
        cache.latest_for_subject("accounts-value")
