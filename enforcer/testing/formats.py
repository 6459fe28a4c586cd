"""What a test of framed traffic needs to check a worker's outputs: the step the worker
runs (the policy with its record reader, every schema the inputs name loaded) and how
to read a value's event id, by which outputs are matched to inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson

from enforcer.core.clock import FixedClock, SystemClock
from enforcer.core.fingerprint import Fingerprinter, key_from_text
from enforcer.core.policy.load import load_policy
from enforcer.core.record_format import Decoded
from enforcer.core.step import Step
from enforcer.formats.reader import FormatReader, build_reader
from enforcer.formats.registry import Reference, RegistrySettings, SchemaRegistry, SchemaType
from enforcer.formats.schemas import SchemaCache

EventIdOf = Callable[[bytes | None], object]


def framed_step(
    registry_url: str, policy: Path, fingerprint_key: str, values: Sequence[bytes | None]
) -> tuple[Step, FormatReader, SchemaCache]:
    """The step a worker with ``policy`` and the registry decides with, the reader in it,
    and the schema cache holding every schema ``values`` name."""
    cache = SchemaCache(
        SchemaRegistry(RegistrySettings(registry_url)),
        FixedClock(datetime(2026, 12, 6, tzinfo=UTC)),
    )
    cache.load(cache.missing(values))
    compiled = load_policy(policy)
    reader = build_reader(compiled, cache)
    assert reader is not None, "a registry always gives a reader"
    fingerprinter = Fingerprinter(key_from_text(fingerprint_key))
    return Step(compiled, fingerprinter, SystemClock(), reader=reader), reader, cache


def event_id_reader(reader: FormatReader, topic: str) -> EventIdOf:
    """A value's event id as the worker reads it (framed, mapped or an identity event)."""

    def event_id(value: bytes | None) -> object:
        read = reader.read(topic, 0, 0, value)
        if isinstance(read, Decoded):
            return read.event.event_id
        if read is None and value:
            try:
                document = orjson.loads(value)
            except orjson.JSONDecodeError:
                return None
            return document.get("event_id") if isinstance(document, dict) else None
        return None

    return event_id


class OneIdRegistry:
    """Stands in for a schema registry where only the ids matter (benchmarks framing
    sample values): every schema registers as id 1
    (:class:`enforcer.demo.formats_sample.Registering`)."""

    def register(
        self,
        subject: str,
        schema_type: SchemaType,
        text: str,
        references: tuple[Reference, ...] = (),
    ) -> int:
        del subject, schema_type, text, references
        return 1

    def latest_version_number(self, subject: str) -> int:
        del subject
        return 1
