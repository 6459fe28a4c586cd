"""Memory of one ``enforcer run`` worker draining a large backlog.

A backlog of ``--memory-records`` records (300,000 by default) is written before the
worker starts, so the worker's consumer can fetch as far ahead as its settings let it
and its producer can queue as much as they let it: the worst case of a worker
catching up after an outage. The worker runs with the defaults (exactly-once, 1 s
commits, no ledger). While it drains, ``/proc/<pid>/status`` is read every 50 ms
(``VmRSS``); once the group has committed the whole backlog, ``VmHWM`` (the kernel's
peak resident set of the process, start-up included) is the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from enforcer.testing.consume import end_offsets
from enforcer.testing.topics import create_topics, delete_topics, unique_topic_name
from enforcer.testing.worker import EnforcerTopics

from .machine import cpu_seconds, memory_kib
from .processes import ENFORCER, Batching, PipelineConfig, start_pipeline
from .run import stop_pipeline, wait_until_committed
from .workload import Record, produce_backlog

MiB_PER_KiB = 1 / 1024


async def measure_memory(
    bootstrap: str,
    partitions: int,
    backlog: Sequence[Record],
    work_dir: Path,
    batching: Batching,
    *,
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Drain ``backlog`` with one worker; its peak and final RSS, and the drain's pace."""
    config = PipelineConfig(ENFORCER, "exactly_once", 1.0)
    topics = EnforcerTopics.unique("bench-memory")
    await create_topics(bootstrap, topics.all(), partitions)
    try:
        await produce_backlog(bootstrap, topics.source, backlog)
        ends = await end_offsets(bootstrap, topics.source)
        group = unique_topic_name("bench-memory")
        started = time.monotonic()
        pipeline = start_pipeline(
            config,
            bootstrap=bootstrap,
            topics=topics,
            group=group,
            work_dir=work_dir,
            batching=batching,
        )
        pid = pipeline.pid
        assert pid is not None
        rss: list[int] = []

        async def sample() -> None:
            while True:
                rss.append(memory_kib(pid).get("VmRSS", 0))
                await asyncio.sleep(0.05)

        sampling = asyncio.create_task(sample())
        try:
            await wait_until_committed(bootstrap, group, topics.source, ends, pipeline, timeout_s)
            drained = time.monotonic() - started
            peak = memory_kib(pid).get("VmHWM", 0)
            cpu = cpu_seconds(pid)
        finally:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
            status = await asyncio.to_thread(stop_pipeline, pipeline)
    finally:
        await delete_topics(bootstrap, topics.all())
    return {
        "records": len(backlog),
        "guarantee": config.guarantee,
        "commit_interval_s": config.commit_interval,
        "peak_rss_mib": round(peak * MiB_PER_KiB, 1),
        "sampled_max_rss_mib": round(max(rss, default=0) * MiB_PER_KiB, 1),
        "final_rss_mib": round((rss[-1] if rss else 0) * MiB_PER_KiB, 1),
        "drain_s": round(drained, 1),
        "worker_cpu_s": None if cpu is None else round(cpu, 1),
        "exit_status": status,
    }
