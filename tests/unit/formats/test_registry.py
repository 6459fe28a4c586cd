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
    ],
)
def test_an_answer_no_registry_would_give_is_an_outage_not_a_crash(body: Any) -> None:
    """A schema without a whole-number id, or with references that name no subject
    and version: a registry (or a proxy) not working as one, as a body that is not JSON
    is; before, a KeyError, ValueError or TypeError escaped (``internal error``)."""
    with fake_registry() as registry:
        registry.latest("users-value", 200, body)
        client = SchemaRegistry(RegistrySettings(registry.url))
        with pytest.raises(RegistryUnavailableError) as raised:
            client.subject_version("users-value")
        assert registry.url in str(raised.value) and "\n" not in str(raised.value)
