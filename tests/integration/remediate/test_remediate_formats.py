"""``enforcer remediate plan`` over a sink of framed records (docs/formats.md, docs/remediate.md):
with the schema registry it reads them as replay does and plans what replay finds;
without it, it counts them unreadable and plans nothing for them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from enforcer.demo.formats_sample import FramedSample, sample_contacts
from enforcer.formats.registry import RegistrySettings, SchemaRegistry
from enforcer.remediate.history import SinkKind, kind_of
from enforcer.remediate.plan import read_plan
from enforcer.testing.topics import unique_topic_name
from enforcer.testing.worker import (
    Deployment,
    EnforcerTopics,
    end_offsets_of,
    produce,
    wait_for_commits,
)

from .conftest import Cli, read_sink

pytestmark = pytest.mark.timeout(300)

POLICY = Path(__file__).resolve().parents[3] / "policies" / "formats.yaml"
NO_EMAILS = """rules:
  - name: no-email-audiences
    description: Email addresses no longer go to audiences, whatever they were given for.
    when: any-within
    within: [marketing]
    types: [email]
    action: redact
"""


async def test_a_plan_reads_framed_records_with_the_registry(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path, key: str, cli: Cli
) -> None:
    topics = EnforcerTopics.unique("remediate-formats")
    with Deployment(
        kafka_bootstrap, topics, unique_topic_name("remediate-formats-group"), key, tmp_path
    ) as deployment:
        await deployment.create_topics(2)
        registry = SchemaRegistry(RegistrySettings(schema_registry_url))
        sample = FramedSample("avro", registry, f"{topics.source}-value")
        values = [sample.encode(contact) for contact in sample_contacts(150, seed=23)]
        worker = deployment.worker(
            "w1",
            {
                "ENFORCER_POLICY_FILE": str(POLICY),
                "ENFORCER_SCHEMA_REGISTRY_URL": schema_registry_url,
            },
        )
        worker.start()
        inputs = await produce(kafka_bootstrap, topics.source, values)
        await wait_for_commits(
            kafka_bootstrap,
            deployment.group_id,
            topics.source,
            until=end_offsets_of(inputs),
            timeout_s=180,
            alive=[worker],
        )
        assert worker.stop() == 0, worker.log_tail()
    sink = await asyncio.to_thread(read_sink, kafka_bootstrap, topics.sink)
    forwarded = sum(kind_of(r.headers) is SinkKind.FORWARDED for r in sink)
    assert forwarded > 30

    stricter = tmp_path / "no-emails.yaml"
    stricter.write_text(POLICY.read_text().replace("rules:\n", NO_EMAILS, 1))
    common = ["remediate", "plan", "--policy", str(stricter), "--sink-topic", topics.sink]
    path = tmp_path / "plan.json"
    status, _, err = await cli(
        *common, "--schema-registry-url", schema_registry_url, "--out", str(path)
    )
    assert status == 0, err
    plan = read_plan(path)
    assert plan.history.forwarded == forwarded and plan.history.unreadable == 0

    # Every email forwarded was given for advertising, so the new rule stops each one:
    # the plan retracts exactly the identities replay finds.
    out = tmp_path / "replay"
    status, _, err = await cli(
        "replay", "--no-progress", "--topic", topics.sink, "--policy", str(stricter),
        "--schema-registry-url", schema_registry_url, "--out", str(out),
    )  # fmt: skip
    assert status == 0, err
    found = {
        (violation["subject_id"], finding["identifier_type"], finding["fingerprint"])
        for line in (out / "violations.jsonl").read_bytes().splitlines()
        for violation in [json.loads(line)]
        for finding in violation["findings"]
    }
    assert len(found) > 20
    assert {r.identity for r in plan.retractions} == found
    assert plan.exposed == len(found) and plan.by_rule == {"no-email-audiences": len(found)}

    # Without the registry the framed records cannot be read: counted, never guessed at.
    path = tmp_path / "blind.json"
    status, _, err = await cli(*common, "--out", str(path))
    assert status == 0, err
    blind = read_plan(path)
    assert blind.history.unreadable == forwarded and blind.retractions == ()
    assert f"{forwarded:,} forwarded records could not be read: framed records" in err
    assert "need --schema-registry-url" in err
