"""One pipeline configuration, start to finish.

1. Create the topics and write the backlog (the same records for every configuration);
   for the enforcer with a ledger, first the ledger topic (co-partitioned, compacted).
2. Start the pipeline process; sample the sink and the process's CPU until the group
   has committed every input offset: records/s and CPU-µs per record (:mod:`.measure`).
   With a ledger, the window starts only once the worker has logged the restore of
   every ledger partition: the row measures decisions with lookups, not the restore.
   For ``enforcer run``, its garbage collector's counters are read then (:mod:`.gc_metrics`).
   The steady-state exposure row (:mod:`.steady`) has its exposure topic seeded before
   the worker starts, and its window starts once every exposure partition is restored;
   the exposure rows report what the worker wrote to exposure.
3. With the pipeline idle and caught up, write stamped records at a fixed rate and
   read the sink as ``read_committed``: end-to-end latency p50/p99.
4. Once the group has committed those too, the independent check: every input has
   exactly one outcome in the outputs (:mod:`.outcomes`).
5. Stop the pipeline (SIGTERM) and delete the topics.

With repetitions, the latency phase runs in the first only, and
:func:`best_of` keeps the fastest drain: background load only ever slows a run down,
so the fastest is the one least disturbed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CoordinatorLoadInProgressError, GroupCoordinatorNotAvailableError

from enforcer.core.fingerprint import generate_key
from enforcer.testing.consume import end_offsets
from enforcer.testing.topics import create_topics, delete_topics, unique_topic_name
from enforcer.testing.worker import EnforcerTopics

from .formats import Variant
from .gc_metrics import metrics_url, scrape_gc
from .ledger import LEDGER_TOPIC_CONFIG, restored_partitions
from .machine import load_average
from .measure import (
    Latencies,
    ProgressSampler,
    Sample,
    first_output_at,
    measure_latency,
    throughput,
)
from .outcomes import OutcomeCount, count_outcomes
from .processes import (
    DECIDING_PIPELINES,
    ENFORCER_EXPOSURE_STEADY,
    ENFORCER_LEDGER,
    ENFORCERS,
    EXPOSURE_PIPELINES,
    NO_GUARANTEE,
    Batching,
    Pipeline,
    PipelineConfig,
    start_pipeline,
)
from .profile import Profiler
from .steady import Seeded, restored_exposure, scrape_exposure_writes, seed_exposure
from .workload import Record, produce_backlog, produce_paced

_T = TypeVar("_T")


class PipelineFailedError(RuntimeError):
    """The pipeline exited or did not finish its backlog in time (the log tail is attached)."""


@dataclass(frozen=True)
class Stage:
    """What every configuration of a run shares."""

    bootstrap: str
    partitions: int
    backlog: Sequence[Record]
    paced: Sequence[Record]
    paced_per_s: float
    paced_forwarded_by_enforcer: int
    work_dir: Path
    batching: Batching = field(default_factory=Batching)
    drain_timeout_s: float = 300.0
    profile_dir: Path | None = None
    ledger: Sequence[Record] = ()
    """The purpose ledger of the enforcer + ledger row (one record per subject)."""
    paced_forwarded_with_ledger: int = 0
    variants: Mapping[str, Variant] = field(default_factory=dict)
    """The formats rows' own workloads, by pipeline (:mod:`.formats`)."""

    def backlog_of(self, pipeline: str) -> Sequence[Record]:
        """What ``pipeline`` drains."""
        variant = self.variants.get(pipeline)
        return variant.backlog if variant is not None else self.backlog


LATENCY_KEYS = ("latency_p50_ms", "latency_p99_ms", "latency_records", "latency_missing")
ATTEMPT_KEYS = ("records_per_s", "cpu_us_per_record", "window_s", "load_average_1m", "outcomes")


async def run_config(
    config: PipelineConfig, stage: Stage, *, latency: bool = True
) -> dict[str, Any]:
    """Measure ``config`` on ``stage`` (its latency too, unless told not to); return its
    result row."""
    topics = EnforcerTopics.unique(f"bench-{config.slug}")
    ledger_topic = None
    if config.pipeline == ENFORCER_LEDGER:
        ledger_topic = unique_topic_name(f"bench-{config.slug}-ledger")
        await create_topics(
            stage.bootstrap, [ledger_topic], stage.partitions, configs=LEDGER_TOPIC_CONFIG
        )
    exposure_topic = None
    if config.pipeline in EXPOSURE_PIPELINES:
        # Empty at the start (as for a deployment that turns exposure on), or seeded
        # below (the steady state).
        exposure_topic = unique_topic_name(f"bench-{config.slug}-exposure")
        await create_topics(
            stage.bootstrap, [exposure_topic], stage.partitions, configs=LEDGER_TOPIC_CONFIG
        )
    await create_topics(stage.bootstrap, topics.all(), stage.partitions)
    own = [*filter(None, [ledger_topic, exposure_topic])]
    try:
        if ledger_topic is not None:
            await produce_backlog(stage.bootstrap, ledger_topic, stage.ledger)
        await produce_backlog(stage.bootstrap, topics.source, stage.backlog_of(config.pipeline))
        key, seeded = generate_key(), None
        if config.pipeline == ENFORCER_EXPOSURE_STEADY:
            assert exposure_topic is not None
            seeded = await _seed(stage, config, topics, exposure_topic, key)
        row = await _measure(
            config,
            stage,
            topics,
            ledger_topic,
            latency=latency,
            exposure_topic=exposure_topic,
            fingerprint_key=key,
        )
        if seeded is not None:
            row["exposure"].update(
                seeded_records=seeded.records, seeded_identifiers=seeded.identifiers
            )
        return row
    finally:
        await delete_topics(stage.bootstrap, [*topics.all(), *own])


async def _seed(
    stage: Stage, config: PipelineConfig, topics: EnforcerTopics, exposure_topic: str, key: str
) -> Seeded:
    """Exposure as the row's stream (backlog and latency records) leaves it once
    forwarded, under the worker's key, sink and policy (:func:`.steady.seed_exposure`)."""
    variant = stage.variants[config.pipeline]
    return await seed_exposure(
        stage.bootstrap,
        [*variant.backlog, *variant.paced],
        exposure_topic=exposure_topic,
        source_topic=topics.source,
        sink_topic=topics.sink,
        fingerprint_key=key,
        partitions=stage.partitions,
    )


async def _measure(
    config: PipelineConfig,
    stage: Stage,
    topics: EnforcerTopics,
    ledger_topic: str | None,
    *,
    latency: bool,
    exposure_topic: str | None = None,
    fingerprint_key: str | None = None,
) -> dict[str, Any]:
    ends = await end_offsets(stage.bootstrap, topics.source)
    group = unique_topic_name(f"bench-{config.slug}")
    variant = stage.variants.get(config.pipeline)
    started = time.monotonic()
    pipeline = start_pipeline(
        config,
        bootstrap=stage.bootstrap,
        topics=topics,
        group=group,
        work_dir=stage.work_dir,
        batching=stage.batching,
        ledger_topic=ledger_topic,
        enforcer_env=variant.env if variant is not None else None,
        exposure_topic=exposure_topic,
        fingerprint_key=fingerprint_key,
    )
    try:
        pid = pipeline.pid
        assert pid is not None
        restored = _restore_watch(stage, config, pipeline)
        async with ProgressSampler(stage.bootstrap, topics.sink, stage.partitions, pid) as sampler:
            profiling = _profile_when_output(stage, config, sampler, pid)
            try:
                await wait_until_committed(
                    stage.bootstrap, group, topics.source, ends, pipeline, stage.drain_timeout_s
                )
                committed = time.monotonic()
            finally:
                await _stop_profiling(profiling)
        gc = await _gc_work(config, pipeline)
        exposure = None if exposure_topic is None else {"writes_drain": await _writes(pipeline)}
        samples: Sequence[Sample] = sampler.samples
        ledger: dict[str, Any] | None = None
        if restored is not None:
            restored_at = await restored
            # The clock starts at the first sample taken once every partition is restored.
            samples = [s for s in sampler.samples if s.at >= restored_at]
            facts = _restore_facts(sampler.samples, samples, restored_at - started)
            if ledger_topic is not None:
                ledger = {**_ledger_facts(stage, pipeline), **facts}
            elif exposure is not None:
                exposure.update(_exposure_facts(stage, pipeline), **facts)
        records = len(stage.backlog_of(config.pipeline))
        rate = throughput(samples, records=records, partitions=stage.partitions)
        first_output = first_output_at(sampler.samples) or committed
        latencies = (
            Latencies()
            if not latency
            else await measure_latency(
                stage.bootstrap,
                topics.sink,
                stage.partitions,
                lambda: produce_paced(
                    stage.bootstrap,
                    topics.source,
                    variant.paced if variant is not None else stage.paced,
                    per_second=stage.paced_per_s,
                ),
                expected=(
                    variant.paced_forwarded
                    if variant is not None
                    else stage.paced_forwarded_with_ledger
                    if config.pipeline == ENFORCER_LEDGER
                    else stage.paced_forwarded_by_enforcer
                    if config.pipeline in DECIDING_PIPELINES
                    else len(stage.paced)
                ),
                timeout_s=len(stage.paced) / stage.paced_per_s + 3 * config.commit_interval + 20,
            )
        )
        # Everything the latency phase wrote must be committed too before the check.
        await wait_until_committed(
            stage.bootstrap,
            group,
            topics.source,
            await end_offsets(stage.bootstrap, topics.source),
            pipeline,
            stage.drain_timeout_s,
        )
        outcomes = await _check(config, stage, topics, variant)
        if exposure is not None:
            exposure["writes"] = await _writes(pipeline)
    finally:
        status = await asyncio.to_thread(stop_pipeline, pipeline)
    row: dict[str, Any] = {
        "pipeline": config.pipeline,
        "guarantee": config.guarantee,
        "commit_interval_s": config.commit_interval,
        "records_per_s": _round(rate.records_per_s),
        "cpu_us_per_record": _round(rate.cpu_us_per_record),
        "latency_p50_ms": _round(latencies.percentile(0.50)),
        "latency_p99_ms": _round(latencies.percentile(0.99)),
        "window_s": round(rate.window_s, 3),
        "window_records": round(rate.window_records),
        "startup_s": round(first_output - started, 2),
        "drain_s": round(committed - first_output, 2),
        "latency_records": len(latencies.ms),
        "latency_missing": latencies.missing,
        "exit_status": status,
        "load_average_1m": load_average()[0],
    }
    row["outcomes"] = outcomes.as_dict()
    if gc is not None:
        row["gc"] = gc
    if ledger is not None:
        row["ledger"] = ledger
    if exposure is not None:
        row["exposure"] = exposure
    return row


async def _writes(pipeline: Pipeline) -> int | None:
    """The exposure records the worker has written (committed) so far, from its
    ``/metrics``; ``None`` if they cannot be read."""
    return await _scrape(pipeline, "exposure", scrape_exposure_writes)


async def _gc_work(config: PipelineConfig, pipeline: Pipeline) -> dict[str, Any] | None:
    """The enforcer's garbage-collector counters now (:mod:`.gc_metrics`); ``None`` for
    the other pipelines, or if the worker's ``/metrics`` cannot be read."""
    if config.pipeline not in ENFORCERS:
        return None
    return await _scrape(pipeline, "GC", scrape_gc)


async def _scrape(pipeline: Pipeline, what: str, scrape: Callable[[str], _T]) -> _T | None:
    """``scrape`` of the worker's ``/metrics`` (found in its log), in a thread; ``None``
    when the log names no URL or the scrape fails (said in one line)."""
    url = metrics_url(pipeline.log_path)
    if url is None:
        return None
    try:
        return await asyncio.to_thread(scrape, url)
    except OSError as exc:
        print(f"bench:   no {what} metrics from {url}: {exc}", flush=True)
        return None


async def _check(
    config: PipelineConfig, stage: Stage, topics: EnforcerTopics, variant: Variant | None
) -> OutcomeCount:
    """:func:`.outcomes.count_outcomes` once the pipeline has committed its input. A
    pipeline without a delivery guarantee commits what it has read, maybe before its
    outputs are written: for it, inputs still missing are looked for again a few times."""
    tries = 10 if config.pipeline in NO_GUARANTEE else 1
    for attempt in range(tries):
        found = await asyncio.to_thread(
            partial(
                count_outcomes,
                stage.bootstrap,
                topics,
                stage.partitions,
                event_id_of=variant.event_id_of if variant is not None else None,
            )
        )
        if found.missing == 0 or attempt == tries - 1:
            break
        await asyncio.sleep(1.0)
    return found


def _restore_watch(
    stage: Stage, config: PipelineConfig, pipeline: Pipeline
) -> asyncio.Task[float] | None:
    """For the rows whose clock starts once their state is restored (the ledger's, the
    steady state's exposure), the wait for it."""
    if config.pipeline == ENFORCER_LEDGER:
        return asyncio.create_task(_wait_until_restored(stage, pipeline))
    if config.pipeline == ENFORCER_EXPOSURE_STEADY:
        return asyncio.create_task(
            _wait_until_restored(stage, pipeline, _exposure_restored, "exposure")
        )
    return None


def _ledger_restored(log_path: Path | None) -> int:
    return len(restored_partitions(log_path))


def _exposure_restored(log_path: Path | None) -> int:
    return len(restored_exposure(log_path))


async def _wait_until_restored(
    stage: Stage,
    pipeline: Pipeline,
    restored: Callable[[Path | None], int] = _ledger_restored,
    what: str = "ledger",
) -> float:
    """When (monotonic s) the worker's log first shows every partition of its ``what``
    (``restored``: how many partitions its log shows restored) restored."""
    deadline = time.monotonic() + stage.drain_timeout_s
    while restored(pipeline.log_path) < stage.partitions:
        if not pipeline.running:
            raise PipelineFailedError(
                f"the pipeline exited before its {what} was restored\n{pipeline.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise PipelineFailedError(
                f"{what} not restored in {stage.drain_timeout_s:.0f}s\n{pipeline.log_tail()}"
            )
        await asyncio.sleep(0.02)
    return time.monotonic()


def _ledger_facts(stage: Stage, pipeline: Pipeline) -> dict[str, Any]:
    """What the worker restored of the ledger (its first restore of each partition) and
    how long that took."""
    parts = restored_partitions(pipeline.log_path)[: stage.partitions]
    return {
        "records": sum(p.records for p in parts),
        "identifiers": sum(p.identifiers for p in parts),
        "restore_s": max((p.seconds for p in parts), default=0.0),
    }


def _exposure_facts(stage: Stage, pipeline: Pipeline) -> dict[str, Any]:
    """What the worker restored of exposure (its first restore of each partition) and
    how long that took."""
    parts = restored_exposure(pipeline.log_path)[: stage.partitions]
    return {
        "restored_records": sum(p.records for p in parts),
        "restored_identifiers": sum(p.identifiers for p in parts),
        "restore_s": max((p.seconds for p in parts), default=0.0),
    }


def _restore_facts(
    samples: Sequence[Sample], timed: Sequence[Sample], restored_after_s: float
) -> dict[str, Any]:
    """When the clock started, and the share of the output written before it
    (partitions restored first start deciding while others are still restoring)."""
    final = max((s.written for s in samples), default=0)
    before = next((s.written for s in timed if s.written > 0), final)
    return {
        "restored_after_start_s": round(restored_after_s, 2),
        "output_before_clock": round(before / final, 3) if final else None,
    }


def best_of(attempts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One row from repeated runs of a configuration: the fastest drain (its rate, CPU
    and window), the first run's latency, the checks of all runs added up (every drain
    must pass, not only the fastest), and every attempt's rate and check under
    ``attempts``."""
    best = dict(max(attempts, key=lambda row: row["records_per_s"] or 0.0))
    best.update({key: attempts[0][key] for key in LATENCY_KEYS})
    best["outcomes"] = {
        key: round(sum(row["outcomes"][key] for row in attempts), 2)
        for key in attempts[0]["outcomes"]
    }
    best["attempts"] = [{key: row[key] for key in ATTEMPT_KEYS} for row in attempts]
    return best


async def wait_until_committed(
    bootstrap: str,
    group: str,
    topic: str,
    ends: dict[int, int],
    pipeline: Pipeline,
    timeout_s: float,
) -> None:
    """Poll the group's committed offsets (one admin client, reused) until every
    partition of ``topic`` reaches its end in ``ends``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if not pipeline.running:
                raise PipelineFailedError(f"the pipeline exited early\n{pipeline.log_tail()}")
            try:
                listed = await admin.list_consumer_group_offsets(group)
            except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError):
                listed = {}  # a fresh broker creates its offsets topic on first use
            offsets = {
                tp.partition: meta.offset for tp, meta in listed.items() if tp.topic == topic
            }
            if all(end == 0 or offsets.get(p, -1) >= end for p, end in ends.items()):
                return
            if time.monotonic() > deadline:
                raise PipelineFailedError(
                    f"committed {offsets} of {ends} in {timeout_s:.0f}s\n{pipeline.log_tail()}"
                )
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


def _profile_when_output(
    stage: Stage, config: PipelineConfig, sampler: ProgressSampler, pid: int
) -> asyncio.Task[Profiler] | None:
    """With ``stage.profile_dir``, attach py-spy once the first record is out (start-up
    is not what is measured)."""
    if stage.profile_dir is None:
        return None
    output = stage.profile_dir / f"{config.slug}.txt"

    async def attach() -> Profiler:
        while first_output_at(sampler.samples) is None:
            await asyncio.sleep(0.02)
        return Profiler(pid, output)

    return asyncio.create_task(attach())


async def _stop_profiling(profiling: asyncio.Task[Profiler] | None) -> None:
    if profiling is None:
        return
    if profiling.done() and profiling.exception() is None:
        await asyncio.to_thread(profiling.result().stop)
    else:
        profiling.cancel()


def stop_pipeline(pipeline: Pipeline) -> int | None:
    """SIGTERM and wait; the exit status (``None`` if it had to be killed)."""
    try:
        return pipeline.stop(timeout_s=60.0)
    except Exception:  # a pipeline that will not stop is killed; its numbers still stand
        pipeline.kill()
        return None


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
