"""Replay and explain read the same formats as the live worker (docs/formats.md:
"Replay and explain"), against the real broker and the session's schema registry.

A topic of the Avro sample's framed account events, with plain identity events, a
record naming a schema id nobody registered and a body that does not decode, goes
through a live worker under ``policies/formats.yaml``; ``enforcer replay --topic`` over
the same topic gives every source offset the same outcome (passed, redacted, dropped or
dead-lettered, with the same violation and dead-letter reason) and byte for byte the
same forwarded value. A file that ``enforcer sample --format protobuf`` wrote, replayed
with ``--format confluent``, is counted as the step decides it; ``enforcer explain`` of
a framed value names each identifier by its field, never its value.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pytest

from enforcer.cli import main
from enforcer.core.clock import FixedClock, SystemClock
from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.core.policy.load import load_policy
from enforcer.core.record_format import Decoded
from enforcer.core.step import InputRecord, OutcomeKind, Source, Step
from enforcer.demo.formats_sample import FramedSample, sample_contacts
from enforcer.demo.sample import sample_values
from enforcer.formats.framing import frame, schema_id_of
from enforcer.formats.reader import FormatReader, build_reader
from enforcer.formats.registry import RegistrySettings, SchemaRegistry
from enforcer.formats.schemas import SchemaCache
from enforcer.testing.consume import ReadRecord, read_committed
from enforcer.testing.topics import unique_topic_name
from enforcer.testing.worker import (
    Deployment,
    EnforcerTopics,
    end_offsets_of,
    produce,
    wait_for_commits,
)

pytestmark = pytest.mark.timeout(240)

POLICY = Path(__file__).resolve().parents[3] / "policies" / "formats.yaml"
UNREGISTERED_ID = 876_543


class Seen(NamedTuple):
    """What one source record became, as the outputs show it (time of detection left
    out: it is when, not what)."""

    kind: str
    forwarded: bytes | None
    violation: bytes | None
    dead_letter: str | None


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line reads ENFORCER_* variables: none of the developer's may count."""
    for name in [n for n in os.environ if n.startswith("ENFORCER_")]:
        monkeypatch.delenv(name)


@pytest.fixture
async def deployment(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    topics = EnforcerTopics.unique("replay-formats")
    with Deployment(
        kafka_bootstrap, topics, f"group-{topics.source}", generate_key(), tmp_path
    ) as created:
        await created.create_topics(partitions=2)
        try:
            yield created
        finally:
            created.close()
            await created.delete_topics()


def _registry(url: str) -> SchemaRegistry:
    return SchemaRegistry(RegistrySettings(url))


def _reader(url: str, values: list[bytes | None]) -> FormatReader:
    cache = SchemaCache(_registry(url), FixedClock(datetime(2026, 12, 6, tzinfo=UTC)))
    cache.load(cache.missing(values))
    reader = build_reader(load_policy(POLICY), cache)
    assert reader is not None
    return reader


def _key_file(tmp_path: Path, key: str) -> Path:
    path = tmp_path / "fingerprint.key"
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path


async def _cli(*argv: str) -> int:
    # The command line runs its own event loop: give it a thread.
    return await asyncio.to_thread(main, list(argv))


def _outcomes(
    forwarded: list[bytes | None],
    violations: list[dict[str, Any]],
    dead_letters: list[tuple[Source, str]],
    source_of: Callable[[bytes | None], Source],
) -> dict[Source, Seen]:
    """Each source record's outcome from its outputs, the same way for live topics and
    replay's files: a dead letter, else the violation's action, else passed."""
    sent = {source_of(value): value for value in forwarded}
    assert len(sent) == len(forwarded), "two forwarded values for one source record"
    found = {
        Source(v["source"]["topic"], v["source"]["partition"], v["source"]["offset"]): v
        for v in violations
    }
    dead = dict(dead_letters)
    seen = {}
    for source in {*sent, *found, *dead}:
        violation = found.get(source)
        kind = (
            OutcomeKind.DEADLETTERED.value
            if source in dead
            else str(violation["action"])
            if violation is not None
            else OutcomeKind.PASSED.value
        )
        comparable = (
            orjson.dumps(
                {k: v for k, v in violation.items() if k != "detected_at"},
                option=orjson.OPT_SORT_KEYS,
            )
            if violation is not None
            else None
        )
        seen[source] = Seen(kind, sent.get(source), comparable, dead.get(source))
    return seen


def _source_by_event_id(
    reader: FormatReader, topic: str, inputs: list[InputRecord]
) -> Callable[[bytes | None], Source]:
    """The source record a forwarded value came from, by its event id (unique in the
    sample): read with the worker's reader for framed values, as JSON otherwise."""

    def event_id(value: bytes | None) -> str:
        read = reader.read(topic, 0, 0, value)
        if isinstance(read, Decoded):
            return read.event.event_id
        return str(json.loads(value or b"null")["event_id"])

    by_id = {}
    for record in inputs:
        try:
            by_id[event_id(record.value)] = record.source
        except (ValueError, KeyError, TypeError):
            continue  # a record that cannot be read is never forwarded
    return lambda value: by_id[event_id(value)]


def _file_lines(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_bytes().splitlines():
        yield json.loads(line)


def _forwarded_line(value: bytes) -> bytes:
    """The value a line of replay's forwarded.jsonl holds: base64 for a framed value,
    the JSON text itself for a plain one (a base64 line never holds a brace)."""
    return value if value.startswith(b"{") else base64.b64decode(value, validate=True)


async def test_replay_of_a_framed_topic_equals_the_live_worker(
    deployment: Deployment, schema_registry_url: str, tmp_path: Path
) -> None:
    source = deployment.topics.source
    sample = FramedSample("avro", _registry(schema_registry_url), f"{source}-value")
    framed = [sample.encode(contact) for contact in sample_contacts(240, seed=17)]
    values = [
        *framed[:100],
        frame(UNREGISTERED_ID, framed[0][5:]),  # unknown-schema
        frame(sample.schema_id, b"\x07\xff\xfe not a body"),  # undecodable
        *sample_values(30, seed=8, invalid_share=0.0),  # plain identity events
        *framed[100:],
    ]
    worker = deployment.worker(
        "one",
        {"ENFORCER_POLICY_FILE": str(POLICY), "ENFORCER_SCHEMA_REGISTRY_URL": schema_registry_url},
    )
    worker.start()
    inputs = await produce(deployment.bootstrap, source, values)
    await wait_for_commits(
        deployment.bootstrap,
        deployment.group_id,
        source,
        until=end_offsets_of(inputs),
        timeout_s=120,
        alive=[worker],
    )
    assert worker.stop() == 0, worker.log_tail()

    out = tmp_path / "replay"
    code = await _cli(
        "replay", "--no-progress", "--topic", source, "--out", str(out),
        "--bootstrap-servers", deployment.bootstrap,
        "--policy", str(POLICY), "--schema-registry-url", schema_registry_url,
        "--fingerprint-key-file", str(_key_file(tmp_path, deployment.fingerprint_key)),
    )  # fmt: skip
    assert code == 0

    # What the live worker did, from its topics.
    reader = _reader(schema_registry_url, [r.value for r in inputs])
    source_of = _source_by_event_id(reader, source, inputs)
    expected = [
        Step(
            load_policy(POLICY),
            Fingerprinter(key_from_text(deployment.fingerprint_key)),
            SystemClock(),
            reader=reader,
        )(record)
        for record in inputs
    ]
    sink, violations, dead = await asyncio.gather(
        *(
            read_committed(deployment.bootstrap, topic, expected=count, timeout_s=30, settle_s=1.0)
            for topic, count in (
                (deployment.topics.sink, sum(o.forward_value is not None for o in expected)),
                (deployment.topics.violations, sum(o.violation is not None for o in expected)),
                (deployment.topics.deadletter, sum(o.kind == "deadlettered" for o in expected)),
            )
        )
    )
    live = _outcomes(
        [r.value for r in sink],
        [json.loads(r.value or b"") for r in violations],
        [(_dead_letter_source(r), dict(r.headers)["enforcer.error.reason"].decode()) for r in dead],
        source_of,
    )
    actions = {source_of(r.value): dict(r.headers)["enforcer.action"].decode() for r in sink}
    assert all(live[s].kind == action for s, action in actions.items())

    # What replay says, from its files.
    forwarded_lines = (out / "forwarded.jsonl").read_bytes().splitlines()
    replayed = _outcomes(
        [_forwarded_line(line) for line in forwarded_lines],
        list(_file_lines(out / "violations.jsonl")),
        [
            (
                Source(d["source"]["topic"], d["source"]["partition"], d["source"]["offset"]),
                d["reason"],
            )
            for d in _file_lines(out / "deadletter.jsonl")
        ],
        source_of,
    )

    assert set(live) == {record.source for record in inputs}
    assert replayed == live
    counts = Counter(seen.kind for seen in live.values())
    assert all(counts[kind.value] > 0 for kind in OutcomeKind), counts
    assert sorted(s.dead_letter for s in live.values() if s.dead_letter) == [
        "undecodable",
        "unknown-schema",
    ]
    report = json.loads((out / "report.json").read_bytes())
    assert report["records"] == {
        "in": len(inputs),
        **{k.value: counts[k.value] for k in OutcomeKind},
    }
    # Framed values are base64 lines in the file, under the schema id they came with.
    framed_lines = [line for line in forwarded_lines if not line.startswith(b"{")]
    assert framed_lines and all(
        schema_id_of(base64.b64decode(line)) == sample.schema_id for line in framed_lines
    )


def _dead_letter_source(record: ReadRecord) -> Source:
    headers = {name: value.decode() for name, value in record.headers}
    return Source(
        headers["enforcer.source.topic"],
        int(headers["enforcer.source.partition"]),
        int(headers["enforcer.source.offset"]),
    )


async def test_a_sample_file_replayed_with_format_confluent_is_counted_as_the_step_decides(
    schema_registry_url: str, tmp_path: Path
) -> None:
    """`enforcer sample --format protobuf` writes the file (and registers the schema);
    a blank line and a line that is not base64 join it; replay's report and outputs are
    the step's, forwarded values base64 lines again."""
    subject = f"{unique_topic_name('replay-file')}-value"
    sampled = tmp_path / "sample.b64"
    code = await _cli(
        "sample", "--format", "protobuf", "--records", "300", "--seed", "6",
        "--schema-registry-url", schema_registry_url, "--subject", subject, "--out", str(sampled),
    )  # fmt: skip
    assert code == 0
    lines = sampled.read_bytes().splitlines()
    lines[40:40] = [b"", b"this line is not base64"]
    data = tmp_path / "accounts.b64"
    data.write_bytes(b"\n".join(lines) + b"\n")

    key = generate_key()
    out = tmp_path / "out"
    code = await _cli(
        "replay", "--no-progress", "--from-file", str(data), "--format", "confluent",
        "--out", str(out), "--policy", str(POLICY), "--schema-registry-url", schema_registry_url,
        "--fingerprint-key-file", str(_key_file(tmp_path, key)),
    )  # fmt: skip
    assert code == 0

    values = {n: base64.b64decode(line) for n, line in enumerate(lines) if line and n != 41}
    reader = _reader(schema_registry_url, list(values.values()))
    step = Step(
        load_policy(POLICY), Fingerprinter(key_from_text(key)), SystemClock(), reader=reader
    )
    outcomes = [
        step(InputRecord(None, value, (), Source(data.name, 0, n))) for n, value in values.items()
    ]
    kinds = Counter(o.kind.value for o in outcomes)
    report = json.loads((out / "report.json").read_bytes())
    assert report["records"] == {
        "in": len(values) + 1,
        **{kind.value: kinds[kind.value] for kind in OutcomeKind},
        "deadlettered": kinds["deadlettered"] + 1,
    }
    assert kinds["passed"] and kinds["redacted"] and kinds["dropped"]
    assert (out / "forwarded.jsonl").read_bytes().splitlines() == [
        base64.b64encode(o.forward_value) for o in outcomes if o.forward_value is not None
    ]
    dead = list(_file_lines(out / "deadletter.jsonl"))
    assert [(d["source"]["offset"], d["reason"]) for d in dead] == [(41, "undecodable")]
    violations = list(_file_lines(out / "violations.jsonl"))
    assert [v["source"]["offset"] for v in violations] == [
        o.record.source.offset for o in outcomes if o.violation is not None
    ]


async def test_explain_of_a_framed_value_names_its_fields_never_their_values(
    schema_registry_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Avro sample's first record with a two-factor phone, in base64: explain fetches
    its schema and shows each identifier at its field; the phone (security only) is
    redacted; no value of the record is printed."""
    subject = f"{unique_topic_name('explain')}-value"
    sample = FramedSample("avro", _registry(schema_registry_url), subject)
    contacts = list(sample_contacts(40, seed=2))
    number, contact = next(
        (n, c) for n, c in enumerate(contacts) if c["two_factor_phone"] and c["recovery_email"]
    )
    path = tmp_path / "accounts.b64"
    path.write_bytes(b"".join(base64.b64encode(sample.encode(c)) + b"\n" for c in contacts))

    argv = [
        "explain", str(path), "--format", "confluent", "--line", str(number),
        "--policy", str(POLICY), "--schema-registry-url", schema_registry_url,
    ]  # fmt: skip
    assert await _cli(*argv, "--json") == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    judged = {i["path"]: (i["type"], i["decision"]) for i in data["identifiers"]}
    assert judged["two_factor_phone"] == ("phone", "redact")
    assert judged["recovery_email"] == ("email", "redact")
    assert judged["contact_email"][0] == "email"
    assert data["outcome"] in {"redacted", "dropped"}
    assert await _cli(*argv) == 0
    text = capsys.readouterr().out
    assert "at two_factor_phone; purposes: security.mfa" in text
    for value in (contact["two_factor_phone"], contact["recovery_email"], contact["contact_email"]):
        assert value not in out and value not in text
