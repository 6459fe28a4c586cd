"""File replay (docs/contract.md: command line): the four outputs, the report, and
what it counts."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import orjson

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.models import DeadLetterLine, ViolationEvent
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, OutcomeKind, Source, Step
from enforcer.demo.sample import sample_values
from enforcer.outputs.report.model import Report
from enforcer.replay.run import replay_file
from enforcer.replay.sources.jsonl import read_jsonl

from ..conftest import KEY, NOW, event, ident


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _line(**fields: object) -> bytes:
    return orjson.dumps(fields)


def test_line_numbers_are_offsets_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    """Each non-blank line is a record; its 0-based line number is the offset."""
    data = _write(tmp_path / "in.jsonl", [b"a", b"", b"  ", b"b\r"])
    with data.open("rb") as stream:
        records = list(read_jsonl(stream, "in.jsonl"))
    assert [(r.value, r.source.offset, r.source.topic, r.source.partition) for r in records] == [
        (b"a", 0, "in.jsonl", 0),
        (b"b", 3, "in.jsonl", 0),
    ]


def test_replay_writes_outputs_and_report(tmp_path: Path) -> None:
    """Forwarded values in order, violations, dead letters as JSON, and report.json."""
    lines = [
        orjson.dumps(
            event(
                ident("email", "a@x.io", ["marketing.advertising"]),
                subject_id="s1",
                occurred_at="2019-10-01T23:30:00-02:00",
            )
        ),
        orjson.dumps(
            event(
                ident("phone", "+1 555 0100", ["security.mfa"]),
                ident("e", "b", ["marketing.advertising"]),
                subject_id="s2",
                occurred_at="2019-10-02T10:00:00Z",
            )
        ),
        b"\xff\xfenot utf-8",
        orjson.dumps(
            event(
                ident("phone", "+1 555 0101", ["security"]),
                subject_id="s2",
                occurred_at="2019-10-03T10:00:00Z",
            )
        ),
        orjson.dumps(
            event(ident("email", "c@x.io"), subject_id="s3", occurred_at="2019-10-02T11:00:00Z")
        ),
    ]
    data = _write(tmp_path / "events.jsonl", lines)
    out = tmp_path / "out"
    report = replay_file(data, out, load_policy(None), Fingerprinter(KEY), progress=False)

    forwarded = (out / "forwarded.jsonl").read_bytes().splitlines()
    assert forwarded[0] == lines[0]
    assert [json.loads(v)["subject_id"] for v in forwarded] == ["s1", "s2"]
    violations = [
        ViolationEvent.model_validate_json(v)
        for v in (out / "violations.jsonl").read_bytes().splitlines()
    ]
    assert [(v.source.offset, v.action) for v in violations] == [
        (1, "redacted"),
        (3, "dropped"),
        (4, "dropped"),
    ]
    [dead] = [
        DeadLetterLine.model_validate_json(v)
        for v in (out / "deadletter.jsonl").read_bytes().splitlines()
    ]
    assert dead.source.offset == 2 and dead.reason == "invalid-json"
    assert base64.b64decode(dead.value_base64) == lines[2]
    assert dead.key_base64 is None

    on_disk = Report.model_validate_json((out / "report.json").read_bytes())
    assert on_disk == report
    raw = json.loads((out / "report.json").read_bytes())
    assert raw["records"] == {"in": 5, "passed": 1, "redacted": 1, "dropped": 2, "deadlettered": 1}
    assert raw["violations_by_rule"] == {"missing-purpose": 1, "security-only-purpose": 2}
    assert raw["identifiers_redacted_by_type"] == {"email": 1, "phone": 2}
    assert raw["affected_subjects"] == 2
    assert raw["affected_subjects_by_rule"] == {"missing-purpose": 1, "security-only-purpose": 1}
    # 23:30 at -02:00 on the 1st is the 2nd in UTC.
    assert raw["by_day"] == [
        {"day": "2019-10-02", "records": 3, "findings": 2, "affected_subjects": 2},
        {"day": "2019-10-03", "records": 1, "findings": 1, "affected_subjects": 1},
    ]
    assert (raw["first_seen"], raw["last_seen"]) == ("2019-10-02T10:00:00Z", "2019-10-03T10:00:00Z")
    assert raw["policy_version"] == load_policy(None).version
    assert raw["source"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert raw["key_id"] == Fingerprinter(KEY).key_id
    assert {v.key_id for v in violations} == {raw["key_id"]}
    assert "would have been redacted" in raw["summary"]
    html = (out / "report.html").read_text()
    assert raw["source"]["sha256"] in html
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    for secret in (b"+1 555 0100", b"+1 555 0101", b"c@x.io"):
        assert secret not in (out / "report.json").read_bytes()
        assert secret not in (out / "violations.jsonl").read_bytes()
        assert secret.decode() not in html


def test_input_hash_covers_blank_lines_and_a_last_line_without_newline(tmp_path: Path) -> None:
    """The SHA-256 is of the file's bytes exactly, not of the records read from it."""
    data = tmp_path / "e.jsonl"
    data.write_bytes(b"\n  \n" + orjson.dumps(event(ident("email", "a@x.io", ["ads"]))))
    report = replay_file(data, tmp_path / "o", load_policy(None), Fingerprinter(KEY), False)
    assert report.source.sha256 == hashlib.sha256(data.read_bytes()).hexdigest()


def test_outputs_written_in_blocks_hold_every_line_in_order(tmp_path: Path) -> None:
    """Lines are written a block of outcomes at a time: past several blocks, each file
    holds exactly what the step gave for each record, in input order."""
    values = list(sample_values(2_500, invalid_share=0.05))
    data = _write(tmp_path / "mix.jsonl", values)
    out = tmp_path / "out"
    replay_file(data, out, load_policy(None), Fingerprinter(KEY), progress=False)

    step = Step(load_policy(None), Fingerprinter(KEY), FixedClock(NOW))
    outcomes = [
        step(InputRecord(None, v, (), Source("mix.jsonl", 0, n))) for n, v in enumerate(values)
    ]
    forwarded = [o.forward_value for o in outcomes if o.forward_value is not None]
    assert (out / "forwarded.jsonl").read_bytes() == b"".join(v + b"\n" for v in forwarded)
    violations = [orjson.loads(v) for v in (out / "violations.jsonl").read_bytes().splitlines()]
    expected = [o.violation for o in outcomes if o.violation is not None]
    assert len(violations) == len(expected) > 0
    for written, decided in zip(violations, expected, strict=True):
        assert {**written, "detected_at": None} == {**decided, "detected_at": None}
    dead = (out / "deadletter.jsonl").read_bytes().splitlines()
    assert [orjson.loads(d)["source"]["offset"] for d in dead] == [
        o.record.source.offset for o in outcomes if o.kind is OutcomeKind.DEADLETTERED
    ]
