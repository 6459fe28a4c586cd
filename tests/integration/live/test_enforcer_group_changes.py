"""Ordinary operations never stop the pipeline, and never break exactly once (docs/contract.md:
guarantees, liveness).

Real ``enforcer run`` workers in one group while records keep arriving:
- scale up 1 → 2 → 3 and back down to 1 (a worker regains partitions it held before);
- a rolling restart of 3 workers, one at a time with SIGTERM;
- a worker frozen with SIGSTOP past its session timeout (and past its transaction
  timeout), then resumed: the group has moved on, so it must notice, write nothing
  that commits, rejoin and carry on.

Each is checked record by record with a ``read_committed`` consumer: no duplicate, no
loss, nothing security-only forwarded, order kept per partition; and no worker that
was not killed exits with a non-zero status.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from enforcer.core.fingerprint import generate_key
from enforcer.testing.topics import unique_topic_name
from enforcer.testing.worker import (
    ABORTED,
    ASSIGNED,
    FAST_GROUP_ENV,
    Deployment,
    EnforcerTopics,
    EnforcerWorker,
    Progress,
    check_outcomes,
    end_offsets_of,
    mixed_values,
    produce,
    wait_for_commits,
)

RECORDS = 10_000
PARTITIONS = 6
PER_SECOND = 400  # slower than the workers, and long enough to outlast each scenario

Script = Callable[[list[EnforcerWorker], Progress], Awaitable[None]]


async def _scenario(
    bootstrap: str,
    tmp_path: Path,
    prefix: str,
    workers: int,
    script: Script,
    extra_env: dict[str, str] | None = None,
) -> tuple[str, list[EnforcerWorker]]:
    """Run ``script`` against a flowing stream, then drain, stop everyone with SIGTERM
    (each must exit 0) and check every outcome. Returns the figures and the workers."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    topics = EnforcerTopics.unique(prefix)
    key = generate_key()
    started = time.monotonic()
    env = {**FAST_GROUP_ENV, **(extra_env or {})}
    with Deployment(
        bootstrap, topics, unique_topic_name(f"{prefix}-group"), key, tmp_path, extra_env=env
    ) as deployment:
        await deployment.create_topics(PARTITIONS)
        crew = [deployment.worker(name) for name in "abc"[:workers]]
        producing = asyncio.create_task(
            produce(
                bootstrap, topics.source, mixed_values(RECORDS, seed=seed), per_second=PER_SECOND
            )
        )
        try:
            await script(crew, Progress(deployment, rng))
            inputs = await asyncio.wait_for(producing, timeout=90)
            running = [w for w in crew if w.running]
            await wait_for_commits(
                bootstrap,
                deployment.group_id,
                topics.source,
                until=end_offsets_of(inputs),
                timeout_s=90,
                alive=running,
            )
            for worker in running:
                assert worker.stop() == 0, worker.log_tail()
            check = await check_outcomes(bootstrap, topics, inputs, fingerprint_key=key)
        finally:
            producing.cancel()
            await deployment.delete_topics()
    figures = (
        f"{prefix} (seed {seed}): {sum(w.runs for w in crew)} worker runs, "
        f"{sum(w.log_count(ASSIGNED) for w in crew)} assignments, "
        f"{sum(w.log_count(ABORTED) for w in crew)} aborted transactions, "
        f"{time.monotonic() - started:.0f}s\n  {check.summary()}"
    )
    print(figures)
    assert check.problems() == [], figures
    assert all(check.observed[kind] > 0 for kind in check.expected), figures
    for worker in crew:
        assert worker.log_count("enforcer stopping") == 0, worker.log_tail()
    return figures, crew


async def _rebalanced(workers: list[EnforcerWorker], seen: dict[str, int]) -> None:
    """Wait until each worker has had an assignment beyond those counted in ``seen``."""
    for worker in workers:
        await worker.wait_for_new_assignment(seen.get(worker.name, 0))


def _counts(workers: list[EnforcerWorker]) -> dict[str, int]:
    return {w.name: w.assignments() for w in workers if w.running}


@pytest.mark.timeout(240)
async def test_scale_up_to_three_and_back_down_to_one(kafka_bootstrap: str, tmp_path: Path) -> None:
    """1 → 2 → 3 → 2 → 1 workers mid-stream: the first worker gives partitions away and
    takes them back twice; nothing is lost or repeated and every exit is clean."""

    async def script(crew: list[EnforcerWorker], progress: Progress) -> None:
        a, b, c = crew
        a.start()
        await a.wait_for_new_assignment(0)
        await progress.more(a)
        for joining, present in ((b, [a]), (c, [a, b])):
            seen = _counts(present)
            joining.start()
            await _rebalanced([joining, *present], seen)
            await progress.more(joining, *present)
        for leaving, staying in ((c, [a, b]), (b, [a])):
            seen = _counts(staying)
            assert leaving.stop() == 0, leaving.log_tail()
            await _rebalanced(staying, seen)
            await progress.more(*staying)

    await _scenario(kafka_bootstrap, tmp_path, "scale", 3, script)


@pytest.mark.timeout(240)
async def test_rolling_restart_of_three_workers(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Each of three workers is stopped with SIGTERM and started again in turn, as a
    rolling update does, while records flow."""

    async def script(crew: list[EnforcerWorker], progress: Progress) -> None:
        for worker in crew:
            worker.start()
        await _rebalanced(crew, {})
        await progress.more(*crew)
        for worker in crew:
            others = [w for w in crew if w is not worker]
            seen = _counts(others)
            assert worker.stop() == 0, worker.log_tail()
            await _rebalanced(others, seen)
            await progress.more(*others)
            seen = _counts(others)
            worker.start()
            await _rebalanced([worker, *others], seen)
            await progress.more(*crew)

    await _scenario(kafka_bootstrap, tmp_path, "rolling", 3, script)


@pytest.mark.timeout(240)
async def test_a_frozen_worker_is_fenced_and_rejoins(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A worker frozen (SIGSTOP) with work in flight past its session timeout and its
    transaction timeout: the other worker takes over; once resumed, the frozen one's
    transaction cannot commit (its generation is stale, or Kafka aborted it), so it
    writes nothing that a read_committed reader sees, rejoins, and exits 0 at the end."""
    held_all: list[bool] = []

    async def script(crew: list[EnforcerWorker], progress: Progress) -> None:
        a, b = crew
        a.start()
        b.start()
        await _rebalanced(crew, {})
        await progress.more(a, b)
        seen = _counts(crew)
        a.freeze()
        try:
            # Until a's session times out, b keeps only its own partitions.
            while b.assigned_now() < PARTITIONS:
                seen["b"] = await b.wait_for_new_assignment(seen["b"])
            await progress.more(b)  # b now does a's partitions too
            held_all.append(b.assigned_now() == PARTITIONS)
        finally:
            a.resume()
        await a.wait_for_new_assignment(seen["a"])  # a noticed, and rejoined
        await progress.more(a, b)

    # A transaction timeout below the session timeout: by the time the group has moved
    # on, Kafka has also aborted the frozen worker's transaction itself.
    _, crew = await _scenario(
        kafka_bootstrap,
        tmp_path,
        "frozen",
        2,
        script,
        extra_env={"ENFORCER_TRANSACTION_TIMEOUT": "4"},
    )
    a = crew[0]
    assert held_all == [True]  # the group had moved on while a was frozen
    assert a.log_count("lost") + a.log_count(ABORTED) >= 1, a.log_tail()
