"""``enforcer remediate apply --exposure-topic`` against a real broker (docs/remediate.md,
"Applying a plan with exposure"): with any plan, the retracted identifiers leave
exposure in the retractions' transactions, so that a worker's later policy change does
not retract them again; nothing is written while a worker of the group runs, nor when
the exposure topic is missing, not compacted or not co-partitioned with the source."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.core.policy.load import default_policy_bytes
from enforcer.exposure.model import (
    ExposureEntry,
    SubjectExposure,
    exposure_value,
    parse_exposure_record,
)
from enforcer.live.exposure import REJUDGED_LOG
from enforcer.remediate.plan import read_plan
from enforcer.testing.consume import read_committed
from enforcer.testing.ledger import retractions_read
from enforcer.testing.policies import phones_never_for_advertising
from enforcer.testing.topics import create_topics, delete_topics, unique_topic_name
from enforcer.testing.worker import (
    co_partitioned_deployment,
    decided,
)

from .conftest import Cli, plan_retractions_in, read_sink

pytestmark = pytest.mark.timeout(300)

ADS = ["marketing.advertising"]
PASSED = (("enforcer.action", b"passed"), ("enforcer.policy", b"v1"))


def _event(n: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{n}",
            "subject_id": f"acct-{n}",
            "occurred_at": "2026-12-01T10:00:00Z",
            "identifiers": [
                {"type": "email", "value": f"u{n}@x.io", "purposes": ADS},
                {"type": "phone", "value": f"+1 415 555 {n:04d}", "purposes": ADS},
            ],
        }
    )


def _cli(bootstrap: str, key: str) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    env.update(ENFORCER_BOOTSTRAP_SERVERS=bootstrap, ENFORCER_FINGERPRINT_KEY=key)
    return Cli(env)


def _exposure_now(bootstrap: str, topic: str) -> tuple[int, dict[str, SubjectExposure]]:
    """How many records the exposure topic holds, and each subject's latest value."""
    records = read_sink(bootstrap, topic)
    latest: dict[str, SubjectExposure] = {}
    for record in records:
        parsed = parse_exposure_record(record.key, record.value)
        assert isinstance(parsed, SubjectExposure), parsed
        latest[parsed.subject_id] = parsed
    return len(records), latest


async def test_apply_takes_its_retractions_out_of_exposure_once_the_workers_stop(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A plan made without --with-exposure, applied with the exposure topic: refused
    while the worker runs (nothing written); once it stops, each retraction is written
    once and its identifier leaves its subject's value; a second apply writes nothing;
    and a worker restarted under the plan's policy retracts nothing again."""
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_bytes(default_policy_bytes())
    new.write_bytes(phones_never_for_advertising())
    async with co_partitioned_deployment(
        kafka_bootstrap, tmp_path, "remexp", 3, {"ENFORCER_EXPOSURE_TOPIC": "state"},
        compacted=True,
    ) as deployment:  # fmt: skip
        exposure = deployment.extra_env["ENFORCER_EXPOSURE_TOPIC"]
        sink, group = deployment.topics.sink, deployment.group_id
        cli = _cli(kafka_bootstrap, deployment.fingerprint_key)
        fp = Fingerprinter(key_from_text(deployment.fingerprint_key))
        worker = deployment.worker("old", {"ENFORCER_POLICY_FILE": str(old)})
        worker.start()
        inputs = await decided(deployment, worker, [_event(n) for n in range(6)], [])

        path = tmp_path / "plan.json"
        status, _, err = await cli(
            "remediate", "plan", "--policy", str(new), "--sink-topic", sink, "--out", str(path)
        )
        assert status == 0, err
        plan = read_plan(path)
        phones = {(f"acct-{n}", "phone", fp("phone", f"+1 415 555 {n:04d}")) for n in range(6)}
        assert {r.identity for r in plan.retractions} == phones and plan.exposure is None
        apply = [
            "remediate", "apply", str(path), "--exposure-topic", exposure, "--group-id", group,
            "--source-topic", deployment.topics.source, "--batch-size", "4",
        ]  # fmt: skip

        held_before = await asyncio.to_thread(_exposure_now, kafka_bootstrap, exposure)
        status, out, err = await cli(*apply)
        assert status == 2 and err.count("\n") == 1, err
        assert "stop the workers first" in err and f"'{group}'" in err, err
        assert not await plan_retractions_in(kafka_bootstrap, sink, plan.plan_id)
        assert await asyncio.to_thread(_exposure_now, kafka_bootstrap, exposure) == held_before

        assert worker.stop() == 0, worker.log_tail()
        status, out, err = await cli(*apply)
        assert status == 0, err
        assert "committed 4/6" in err and "committed 6/6" in err, err
        assert "exposure: retracted identifiers taken out of 6 subjects' values" in out, out
        found = await plan_retractions_in(kafka_bootstrap, sink, plan.plan_id)
        assert set(found) == phones and set(found.values()) == {1}
        count, held = await asyncio.to_thread(_exposure_now, kafka_bootstrap, exposure)
        assert {s: [e.identifier_type for e in v.entries] for s, v in held.items()} == {
            f"acct-{n}": ["email"] for n in range(6)
        }

        status, out, err = await cli(*apply)
        assert status == 0, err
        assert "nothing to write" in out and "taken out of 0 subjects' values" in out, out
        assert await plan_retractions_in(kafka_bootstrap, sink, plan.plan_id) == found
        assert (await asyncio.to_thread(_exposure_now, kafka_bootstrap, exposure))[0] == count

        # The policy the plan judged by, now in the worker: what the apply retracted is
        # no longer exposed, so its re-judgement retracts nothing a second time.
        worker = deployment.worker("new", {"ENFORCER_POLICY_FILE": str(new)})
        worker.start()
        await decided(deployment, worker, [_event(100)], inputs)
        assert worker.stop() == 0, worker.log_tail()
        assert worker.log_count(REJUDGED_LOG) == 0, worker.log_tail()
        records = await read_committed(kafka_bootstrap, sink, expected=6 + 6 + 1)
        reasons = Counter(reason for *_, reason in retractions_read(records).elements())
        assert reasons == {"remediated": 6}


async def test_apply_checks_the_exposure_topic_before_writing_anything(
    kafka_bootstrap: str, tmp_path: Path, fixed_policy: Path
) -> None:
    """A missing exposure topic, one that is not compacted (a violations topic) and one
    with another partition count than the source are each one line, exit 2, and nothing
    is written. Then: retractions written by a plain apply leave exposure as it was; an
    apply with the exposure topic takes them out of it afterwards, and once only."""
    key = generate_key()
    fp = Fingerprinter(key_from_text(key))
    cli = _cli(kafka_bootstrap, key)
    names = {role: unique_topic_name(f"remexp-{role}") for role in ("sink", "source", "plain")}
    compacted = {n: unique_topic_name(f"remexp-exposure{n}") for n in (2, 3)}
    await create_topics(kafka_bootstrap, list(names.values()), 3)
    for partitions, name in compacted.items():
        await create_topics(
            kafka_bootstrap, [name], partitions, configs={"cleanup.policy": "compact"}
        )
    try:
        sink, exposure = names["sink"], compacted[3]
        await _produce_forwarded(kafka_bootstrap, sink, 10)
        # Two subjects' values as a worker would have written them: email and phone.
        held = {
            n: SubjectExposure(
                f"acct-{n}",
                tuple(
                    ExposureEntry(sink, kind, fp(kind, value), fp.key_id, tuple(ADS), False,
                                  "v1", "2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z")
                    for kind, value in (("email", f"u{n}@x.io"), ("phone", f"+1 415 555 {n:04d}"))
                ),
            )
            for n in (1, 2)
        }  # fmt: skip
        await _produce_values(kafka_bootstrap, exposure, held.values())

        path = tmp_path / "plan.json"
        status, _, err = await cli(
            "remediate", "plan", "--policy", str(fixed_policy), "--sink-topic", sink,
            "--out", str(path),
        )  # fmt: skip
        assert status == 0, err
        plan = read_plan(path)
        assert len(plan.retractions) == 10
        group = ["--group-id", unique_topic_name("remexp-group"), "--source-topic"]
        refusals = {
            unique_topic_name("no.such.exposure"): "does not exist",
            names["plain"]: "is not compacted (cleanup.policy=delete)",
            compacted[2]: "co-partitioned",
        }
        for topic, needle in refusals.items():
            status, out, err = await cli(
                "remediate", "apply", str(path), "--exposure-topic", topic, *group,
                names["source"],
            )  # fmt: skip
            assert status == 2 and err.count("\n") == 1 and needle in err, err
            assert out == ""
            assert not await plan_retractions_in(kafka_bootstrap, sink, plan.plan_id)

        status, out, err = await cli("remediate", "apply", str(path))
        assert status == 0, err
        assert len(await plan_retractions_in(kafka_bootstrap, sink, plan.plan_id)) == 10
        count, now = await asyncio.to_thread(_exposure_now, kafka_bootstrap, exposure)
        assert count == 2 and now == {s.subject_id: s for s in held.values()}

        apply = ["remediate", "apply", str(path), "--exposure-topic", exposure, *group]
        for written in (2, 0):
            status, out, err = await cli(*apply, names["source"])
            assert status == 0, err
            assert "nothing to write" in out
            assert f"taken out of {written} subjects' values" in out, out
        count, now = await asyncio.to_thread(_exposure_now, kafka_bootstrap, exposure)
        assert count == 4
        for n, value in held.items():
            assert now[f"acct-{n}"].entries == value.entries[:1]  # the email stays
        found = await plan_retractions_in(kafka_bootstrap, sink, plan.plan_id)
        assert len(found) == 10 and set(found.values()) == {1}
    finally:
        await delete_topics(kafka_bootstrap, [*names.values(), *compacted.values()])


async def _produce_forwarded(bootstrap: str, topic: str, count: int) -> None:
    """``count`` forwarded records as the enforcer writes them, one subject each."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(count):
            await producer.send_and_wait(
                topic, _event(n), key=f"acct-{n}".encode(), headers=list(PASSED)
            )
    finally:
        await producer.stop()


async def _produce_values(bootstrap: str, topic: str, values: Iterable[SubjectExposure]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(
                topic, exposure_value(value), key=value.subject_id.encode()
            )
    finally:
        await producer.stop()
