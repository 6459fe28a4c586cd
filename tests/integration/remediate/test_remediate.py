"""``enforcer remediate`` against a real broker (docs/remediate.md): a plan over the sink
a real ``enforcer run`` wrote equals what ``enforcer replay`` under the new policy says
about the same records; ``apply`` twice writes once; an apply killed with SIGKILL three
times and run again writes exactly the plan's retractions, each once; bad input is one
line and exit 2."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.demo.sample import sample_values
from enforcer.exposure.model import (
    ExposureEntry,
    SubjectExposure,
    exposure_value,
    parse_exposure_record,
)
from enforcer.remediate.history import SinkKind, kind_of, read_retraction
from enforcer.remediate.plan import HistoryCounts, Plan, read_plan, write_plan
from enforcer.testing.ledger import ledger_value
from enforcer.testing.topics import TopicFactory, unique_topic_name
from enforcer.testing.worker import (
    Deployment,
    EnforcerTopics,
    end_offsets_of,
    produce,
    wait_for_commits,
)

from .conftest import Cli, plan_retractions_in, read_sink

Identity = tuple[str, str, str]
RETRACTED = (("enforcer.action", b"retracted"), ("enforcer.policy", b"v1"))
PASSED = (("enforcer.action", b"passed"), ("enforcer.policy", b"v1"))


async def test_a_plan_over_a_real_run_equals_replay_and_applies_once(
    kafka_bootstrap: str, tmp_path: Path, key: str, cli: Cli, fixed_policy: Path
) -> None:
    fp = Fingerprinter(key_from_text(key))
    topics = EnforcerTopics.unique("remediate")
    with Deployment(
        kafka_bootstrap, topics, unique_topic_name("remediate-group"), key, tmp_path
    ) as deployment:
        await deployment.create_topics(3)
        inputs = await produce(kafka_bootstrap, topics.source, sample_values(600, seed=22))
        worker = deployment.worker("w1")
        worker.start()
        await wait_for_commits(
            kafka_bootstrap,
            deployment.group_id,
            topics.source,
            until=end_offsets_of(inputs),
            timeout_s=180,
            alive=[worker],
        )
        assert worker.stop() == 0
    sink = await asyncio.to_thread(read_sink, kafka_bootstrap, topics.sink)
    forwarded = [r for r in sink if kind_of(r.headers) is SinkKind.FORWARDED]
    assert len(forwarded) > 300

    # Some phone numbers were retracted since (as a ledger withdrawal would): still
    # exposed no longer, so not in the plan.
    phones = sorted(
        {
            (event["subject_id"], "phone", fp("phone", i["value"]))
            for event in (orjson.loads(r.value or b"") for r in forwarded)
            for i in event["identifiers"]
            if i["type"] == "phone"
        }
    )
    withdrawn = phones[:5]
    await _produce_retractions(kafka_bootstrap, topics.sink, withdrawn)

    plan_path = tmp_path / "plan.json"
    html_path = tmp_path / "plan.html"
    status, out, err = await cli(
        "remediate", "plan", "--policy", str(fixed_policy), "--sink-topic", topics.sink,
        "--out", str(plan_path), "--html", str(html_path),
    )  # fmt: skip
    assert status == 0, err
    plan = read_plan(plan_path)
    assert plan.plan_id in out and "to retract" in out

    status, _, err = await cli(
        "replay", "--no-progress", "--topic", topics.sink, "--policy", str(fixed_policy),
        "--out", str(tmp_path / "replay"),
    )  # fmt: skip
    assert status == 0, err
    expected = _what_replay_says(
        await asyncio.to_thread(read_sink, kafka_bootstrap, topics.sink),
        (tmp_path / "replay" / "violations.jsonl").read_bytes(),
        fp,
    )
    planned = {r.identity for r in plan.retractions}
    assert planned == expected
    assert len(planned) > 50
    assert not planned & set(withdrawn)
    assert plan.history.retractions == len(withdrawn)
    assert plan.affected_subjects == len({subject for subject, _, _ in planned})
    # Never a raw value: not in the plan, the page or the summary.
    written = plan_path.read_bytes() + html_path.read_bytes() + out.encode()
    for record in forwarded[:100]:
        for identifier in orjson.loads(record.value or b"")["identifiers"]:
            assert identifier["value"].encode() not in written

    status, out, err = await cli("remediate", "apply", str(plan_path))
    assert status == 0, err
    found = await plan_retractions_in(kafka_bootstrap, topics.sink, plan.plan_id)
    assert set(found) == planned and set(found.values()) == {1}

    status, out, err = await cli("remediate", "apply", str(plan_path))
    assert status == 0, err
    assert "nothing to write" in out
    assert await plan_retractions_in(kafka_bootstrap, topics.sink, plan.plan_id) == found

    # What was applied is no longer exposed: a new plan of the same history retracts nothing.
    status, _, err = await cli(
        "remediate", "plan", "--policy", str(fixed_policy), "--sink-topic", topics.sink,
        "--out", str(tmp_path / "again.json"),
    )  # fmt: skip
    assert status == 0, err
    again = read_plan(tmp_path / "again.json")
    assert again.retractions == () and again.exposed == plan.exposed - len(planned)
    assert again.history.retractions == len(withdrawn) + len(planned)


def _what_replay_says(sink: list[Any], violations: bytes, fp: Fingerprinter) -> set[Identity]:
    """The identities replay finds a rule for in their latest forward, unless retracted
    after it: what the plan must retract."""
    ruled: dict[tuple[int, int], set[tuple[str, str]]] = {}
    for line in violations.splitlines():
        violation = json.loads(line)
        place = (violation["source"]["partition"], violation["source"]["offset"])
        ruled[place] = {(f["identifier_type"], f["fingerprint"]) for f in violation["findings"]}
    last: dict[Identity, tuple[tuple[int, int, int], bool]] = {}
    for record in sorted(sink, key=lambda r: r.order):
        if kind_of(record.headers) is SinkKind.RETRACTION:
            retraction = read_retraction(record.value)
            assert retraction is not None
            last[retraction.identity] = (record.order, False)
            continue
        if kind_of(record.headers) is not SinkKind.FORWARDED:
            continue
        event = orjson.loads(record.value or b"")
        found = ruled.get((record.partition, record.offset), set())
        for identifier in event["identifiers"]:
            kind = identifier["type"].lower()
            fingerprint = fp(kind, identifier["value"])
            last[(event["subject_id"], kind, fingerprint)] = (
                record.order,
                (kind, fingerprint) in found,
            )
    return {identity for identity, (_, retract) in last.items() if retract}


async def _produce_retractions(bootstrap: str, topic: str, identities: list[Identity]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for subject, kind, fingerprint in identities:
            body = {
                "subject_id": subject,
                "identifier_type": kind,
                "fingerprint": fingerprint,
                "reason": "purpose-withdrawn",
                "ledger_updated_at": "2026-12-01T00:00:00Z",
            }
            await producer.send_and_wait(
                topic,
                orjson.dumps({"retraction": body}),
                key=subject.encode(),
                headers=list(RETRACTED),
            )
    finally:
        await producer.stop()


def _event(index: int) -> dict[str, Any]:
    ads = ["marketing.advertising"]
    return {
        "event_id": f"evt-{index}",
        "subject_id": f"acct-{index:05d}",
        "occurred_at": "2026-12-01T00:00:00Z",
        "identifiers": [
            {"type": "email", "value": f"user{index}@example.com", "purposes": ads},
            {"type": "phone", "value": f"+1 415 555 {index:04d}", "purposes": ads},
        ],
    }


async def _produce_forwarded(
    bootstrap: str, topic: str, count: int, at: datetime, first: int
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [
            await producer.send(
                topic,
                orjson.dumps(_event(i)),
                key=f"acct-{i:05d}".encode(),
                headers=list(PASSED),
                timestamp_ms=int(at.timestamp() * 1000) + i,
            )
            for i in range(first, first + count)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def test_apply_killed_three_times_writes_each_retraction_once(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path, cli: Cli, fixed_policy: Path
) -> None:
    sink = await new_topic("remediate-sink", partitions=3)
    now = datetime.now(UTC)
    await _produce_forwarded(kafka_bootstrap, sink, 600, now - timedelta(hours=2), 0)
    await _produce_forwarded(kafka_bootstrap, sink, 600, now, 600)
    common = ["remediate", "plan", "--policy", str(fixed_policy), "--sink-topic", sink]

    # The time range: by record time.
    middle = (now - timedelta(hours=1)).isoformat()
    for flag, first in (("--since", 600), ("--until", 0)):
        path = tmp_path / f"plan{flag}.json"
        status, _, err = await cli(*common, flag, middle, "--out", str(path))
        assert status == 0, err
        part = read_plan(path)
        assert {r.subject_id for r in part.retractions} == {
            f"acct-{i:05d}" for i in range(first, first + 600)
        }

    plan_path = tmp_path / "plan.json"
    status, _, err = await cli(*common, "--out", str(plan_path))
    assert status == 0, err
    plan = read_plan(plan_path)
    assert len(plan.retractions) == 1200 and plan.by_type == {"phone": 1200}
    assert plan.by_rule == {"no-phone-audiences": 1200}

    rng = random.Random(22)
    before = 0
    for _ in range(3):
        await _apply_until_killed(cli, plan_path, batches=rng.randint(1, 6))
        found = await plan_retractions_in(kafka_bootstrap, sink, plan.plan_id)
        assert set(found.values()) <= {1}, "a retraction written twice"
        assert before < sum(found.values()) < 1200, "the apply was not stopped midway"
        before = sum(found.values())

    status, out, err = await cli("remediate", "apply", str(plan_path), "--batch-size", "4")
    assert status == 0, err
    assert f"({before:,} were there already)" in out
    found = await plan_retractions_in(kafka_bootstrap, sink, plan.plan_id)
    assert set(found) == {r.identity for r in plan.retractions}
    assert set(found.values()) == {1}

    status, out, err = await cli("remediate", "apply", str(plan_path))
    assert status == 0 and "nothing to write" in out, err
    assert await plan_retractions_in(kafka_bootstrap, sink, plan.plan_id) == found


async def _apply_until_killed(cli: Cli, plan_path: Path, *, batches: int) -> None:
    """Start an apply in batches of 4, SIGKILL it once it has committed ``batches``
    more (the next batch then is usually open)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "enforcer.cli", "remediate", "apply", str(plan_path),
        "--batch-size", "4",
        env=cli.env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    committed = 0
    lines: list[str] = []
    while committed < batches:
        line = (await asyncio.wait_for(process.stderr.readline(), timeout=120)).decode()
        assert line, f"apply ended before it was killed: {lines}"
        lines.append(line)
        committed += line.startswith("committed ")
    process.send_signal(signal.SIGKILL)
    assert await process.wait() == -signal.SIGKILL


async def _produce_in_transaction(
    bootstrap: str, topic: str, indexes: range, *, commit: bool | None
) -> AIOKafkaProducer | None:
    """Forwarded records of ``indexes`` in one transaction: committed, aborted, or left
    open (``commit=None``; the producer is returned so the caller can end it)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=unique_topic_name("remediate-tx")
    )
    await producer.start()
    await producer.begin_transaction()
    for i in indexes:
        await producer.send_and_wait(
            topic, orjson.dumps(_event(i)), key=f"acct-{i:05d}".encode(), headers=list(PASSED)
        )
    if commit is None:
        return producer
    await (producer.commit_transaction() if commit else producer.abort_transaction())
    await producer.stop()
    return None


async def test_a_plan_reads_committed_records_only_and_never_waits_for_an_open_transaction(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path, cli: Cli, fixed_policy: Path
) -> None:
    """The sink as a read_committed consumer sees it: a plan ends at the last stable
    offset (an open transaction's records wait, the plan does not), skips aborted
    records, and ends a range whose last offsets are transaction markers."""
    sink = await new_topic("remediate-committed", partitions=1)
    await _produce_in_transaction(kafka_bootstrap, sink, range(0, 20), commit=True)
    await _produce_in_transaction(kafka_bootstrap, sink, range(20, 30), commit=False)
    open_one = await _produce_in_transaction(kafka_bootstrap, sink, range(30, 35), commit=None)
    assert open_one is not None
    common = ["remediate", "plan", "--policy", str(fixed_policy), "--sink-topic", sink]
    try:
        status, _, err = await cli(*common, "--out", str(tmp_path / "open.json"))
        assert status == 0, err
        plan = read_plan(tmp_path / "open.json")
        assert plan.history.forwarded == 20
        assert {r.subject_id for r in plan.retractions} == {f"acct-{i:05d}" for i in range(20)}
        await open_one.commit_transaction()
    finally:
        await open_one.stop()
    status, _, err = await cli(*common, "--out", str(tmp_path / "committed.json"))
    assert status == 0, err
    plan = read_plan(tmp_path / "committed.json")
    assert plan.history.forwarded == 25
    assert {r.subject_id for r in plan.retractions} == {
        f"acct-{i:05d}" for i in (*range(20), *range(30, 35))
    }


async def test_bad_input_is_one_line_and_exit_2(
    kafka_bootstrap: str, tmp_path: Path, cli: Cli
) -> None:
    absent = unique_topic_name("remediate-absent")
    status, _, err = await cli(
        "remediate", "plan", "--sink-topic", absent, "--out", str(tmp_path / "p.json")
    )
    assert status == 2 and err.count("\n") == 1 and "not found" in err, err
    assert not (tmp_path / "p.json").exists()
    plan = Plan(
        absent, "sha256:" + "1" * 64, "0123456789abcdef", "off", None, None, (),
        HistoryCounts(), 0, {}, {}, {}, 0, (),
    ).with_id()  # fmt: skip
    write_plan(tmp_path / "absent.json", plan)
    status, _, err = await cli("remediate", "apply", str(tmp_path / "absent.json"))
    assert status == 2 and err.count("\n") == 1 and "not found" in err, err


async def test_a_plan_judges_by_the_ledger_topic(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path, key: str, cli: Cli
) -> None:
    """Under ``ledger: fallback``: the phone numbers the ledger no longer grants for
    advertising, and everything of the subjects it erased, are retracted; identifiers
    the ledger does not know are judged by their own tags (advertising: kept)."""
    fp = Fingerprinter(key_from_text(key))
    sink = await new_topic("remediate-sink", partitions=2)
    ledger = await new_topic("remediate-ledger", partitions=2)
    await _produce_forwarded(kafka_bootstrap, sink, 100, datetime.now(UTC), 0)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(60):
            subject = f"acct-{i:05d}"
            event = _event(i)
            value = None
            if i < 50:
                email, phone = (item["value"] for item in event["identifiers"])
                value = ledger_value(
                    subject,
                    "2026-12-02T00:00:00Z",
                    [("email", email, ["marketing.advertising"]), ("phone", phone, ["analytics"])],
                )
            await producer.send_and_wait(ledger, value, key=subject.encode())
    finally:
        await producer.stop()
    policy = tmp_path / "ledger.yaml"
    policy.write_text(
        (Path("enforcer/core/policy/default.yaml").read_text()) + "\nledger: fallback\n"
    )
    path = tmp_path / "plan.json"
    status, _, err = await cli(
        "remediate", "plan", "--policy", str(policy), "--sink-topic", sink,
        "--ledger-topic", ledger, "--out", str(path),
    )  # fmt: skip
    assert status == 0, err
    plan = read_plan(path)
    assert plan.ledger == "fallback"
    erased = {(f"acct-{i:05d}", t) for i in range(50, 60) for t in ("email", "phone")}
    withdrawn = {(f"acct-{i:05d}", "phone") for i in range(50)}
    assert {(r.subject_id, r.identifier_type) for r in plan.retractions} == erased | withdrawn
    assert plan.exposed == 200
    for r in plan.retractions:
        index = int(r.subject_id.removeprefix("acct-"))
        value = _event(index)["identifiers"][0 if r.identifier_type == "email" else 1]["value"]
        assert r.fingerprint == fp(r.identifier_type, value)


async def test_apply_seeds_exposure_for_a_deployment_that_predates_it(
    kafka_bootstrap: str, new_topic: TopicFactory, compacted_topic: TopicFactory,
    tmp_path: Path, key: str, cli: Cli, fixed_policy: Path,
) -> None:  # fmt: skip
    """Every identifier still exposed and allowed becomes an exposure entry, in the
    partition the subject id falls in; what a subject's value held already is kept, less
    what the plan retracts; a second apply writes nothing."""
    fp = Fingerprinter(key_from_text(key))
    sink = await new_topic("remediate-sink", partitions=3)
    source = await new_topic("remediate-source", partitions=3)
    exposure = await compacted_topic("remediate-exposure", partitions=3)
    await _produce_forwarded(kafka_bootstrap, sink, 50, datetime.now(UTC), 0)
    # acct-00007's value as a worker would have written it: its phone (which the plan
    # retracts) and an entry for another sink (which it keeps).
    phone = fp("phone", _event(7)["identifiers"][1]["value"])
    held = [
        ExposureEntry(sink, "phone", phone, fp.key_id, ("marketing.advertising",), False, "v1",
                      "2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"),
        ExposureEntry("another-sink", "email", fp("email", "x@example.com"), fp.key_id,
                      ("marketing.advertising",), False, "v1", "2026-12-01T00:00:00Z",
                      "2026-12-01T00:00:00Z"),
    ]  # fmt: skip
    subject7 = b"acct-00007"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        value = exposure_value(SubjectExposure("acct-00007", tuple(held)))
        await producer.send_and_wait(exposure, value, key=subject7, partition=1)
    finally:
        await producer.stop()

    path = tmp_path / "plan.json"
    common = ["--policy", str(fixed_policy), "--sink-topic", sink, "--out", str(path)]
    apply = ["remediate", "apply", str(path), "--exposure-topic", exposure, "--source-topic"]
    # The source is empty: nothing tells its partitioner, so it is named.
    apply += [source, "--group-id", unique_topic_name("remediate-group")]
    apply += ["--source-partitioner", "murmur2"]
    status, _, err = await cli("remediate", "plan", "--with-exposure", *common)
    assert status == 0, err
    plan = read_plan(path)
    assert plan.exposure is not None and len(plan.exposure) == 50
    status, out, err = await cli(*apply)
    assert status == 0, err
    # acct-00007's value was put in partition 1 by hand, where murmur2 does not put it.
    assert f"the exposure values of 1 subject in {exposure} are in another partition" in err
    # acct-00007's phone leaves its value with its retraction; then every subject is seeded.
    assert "exposure: retracted identifiers taken out of 1 subject's value" in out, out
    assert "exposure: 50 subjects' values seeded" in out, out

    values: dict[str, tuple[int, SubjectExposure]] = {}
    for record in await asyncio.to_thread(read_sink, kafka_bootstrap, exposure):
        parsed = parse_exposure_record(record.key, record.value)
        assert isinstance(parsed, SubjectExposure)
        values[parsed.subject_id] = (record.partition, parsed)
    assert len(values) == 50
    for index in range(50):
        subject = f"acct-{index:05d}"
        partition, seeded = values[subject]
        email = fp("email", _event(index)["identifiers"][0]["value"])
        mine = [e for e in seeded.entries if e.sink_topic == sink]
        assert [(e.identifier_type, e.fingerprint) for e in mine] == [("email", email)]
        if index == 7:
            assert partition == 1 and held[1] in seeded.entries
        else:
            assert partition == (murmur2(subject.encode()) & 0x7FFFFFFF) % 3

    status, out, err = await cli(*apply)
    assert status == 0, err
    assert "nothing to write" in out and "taken out of 0 subjects' values" in out, out
    assert "exposure: 0 subjects' values seeded" in out, out


async def test_after_a_key_rotation_a_plan_matches_the_retractions_of_the_previous_key(
    kafka_bootstrap: str,
    new_topic: TopicFactory,
    tmp_path: Path,
    key: str,
    cli: Cli,
    fixed_policy: Path,
) -> None:
    """A plan applied under the old key, then the key rotated: a plan under the new key
    alone sees the phone numbers as still exposed and would retract them again; given
    the previous key, it matches the old retractions and retracts nothing."""
    sink = await new_topic("remediate-sink", partitions=2)
    await _produce_forwarded(kafka_bootstrap, sink, 40, datetime.now(UTC), 0)
    first = tmp_path / "before-rotation.json"
    status, _, err = await cli(
        "remediate", "plan", "--policy", str(fixed_policy), "--sink-topic", sink,
        "--out", str(first),
    )  # fmt: skip
    assert status == 0, err
    assert len(read_plan(first).retractions) == 40  # every phone number
    status, _, err = await cli("remediate", "apply", str(first))
    assert status == 0, err

    previous = tmp_path / "previous.key"
    previous.write_text(key)
    previous.chmod(0o600)
    rotated = Cli({**cli.env, "ENFORCER_FINGERPRINT_KEY": generate_key()})
    plan = [
        "remediate", "plan", "--policy", str(fixed_policy), "--sink-topic", sink,
    ]  # fmt: skip
    alone = tmp_path / "new-key-alone.json"
    status, _, err = await rotated(*plan, "--out", str(alone))
    assert status == 0, err
    assert len(read_plan(alone).retractions) == 40
    # Said, with the key id to give as the previous key.
    before = Fingerprinter(key_from_text(key)).key_id
    assert f"40 retractions in the history made under key id {before}, neither" in err, err

    matched = tmp_path / "new-key-with-previous.json"
    status, _, err = await rotated(
        *plan, "--out", str(matched), "--previous-fingerprint-key-file", str(previous)
    )
    assert status == 0, err
    assert read_plan(matched).retractions == ()
    assert read_plan(matched).exposed == 40  # the e-mail addresses
    previous_id = Fingerprinter(key_from_text(key)).key_id
    assert (
        f"previous key (key id {previous_id}): 40 retractions in the history made under it "
        "named an identifier it forwarded"
    ) in err
