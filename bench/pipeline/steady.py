"""The steady-state rows of exposure (docs/benchmarks.md, "Exposure: on vs off").

The ``enforcer-exposure`` row starts on an empty exposure topic, on a stream where
nearly every record is its subject's first: every forwarded identifier is new, so it
is fingerprinted, merged and written. That is a deployment turning exposure on, the
worst case. The steady state is the other end: accounts seen again, bringing back the
identifiers they were forwarded before.

- The stream: the common backlog and latency records with each account's identifiers
  held stable (:func:`.workload.with_stable_identifiers`), the same for both rows.
- ``enforcer-steady``: ``enforcer run`` without exposure on that stream (the baseline).
- ``enforcer-exposure-steady``: ``enforcer run`` keeping exposure on that stream, its
  exposure topic seeded beforehand with what exposure holds once the same events have
  been forwarded (:func:`seed_exposure`), under the same fingerprint key, sink topic and
  policy as the measured worker. The worker is a fresh process (its caches cold); its
  clock starts once it has logged the restore of every exposure partition, as the
  ledger row's does. What it wrote to exposure is read from its ``/metrics``
  (``enforcer_exposure_writes_total``): near 0, else the seed was not what it
  decides.

The seed is written by the worker's own code: a ``Step`` deciding with exposure, and
:class:`enforcer.live.exposure.LiveExposure` merging each forwarded outcome and giving
the records its transaction would write (:meth:`~LiveExposure.pending_writes`), at
the time of the seeding. An exposed identifier forwarded again is written only on a
later UTC day (docs/exposure.md, "When it is written"): a run that crosses midnight
UTC writes each subject once more.
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client.parser import text_string_to_metric_families

from enforcer.core.clock import SystemClock, rfc3339
from enforcer.core.fingerprint import Fingerprinter, key_from_text
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, Source, Step
from enforcer.live.exposure import RESTORED_LOG, LiveExposure

from .formats import Variant
from .outcomes import json_event_id
from .workload import Record, forwarded_by_enforcer, with_stable_identifiers

EXPOSURE_WRITES = "enforcer_exposure_writes_total"
"""The worker's count of exposure records written (committed)."""

_RESTORED = re.compile(
    re.escape(RESTORED_LOG)
    + r": (?P<topic>\S+)\[(?P<partition>\d+)\], (?P<records>\d+) record\(s\), "
    r"(?P<identifiers>\d+) identifier\(s\) in (?P<seconds>[\d.]+)s"
)


def steady_variant(backlog: Sequence[Record], paced: Sequence[Record]) -> Variant:
    """What both steady rows drain: ``backlog`` and ``paced`` with each account's
    identifiers stable across the two (the latency phase's accounts seen in the
    backlog bring back the same identifiers)."""
    steady = with_stable_identifiers([*backlog, *paced])
    steady_paced = steady[len(backlog) :]
    return Variant(
        backlog=steady[: len(backlog)],
        paced=steady_paced,
        paced_forwarded=forwarded_by_enforcer(steady_paced),
        env={},
        event_id_of=json_event_id,
    )


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed_exposure` wrote."""

    records: int
    """Exposure records (one per subject with something forwarded)."""
    identifiers: int
    """Exposed identifiers they hold."""


def exposure_seed(
    records: Sequence[Record],
    *,
    exposure_topic: str,
    source_topic: str,
    sink_topic: str,
    fingerprint_key: str,
    partitions: int,
) -> tuple[list[tuple[int, bytes | None, bytes | None]], int]:
    """The exposure records (partition, key, value) a worker with ``fingerprint_key``
    and the default policy writes once it has forwarded ``records`` (read from
    ``source_topic``, where the producer's default partitioner put them) to
    ``sink_topic``, and the identifiers they hold."""
    policy = load_policy(None)
    fingerprinter = Fingerprinter(key_from_text(fingerprint_key))
    step = Step(policy, fingerprinter, SystemClock(), exposure=True)
    exposure = LiveExposure(
        exposure_topic,
        source_topic,
        sink_topic,
        fingerprinter.key_id,
        policy,
        policy.ledger_mode(False),
        lambda _: None,
        time.monotonic,
    )
    partitioner = DefaultPartitioner()
    every = list(range(partitions))
    at = rfc3339(SystemClock().now())
    for offset, record in enumerate(records):
        partition = partitioner(record.key, every, every)
        outcome = step(
            InputRecord(record.key, record.value, (), Source(source_topic, partition, offset))
        )
        if outcome.forwarded_identifiers:  # as the engine does
            exposure.forwarded(outcome, at)
    writes = exposure.pending_writes()
    exposure.committed()
    seed = [(write.partition, write.key, write.value) for write in writes]
    return seed, exposure.stats.identifiers


async def seed_exposure(
    bootstrap: str,
    records: Sequence[Record],
    *,
    exposure_topic: str,
    source_topic: str,
    sink_topic: str,
    fingerprint_key: str,
    partitions: int,
) -> Seeded:
    """Write :func:`exposure_seed` to ``exposure_topic``, each record to its subject's
    source partition."""
    seed, identifiers = exposure_seed(
        records,
        exposure_topic=exposure_topic,
        source_topic=source_topic,
        sink_topic=sink_topic,
        fingerprint_key=fingerprint_key,
        partitions=partitions,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        deliveries = [
            await producer.send(exposure_topic, value=value, key=key, partition=partition)
            for partition, key, value in seed
        ]
        for delivery in deliveries:
            await delivery
    finally:
        await producer.stop()
    return Seeded(len(seed), identifiers)


@dataclass(frozen=True)
class RestoredExposure:
    """One ``exposure restored`` log line."""

    partition: int
    records: int
    identifiers: int
    seconds: float


def restored_exposure(log_path: Path | None) -> list[RestoredExposure]:
    """The ``exposure restored`` lines of a worker's log, in order."""
    if log_path is None or not log_path.exists():
        return []
    return [
        RestoredExposure(
            int(m["partition"]), int(m["records"]), int(m["identifiers"]), float(m["seconds"])
        )
        for m in _RESTORED.finditer(log_path.read_text(errors="replace"))
    ]


def scrape_exposure_writes(url: str) -> int | None:
    """The worker's ``enforcer_exposure_writes_total`` at ``url`` (blocking); ``None``
    when it has none."""
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (loopback http)
        return exposure_writes(answer.read().decode())


def exposure_writes(text: str) -> int | None:
    """:func:`scrape_exposure_writes` of a Prometheus text exposition."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == EXPOSURE_WRITES:
                return int(sample.value)
    return None
