"""Throughput and CPU from progress samples; end-to-end latency from stamped records.

Throughput. While a pipeline drains its backlog, :class:`ProgressSampler` polls the
sink's log-end offsets (records written, committed or not) and the pipeline's CPU time
every few tens of milliseconds. The rate is taken between the first sample with output
(start-up and the group join excluded) and the first sample at which everything is
written, so the wait for the last commit is excluded too: it is the sustained rate of a
pipeline that keeps up with a stream. With exactly-once, transaction markers take sink
offsets as well; they are spread evenly over the run, so progress is read as a share of
the final offset and scaled to the input count.

Latency. The paced producer stamps each record with its send time
(:data:`.workload.SENT_HEADER`); a ``read_committed`` consumer of the sink, in this
process, notes when each arrives. For exactly-once this includes the wait for the
transaction to commit, as a downstream consumer sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, TopicPartition

from .machine import cpu_seconds
from .workload import SENT_HEADER

# Latency consumer: a fetch returns as soon as data is readable, or after this wait.
# Small, so an idle fetch cannot hold back a record much (Kafka's default is 500 ms).
LATENCY_FETCH_MAX_WAIT_MS = 20


@dataclass(frozen=True)
class Sample:
    """One poll: when (monotonic s), records written to the sink, CPU s of the pipeline."""

    at: float
    written: int
    cpu_s: float | None


@dataclass(frozen=True)
class Throughput:
    """The sustained rate over the measurement window."""

    records_per_s: float | None
    cpu_us_per_record: float | None
    window_s: float
    window_records: float


class ProgressSampler:
    """Polls ``topic``'s log-end offsets and ``pid``'s CPU time every ``every_s``.

    ``async with ProgressSampler(...) as sampler:`` ... ``sampler.samples``.
    """

    def __init__(
        self, bootstrap: str, topic: str, partitions: int, pid: int, *, every_s: float = 0.05
    ) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        self._partitions = [TopicPartition(topic, p) for p in range(partitions)]
        self._pid = pid
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None
        self.samples: list[Sample] = []

    async def __aenter__(self) -> Self:
        await self._consumer.start()
        self._consumer.assign(self._partitions)
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.sample()
        await self._consumer.stop()

    async def sample(self) -> Sample:
        """Take one sample now (also called by the loop)."""
        asked = time.monotonic()
        offsets = await self._consumer.end_offsets(self._partitions)
        answered = time.monotonic()
        sample = Sample((asked + answered) / 2, sum(offsets.values()), cpu_seconds(self._pid))
        self.samples.append(sample)
        return sample

    async def _poll(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self._every_s)


def throughput(samples: Sequence[Sample], *, records: int, partitions: int) -> Throughput:
    """The sustained rate and CPU per record over the samples of one drain.

    ``records`` is the number of input records; ``partitions`` the sink's, which bounds
    the markers the final commit adds after the last record is written.
    """
    final = max((s.written for s in samples), default=0)
    first = next((s for s in samples if s.written > 0), None)
    if first is None:
        return Throughput(None, None, 0.0, 0.0)
    last = next(s for s in samples if s.written >= final - partitions)
    window_s = last.at - first.at
    window_records = records * (last.written - first.written) / final
    if window_s <= 0 or window_records <= 0:
        return Throughput(None, None, window_s, window_records)
    cpu_us = None
    if first.cpu_s is not None and last.cpu_s is not None:
        cpu_us = (last.cpu_s - first.cpu_s) * 1e6 / window_records
    return Throughput(window_records / window_s, cpu_us, window_s, window_records)


def first_output_at(samples: Sequence[Sample]) -> float | None:
    """When the first record reached the sink (monotonic s)."""
    return next((s.at for s in samples if s.written > 0), None)


@dataclass
class Latencies:
    """End-to-end latencies in milliseconds, and how many stamped records never came."""

    ms: list[float] = field(default_factory=list)
    expected: int = 0

    @property
    def missing(self) -> int:
        """Stamped records that did not arrive in time."""
        return max(self.expected - len(self.ms), 0)

    def percentile(self, share: float) -> float | None:
        """Nearest-rank percentile (``share`` in 0..1); ``None`` without samples."""
        if not self.ms:
            return None
        ordered = sorted(self.ms)
        return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


async def measure_latency(
    bootstrap: str,
    topic: str,
    partitions: int,
    produce: Callable[[], Coroutine[Any, Any, None]],
    *,
    expected: int,
    timeout_s: float,
) -> Latencies:
    """Start reading ``topic`` from its end as ``read_committed``, run ``produce``, and
    collect the latency of each stamped record until ``expected`` arrived or time ran out."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        isolation_level="read_committed",
        fetch_max_wait_ms=LATENCY_FETCH_MAX_WAIT_MS,
    )
    await consumer.start()
    result = Latencies(expected=expected)
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_end(*assigned)
        for tp in assigned:  # resolve the end now, before anything stamped is written
            await consumer.position(tp)
        producing = asyncio.create_task(produce())
        deadline = time.monotonic() + timeout_s
        while len(result.ms) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=100)
            now_us = time.time_ns() / 1000
            for batch in batches.values():
                for record in batch:
                    stamp = dict(record.headers).get(SENT_HEADER)
                    if stamp is not None:
                        result.ms.append((now_us - int(stamp)) / 1000)
        await producing
    finally:
        await consumer.stop()
    return result
