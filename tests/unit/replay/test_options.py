"""Replay's range and output options: parsing, refusals, one-line errors (no broker)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from enforcer.cli import main
from enforcer.outputs.records import OutputTopics
from enforcer.outputs.topics import TopicOutputError, prefixed_topics
from enforcer.replay.sources.kafka_topic import parse_end, parse_start, record_millis

LIVE = OutputTopics("audience.building", "enforcer.violations", "enforcer.deadletter")


def test_start_and_end_forms() -> None:
    """earliest/latest, a plain offset, or an RFC 3339 time with an offset."""
    assert parse_start("earliest").is_open and parse_start(" EARLIEST ").is_open
    assert parse_end("latest").is_open
    assert parse_start("42").offset == 42
    at = parse_end("2019-10-08T02:00:00+02:00").at
    assert at == datetime(2019, 10, 8, 0, 0, tzinfo=UTC)
    for bad in ("latest", "-1", "2019-10-08", "yesterday", ""):
        with pytest.raises(ValueError, match="expected earliest"):
            parse_start(bad)
    with pytest.raises(ValueError, match="expected latest"):
        parse_end("earliest")
    assert parse_start("1970-01-01T00:00:00Z").at == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_end("1970-01-01T01:00:00+01:00").at == datetime(1970, 1, 1, tzinfo=UTC)
    for early in ("1969-12-31T23:59:59Z", "1970-01-01T00:00:00+00:01", "0001-01-01T00:00:00Z"):
        with pytest.raises(ValueError, match="before 1970-01-01T00:00:00Z"):
            parse_start(early)
        with pytest.raises(ValueError, match="before 1970-01-01T00:00:00Z"):
            parse_end(early)


def test_output_prefix_never_names_a_live_topic() -> None:
    """The prefix is prepended to each live name; a clash or an empty prefix is refused."""
    topics = prefixed_topics("replay.", LIVE, ["identity.events", *LIVE.__dict__.values()])
    assert topics == OutputTopics(
        "replay.audience.building", "replay.enforcer.violations", "replay.enforcer.deadletter"
    )
    with pytest.raises(TopicOutputError, match="must not be empty"):
        prefixed_topics("  ", LIVE, [])
    with pytest.raises(TopicOutputError, match=re.escape("live topic 'x.audience.building'")):
        prefixed_topics("x.", LIVE, ["x.audience.building"])


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--topic", "t", "--start", "soon", "--out", "o"], "argument --start: expected"),
        (["--topic", "t", "--end", "earliest", "--out", "o"], "argument --end: expected"),
        # Before Kafka's times start: refused here, not by the broker once asked.
        (["--topic", "t", "--start", "1969-12-31T23:59:59Z", "--out", "o"], "--start: a time"),
        (["--topic", "t", "--end", "0001-01-01T00:00:00Z", "--out", "o"], "argument --end: a"),
        (["--from-file", "f", "--start", "0", "--out", "o"], "--start and --end go with --topic"),
        (["--topic", "t"], "needs --out DIR, or --output-topic-prefix"),
        (["--topic", "t", "--from-file", "f", "--out", "o"], "not allowed with argument"),
        (["--topic", "", "--out", "o"], "--topic needs a topic name"),
        (["--from-file", "f", "--source-topic", " ", "--out", "o"], "--source-topic needs a"),
        (["--from-file", "f", "--ledger-topic", "", "--out", "o"], "--ledger-topic needs a"),
    ],
)
def test_bad_replay_options_are_one_line_errors(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    problem: str,
) -> None:
    """Exit 2 and one line naming the problem; Kafka is never contacted."""
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", "0123456789abcdef0123456789abcdef")
    assert main(["replay", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("enforcer: error:") and err.count("\n") == 1, err
    assert problem in err, err


def test_unreachable_kafka_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Nothing listens on port 1 of the loopback: exit 2, the address and how to set it."""
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", "0123456789abcdef0123456789abcdef")
    out = tmp_path / "o"
    code = main(["replay", "--topic", "t", "--bootstrap-servers", "127.0.0.1:1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "enforcer: error: cannot reach Kafka at 127.0.0.1:1 "
        "(--bootstrap-servers, ENFORCER_BOOTSTRAP_SERVERS)\n"
    )
    assert not out.exists()


def test_file_replay_to_topics_refuses_a_live_name_before_reading(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A prefix clash is found before any record is decided or any connection is made."""
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", "0123456789abcdef0123456789abcdef")
    monkeypatch.setenv("ENFORCER_SOURCE_TOPIC", "old.audience.building")
    data = tmp_path / "in.jsonl"
    data.write_text("{}\n")
    code = main(["replay", "--from-file", str(data), "--output-topic-prefix", "old."])
    err = capsys.readouterr().err
    assert code == 2 and "live topic 'old.audience.building'" in err and err.count("\n") == 1


# 2039-03-08T19:46:13.411Z: a time whose float seconds times 1000 fall just short of it.
_MILLIS = 2_183_226_373_411


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("2039-03-08T19:46:13.411Z", _MILLIS),
        ("2039-03-08T21:46:13.411+02:00", _MILLIS),
        # Between two milliseconds: a record at the earlier one is before the time.
        ("2039-03-08T19:46:13.4105Z", _MILLIS),
        ("2039-03-08T19:46:13.410001Z", _MILLIS),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_a_time_is_asked_of_kafka_as_its_first_millisecond_at_or_after_it(
    text: str, millis: int
) -> None:
    """The offset for a time is that of the first record at or after it: a record one
    millisecond earlier is outside ``[start, end)``, one at the millisecond inside."""
    at = parse_start(text).at
    assert at is not None
    assert record_millis(at) == millis


def test_the_topic_reader_asks_kafka_for_a_time_s_own_millisecond() -> None:
    """The offset ``replay --topic`` asks for is that of the time given, not of the
    millisecond before it (a float's rounding)."""
    import asyncio

    from aiokafka import TopicPartition

    from enforcer.replay.sources.kafka_topic import TopicReader

    asked: list[int] = []

    class Consumer:
        async def offsets_for_times(self, times: dict[TopicPartition, int]) -> dict[Any, Any]:
            asked.extend(times.values())
            return {}

    tp = TopicPartition("t", 0)
    position = parse_start("2039-03-08T19:46:13.411Z")
    found = asyncio.run(TopicReader._offsets(Consumer(), position, [tp], {tp: 0}, {tp: 9}))
    assert asked == [_MILLIS] and found == {tp: 9}
