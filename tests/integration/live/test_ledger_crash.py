"""Exactly once with the ledger across crashes (docs/ledger.md): ``kill -9`` during a burst
of ledger updates and events loses and duplicates no retraction and no outcome.

One worker reads events and ledger updates arriving together and is killed with
SIGKILL three times at random moments, then restarted. The events are about subjects
whose ledger entries were written before the worker first started, so each event's
outcome is known in advance; the burst of ledger updates is about other subjects,
whose consent flips between advertising and 2FA-only and who are sometimes erased,
so the retractions they must produce are known too. A ``read_committed`` consumer
must then see every event's outcome and every retraction exactly once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from enforcer.core.clock import SystemClock
from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.core.policy.load import load_policy
from enforcer.core.step import Step
from enforcer.ledger.lookup import WholeLedger
from enforcer.ledger.model import LedgerEntry
from enforcer.ledger.replay import replay_ledger_lines
from enforcer.ledger.retract import passes_under
from enforcer.testing.ledger import (
    expected_retractions,
    ledger_value,
    produce_ledger,
    retractions_read,
)
from enforcer.testing.topics import create_topics, delete_topics, unique_topic_name
from enforcer.testing.worker import (
    Deployment,
    EnforcerTopics,
    aborted_records,
    check_outcomes,
    finish_after_kills,
    kill_at_random_commits,
    produce,
    wait_for_commits,
)

EVENTS = 12_000
EVENTS_PER_SECOND = 600
UPDATES = 1_200
UPDATES_PER_SECOND = 60  # the burst lasts as long as the events do
PARTITIONS = 3
KILLS = 3
ADS = ("marketing.advertising",)
MFA = ("security.mfa",)


def stable_ledger(subjects: int) -> list[LedgerEntry]:
    """Subjects whose ledger does not change during the test: every third one's phone
    is 2FA-only, the others gave their email for advertising."""
    entries: list[LedgerEntry] = []
    for n in range(subjects):
        subject = f"stable-{n}"
        purposes = MFA if n % 3 == 0 else ADS
        identifiers = [("phone", f"+1415555{n:04d}", purposes), ("email", f"s{n}@example.org", ADS)]
        entries.append((subject, ledger_value(subject, "2026-11-01T00:00:00Z", identifiers)))
    return entries


def events(count: int, subjects: int, rng: random.Random, first: int = 0) -> list[bytes]:
    """Events that all claim advertising for the stable subjects' identifiers (event ids
    from ``first`` on)."""
    values = []
    for n in range(first, first + count):
        s = rng.randrange(subjects)
        identifiers = [{"type": "phone", "value": f"+1 415 555 {s:04d}", "purposes": list(ADS)}]
        if n % 2:
            identifiers.append(
                {"type": "email", "value": f"s{s}@example.org", "purposes": list(ADS)}
            )
        values.append(
            orjson.dumps(
                {
                    "event_id": f"evt-{n}",
                    "subject_id": f"stable-{s}",
                    "occurred_at": "2026-11-02T00:00:00Z",
                    "identifiers": identifiers,
                }
            )
        )
    return values


def burst(count: int, rng: random.Random) -> list[LedgerEntry]:
    """Ledger updates of 100 other subjects: consent flips, and sometimes an erasure."""
    entries: list[LedgerEntry] = []
    for n in range(count):
        subject = f"burst-{rng.randrange(100)}"
        if rng.random() < 0.1:
            entries.append((subject, None))
            continue
        purposes = ADS if rng.random() < 0.5 else MFA
        at = f"2026-11-02T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"
        entries.append(
            (subject, ledger_value(subject, at, [("email", f"{subject}@example.org", purposes)]))
        )
    return entries


@pytest.mark.timeout(300)
async def test_sigkill_during_a_ledger_burst_keeps_retractions_and_outcomes_exactly_once(
    kafka_bootstrap: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    topics = EnforcerTopics.unique("lcrash")
    ledger = unique_topic_name("lcrash-purposes")
    key = generate_key()
    fingerprinter = Fingerprinter(key_from_text(key))
    policy = load_policy(None)
    stable = stable_ledger(300)
    updates = burst(UPDATES, rng)
    started = time.monotonic()
    with Deployment(
        kafka_bootstrap,
        topics,
        unique_topic_name("lcrash-group"),
        key,
        tmp_path,
        extra_env={"ENFORCER_SESSION_TIMEOUT": "6", "ENFORCER_LEDGER_TOPIC": ledger},
    ) as deployment:
        await deployment.create_topics(PARTITIONS)
        await create_topics(kafka_bootstrap, [ledger], PARTITIONS)
        try:
            await produce_ledger(kafka_bootstrap, ledger, stable)
            worker = deployment.worker("worker")
            worker.start()
            # The first run restores the stable ledger silently and commits where it
            # ended: every retraction after that must come out exactly once.
            await wait_for_commits(
                kafka_bootstrap,
                deployment.group_id,
                ledger,
                at_least=len(stable),
                timeout_s=60,
                alive=[worker],
            )
            producing = asyncio.gather(
                produce(
                    kafka_bootstrap,
                    topics.source,
                    events(EVENTS, len(stable), rng),
                    per_second=EVENTS_PER_SECOND,
                    ahead_of=deployment.group_id,
                    window=EVENTS_PER_SECOND,
                ),
                produce_ledger(kafka_bootstrap, ledger, updates, per_second=UPDATES_PER_SECOND),
            )
            kill_points = await kill_at_random_commits(
                deployment, worker, rng, records=EVENTS, kills=KILLS, gap=(300, 1200)
            )
            worker.start()  # before the producers are awaited: events wait for commits
            inputs, _ = await asyncio.wait_for(producing, timeout=120)
            await finish_after_kills(
                deployment, worker, inputs, ledger=ledger, ledger_records=len(stable) + len(updates)
            )
            lines = (value or b"" for _, value in stable)
            known = replay_ledger_lines(lines, fingerprinter).state
            wanted = expected_retractions(updates, fingerprinter, passes_under(policy))
            check = await check_outcomes(
                kafka_bootstrap,
                topics,
                inputs,
                fingerprint_key=key,
                step=Step(policy, fingerprinter, SystemClock(), WholeLedger(known)),
                retractions=sum(wanted.values()),
            )
            redone = await aborted_records(kafka_bootstrap, topics.sink, check.sink_records)
        finally:
            await deployment.delete_topics()
            await delete_topics(kafka_bootstrap, [ledger])

    got = retractions_read(check.retractions)
    figures = (
        f"ledger crash test (seed {seed}): {KILLS} SIGKILLs at committed source offsets "
        f"{kill_points}, {worker.runs} runs, {sum(wanted.values())} retractions expected, "
        f"{sum(got.values())} read, {redone} aborted sink records redone, "
        f"{time.monotonic() - started:.0f}s\n  {check.summary()}"
    )
    print(figures)
    record_property("figures", figures)
    assert len(kill_points) == KILLS
    assert check.problems() == [], figures
    assert check.observed["passed"] > 0 and check.observed["dropped"] > 0, figures
    assert sum(wanted.values()) > 100, figures
    missing = wanted - got
    duplicated = got - wanted
    assert not missing and not duplicated, f"{figures}\nmissing {missing}\nextra {duplicated}"
