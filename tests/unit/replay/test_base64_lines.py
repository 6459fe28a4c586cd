"""Files of base64 values (``replay --from-file --format confluent``, docs/formats.md:
"Replay and explain"): lines counted as JSON Lines are, a line that is not base64 a
dead letter, framed values decided with the registry's schemas and forwarded as base64
lines."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.models import DeadLetterLine, DeadLetterReason, Mode
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, Outcome, OutcomeKind, Source, Step
from enforcer.demo.formats_sample import FramedSample, sample_contacts
from enforcer.formats.reader import build_reader
from enforcer.formats.registry import RegisteredSchema, SchemaType
from enforcer.formats.schemas import SchemaCache
from enforcer.outputs.files import FileOutputs
from enforcer.outputs.report.model import ReplaySource
from enforcer.replay.loop import replay
from enforcer.replay.run import replay_file
from enforcer.replay.schemas import ReplayFormats
from enforcer.replay.sources.base64_lines import NOT_BASE64, HashedBase64Records, decode_line
from enforcer.replay.sources.jsonl import read_jsonl

from ..conftest import KEY, NOW, event, ident

POLICY = Path(__file__).resolve().parents[3] / "policies" / "formats.yaml"


def _records(data: bytes, block: int = 1 << 20) -> list[InputRecord | Outcome]:
    return list(HashedBase64Records(io.BytesIO(data), "in.b64", block))


def test_blank_lines_are_skipped_and_line_numbers_are_offsets() -> None:
    """Offsets are 0-based line numbers, counted as in a JSON Lines file (blank lines and
    lines of white space count, a carriage return ends nothing); white space around a
    value is ignored."""
    data = b"YQ==\n\n   \r\n  Yg==\t\r\nYw==\nZA=="  # the last line without a newline
    records = _records(data)
    assert [r.value for r in records if isinstance(r, InputRecord)] == [b"a", b"b", b"c", b"d"]
    assert [r.source for r in records if isinstance(r, InputRecord)] == [
        Source("in.b64", 0, 0),
        Source("in.b64", 0, 3),
        Source("in.b64", 0, 4),
        Source("in.b64", 0, 5),
    ]


@pytest.mark.parametrize(
    "line",
    [b"not base64!", b"YWJ", b"YW=j", b"====", b"YQ==YQ==", b'{"a": 1}', b"Y Q==", b"\xff\xfe"],
)
def test_a_line_that_is_not_base64_is_an_undecodable_dead_letter_carrying_the_line(
    line: bytes,
) -> None:
    """The records around it go on; its dead letter holds the line's own bytes as value
    and a message that names the problem, never the line."""
    [before, bad, after] = _records(b"YQ==\n" + line + b"\nYg==\n")
    assert isinstance(before, InputRecord) and isinstance(after, InputRecord)
    assert (before.value, after.value, after.source.offset) == (b"a", b"b", 2)
    assert isinstance(bad, Outcome)
    assert bad.kind is OutcomeKind.DEADLETTERED
    assert bad.error_reason is DeadLetterReason.UNDECODABLE
    assert bad.record.value == line and bad.record.source == Source("in.b64", 0, 1)
    assert bad.error_message is not None and bad.error_message.startswith(NOT_BASE64)
    assert line.decode(errors="replace") not in bad.error_message.removeprefix(NOT_BASE64)


lines_of_values = st.lists(
    st.one_of(
        st.binary(min_size=1, max_size=40).map(lambda v: (v, base64.b64encode(v))),
        st.sampled_from([(None, b""), (None, b"  "), (None, b"\r"), (None, b"\t ")]),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(lines_of_values, st.integers(1, 16))
def test_values_and_offsets_are_those_of_the_json_lines_reading_decoded(
    lines: list[tuple[bytes | None, bytes]], block: int
) -> None:
    """Any values, blank lines anywhere, any block size: each value comes back at the
    offset a JSON Lines reading gives its line, and the hash is of the whole file."""
    data = b"\n".join(line for _, line in lines)
    records = list(HashedBase64Records(io.BytesIO(data), "in.b64", block))
    as_lines = list(read_jsonl(io.BytesIO(data), "in.b64"))
    assert all(isinstance(r, InputRecord) for r in records)
    assert [(r.value, r.source) for r in records] == [  # type: ignore[union-attr]
        (base64.b64decode(line.value or b""), line.source) for line in as_lines
    ]
    assert [r.value for r in records] == [v for v, _ in lines if v is not None]  # type: ignore[union-attr]
    hashed = HashedBase64Records(io.BytesIO(data), "in.b64", block)
    list(hashed)
    assert hashed.hexdigest() == hashlib.sha256(data).hexdigest()


def test_decode_line_is_strict_base64() -> None:
    assert decode_line(b"  aGk=  ") == b"hi"
    assert isinstance(decode_line(b"aGk"), str)  # padding missing
    assert isinstance(decode_line(b"aG-k"), str)  # the URL-safe alphabet is not this one


def test_json_values_in_base64_are_decided_and_forwarded_as_base64_lines(tmp_path: Path) -> None:
    """Plain identity events in base64 are decided as in a JSON Lines file; forwarded
    values (passed byte for byte, or redacted) come out as base64 lines, the form they
    came in; a line that is not base64 is a dead letter; the report counts it all."""
    values = [
        orjson.dumps(event(ident("email", "a@x.io", ["marketing.advertising"]), subject_id="s1")),
        orjson.dumps(
            event(
                ident("phone", "+1 555 0100", ["security.mfa"]),
                ident("email", "b@x.io", ["marketing.advertising"]),
                subject_id="s2",
            )
        ),
    ]
    data = tmp_path / "in.b64"
    data.write_bytes(
        b"\n".join([base64.b64encode(values[0]), b"", b"%%", base64.b64encode(values[1])])
    )
    out = tmp_path / "out"
    report = replay_file(
        data, out, load_policy(None), Fingerprinter(KEY), progress=False, file_format="confluent"
    )

    assert report.records.model_dump(by_alias=True) == {
        "in": 3,
        "passed": 1,
        "redacted": 1,
        "dropped": 0,
        "deadlettered": 1,
    }
    forwarded = [
        base64.b64decode(line) for line in (out / "forwarded.jsonl").read_bytes().splitlines()
    ]
    assert forwarded[0] == values[0]
    assert [i["type"] for i in json.loads(forwarded[1])["identifiers"]] == ["email"]
    [dead] = [
        DeadLetterLine.model_validate_json(line)
        for line in (out / "deadletter.jsonl").read_bytes().splitlines()
    ]
    assert (dead.source.offset, dead.reason) == (2, "undecodable")
    assert base64.b64decode(dead.value_base64) == b"%%"
    [violation] = [orjson.loads(v) for v in (out / "violations.jsonl").read_bytes().splitlines()]
    assert violation["source"]["offset"] == 3
    assert report.source.sha256 == hashlib.sha256(data.read_bytes()).hexdigest()


class _Registry:
    """A registry holding the sample's Avro schema (what FramedSample registers)."""

    def __init__(self) -> None:
        self.by_id: dict[int, RegisteredSchema] = {}

    def register(self, subject: str, schema_type: SchemaType, text: str, refs: object = ()) -> int:
        schema_id = 40 + len(self.by_id)
        self.by_id[schema_id] = RegisteredSchema(schema_id, schema_type, text, ())
        return schema_id

    def schema_by_id(self, schema_id: int) -> RegisteredSchema | None:
        return self.by_id.get(schema_id)

    def subject_version(self, subject: str, version: int | str = "latest") -> None:
        return None


def test_framed_avro_values_are_decided_as_the_step_says_and_forwarded_in_base64(
    tmp_path: Path,
) -> None:
    """The sample's Avro values in a file: every outcome, forwarded value and dead letter
    is the step's with the same reader, forwarded framed values (same schema id) written
    as base64 lines; a value naming an unregistered schema id is unknown-schema."""
    registry = _Registry()
    sample = FramedSample("avro", registry, "accounts-value")  # type: ignore[arg-type]
    values = [sample.encode(contact) for contact in sample_contacts(200, seed=4)]
    values.insert(50, b"\x00\x00\x00\x03\xe7" + values[0][5:])  # schema id 999: unknown
    data = tmp_path / "accounts.b64"
    data.write_bytes(b"".join(base64.b64encode(v) + b"\n" for v in values))

    policy = load_policy(POLICY)
    cache = SchemaCache(registry, FixedClock(NOW))
    formats = ReplayFormats(cache, build_reader(policy, cache), 10.0)
    out = tmp_path / "out"
    report = replay_file(
        data, out, policy, Fingerprinter(KEY), False, formats=formats, file_format="confluent"
    )

    step = Step(policy, Fingerprinter(KEY), FixedClock(NOW), reader=build_reader(policy, cache))
    outcomes = [
        step(InputRecord(None, v, (), Source("accounts.b64", 0, n))) for n, v in enumerate(values)
    ]
    kinds = [o.kind.value for o in outcomes]
    assert report.records.model_dump(by_alias=True) == {
        "in": len(values),
        **{kind.value: kinds.count(kind.value) for kind in OutcomeKind},
    }
    assert all(kinds.count(kind.value) for kind in OutcomeKind)  # every outcome met
    forwarded = (out / "forwarded.jsonl").read_bytes().splitlines()
    assert forwarded == [base64.b64encode(o.forward_value) for o in outcomes if o.forward_value]
    assert all(base64.b64decode(line)[:5] == values[0][:5] for line in forwarded)
    dead = [orjson.loads(line) for line in (out / "deadletter.jsonl").read_bytes().splitlines()]
    assert [(d["source"]["offset"], d["reason"]) for d in dead] == [(50, "unknown-schema")]


def test_topic_values_that_are_not_one_line_of_json_are_forwarded_as_base64(
    tmp_path: Path,
) -> None:
    """From a topic (JSON Lines outputs): a framed forwarded value is written as its
    base64 (raw, its bytes would break the file's lines), and in audit mode a value that
    is not JSON and spans lines too; JSON spread over lines is written compactly."""
    policy = load_policy(None).with_mode(Mode.AUDIT)
    framed = b"\x00\x00\x00\x00\x07\n\r{body"  # no registry: unknown-schema, forwarded in audit
    not_json = b"line one\nline two"
    pretty = b'{\n  "event_id": "e", "subject_id": "s",\n  "occurred_at": "2019-10-08T12:00:00Z",'
    pretty += b' "identifiers": []}'
    records = [
        InputRecord(None, value, (), Source("identity.events", 0, n))
        for n, value in enumerate([framed, not_json, pretty])
    ]
    step = Step(policy, Fingerprinter(KEY), FixedClock(NOW))
    with FileOutputs(tmp_path) as files:
        replay(records, step, files, ReplaySource(kind="topic", name="t"), FixedClock(NOW))
    assert (tmp_path / "forwarded.jsonl").read_bytes().splitlines() == [
        base64.b64encode(framed),
        base64.b64encode(not_json),
        orjson.dumps(orjson.loads(pretty)),
    ]


def test_an_outcome_its_source_decided_is_written_counted_and_reported_on_the_slow_path(
    tmp_path: Path,
) -> None:
    """With a per-record callback (the progress bar) the loop takes its general path: a
    line's dead letter is written and counted there too, and the callback gets its line."""
    data = b"\n".join([base64.b64encode(orjson.dumps(event(ident("email", "a@x.io")))), b"%%"])
    step = Step(load_policy(None), Fingerprinter(KEY), FixedClock(NOW))
    called: list[Source] = []
    with FileOutputs(tmp_path) as files:
        report = replay(
            HashedBase64Records(io.BytesIO(data), "in.b64"),
            step,
            files,
            ReplaySource(kind="file", name="in.b64"),
            FixedClock(NOW),
            lambda record: called.append(record.source),
        )
    assert called == [Source("in.b64", 0, 0), Source("in.b64", 0, 1)]
    assert (report.records.in_, report.records.deadlettered, report.records.dropped) == (2, 1, 1)
    [dead] = [
        orjson.loads(line) for line in (tmp_path / "deadletter.jsonl").read_bytes().splitlines()
    ]
    assert (dead["source"]["offset"], dead["reason"]) == (1, "undecodable")


def test_json_spread_over_lines_keeps_its_numbers_on_one_line(tmp_path: Path) -> None:
    """Written on one line, a forwarded value keeps every number as it was: an integer
    beyond 64 bits (which orjson reads as a float) and a number beyond a float's range
    (which orjson refuses) included; only what is no JSON (NaN) is written as base64."""
    policy = load_policy(None).with_mode(Mode.AUDIT)
    head = b'{\n "event_id": "e", "subject_id": "s", "occurred_at": "2019-10-08T12:00:00Z",'
    values = [
        head + b'\n "identifiers": [], "n": 123456789012345678901234567890}',
        head + b'\n "identifiers": [], "n": 1e400, "m": 1.0000000000000000000001}',
        head + b'\n "identifiers": [], "n": NaN}',
    ]
    records = [
        InputRecord(None, value, (), Source("identity.events", 0, n))
        for n, value in enumerate(values)
    ]
    step = Step(policy, Fingerprinter(KEY), FixedClock(NOW))
    with FileOutputs(tmp_path) as files:
        replay(records, step, files, ReplaySource(kind="topic", name="t"), FixedClock(NOW))
    lines = (tmp_path / "forwarded.jsonl").read_bytes().splitlines()
    assert lines[0].endswith(b'"identifiers":[],"n":123456789012345678901234567890}')
    assert lines[1].endswith(b'"identifiers":[],"n":1e400,"m":1.0000000000000000000001}')
    assert lines[2] == base64.b64encode(values[2])
