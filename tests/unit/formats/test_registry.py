"""The registry client's answers (docs/formats.md: running with a schema registry): a
subject or schema it does not have is ``None``; a registry that does not answer, or
answers as no registry would, is :class:`RegistryUnavailableError`, one line, never
another exception."""

from __future__ import annotations

from typing import Any

import pytest

from enforcer.formats.registry import RegistrySettings, RegistryUnavailableError, SchemaRegistry

from .fake_registry import avro_record, fake_registry

SCHEMA = avro_record("Account", "id", "at", "email")


def test_the_latest_version_of_a_subject() -> None:
    with fake_registry() as registry:
        registry.latest("users-value", 200, {"id": 3, "version": 1, "schema": SCHEMA})
        client = SchemaRegistry(RegistrySettings(registry.url))
        found = client.subject_version("users-value")
        assert found is not None and (found.schema_id, found.text) == (3, SCHEMA)
        assert client.subject_version("other-value") is None


@pytest.mark.parametrize(
    "body",
    [
        {"version": 1, "schema": SCHEMA},
        {"id": "3", "version": 1, "schema": SCHEMA},
        {"id": None, "version": 1, "schema": SCHEMA},
        {"id": True, "version": 1, "schema": SCHEMA},
        {"id": 3, "version": 1, "schema": SCHEMA, "references": [{"name": "x"}]},
        {
            "id": 3,
            "version": 1,
            "schema": SCHEMA,
            "references": [{"name": "x", "subject": "s", "version": "v"}],
        },
        {"id": 3, "version": 1, "schema": SCHEMA, "references": "x"},
        {"id": 3, "version": 1, "schema": SCHEMA, "references": [7]},
        {"id": 3, "version": 1, "schema": SCHEMA, "schemaType": ["AVRO"]},
        {"id": 3, "version": 1, "schema": SCHEMA, "schemaType": {"name": "AVRO"}},
        {"id": 3, "version": 1, "schema": SCHEMA, "schemaType": 7},
    ],
)
def test_an_answer_no_registry_would_give_is_an_outage_not_a_crash(body: Any) -> None:
    """A schema without a whole-number id, with references that name no subject and
    version, or with a type that is not a name: a registry (or a proxy) not working as
    one, as a body that is not JSON is; before, a KeyError, ValueError or TypeError
    escaped (``internal error``), for a type given as a list or an object too."""
    with fake_registry() as registry:
        registry.latest("users-value", 200, body)
        client = SchemaRegistry(RegistrySettings(registry.url))
        with pytest.raises(RegistryUnavailableError) as raised:
            client.subject_version("users-value")
        assert registry.url in str(raised.value) and "\n" not in str(raised.value)


def test_a_schema_of_a_type_the_enforcer_does_not_read_is_unusable_not_an_outage() -> None:
    """A registry may hold other types (Apicurio: XML, GraphQL, ...). A record framed
    with such a schema is bad input: its schema is unknown (the record a dead letter,
    ``unknown-schema``), and the worker never waits for the registry over it (an outage
    would stop it once the registry's deadline passed)."""
    from enforcer.core.clock import FixedClock
    from enforcer.formats.schema_error import UnusableSchemaError
    from enforcer.formats.schemas import SchemaCache

    from ..conftest import NOW

    with fake_registry() as registry:
        xml = {"schema": "<account/>", "schemaType": "XML"}
        registry.answers["/schemas/ids/5"] = (200, xml)
        registry.latest("users-value", 200, {"id": 5, "version": 1, **xml})
        client = SchemaRegistry(RegistrySettings(registry.url))
        with pytest.raises(UnusableSchemaError, match="a type the enforcer cannot read: 'XML'"):
            client.schema_by_id(5)
        with pytest.raises(UnusableSchemaError):
            client.subject_version("users-value")
        cache = SchemaCache(client, FixedClock(NOW))
        cache.load([5])  # no outage raised
        assert cache.codec(5) is None
        assert cache.missing([b"\x00\x00\x00\x00\x05{}"]) == set()  # known: not asked again
