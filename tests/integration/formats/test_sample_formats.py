"""``enforcer sample --format``: what it registers and writes is read by our codecs
and by confluent-kafka's deserializers alike, with the identifier fields' tags."""

from __future__ import annotations

import base64
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from enforcer.core.clock import FixedClock
from enforcer.demo.formats_sample import FORMATS, RECORD_NAME, sample_contacts
from enforcer.formats.framing import schema_id_of
from enforcer.formats.registry import RegistrySettings, SchemaRegistry
from enforcer.formats.schemas import SchemaCache
from enforcer.testing.topics import unique_topic_name

RECORDS = 40
TAGGED = {
    "two_factor_phone": ("PII_PHONE", "purpose:security.mfa"),
    "recovery_email": ("PII_EMAIL", "purpose:security.account_recovery"),
    "contact_email": ("PII_EMAIL",),
    "device_id": ("PII_DEVICE_ID", "purpose:analytics.reporting"),
}


def _sample(url: str, sample_format: str, subject: str, out: Path) -> list[bytes]:
    done = subprocess.run(
        [sys.executable, "-m", "enforcer.cli", "sample", "--records", str(RECORDS),
         "--format", sample_format, "--schema-registry-url", url, "--subject", subject,
         "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [base64.b64decode(line) for line in out.read_bytes().splitlines()]


@pytest.mark.parametrize("sample_format", FORMATS)
def test_sample_values_read_by_our_codecs_with_their_tags(
    schema_registry_url: str, sample_format: str, tmp_path: Path
) -> None:
    subject = f"{unique_topic_name('sample')}-value"
    values = _sample(schema_registry_url, sample_format, subject, tmp_path / "out.b64")
    assert len(values) == RECORDS
    ids = {schema_id_of(value) for value in values}
    assert len(ids) == 1 and None not in ids

    cache = SchemaCache(
        SchemaRegistry(RegistrySettings(schema_registry_url)),
        FixedClock(datetime(2026, 12, 6, tzinfo=UTC)),
    )
    cache.load(cache.missing(values))
    codec = cache.codec(ids.pop() or 0)
    assert codec is not None
    assert codec.record_name == RECORD_NAME
    assert {path: codec.fields[path].tags for path in TAGGED} == TAGGED
    expected = list(sample_contacts(RECORDS))
    for value, contact in zip(values, expected, strict=True):
        _, view = codec.decode(value[5:])
        for field in ("account_id", "contact_email", "contact_email_purposes"):
            assert view[field] == contact[field]
        assert view.get("two_factor_phone") == contact["two_factor_phone"]


@pytest.mark.parametrize("sample_format", ["avro", "json-schema"])
def test_sample_values_read_by_confluent_deserializers(
    schema_registry_url: str, sample_format: str, tmp_path: Path
) -> None:
    """A client other than ours reads what the sample wrote, by the registered id."""
    topic = unique_topic_name("sample")
    values = _sample(schema_registry_url, sample_format, f"{topic}-value", tmp_path / "o.b64")
    with SchemaRegistryClient({"url": schema_registry_url, "timeout": 10}) as client:
        deserializer: Any = (
            AvroDeserializer(client)
            if sample_format == "avro"
            else JSONDeserializer(None, schema_registry_client=client)
        )
        context = SerializationContext(topic, MessageField.VALUE)
        read = [deserializer(value, context) for value in values]
    expected = list(sample_contacts(RECORDS))
    assert [r["contact_email"] for r in read] == [c["contact_email"] for c in expected]
    assert [r.get("two_factor_phone") for r in read] == [c["two_factor_phone"] for c in expected]
