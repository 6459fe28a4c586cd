"""The formats rows: ``enforcer run`` under ``policies/formats.yaml`` with a schema
registry, on the account events of ``enforcer sample --format`` (docs/formats.md), once
written as identity events (``identifiers[]``, the core's own path) and once framed in
Avro through the registry (read by the policy's mapping and the schema's tags): the same
events, the same decisions, in the same run (docs/benchmarks.md: "Formats").

The registry is a local Apicurio (deploy/registry/registry.sh) on loopback, with its own
state directory under the run's work directory, started for the run and stopped after.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enforcer.core.step import InputRecord, Source
from enforcer.demo.formats_sample import FramedSample, sample_contacts
from enforcer.formats.registry import RegistrySettings, SchemaRegistry

from ..formats_step import POLICY, codec_of, identity_event, new_step
from .outcomes import json_event_id
from .processes import ENFORCER_AVRO, ENFORCER_CONTACTS
from .workload import BACKLOG_SEED, PACED_SEED, Record

SUBJECT = "bench-contacts-value"


@dataclass(frozen=True)
class Variant:
    """What a formats row drains instead of the common workload."""

    backlog: Sequence[Record]
    paced: Sequence[Record]
    paced_forwarded: int
    """How many of ``paced`` the policy forwards (the latency phase waits for these)."""
    env: Mapping[str, str]
    """The worker's settings: the formats policy and the registry."""
    event_id_of: Callable[[bytes | None], object]
    """A value's event id, for the outcome check."""


def variants(registry_url: str, records: int, paced: int) -> dict[str, Variant]:
    """The two rows' workloads: the Avro schema registered in the registry at
    ``registry_url``, ``records`` account events for the backlog and ``paced`` for the
    latency phase, each as identity events and as framed Avro."""
    sample = FramedSample("avro", SchemaRegistry(RegistrySettings(registry_url)), SUBJECT)
    codec = codec_of("avro", sample.schema_id)
    env = {"ENFORCER_POLICY_FILE": str(POLICY), "ENFORCER_SCHEMA_REGISTRY_URL": registry_url}
    backlog = list(sample_contacts(records, seed=BACKLOG_SEED))
    latency = list(sample_contacts(paced, seed=PACED_SEED))

    def avro_event_id(value: bytes | None) -> object:
        if not value or value[0] != 0:
            return None
        try:
            _, view = codec.decode(value[5:])
        except Exception:  # not this schema's: an output the check counts as unexpected
            return None
        return view.get("event_id") if isinstance(view, dict) else None

    found = {}
    for name, encode, event_id_of, step_codec in (
        (ENFORCER_CONTACTS, identity_event, None, None),
        (ENFORCER_AVRO, sample.encode, avro_event_id, codec),
    ):
        paced_records = _records(latency, encode)
        found[name] = Variant(
            backlog=_records(backlog, encode),
            paced=paced_records,
            paced_forwarded=_forwarded(paced_records, step_codec),
            env=env,
            event_id_of=event_id_of or json_event_id,
        )
    return found


def _records(contacts: Sequence[dict[str, Any]], encode: Callable[[Any], bytes]) -> list[Record]:
    return [Record(str(c["account_id"]).encode(), encode(c)) for c in contacts]


def _forwarded(records: Sequence[Record], codec: Any) -> int:
    step = new_step(codec)
    return sum(
        step(InputRecord(r.key, r.value, (), Source("bench", 0, i))).forward_value is not None
        for i, r in enumerate(records)
    )


def registry_dir(work_dir: Path) -> Path:
    """Where the run's registry keeps its configuration and logs."""
    return work_dir / "registry"
