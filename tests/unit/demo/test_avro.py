"""The demo's Avro variant, without a broker or a registry: the records it produces,
how it reads forwarded records back, what it says, and that a registry it starts is
stopped whatever happens."""

from __future__ import annotations

import io
import json
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest

from enforcer.demo.avro import (
    SOURCE_TOPIC,
    UNREGISTERED_SCHEMA_ID,
    AvroFiles,
    AvroRecords,
    DemoFailedError,
    ReadAsAvro,
    avro_next_commands,
    avro_records,
    first_security_only_line,
    interrupt,
    schema_registry,
    story_lines,
    write_events,
)
from enforcer.demo.formats_sample import avro_schema, sample_contacts
from enforcer.demo.run import parse_args
from enforcer.demo.summary import ReadBack
from enforcer.formats.framing import frame, schema_id_of
from enforcer.formats.registry import RegisteredSchema
from enforcer.testing.schema_registry import SchemaRegistryError

SCHEMA_ID = 7
PARSED = fastavro.parse_schema(avro_schema())


def encode(contact: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    at = datetime.fromtimestamp(contact["occurred_at"] / 1000, tz=UTC)
    fastavro.schemaless_writer(out, PARSED, {**contact, "occurred_at": at})
    return frame(SCHEMA_ID, out.getvalue())


def decode(value: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(value[5:]), PARSED, None)


def records(count: int = 5000, seed: int = 2019) -> AvroRecords:
    return avro_records(list(sample_contacts(count, seed=seed)), encode, seed)


def test_about_one_percent_is_framed_wrong_both_ways_the_same_for_a_seed() -> None:
    made = records()
    assert made == records()
    assert made.values != records(seed=2020).values
    assert made.broken["unknown-schema"] > 0 and made.broken["undecodable"] > 0
    assert 0.005 < sum(made.broken.values()) / len(made.values) < 0.02
    # The demo test's smaller run has both kinds too.
    small = records(800)
    assert small.broken["unknown-schema"] > 0 and small.broken["undecodable"] > 0
    assert len(made.events) + sum(made.broken.values()) == len(made.values)


def test_each_value_is_keyed_by_its_account_and_the_wrong_ones_fail_as_they_should() -> None:
    contacts = list(sample_contacts(5000, seed=2019))
    made = records()
    events = iter(made.events)
    for contact, (key, value) in zip(contacts, made.values, strict=True):
        assert key == contact["account_id"].encode()
        if schema_id_of(value) == UNREGISTERED_SCHEMA_ID:
            assert value[5:] == encode(contact)[5:]  # the body is fine, the id is not
            continue
        assert schema_id_of(value) == SCHEMA_ID
        if value == encode(contact):
            assert next(events) == contact  # the events are the good ones, in order
            continue
        with pytest.raises(EOFError):  # cut short
            decode(value)
    assert next(events, None) is None


class FakeRegistry:
    """Answers ``schema_by_id`` for one id, counting the questions."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def schema_by_id(self, schema_id: int) -> RegisteredSchema | None:
        self.asked.append(schema_id)
        if schema_id != SCHEMA_ID:
            return None
        return RegisteredSchema(SCHEMA_ID, "AVRO", json.dumps(avro_schema()), ())


def test_forwarded_values_read_with_the_registrys_schema_for_their_id() -> None:
    registry = FakeRegistry()
    read = ReadAsAvro(registry)  # type: ignore[arg-type]
    contacts = list(sample_contacts(3, seed=1))
    got = [read(encode(contact)) for contact in contacts]
    assert [g and g["account_id"] for g in got] == [c["account_id"] for c in contacts]
    assert registry.asked == [SCHEMA_ID]  # fetched once
    good = encode(contacts[0])
    assert read(frame(SCHEMA_ID + 1, good[5:])) is None  # an id the registry lacks
    assert read(good[: len(good) - 3]) is None  # cut short
    assert read(b'{"plain": "json"}') is None
    assert read(None) is None


def _violation(rule: str, kind: str) -> dict[str, Any]:
    return {
        "action": "redacted",
        "subject_id": "acct-1",
        "findings": [{"rule": rule, "identifier_type": kind}],
    }


def test_the_story_counts_security_only_values_given_and_forwarded() -> None:
    made = records(200)
    given = sum(1 for event in made.events if event["two_factor_phone"] is not None)
    read = ReadBack([], [_violation("security-only-purpose", "phone")], [])
    clean = [{**event, "two_factor_phone": None, "recovery_email": None} for event in made.events]
    lines = "\n".join(story_lines(read, made, clean, {SCHEMA_ID}))
    assert f"(two_factor_phone): {given:,} given for security only, 0 reached" in lines
    assert f"every one framed with the schema id it came with ({SCHEMA_ID})" in lines
    assert f"{len(clean):,} read back as Avro" in lines

    # A leak and an unreadable record are counted, not hidden.
    leaked = [made.events[0] | {"two_factor_phone": "+1 415 555 0100"}, None]
    lines = "\n".join(story_lines(read, made, leaked, {SCHEMA_ID, None}))
    assert "(two_factor_phone): " in lines and ", 1 reached audience building" in lines
    assert "not every one framed" in lines and " 1 read back as Avro" in lines


def test_the_explained_line_has_a_2fa_number_beside_an_email_for_advertising() -> None:
    made = records(200)
    event = made.events[first_security_only_line(made)]
    assert event["two_factor_phone"] is not None
    assert any(p.startswith("marketing.advertising") for p in event["contact_email_purposes"])


def test_the_events_file_is_named_after_the_topic_and_the_commands_use_it(
    tmp_path: Path,
) -> None:
    made = records(50)
    files = write_events(tmp_path, made, "k" * 43)
    assert files.events.name == SOURCE_TOPIC
    lines = files.events.read_bytes().splitlines()
    assert [json.loads(line) for line in lines] == made.events
    assert files.key is not None and files.key.stat().st_mode & 0o777 == 0o600
    explain, replay, check = avro_next_commands(files)
    assert f"explain {files.events} --line {files.explain_line} --policy " in explain
    assert explain.endswith("policies/formats.yaml")
    assert f"--from-file {files.events} " in replay and "--fingerprint-key-file" in replay
    assert check.endswith("policy check " + explain.rsplit(" ", 1)[1])
    without_key = AvroFiles(files.events, files.report_dir, None, 0)
    assert "--fingerprint-key-file" not in avro_next_commands(without_key)[1]


class FakeProcess:
    def __init__(self, where: Path, fail: bool = False) -> None:
        self.log_path = where / "registry.log"
        self.fail = fail
        self.calls: list[str] = []

    def start(self) -> str:
        self.calls.append("start")
        if self.fail:
            raise SchemaRegistryError("registry.sh start failed with status 1\nlog tail ...")
        return "http://127.0.0.1:1/apis/ccompat/v7"

    def stop(self) -> None:
        self.calls.append("stop")


def test_a_registry_the_demo_starts_is_stopped_whatever_ends_the_run(tmp_path: Path) -> None:
    made: list[FakeProcess] = []

    def make(where: Path, fail: bool = False) -> FakeProcess:
        made.append(FakeProcess(where, fail))
        return made[-1]

    with schema_registry(None, tmp_path, make) as url:
        assert url.endswith("/apis/ccompat/v7")
    assert made[-1].calls == ["start", "stop"]

    with pytest.raises(KeyboardInterrupt), schema_registry(None, tmp_path, make):
        raise KeyboardInterrupt
    assert made[-1].calls == ["start", "stop"]

    # One that does not start: one line naming its log, and stopped all the same.
    with (
        pytest.raises(DemoFailedError) as failed,
        schema_registry(None, tmp_path, lambda where: make(where, fail=True)),
    ):
        pytest.fail("the block must not run")
    assert "\n" not in str(failed.value) and str(tmp_path / "registry.log") in str(failed.value)
    assert made[-1].calls == ["start", "stop"]

    # A registry the user gave is neither started nor stopped.
    count = len(made)
    with schema_registry("http://registry:8081", tmp_path, make) as url:
        assert url == "http://registry:8081"
    assert len(made) == count


def test_the_flags_the_avro_variant_adds(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse_args(["--bootstrap", "b:9092"])
    assert args.format == "json" and args.schema_registry_url is None
    args = parse_args(["--bootstrap", "b:9092", "--format", "avro", "--schema-registry-url", "u"])
    assert args.format == "avro" and args.schema_registry_url == "u"
    for wrong in (
        ["--schema-registry-url", "http://r:8081"],
        ["--format", "avro", "--produce-only", "5"],
        ["--format", "protobuf"],
    ):
        with pytest.raises(SystemExit) as exited:
            parse_args(["--bootstrap", "b:9092", *wrong])
        assert exited.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


def test_sigterm_ends_the_run_as_ctrl_c_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python's own SIGINT handler raises KeyboardInterrupt (the with-blocks stop the
    worker and the registry); asyncio's, while it runs, is called instead of raising
    in the middle of its loop; with SIGINT ignored, the interrupt is raised all the same."""
    with pytest.raises(KeyboardInterrupt):
        interrupt(signal.SIGTERM, None)  # the test runs with Python's default handler
    called: list[int] = []
    monkeypatch.setattr(signal, "getsignal", lambda _: lambda signum, frame: called.append(signum))
    interrupt(signal.SIGTERM, None)
    assert called == [signal.SIGINT]
    monkeypatch.setattr(signal, "getsignal", lambda _: signal.SIG_IGN)
    with pytest.raises(KeyboardInterrupt):
        interrupt(signal.SIGTERM, None)
