"""The ledger moves with its partitions (docs/ledger.md): a worker joining restores the
ledger partitions it is given before deciding their events; a partition coming back
to a worker is restored again only if the ledger moved on meanwhile."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from enforcer.core.clock import SystemClock
from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.core.policy.load import load_policy
from enforcer.core.step import Step
from enforcer.ledger.lookup import WholeLedger
from enforcer.ledger.model import LedgerEntry
from enforcer.ledger.replay import replay_ledger_lines
from enforcer.ledger.retract import passes_under
from enforcer.live.ledger import KEPT_LOG, RESTORED_LOG
from enforcer.testing.ledger import (
    expected_retractions,
    ledger_value,
    produce_ledger,
    retractions_read,
)
from enforcer.testing.topics import create_topics, delete_topics, unique_topic_name
from enforcer.testing.worker import (
    ASSIGNED,
    Deployment,
    EnforcerTopics,
    check_outcomes,
    end_offsets_of,
    produce,
    wait_for_commits,
)

from .test_ledger_crash import ADS, MFA, events, stable_ledger

PARTITIONS = 4


@pytest.mark.timeout(240)
async def test_a_rebalance_moves_ledger_state_with_its_partitions(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = EnforcerTopics.unique("lrebal")
    ledger = unique_topic_name("lrebal-purposes")
    key = generate_key()
    fingerprinter = Fingerprinter(key_from_text(key))
    policy = load_policy(None)
    stable = stable_ledger(120)
    withdrawals: list[LedgerEntry] = [
        (
            f"burst-{n}",
            ledger_value(
                f"burst-{n}", "2026-11-01T00:00:00Z", [("email", f"b{n}@example.org", ADS)]
            ),
        )
        for n in range(40)
    ]
    withdrawals += [
        (
            f"burst-{n}",
            ledger_value(
                f"burst-{n}", "2026-11-03T00:00:00Z", [("email", f"b{n}@example.org", MFA)]
            ),
        )
        for n in range(40)
    ]
    with Deployment(
        kafka_bootstrap,
        topics,
        unique_topic_name("lrebal-group"),
        key,
        tmp_path,
        extra_env={"ENFORCER_SESSION_TIMEOUT": "6", "ENFORCER_LEDGER_TOPIC": ledger},
    ) as deployment:
        await deployment.create_topics(PARTITIONS)
        await create_topics(kafka_bootstrap, [ledger], PARTITIONS)
        try:
            await produce_ledger(kafka_bootstrap, ledger, stable + withdrawals[:40])
            a, b = deployment.worker("a"), deployment.worker("b")
            a.start()
            await wait_for_commits(
                kafka_bootstrap,
                deployment.group_id,
                ledger,
                at_least=len(stable) + 40,
                timeout_s=60,
                alive=[a],
            )
            assert a.log_count(RESTORED_LOG) == PARTITIONS, a.log_tail()
            seen = a.assignments()
            b.start()
            await a.wait_for_new_assignment(seen)
            await b.wait_for_log(ASSIGNED)
            # Both decide events; the burst subjects withdraw consent meanwhile.
            first = await produce(
                kafka_bootstrap, topics.source, events(2000, len(stable), random.Random(1))
            )
            await produce_ledger(kafka_bootstrap, ledger, withdrawals[40:])
            await wait_for_commits(
                kafka_bootstrap,
                deployment.group_id,
                topics.source,
                until=end_offsets_of(first),
                timeout_s=90,
                alive=[a, b],
            )
            await wait_for_commits(
                kafka_bootstrap,
                deployment.group_id,
                ledger,
                at_least=len(stable) + len(withdrawals),
                timeout_s=60,
                alive=[a, b],
            )
            b_partitions = b.assigned_now()
            assert b_partitions > 0, b.log_tail()
            assert b.log_count(RESTORED_LOG) == b_partitions, b.log_tail()
            assert a.log_count(KEPT_LOG) == PARTITIONS - b_partitions, a.log_tail()
            restored_by_a = a.log_count(RESTORED_LOG)
            seen = a.assignments()
            assert b.stop() == 0, b.log_tail()
            await a.wait_for_new_assignment(seen)
            later = await produce(
                kafka_bootstrap,
                topics.source,
                events(500, len(stable), random.Random(2), first=2000),
            )
            inputs = first + later
            await wait_for_commits(
                kafka_bootstrap,
                deployment.group_id,
                topics.source,
                until=end_offsets_of(inputs),
                timeout_s=90,
                alive=[a],
            )
            # B's partitions came back to A: the ledger had moved on there (B applied
            # withdrawals), so A restored them; its own it kept.
            assert a.log_count(RESTORED_LOG) == restored_by_a + b_partitions, a.log_tail()
            assert a.stop() == 0, a.log_tail()
            known = replay_ledger_lines((v or b"" for _, v in stable), fingerprinter).state
            wanted = expected_retractions(withdrawals, fingerprinter, passes_under(policy))
            check = await check_outcomes(
                kafka_bootstrap,
                topics,
                inputs,
                fingerprint_key=key,
                step=Step(policy, fingerprinter, SystemClock(), WholeLedger(known)),
                retractions=sum(wanted.values()),
            )
        finally:
            await deployment.delete_topics()
            await delete_topics(kafka_bootstrap, [ledger])
    assert check.problems() == [], check.summary()
    assert sum(wanted.values()) == 40
    assert retractions_read(check.retractions) == wanted
