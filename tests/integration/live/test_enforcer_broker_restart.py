"""Exactly once across broker restarts (docs/contract.md: guarantees): the broker goes away
mid-stream.

One ``enforcer run`` worker processes a live stream on a broker of the test's own.
The broker is killed (SIGKILL, as a crash) and later stopped cleanly, each time while
the worker has outputs in open transactions, and started again on the same address.
If the worker cannot ride out an outage it must fail closed: exit, and be restarted
by the test as an orchestrator would. Either way a ``read_committed`` consumer of the
outputs must see each input record's outcome exactly once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from enforcer.core.fingerprint import generate_key
from enforcer.testing.kafka_broker import LocalKafka
from enforcer.testing.topics import unique_topic_name
from enforcer.testing.worker import (
    ABORTED,
    ASSIGNED,
    FAST_GROUP_ENV,
    Deployment,
    EnforcerTopics,
    EnforcerWorker,
    WorkerError,
    aborted_records,
    check_outcomes,
    end_offsets_of,
    mixed_values,
    produce,
    read_inputs,
    wait_for_commits,
)

PARTITIONS = 4
RECORDS = 9_000
# Slower than the worker: it is busy with small batches (and so has outputs in an open
# transaction) all along, and still is when the broker goes away.
PER_SECOND = 500


async def _commits_despite_exits(
    deployment: Deployment,
    worker: EnforcerWorker,
    exits: list[str],
    *,
    at_least: int | None = None,
    until: dict[int, int] | None = None,
    timeout_s: float,
) -> int:
    """Wait for the group's commits; a worker that exits meanwhile is started again,
    as an orchestrator would, and the exit is noted."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not worker.running:
            exits.append(f"run {worker.runs} exited with status {worker.returncode}")
            worker.start()
        try:
            return await wait_for_commits(
                deployment.bootstrap,
                deployment.group_id,
                deployment.topics.source,
                at_least=at_least,
                until=until,
                timeout_s=max(1.0, deadline - time.monotonic()),
                alive=[worker],
            )
        except WorkerError:
            if time.monotonic() > deadline:
                raise


@pytest.mark.timeout(240)
async def test_broker_crash_and_restart_mid_stream_keep_every_outcome_exactly_once(
    private_kafka: LocalKafka, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """The broker is killed, and later stopped cleanly, while records arrive and the
    worker processes them; after recovery every input has exactly one outcome."""
    bootstrap = private_kafka.bootstrap_servers
    seed = random.randrange(2**32)
    topics = EnforcerTopics.unique("restart")
    key = generate_key()
    started = time.monotonic()
    exits: list[str] = []
    outages: list[str] = []
    with Deployment(
        bootstrap,
        topics,
        unique_topic_name("restart-group"),
        key,
        tmp_path / "enforcer",
        extra_env={**FAST_GROUP_ENV},
    ) as deployment:
        await deployment.create_topics(PARTITIONS)
        worker = deployment.worker("worker")
        worker.start()
        await worker.wait_for_log(ASSIGNED)
        # The test's own producer meets the outages too: what counts as input is what
        # landed in the source topic, read back at the end.
        producing = asyncio.create_task(
            produce(
                bootstrap, topics.source, mixed_values(RECORDS, seed=seed), per_second=PER_SECOND
            )
        )
        try:
            committed = 0
            for crash in (True, False):
                committed = await _commits_despite_exits(
                    deployment, worker, exits, at_least=committed + 1500, timeout_s=60
                )
                down = time.monotonic()
                private_kafka.restart(crash=crash)
                outages.append(f"{'kill' if crash else 'stop'} {time.monotonic() - down:.1f}s")
            producer_error = None
            try:
                await asyncio.wait_for(producing, timeout=90)
            except Exception as exc:  # reported; the inputs are read back below
                producer_error = type(exc).__name__
            inputs = await read_inputs(bootstrap, topics.source)
            await _commits_despite_exits(
                deployment, worker, exits, until=end_offsets_of(inputs), timeout_s=120
            )
            assert worker.stop() == 0, worker.log_tail()
            check = await check_outcomes(bootstrap, topics, inputs, fingerprint_key=key)
            redone = await aborted_records(bootstrap, topics.sink, check.sink_records)
        finally:
            producing.cancel()

    refused = worker.log_count(ABORTED)
    behaviour = "rode them out" if not exits else "exited; restarted: " + "; ".join(exits)
    figures = (
        f"broker restart test (seed {seed}): broker outages {outages}; worker {behaviour}; "
        f"test producer {producer_error or 'ok'}; {worker.runs} worker runs, {redone} "
        f"aborted sink records, {refused} aborted transactions, "
        f"{time.monotonic() - started:.0f}s\n  {check.summary()}"
    )
    print(figures)
    record_property("figures", figures)
    assert check.problems() == [], figures
    assert all(check.observed[kind] > 0 for kind in check.expected), figures
    assert len(inputs) > RECORDS // 2, figures
