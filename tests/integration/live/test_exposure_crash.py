"""Exact retractions exactly once across crashes (docs/exposure.md), on the real broker.

- **Ledger updates.** One worker keeping exposure reads events and ledger updates about
  the same subjects arriving together, and is killed with SIGKILL three times. Which
  identifiers flow depends on how the two topics interleave, so the check is of the
  history a ``read_committed`` reader of the sink sees, per subject in order: a
  retraction only ever follows a forward of the same identifier (never one that was
  not exposed, never twice), and at the end everything still exposed is allowed by
  the ledger's last word; the exposure topic holds exactly what that history says
  is exposed.
- **A policy change at restart.** Identifiers forwarded under the default policy; a
  worker under a stricter one is killed three times while it re-judges, or a worker
  reloads the stricter policy from its file and is killed right after (then twice
  more), or a second worker joins while the first re-judges (a rebalance); every
  identifier the new policy forbids is retracted exactly once.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest

from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.core.policy.load import default_policy_bytes
from enforcer.core.step import HEADER_ACTION
from enforcer.exposure.model import SubjectExposure, parse_exposure_record
from enforcer.live.exposure import RESTORED_LOG
from enforcer.live.policy_reload import RELOADED_LOG
from enforcer.testing.consume import ReadRecord, read_committed
from enforcer.testing.ledger import ledger_value, produce_ledger, retractions_read
from enforcer.testing.policies import phones_never_for_advertising
from enforcer.testing.topics import create_topics, delete_topics, unique_topic_name
from enforcer.testing.worker import (
    ASSIGNED,
    Deployment,
    EnforcerTopics,
    EnforcerWorker,
    end_offsets_of,
    finish_after_kills,
    kill_at_random_commits,
    produce,
    wait_for_commits,
)

PARTITIONS = 3
KILLS = 3
SUBJECTS = 60
COMPACTED = {"cleanup.policy": "compact"}
EVENTS = 9_000
EVENTS_PER_SECOND = 300
UPDATES = 900
UPDATES_PER_SECOND = 30
ADS = ("marketing.advertising",)
MFA = ("security.mfa",)
DEFAULT = default_policy_bytes()
NO_PHONES = phones_never_for_advertising()
Identity = tuple[str, str, str]
"""(subject id, identifier type, fingerprint)."""


def event(n: int, subject: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"evt-{n}",
            "subject_id": f"s-{subject}",
            "occurred_at": "2026-11-02T00:00:00Z",
            "identifiers": [
                {"type": "email", "value": f"s{subject}@example.org", "purposes": list(ADS)}
            ],
        }
    )


def consent(subject: int, n: int, purposes: tuple[str, ...]) -> bytes:
    at = f"2026-11-02T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"
    return ledger_value(f"s-{subject}", at, [("email", f"s{subject}@example.org", purposes)])


def history(
    sink: list[ReadRecord], fingerprinter: Fingerprinter
) -> tuple[set[Identity], list[str]]:
    """Replay the sink per partition, in order: what is exposed at the end, and every
    step that breaks "a retraction follows a forward of the same identifier"."""
    exposed: set[Identity] = set()
    problems: list[str] = []
    for record in sorted(sink, key=lambda r: (r.partition, r.offset)):
        value = orjson.loads(record.value or b"{}")
        if dict(record.headers).get(HEADER_ACTION) == b"retracted":
            body = value["retraction"]
            identity = (body["subject_id"], body["identifier_type"], body["fingerprint"])
            if identity not in exposed:
                problems.append(
                    f"{record.partition}/{record.offset}: retracts {identity[:2]} unexposed"
                )
            exposed.discard(identity)
            continue
        for found in value.get("identifiers", []):
            kind = found["type"]
            exposed.add((value["subject_id"], kind, fingerprinter(kind, found["value"])))
    return exposed, problems


async def exposure_topic_state(bootstrap: str, topic: str) -> set[Identity]:
    records = await read_committed(bootstrap, topic, expected=1, timeout_s=30, settle_s=2.0)
    latest: dict[str, SubjectExposure] = {}
    for record in records:
        parsed = parse_exposure_record(record.key, record.value)
        assert isinstance(parsed, SubjectExposure), parsed
        latest[parsed.subject_id] = parsed
    return {
        (subject, e.identifier_type, e.fingerprint)
        for subject, exposure in latest.items()
        for e in exposure.entries
    }


@pytest.mark.timeout(300)
async def test_sigkill_during_ledger_updates_retracts_only_and_all_exposed(
    kafka_bootstrap: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    topics = EnforcerTopics.unique("xcrash")
    ledger = unique_topic_name("xcrash-purposes")
    exposure = unique_topic_name("xcrash-exposure")
    key = generate_key()
    fingerprinter = Fingerprinter(key_from_text(key))
    start = [(f"s-{s}", consent(s, 0, ADS)) for s in range(SUBJECTS)]
    updates: list[tuple[str, bytes | None]] = []
    last: dict[int, tuple[str, ...] | None] = dict.fromkeys(range(SUBJECTS), ADS)
    for n in range(1, UPDATES + 1):
        subject = rng.randrange(SUBJECTS)
        if rng.random() < 0.1:
            updates.append((f"s-{subject}", None))
            last[subject] = None
        else:
            purposes = ADS if rng.random() < 0.5 else MFA
            updates.append((f"s-{subject}", consent(subject, n, purposes)))
            last[subject] = purposes
    values = [event(n, rng.randrange(SUBJECTS)) for n in range(EVENTS)]
    with Deployment(
        kafka_bootstrap,
        topics,
        unique_topic_name("xcrash-group"),
        key,
        tmp_path,
        extra_env={
            "ENFORCER_SESSION_TIMEOUT": "6",
            "ENFORCER_LEDGER_TOPIC": ledger,
            "ENFORCER_EXPOSURE_TOPIC": exposure,
        },
    ) as deployment:
        await deployment.create_topics(PARTITIONS)
        await create_topics(kafka_bootstrap, [ledger, exposure], PARTITIONS, configs=COMPACTED)
        try:
            await produce_ledger(kafka_bootstrap, ledger, start)
            worker = deployment.worker("worker")
            worker.start()
            await wait_for_commits(
                kafka_bootstrap,
                deployment.group_id,
                ledger,
                at_least=len(start),
                timeout_s=60,
                alive=[worker],
            )
            producing = asyncio.gather(
                produce(
                    kafka_bootstrap,
                    topics.source,
                    values,
                    per_second=EVENTS_PER_SECOND,
                    ahead_of=deployment.group_id,
                    window=EVENTS_PER_SECOND,
                ),
                produce_ledger(kafka_bootstrap, ledger, updates, per_second=UPDATES_PER_SECOND),
            )
            kill_points = await kill_at_random_commits(
                deployment, worker, rng, records=EVENTS, kills=KILLS, gap=(300, 900)
            )
            worker.start()  # before the producers are awaited: events wait for commits
            inputs, _ = await asyncio.wait_for(producing, timeout=120)
            await finish_after_kills(
                deployment, worker, inputs, ledger=ledger, ledger_records=len(start) + len(updates)
            )
            sink = await read_committed(
                kafka_bootstrap, topics.sink, expected=1, timeout_s=30, settle_s=2.0
            )
            in_topic = await exposure_topic_state(kafka_bootstrap, exposure)
        finally:
            await deployment.delete_topics()
            await delete_topics(kafka_bootstrap, [ledger, exposure])

    exposed, problems = history(sink, fingerprinter)
    retracted = retractions_read(sink)
    figures = (
        f"exposure crash test (seed {seed}): {KILLS} SIGKILLs at committed source offsets "
        f"{kill_points}, {worker.runs} runs, {len(sink)} sink records, "
        f"{sum(retracted.values())} retractions, {len(exposed)} exposed at the end"
    )
    print(figures)
    record_property("figures", figures)
    assert len(kill_points) == KILLS
    assert problems == [], f"{figures}\n" + "\n".join(problems[:20])
    assert sum(retracted.values()) > 20, figures
    allowed_at_end = {
        (f"s-{s}", "email", fingerprinter("email", f"s{s}@example.org"))
        for s, purposes in last.items()
        if purposes == ADS
    }
    assert exposed <= allowed_at_end, f"{figures}\nstill exposed: {exposed - allowed_at_end}"
    assert in_topic == exposed, figures


SUBJECTS_FORWARDED = 3_000


def both_forwarded(n: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{n}",
            "subject_id": f"acct-{n}",
            "occurred_at": "2026-11-02T00:00:00Z",
            "identifiers": [
                {"type": "email", "value": f"u{n}@x.io", "purposes": list(ADS)},
                {"type": "phone", "value": f"+1 415 555 {n:04d}", "purposes": list(ADS)},
            ],
        }
    )


async def _killed_while_rejudging(deployment: Deployment, new: Path) -> list[EnforcerWorker]:
    """A worker under the new policy killed three times, each a moment after a partition
    was restored (its re-judgement under way or just committed), then started again."""
    rng = random.Random()
    worker = deployment.worker("new", {"ENFORCER_POLICY_FILE": str(new)})
    for _ in range(KILLS):
        worker.start()
        await worker.wait_for_log(RESTORED_LOG, timeout_s=90)
        await asyncio.sleep(rng.uniform(0, 0.5))
        worker.kill()
    worker.start()
    return [worker]


async def _reloaded_then_killed(deployment: Deployment, new: Path) -> list[EnforcerWorker]:
    """A worker under the old policy whose file is rewritten with the new one while it
    runs: killed a moment after it reloads (its re-judgement under way or just
    committed), then twice more after it restores, then started again."""
    rng = random.Random()
    path = new.with_name("policy.yaml")
    path.write_bytes(DEFAULT)
    worker = deployment.worker(
        "reloading",
        {"ENFORCER_POLICY_FILE": str(path), "ENFORCER_POLICY_CHECK_INTERVAL": "0.2"},
    )
    worker.start()
    await worker.wait_for_log(ASSIGNED, timeout_s=90)
    await worker.wait_for_log(RESTORED_LOG, at_least=PARTITIONS, timeout_s=90)
    staged = path.with_name("policy.yaml.new")
    staged.write_bytes(NO_PHONES)
    staged.replace(path)
    await worker.wait_for_log(RELOADED_LOG, timeout_s=60)
    await asyncio.sleep(rng.uniform(0, 0.3))
    worker.kill()
    for _ in range(KILLS - 1):
        worker.start()
        await worker.wait_for_log(RESTORED_LOG, timeout_s=90)
        await asyncio.sleep(rng.uniform(0, 0.5))
        worker.kill()
    worker.start()
    return [worker]


async def _rebalanced_while_rejudging(deployment: Deployment, new: Path) -> list[EnforcerWorker]:
    """A worker under the new policy, joined by a second one as soon as it restored a
    partition: the group rebalances while the first re-judges."""
    first = deployment.worker("new-a", {"ENFORCER_POLICY_FILE": str(new)})
    first.start()
    await first.wait_for_log(RESTORED_LOG, timeout_s=90)
    second = deployment.worker("new-b", {"ENFORCER_POLICY_FILE": str(new)})
    second.start()
    await second.wait_for_log(RESTORED_LOG, timeout_s=90)
    return [first, second]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "trouble",
    [_killed_while_rejudging, _reloaded_then_killed, _rebalanced_while_rejudging],
    ids=["sigkill", "reload-sigkill", "rebalance"],
)
async def test_a_new_policy_retracts_each_forbidden_identifier_once(
    kafka_bootstrap: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    trouble: Callable[[Deployment, Path], Awaitable[list[EnforcerWorker]]],
) -> None:
    """Identifiers forwarded under the default; workers under a policy that keeps
    phones from advertising are killed, or rebalanced, while they re-judge: every
    exposed phone is retracted exactly once and exposure keeps the emails."""
    topics = EnforcerTopics.unique("xpolicy")
    exposure = unique_topic_name("xpolicy-exposure")
    key = generate_key()
    fingerprinter = Fingerprinter(key_from_text(key))
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_bytes(DEFAULT)
    new.write_bytes(NO_PHONES)
    values = [both_forwarded(n) for n in range(SUBJECTS_FORWARDED)]
    with Deployment(
        kafka_bootstrap,
        topics,
        unique_topic_name("xpolicy-group"),
        key,
        tmp_path,
        extra_env={"ENFORCER_SESSION_TIMEOUT": "6", "ENFORCER_EXPOSURE_TOPIC": exposure},
    ) as deployment:
        await deployment.create_topics(PARTITIONS)
        await create_topics(kafka_bootstrap, [exposure], PARTITIONS, configs=COMPACTED)
        try:
            inputs = await produce(kafka_bootstrap, topics.source, values)
            first = deployment.worker("old", {"ENFORCER_POLICY_FILE": str(old)})
            first.start()
            await wait_for_commits(
                kafka_bootstrap,
                deployment.group_id,
                topics.source,
                until=end_offsets_of(inputs),
                timeout_s=120,
                alive=[first],
            )
            assert first.stop() == 0, first.log_tail()
            workers = await trouble(deployment, new)
            later = await produce(
                kafka_bootstrap,
                topics.source,
                [
                    orjson.dumps(
                        {
                            "event_id": f"later-{p}",
                            "subject_id": f"acct-{p}",
                            "occurred_at": "2026-11-02T00:00:00Z",
                            "identifiers": [],
                        }
                    )
                    for p in range(12)
                ],
            )
            await wait_for_commits(
                kafka_bootstrap,
                deployment.group_id,
                topics.source,
                until=end_offsets_of(inputs + later),
                timeout_s=120,
                alive=workers,
            )
            for worker in workers:
                assert worker.stop() == 0, worker.log_tail()
            sink = await read_committed(
                kafka_bootstrap,
                topics.sink,
                expected=2 * SUBJECTS_FORWARDED + len(later),
                timeout_s=60,
            )
            in_topic = await exposure_topic_state(kafka_bootstrap, exposure)
        finally:
            await deployment.delete_topics()
            await delete_topics(kafka_bootstrap, [exposure])

    got = retractions_read(sink)
    wanted = Counter(
        {
            (
                f"acct-{n}",
                "phone",
                fingerprinter("phone", f"+1 415 555 {n:04d}"),
                "policy-changed",
            ): 1
            for n in range(SUBJECTS_FORWARDED)
        }
    )
    runs = sum(w.runs for w in workers)
    figures = f"policy change ({trouble.__name__}): {runs} runs, {sum(got.values())} retractions"
    print(figures)
    record_property("figures", figures)
    assert got == wanted, f"{figures}\nmissing {wanted - got}\nextra {got - wanted}"
    assert in_topic == {
        (f"acct-{n}", "email", fingerprinter("email", f"u{n}@x.io"))
        for n in range(SUBJECTS_FORWARDED)
    }
