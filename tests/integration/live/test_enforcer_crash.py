"""Exactly once across crashes (docs/contract.md: guarantees): ``kill -9`` mid-stream loses and
duplicates nothing.

One ``enforcer run`` worker (exactly_once) works through a 4-partition topic while
records keep arriving, and is killed with SIGKILL several times at random moments,
then restarted; a last run commits everything. The stream arrives more slowly than
the worker decides, so at every kill it is mid-stream, with a transaction open. A
``read_committed`` consumer of sink, violations and dead letters must then see each
input record's outcome exactly once.

The same for a framed topic: Avro sample account events read through the schema
registry under policies/formats.yaml (docs/formats.md), each forwarded record re-encoded
under its schema id exactly once.

Also: SIGTERM during start-up ends the worker cleanly (status 0), not by the signal.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from enforcer.core.fingerprint import generate_key
from enforcer.core.step import InputRecord
from enforcer.demo.formats_sample import FramedSample, sample_contacts
from enforcer.formats.registry import RegistrySettings, SchemaRegistry
from enforcer.testing.consume import end_offsets
from enforcer.testing.formats import event_id_reader, framed_step
from enforcer.testing.topics import unique_topic_name
from enforcer.testing.worker import (
    ASSIGNED,
    Deployment,
    EnforcerTopics,
    aborted_records,
    check_outcomes,
    end_offsets_of,
    mixed_values,
    produce,
    random_thresholds,
    wait_for_commits,
)

FORMATS_POLICY = Path(__file__).resolve().parents[3] / "policies" / "formats.yaml"
RECORDS = 12_000
PARTITIONS = 4
KILLS = 3
PER_SECOND = 1_500  # a tenth of the worker's pace: it is always mid-stream, never idle
AHEAD = 1_000
"""Records the producer may run ahead of the group's commits: what a restarted worker
finds waiting, at most, so one commit never jumps past the kills' thresholds (at most
60% of the records, plus up to 800 after each kill, plus this: below 10,700 of
12,000)."""


class Traffic(NamedTuple):
    """What the crash test sends, the worker's own settings for it, and how its outputs
    are checked."""

    values: list[bytes]
    env: dict[str, str]
    check: Callable[[Sequence[InputRecord]], dict[str, Any]]


def _traffic(kind: str, request: pytest.FixtureRequest, topic: str, seed: int) -> Traffic:
    if kind == "identity-events":
        return Traffic(mixed_values(RECORDS, seed=seed), {}, lambda _: {})
    url = request.getfixturevalue("schema_registry_url")
    sample = FramedSample("avro", SchemaRegistry(RegistrySettings(url)), f"{topic}-value")
    values = [sample.encode(contact) for contact in sample_contacts(RECORDS, seed=seed)]
    env = {"ENFORCER_POLICY_FILE": str(FORMATS_POLICY), "ENFORCER_SCHEMA_REGISTRY_URL": url}

    def check(inputs: Sequence[InputRecord]) -> dict[str, Any]:
        key = request.getfixturevalue("crash_key")
        step, reader, _ = framed_step(url, FORMATS_POLICY, key, [r.value for r in inputs])
        return {"step": step, "event_id_of": event_id_reader(reader, topic)}

    return Traffic(values, env, check)


@pytest.fixture
def crash_key() -> str:
    return generate_key()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("traffic_kind", ["identity-events", "avro"])
async def test_sigkill_mid_stream_keeps_every_outcome_exactly_once(
    kafka_bootstrap: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    request: pytest.FixtureRequest,
    traffic_kind: str,
    crash_key: str,
) -> None:
    """Killed with SIGKILL three times while processing and restarted each time, the
    worker still produces exactly one outcome per input record: no duplicate in sink,
    violations or dead letters, nothing lost, nothing security-only forwarded."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    topics = EnforcerTopics.unique("crash")
    key = crash_key
    traffic = _traffic(traffic_kind, request, topics.source, seed)
    started = time.monotonic()
    # Commits every 2 s: a transaction seen open stays open for the moment it takes to
    # kill the worker.
    with Deployment(
        kafka_bootstrap, topics, unique_topic_name("crash-group"), key, tmp_path, 2.0
    ) as deployment:
        await deployment.create_topics(PARTITIONS)
        # Paced, and never far ahead of the group's commits: however slowly a killed
        # worker's successor joins, the kills below meet a stream still flowing.
        producing = asyncio.create_task(
            produce(
                kafka_bootstrap,
                topics.source,
                traffic.values,
                per_second=PER_SECOND,
                ahead_of=deployment.group_id,
                window=AHEAD,
            )
        )
        try:
            worker = deployment.worker("worker", traffic.env)
            kill_points: list[int] = []
            hit_open_transaction = False
            for threshold in random_thresholds(rng, RECORDS, KILLS, low=0.1, high=0.6):
                worker.start()
                # Each run commits some work of its own before it is killed.
                since_restart = (kill_points or [0])[-1] + rng.randint(300, 800)
                reached = await wait_for_commits(
                    kafka_bootstrap,
                    deployment.group_id,
                    topics.source,
                    at_least=max(threshold, since_restart),
                    timeout_s=60,
                    alive=[worker],
                )
                if hit_open_transaction:
                    # Past the threshold the worker is mid-stream; a random extra delay
                    # puts the kill anywhere in a batch, a send or a commit.
                    await asyncio.sleep(rng.uniform(0, 0.6))
                else:
                    # Until one kill has: wait for a transaction holding outputs, so the
                    # test meets the hard case by state, not by luck.
                    await _until_a_transaction_holds_outputs(kafka_bootstrap, topics.sink)
                assert worker.running, worker.log_tail()
                worker.kill()
                kill_points.append(reached)
                # The killed worker's transaction stays open until the next run fences
                # it: still open now means the kill caught outputs in flight.
                hit_open_transaction = hit_open_transaction or await _holds_outputs(
                    kafka_bootstrap, topics.sink
                )
            worker.start()  # before the producer is awaited: it waits for the commits
            inputs = await asyncio.wait_for(producing, timeout=120)
            # The last kill may have come after everything was committed: wait until
            # this run has joined, so that the SIGTERM below meets a running worker.
            await worker.wait_for_log(ASSIGNED)
            await wait_for_commits(
                kafka_bootstrap,
                deployment.group_id,
                topics.source,
                until=end_offsets_of(inputs),
                timeout_s=90,
                alive=[worker],
            )
            assert worker.stop() == 0, worker.log_tail()
            check = await check_outcomes(
                kafka_bootstrap, topics, inputs, fingerprint_key=key, **traffic.check(inputs)
            )
            redone = await aborted_records(kafka_bootstrap, topics.sink, check.sink_records)
        finally:
            producing.cancel()
            await deployment.delete_topics()

    elapsed = time.monotonic() - started
    figures = (
        f"crash test, {traffic_kind} (seed {seed}): {KILLS} SIGKILLs with the group's "
        f"committed offsets at {kill_points}, {worker.runs} runs, {redone} aborted sink "
        f"records (work in flight at a kill, done again), {elapsed:.0f}s\n  {check.summary()}"
    )
    print(figures)
    record_property("figures", figures)
    assert len(kill_points) == KILLS
    assert kill_points == sorted(set(kill_points)), "every run must have committed work"
    assert check.problems() == [], figures
    # Every outcome kind occurred, so each path was exercised across the kills.
    assert all(check.observed[kind] > 0 for kind in check.expected), figures
    assert check.duplicates == 0
    # The kills hit open transactions: outputs were written, then aborted, then written
    # again by the next run. So the test met the hard case, and the outputs do go
    # through the transactions (nothing is sent outside them).
    assert redone > 0, figures


@pytest.mark.timeout(120)
async def test_sigterm_during_start_up_is_a_clean_exit(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A SIGTERM as soon as the worker has said it is starting (before it has joined
    the group) ends it with status 0 and a line saying so; it then starts normally."""
    topics = EnforcerTopics.unique("early-term")
    with Deployment(
        kafka_bootstrap, topics, unique_topic_name("early-term-group"), generate_key(), tmp_path
    ) as deployment:
        await deployment.create_topics(1)
        try:
            worker = deployment.worker("worker")
            worker.start()
            await worker.wait_for_log("starting worker")
            assert worker.stop(timeout_s=30) == 0, worker.log_tail()
            assert worker.log_count("SIGTERM received") == 1, worker.log_tail()
            worker.start()
            await worker.wait_for_log(ASSIGNED)
            assert worker.stop(timeout_s=30) == 0, worker.log_tail()
        finally:
            await deployment.delete_topics()


async def _holds_outputs(bootstrap: str, topic: str) -> bool:
    """Whether an open transaction holds records of ``topic``: its last stable offset
    is behind its end on some partition."""
    stable = await end_offsets(bootstrap, topic, isolation_level="read_committed")
    end = await end_offsets(bootstrap, topic)
    return any(end[partition] > offset for partition, offset in stable.items())


async def _until_a_transaction_holds_outputs(bootstrap: str, topic: str) -> None:
    deadline = time.monotonic() + 60
    while not await _holds_outputs(bootstrap, topic):
        assert time.monotonic() < deadline, "no open transaction with outputs in 60 s"
        await asyncio.sleep(0.02)
