"""Exactly once across rebalances (docs/contract.md: guarantees): instances join and leave one
group.

Two ``enforcer run`` workers share a 4-partition topic while records keep arriving.
Partitions move when the second one joins, when one is stopped with SIGTERM (it leaves
the group after committing) and when one is killed with SIGKILL (its partitions move
once its session expires; its open transaction is aborted when it restarts or times
out). A worker commits its open transaction before it gives partitions up, and a new
owner reads committed offsets only once they are stable; a ``read_committed``
consumer of the outputs must see every outcome exactly once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from enforcer.core.fingerprint import generate_key
from enforcer.core.step import InputRecord
from enforcer.testing.topics import unique_topic_name
from enforcer.testing.worker import (
    ABORTED,
    ASSIGNED,
    Deployment,
    EnforcerTopics,
    Progress,
    aborted_records,
    check_outcomes,
    end_offsets_of,
    mixed_values,
    produce,
    wait_for_commits,
)

RECORDS = 12_000
PARTITIONS = 4
# Slower than the workers can go and long enough to last the whole scenario, so that
# every membership change meets a live stream.
PER_SECOND = 500


async def _run_scenario(
    kafka_bootstrap: str, tmp_path: Path, prefix: str, second_leaves_by: str
) -> str:
    """Worker A starts; B joins; A leaves by SIGTERM and rejoins; B leaves by
    ``second_leaves_by`` ("sigterm" or "sigkill") and rejoins; all while records
    arrive. Each step waits for the rebalance to complete and for more commits.
    Returns the figures."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    topics = EnforcerTopics.unique(prefix)
    key = generate_key()
    started = time.monotonic()
    with Deployment(
        kafka_bootstrap, topics, unique_topic_name(f"{prefix}-group"), key, tmp_path
    ) as deployment:
        await deployment.create_topics(PARTITIONS)
        a, b = deployment.worker("a"), deployment.worker("b")
        producing = asyncio.create_task(
            produce(
                kafka_bootstrap,
                topics.source,
                mixed_values(RECORDS, seed=seed),
                per_second=PER_SECOND,
            )
        )
        try:
            progress = Progress(deployment, rng).more
            a.start()
            await a.wait_for_log(ASSIGNED)
            await progress(a)
            b.start()  # rebalance: A hands two partitions to B
            await b.wait_for_log(ASSIGNED)
            await a.wait_for_log(ASSIGNED, at_least=2)
            await progress(a, b)
            assert a.stop() == 0, a.log_tail()  # rebalance: B takes all four
            await b.wait_for_log(ASSIGNED, at_least=2)
            await progress(b)
            a.start()  # rebalance: two each again
            await a.wait_for_log(ASSIGNED)
            await b.wait_for_log(ASSIGNED, at_least=3)
            await progress(a, b)
            if second_leaves_by == "sigkill":
                b.kill()  # A gets B's partitions once B's session has expired
            else:
                assert b.stop() == 0, b.log_tail()
            await a.wait_for_log(ASSIGNED, at_least=2)
            await progress(a)
            b.start()
            await b.wait_for_log(ASSIGNED)
            inputs: list[InputRecord] = await asyncio.wait_for(producing, timeout=60)
            await wait_for_commits(
                kafka_bootstrap,
                deployment.group_id,
                topics.source,
                until=end_offsets_of(inputs),
                timeout_s=90,
                alive=[a, b],
            )
            assert a.stop() == 0, a.log_tail()
            assert b.stop() == 0, b.log_tail()
            check = await check_outcomes(kafka_bootstrap, topics, inputs, fingerprint_key=key)
            redone = await aborted_records(kafka_bootstrap, topics.sink, check.sink_records)
        finally:
            producing.cancel()
            await deployment.delete_topics()

    assignments = sum(w.log_count(ASSIGNED) for w in (a, b))
    refused = sum(w.log_count(ABORTED) for w in (a, b))
    figures = (
        f"rebalance test, second worker leaves by {second_leaves_by} (seed {seed}): "
        f"{a.runs + b.runs} worker runs, {assignments} partition assignments, "
        f"{redone} aborted sink records, {refused} aborted transactions, "
        f"{time.monotonic() - started:.0f}s\n  {check.summary()}"
    )
    assert check.problems() == [], figures
    assert all(check.observed[kind] > 0 for kind in check.expected), figures
    return figures


@pytest.mark.timeout(180)
async def test_sigterm_rebalances_keep_every_outcome_exactly_once(
    kafka_bootstrap: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """Workers joining and leaving with SIGTERM move partitions four times mid-stream;
    every input still has exactly one outcome and nothing is duplicated."""
    figures = await _run_scenario(kafka_bootstrap, tmp_path, "rebalance-term", "sigterm")
    print(figures)
    record_property("figures", figures)


@pytest.mark.timeout(180)
async def test_sigkill_of_a_group_member_keeps_every_outcome_exactly_once(
    kafka_bootstrap: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """A member killed with SIGKILL while the other keeps running: its partitions move
    to the survivor, whose producers fence its open transactions; no duplicates."""
    figures = await _run_scenario(kafka_bootstrap, tmp_path, "rebalance-kill", "sigkill")
    print(figures)
    record_property("figures", figures)
