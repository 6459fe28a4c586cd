"""Helpers for the remediation tests against the session's broker: the command line in
a process of its own, a sink topic read whole, the fixed policy."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from enforcer.core.fingerprint import generate_key
from enforcer.remediate.history import SinkKind, SinkRecord, kind_of, read_retraction
from enforcer.replay.sources.kafka_topic import TopicReader, parse_end, parse_start
from enforcer.testing.topics import TopicFactory, create_topics, delete_topics, unique_topic_name

FIXED_POLICY = """
format: 1
mode: enforce
namespace_sets:
  security: [security]
rules:
  - name: no-phone-audiences
    description: Phone numbers no longer go to audiences, whatever they were given for.
    when: any-within
    within: [marketing]
    types: [phone]
    action: redact
  - name: security-only-purpose
    when: all-within
    within: security
    action: redact
  - name: missing-purpose
    when: no-purpose
    action: redact
destinations:
  audience-building:
    allow: [marketing.advertising]
    action: redact
    rule: purpose-not-allowed
"""
"""The built-in policy, and no phone number for audiences any more: the policy change a
remediation follows."""


@dataclass(frozen=True)
class Cli:
    """Runs ``python -m enforcer.cli`` with a clean environment of its own."""

    env: dict[str, str]

    async def __call__(self, *argv: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "enforcer.cli",
            *argv,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()


@pytest.fixture
def key() -> str:
    return generate_key()


@pytest.fixture
def cli(kafka_bootstrap: str, key: str) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    env.update(ENFORCER_BOOTSTRAP_SERVERS=kafka_bootstrap, ENFORCER_FINGERPRINT_KEY=key)
    return Cli(env)


@pytest.fixture
async def compacted_topic(kafka_bootstrap: str) -> AsyncIterator[TopicFactory]:
    """Like ``new_topic``, compacted (``cleanup.policy=compact``): an exposure topic."""
    created: list[str] = []

    async def make(prefix: str = "test", partitions: int = 1) -> str:
        name = unique_topic_name(prefix)
        await create_topics(
            kafka_bootstrap, [name], partitions, configs={"cleanup.policy": "compact"}
        )
        created.append(name)
        return name

    yield make
    await delete_topics(kafka_bootstrap, created)


@pytest.fixture
def fixed_policy(tmp_path: Path) -> Path:
    path = tmp_path / "fixed.yaml"
    path.write_text(FIXED_POLICY)
    return path


def read_sink(bootstrap: str, topic: str) -> list[SinkRecord]:
    """Every committed record of ``topic`` as it stands (read_committed, no group)."""
    with asyncio.Runner() as runner:
        reader = TopicReader(runner, bootstrap, topic, parse_start("earliest"), parse_end("latest"))
        try:
            reader.open()
            return [
                SinkRecord(m.key, m.value, tuple(m.headers), m.partition, m.offset, m.timestamp)
                for m in reader.messages()
            ]
        finally:
            reader.close()


async def plan_retractions_in(
    bootstrap: str, topic: str, plan_id: str
) -> Counter[tuple[str, str, str]]:
    """How many times the sink holds each retraction of the plan (committed only)."""
    found: Counter[tuple[str, str, str]] = Counter()
    for record in await asyncio.to_thread(read_sink, bootstrap, topic):
        if kind_of(record.headers) is not SinkKind.RETRACTION:
            continue
        retraction = read_retraction(record.value)
        if retraction is not None and retraction.plan_id == plan_id:
            found[retraction.identity] += 1
            body = orjson.loads(record.value or b"")["retraction"]
            assert body["reason"] == "remediated"
    return found
