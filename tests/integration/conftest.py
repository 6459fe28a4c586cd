"""Fixtures for tests against a real Kafka broker and a real schema registry.

One broker serves the whole session: started on first use by :class:`LocalKafka` in a
temporary directory and stopped at the end. Set ``ENFORCER_TEST_BOOTSTRAP`` to use a
broker that is already running instead (``scripts/test.sh`` does), and ``KAFKA_VERSION``
to choose the Kafka release that :class:`LocalKafka` starts.

Likewise one schema registry (Apicurio, Confluent-compatible API) serves the session,
started by :class:`LocalSchemaRegistry` only when a test asks for ``schema_registry_url``;
``ENFORCER_TEST_SCHEMA_REGISTRY_URL`` points the tests at one that runs already.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from enforcer.testing.kafka_broker import DEFAULT_KAFKA_VERSION, LocalKafka
from enforcer.testing.schema_registry import LocalSchemaRegistry
from enforcer.testing.topics import TopicFactory, create_topics, delete_topics, unique_topic_name


def _kafka_version() -> str:
    return os.environ.get("KAFKA_VERSION") or DEFAULT_KAFKA_VERSION


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address (``127.0.0.1:PORT``) of the session's broker."""
    external = os.environ.get("ENFORCER_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    with LocalKafka(tmp_path_factory.mktemp("kafka"), version=_kafka_version()) as kafka:
        yield kafka.bootstrap_servers


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own, for tests that stop, kill or restart it."""
    with LocalKafka(tmp_path / "kafka", version=_kafka_version()) as kafka:
        yield kafka


@pytest.fixture(scope="session")
def schema_registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the session's schema registry, as a Confluent client takes it
    (``http://127.0.0.1:PORT/apis/ccompat/v7``). Storage is in memory and shared by the
    session's tests: use unique subject names (topic names from ``unique_topic_name``)."""
    external = os.environ.get("ENFORCER_TEST_SCHEMA_REGISTRY_URL")
    if external:
        yield external
        return
    with LocalSchemaRegistry(tmp_path_factory.mktemp("schema-registry")) as registry:
        yield registry.url


@pytest.fixture
def private_schema_registry(tmp_path: Path) -> Iterator[LocalSchemaRegistry]:
    """A schema registry of this test's own, for tests that stop, kill or restart it."""
    with LocalSchemaRegistry(tmp_path / "schema-registry") as registry:
        yield registry


@pytest.fixture
async def new_topic(kafka_bootstrap: str) -> AsyncIterator[TopicFactory]:
    """Create topics with unique names on the session broker; delete them afterwards.

    ``name = await new_topic("identity", partitions=3)``
    """
    created: list[str] = []

    async def make(prefix: str = "test", partitions: int = 1) -> str:
        name = unique_topic_name(prefix)
        await create_topics(kafka_bootstrap, [name], partitions)
        created.append(name)
        return name

    yield make
    await delete_topics(kafka_bootstrap, created)
