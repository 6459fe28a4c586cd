"""The framed sample: one story, three schemas that hold it, identifier fields tagged."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import fastavro
import jsonschema
import pytest

from enforcer.demo.formats_sample import (
    RECORD_NAME,
    avro_schema,
    json_schema,
    protobuf_file,
    sample_contacts,
)

IDENTIFIER_FIELDS = {"two_factor_phone", "recovery_email", "contact_email", "device_id"}


def test_the_same_seed_gives_the_same_contacts_and_every_record_has_an_email() -> None:
    first, again = list(sample_contacts(50, seed=7)), list(sample_contacts(50, seed=7))
    assert first == again
    assert first != list(sample_contacts(50, seed=8))
    assert all(contact["contact_email"] and contact["contact_email_purposes"] for contact in first)
    # Both halves of the story are there: security-only numbers and advertising consent.
    assert any(contact["two_factor_phone"] for contact in first)
    assert any("marketing.advertising" in c["contact_email_purposes"] for c in first)


def _avro_round_trip(contact: dict[str, Any]) -> dict[str, Any]:
    schema = fastavro.parse_schema(avro_schema())
    out = io.BytesIO()
    at = datetime.fromtimestamp(contact["occurred_at"] / 1000, tz=UTC)
    fastavro.schemaless_writer(out, schema, {**contact, "occurred_at": at})
    out.seek(0)
    read = fastavro.schemaless_reader(out, schema, None)
    assert isinstance(read, dict)
    return read


@pytest.mark.parametrize("contact", list(sample_contacts(20, seed=3)))
def test_every_sample_fits_the_avro_and_json_schemas(contact: dict[str, Any]) -> None:
    read = _avro_round_trip(contact)
    assert int(read["occurred_at"].timestamp() * 1000) == contact["occurred_at"]
    assert {k: v for k, v in read.items() if k != "occurred_at"} == {
        k: v for k, v in contact.items() if k != "occurred_at"
    }
    present = {k: v for k, v in contact.items() if v is not None}
    jsonschema.validate(present, json_schema())


def test_the_identifier_fields_and_only_they_carry_tags_in_every_schema() -> None:
    fields = avro_schema()["fields"]
    avro_tagged = {f["name"]: f["confluent:tags"] for f in fields if "confluent:tags" in f}
    json_tagged = {
        name: prop["confluent:tags"]
        for name, prop in json_schema()["properties"].items()
        if "confluent:tags" in prop
    }
    file = protobuf_file()
    proto_tagged = {field.name for field in file.message_type[0].field if field.options.ByteSize()}
    assert set(avro_tagged) == set(json_tagged) == proto_tagged == IDENTIFIER_FIELDS
    assert avro_tagged == json_tagged
    assert avro_tagged["two_factor_phone"] == ["PII_PHONE", "purpose:security.mfa"]
    assert avro_tagged["contact_email"] == ["PII_EMAIL"]
    assert json_schema()["title"] == RECORD_NAME
    assert f"{file.package}.{file.message_type[0].name}" == RECORD_NAME
