"""A field mapping that does not fit the source topic's registered schema stops
`enforcer run` before it starts: exit 2, one line per problem naming the policy file,
the place in it and the problem (docs/formats.md: "Checked at start"). `enforcer policy
check` with a registry makes the same check before a deployment."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from enforcer.cli import main
from enforcer.core.fingerprint import generate_key
from enforcer.demo.formats_sample import FramedSample
from enforcer.formats.registry import RegistrySettings, SchemaRegistry
from enforcer.testing.topics import unique_topic_name
from enforcer.testing.worker import ASSIGNED, Deployment, EnforcerTopics

pytestmark = pytest.mark.timeout(120)

POLICY = Path(__file__).resolve().parents[3] / "policies" / "formats.yaml"


async def test_a_mapping_path_the_schema_lacks_refuses_to_start(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path
) -> None:
    topics = EnforcerTopics.unique("mapcheck")
    registry = SchemaRegistry(RegistrySettings(schema_registry_url))
    FramedSample("avro", registry, f"{topics.source}-value")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(POLICY.read_text().replace("path: contact_email,", "path: contact_emial,"))
    env = {"ENFORCER_SCHEMA_REGISTRY_URL": schema_registry_url}
    with Deployment(
        kafka_bootstrap, topics, unique_topic_name("mapcheck-group"), generate_key(), tmp_path
    ) as deployment:
        await deployment.create_topics(1)
        try:
            refused = deployment.worker("refused", {**env, "ENFORCER_POLICY_FILE": str(wrong)})
            refused.start()
            assert await asyncio.to_thread(refused.wait_exit, 60) == 2, refused.log_tail()
            lines = [line for line in refused.log_tail(50).splitlines() if str(wrong) in line]
            assert len(lines) == 1, refused.log_tail()
            assert "at formats.mappings[0].identifiers[0].path" in lines[0]
            assert "contact_emial" in lines[0] and "com.example.identity.AccountContact" in lines[0]
            assert "Traceback" not in refused.log_tail(50)

            # The shipped mapping fits the same schema: the worker starts.
            fits = deployment.worker("fits", {**env, "ENFORCER_POLICY_FILE": str(POLICY)})
            fits.start()
            await fits.wait_for_log(ASSIGNED)
            assert fits.stop() == 0, fits.log_tail()
        finally:
            await deployment.delete_topics()


def test_policy_check_makes_the_same_check_against_the_registry(
    schema_registry_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = unique_topic_name("mapcheck-cli")
    registry = SchemaRegistry(RegistrySettings(schema_registry_url))
    schema_id = FramedSample("avro", registry, f"{source}-value").schema_id
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(POLICY.read_text().replace("path: contact_email,", "path: contact_emial,"))
    flags = ["--source-topic", source, "--schema-registry-url", schema_registry_url]

    assert main(["policy", "check", str(POLICY), *flags]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        f"{POLICY}: topic {source}: the field mappings fit the latest schema of "
        f"{source}-value (schema id {schema_id})"
    ) in out
    # The plain JSON mapping's own topic has no schema registered: said, not refused.
    assert any(
        line.startswith(f"{POLICY}: topic identity.accounts: no schema registered") for line in out
    ), out

    assert main(["policy", "check", str(wrong), *flags]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if str(wrong) in line]
    assert len(lines) == 1, err
    assert "at formats.mappings[0].identifiers[0].path" in lines[0]
    assert "contact_emial" in lines[0] and "com.example.identity.AccountContact" in lines[0]
    assert "Traceback" not in err
