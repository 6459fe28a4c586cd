"""`enforcer run` on framed topics, real broker and real registry (docs/formats.md).

Each format's sample account events (Avro, Protobuf, JSON Schema; their schema
registered as ``<topic>-value``, identifier fields tagged), with a record naming a
schema id nobody registered, a body that does not decode, and plain identity events on
the same topic, go through one worker under ``policies/formats.yaml``. Every input has
exactly one outcome, byte for byte what the step with the same reader says (replay
equals live); forwarded records keep their schema id and are read by our codec (and, for
Avro, by confluent-kafka's deserializer), with no identifier given only for security
left in them. A schema registered mid-stream (a second version) is fetched and used.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from enforcer.core.fingerprint import generate_key
from enforcer.core.models import DeadLetterReason
from enforcer.demo.formats_sample import (
    FORMATS,
    FramedSample,
    SampleFormat,
    avro_schema,
    sample_contacts,
)
from enforcer.demo.sample import sample_values
from enforcer.formats.framing import frame, schema_id_of
from enforcer.formats.registry import RegistrySettings, SchemaRegistry
from enforcer.testing.consume import read_committed
from enforcer.testing.formats import event_id_reader, framed_step
from enforcer.testing.worker import (
    Deployment,
    EnforcerTopics,
    check_outcomes,
    end_offsets_of,
    produce,
    wait_for_commits,
)

pytestmark = pytest.mark.timeout(240)

POLICY = Path(__file__).resolve().parents[3] / "policies" / "formats.yaml"
RECORDS = 300
UNREGISTERED_ID = 987_654
SECURITY_ONLY_FIELDS = ("two_factor_phone", "recovery_email")


@pytest.fixture
async def deployment(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    topics = EnforcerTopics.unique("formats")
    with Deployment(
        kafka_bootstrap, topics, f"group-{topics.source}", generate_key(), tmp_path
    ) as created:
        await created.create_topics(partitions=2)
        try:
            yield created
        finally:
            created.close()
            await created.delete_topics()


def _registry(url: str) -> SchemaRegistry:
    return SchemaRegistry(RegistrySettings(url))


async def _run(deployment: Deployment, url: str, values: list[bytes]) -> Any:
    worker = deployment.worker(
        "one",
        {"ENFORCER_POLICY_FILE": str(POLICY), "ENFORCER_SCHEMA_REGISTRY_URL": url},
    )
    worker.start()
    inputs = await produce(deployment.bootstrap, deployment.topics.source, values)
    await wait_for_commits(
        deployment.bootstrap,
        deployment.group_id,
        deployment.topics.source,
        until=end_offsets_of(inputs),
        timeout_s=120,
        alive=[worker],
    )
    assert worker.stop() == 0, worker.log_tail()
    return inputs


@pytest.mark.parametrize("sample_format", FORMATS)
async def test_framed_records_decided_like_the_step_says_schema_id_kept(
    deployment: Deployment, schema_registry_url: str, sample_format: SampleFormat
) -> None:
    source = deployment.topics.source
    sample = FramedSample(sample_format, _registry(schema_registry_url), f"{source}-value")
    framed = [sample.encode(contact) for contact in sample_contacts(RECORDS, seed=11)]
    values = [
        *framed[: RECORDS // 2],
        frame(UNREGISTERED_ID, framed[0][5:]),  # an id nobody registered
        frame(sample.schema_id, b"\x07\xff\xfe not a body"),  # does not decode
        *sample_values(20, seed=3, invalid_share=0.0),  # identity events
        *framed[RECORDS // 2 :],
    ]
    inputs = await _run(deployment, schema_registry_url, values)

    step, reader, cache = framed_step(
        schema_registry_url, POLICY, deployment.fingerprint_key, values
    )
    check = await check_outcomes(
        deployment.bootstrap,
        deployment.topics,
        inputs,
        fingerprint_key=deployment.fingerprint_key,
        step=step,
        event_id_of=event_id_reader(reader, source),
    )
    print(check.summary())
    assert check.problems() == []
    assert all(check.observed[kind] > 0 for kind in ("passed", "redacted", "dropped"))

    dead = await read_committed(
        deployment.bootstrap, deployment.topics.deadletter, expected=2, timeout_s=30
    )
    reasons = sorted(dict(r.headers)["enforcer.error.reason"].decode() for r in dead)
    assert reasons == sorted([DeadLetterReason.UNKNOWN_SCHEMA, DeadLetterReason.UNDECODABLE])

    codec = cache.codec(sample.schema_id)
    assert codec is not None
    forwarded = await read_committed(
        deployment.bootstrap,
        deployment.topics.sink,
        expected=check.sink_records,
        timeout_s=30,
    )
    framed_out = [r.value for r in forwarded if schema_id_of(r.value) is not None]
    assert framed_out and all(schema_id_of(v) == sample.schema_id for v in framed_out)
    for value in framed_out:
        assert value is not None
        _, view = codec.decode(value[5:])
        assert all(view.get(field) is None for field in SECURITY_ONLY_FIELDS)
        assert view["account_id"].startswith("acct-")


async def test_avro_output_read_by_confluent_and_a_schema_registered_mid_stream_is_used(
    deployment: Deployment, schema_registry_url: str
) -> None:
    """Records under a second version of the schema, registered after the worker
    started, are decided like the first; confluent-kafka's Avro deserializer reads every
    forwarded record by its id. A third version that renames a mapped field is checked
    when its first record comes: its records are dead-lettered (schema), none forwarded."""
    source = deployment.topics.source
    registry = _registry(schema_registry_url)
    first = FramedSample("avro", registry, f"{source}-value")
    worker = deployment.worker(
        "one",
        {
            "ENFORCER_POLICY_FILE": str(POLICY),
            "ENFORCER_SCHEMA_REGISTRY_URL": schema_registry_url,
        },
    )
    worker.start()
    contacts = list(sample_contacts(60, seed=5))
    inputs = await produce(deployment.bootstrap, source, [first.encode(c) for c in contacts[:30]])
    await wait_for_commits(
        deployment.bootstrap,
        deployment.group_id,
        source,
        until=end_offsets_of(inputs),
        timeout_s=120,
        alive=[worker],
    )
    # Version 2: a new optional field. Registered now, while the worker runs.
    evolved = avro_schema()
    evolved["fields"].append({"name": "locale", "type": ["null", "string"], "default": None})
    second_id = registry.register(f"{source}-value", "AVRO", json.dumps(evolved))
    assert second_id != first.schema_id
    parsed = fastavro.parse_schema(evolved)

    def encode_v2(contact: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        at = datetime.fromtimestamp(contact["occurred_at"] / 1000, tz=UTC)
        fastavro.schemaless_writer(out, parsed, {**contact, "occurred_at": at, "locale": "en"})
        return frame(second_id, out.getvalue())

    inputs += await produce(deployment.bootstrap, source, [encode_v2(c) for c in contacts[30:]])
    # Version 3 renames the mapped contact_email (untagged now): the mapping no longer
    # finds it, so its records are dead-lettered, never forwarded with the field unjudged.
    renamed = avro_schema()
    for spec in renamed["fields"]:
        if spec["name"] == "contact_email":
            spec["name"] = "email_address"
            del spec["confluent:tags"]
    third_id = registry.register(f"{source}-value", "AVRO", json.dumps(renamed))
    parsed_v3 = fastavro.parse_schema(renamed)

    def encode_v3(contact: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        at = datetime.fromtimestamp(contact["occurred_at"] / 1000, tz=UTC)
        fields = {**contact, "occurred_at": at, "email_address": contact["contact_email"]}
        fastavro.schemaless_writer(out, parsed_v3, fields)
        return frame(third_id, out.getvalue())

    renamed_contacts = contacts[50:]
    inputs += await produce(deployment.bootstrap, source, [encode_v3(c) for c in renamed_contacts])
    await wait_for_commits(
        deployment.bootstrap,
        deployment.group_id,
        source,
        until=end_offsets_of(inputs),
        timeout_s=120,
        alive=[worker],
    )
    assert worker.stop() == 0, worker.log_tail()

    values = [r.value for r in inputs]
    step, reader, _ = framed_step(schema_registry_url, POLICY, deployment.fingerprint_key, values)
    check = await check_outcomes(
        deployment.bootstrap,
        deployment.topics,
        inputs,
        fingerprint_key=deployment.fingerprint_key,
        step=step,
        event_id_of=event_id_reader(reader, source),
    )
    assert check.problems() == []
    assert check.observed["deadlettered"] == len(renamed_contacts)
    forwarded = await read_committed(
        deployment.bootstrap, deployment.topics.sink, expected=check.sink_records, timeout_s=30
    )
    ids = {schema_id_of(r.value) for r in forwarded}
    assert ids == {first.schema_id, second_id}
    dead_letters = await read_committed(
        deployment.bootstrap,
        deployment.topics.deadletter,
        expected=len(renamed_contacts),
        timeout_s=30,
    )
    reasons = {dict(r.headers)["enforcer.error.reason"] for r in dead_letters}
    assert reasons == {DeadLetterReason.SCHEMA.value.encode()}
    for record in dead_letters:
        why = dict(record.headers)["enforcer.error.message"].decode()
        assert f"schema id {third_id}: the field mapping does not fit the schema" in why
        assert "'contact_email' is not a field of the schema" in why
        assert not any(c["contact_email"] in why for c in renamed_contacts)
    context = SerializationContext(source, MessageField.VALUE)
    with SchemaRegistryClient({"url": schema_registry_url, "timeout": 10}) as client:
        deserialize = AvroDeserializer(client)
        read = [deserialize(r.value, context) for r in forwarded]
    assert all(r is not None and r["two_factor_phone"] is None for r in read)
    assert {r.get("locale") for r in read if r is not None} >= {"en"}
