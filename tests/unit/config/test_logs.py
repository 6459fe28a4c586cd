"""Logs: one line per event, as text or as JSON objects (``--log-format``)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from enforcer.cli import build_parser
from enforcer.config.logs import TRACE_ID, setup_logging, trace_fields


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _log(log_format: str) -> list[str]:
    stream = io.StringIO()
    setup_logging("info", log_format, stream)  # type: ignore[arg-type]
    log = logging.getLogger("enforcer.engine")
    log.info("assigned partitions: %s", "src[0], src[1]", extra={"partitions": 2})
    log.debug("not shown at info")
    log.warning("a message\nwith a second line")
    # What confluent-kafka hands over for a librdkafka log line.
    logging.getLogger("enforcer.kafka").warning(
        "%s [%s] %s", "GETPID", "enforcer-producer-w#producer-3", "Coordinator load in progress"
    )
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    return stream.getvalue().splitlines()


ECS_TOP_LEVEL = {"@timestamp", "log.level", "message", "ecs.version", "log", "process", "error"}
"""What an ECS line of ours may carry at the top, besides ``trace`` and ``enforcer``."""
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.usefixtures("restore_root")
def test_json_lines_follow_the_elastic_common_schema() -> None:
    """Each event is one ECS object on one line (docs/operations.md: logs): ``@timestamp``,
    ``log.level``, ``message``, ``log.logger``, ``ecs.version``; extra fields and
    librdkafka's parts under ``enforcer``; an exception as ``error.*``. No field of the
    old home-made shape (``time``, ``level``, ``logger``, ``partitions`` at the top) is
    left: a deliberate change of names (docs/changelog.md)."""
    lines = _log("json")
    assert len(lines) == 4
    events = [json.loads(line) for line in lines]
    for event in events:
        assert set(event) <= ECS_TOP_LEVEL | {"enforcer"}, event
        assert list(event)[:3] == ["@timestamp", "log.level", "message"]
        assert event["ecs.version"].startswith("1.")
        assert event["@timestamp"].endswith("Z") and event["@timestamp"][10] == "T"
        assert isinstance(event["process"]["pid"], int)
    first = events[0]
    assert first["message"] == "assigned partitions: src[0], src[1]"
    assert (first["log.level"], first["log"]["logger"]) == ("info", "enforcer.engine")
    assert first["enforcer"] == {"partitions": 2}
    assert "trace" not in first  # no record, no trace id
    assert events[1]["message"] == "a message\nwith a second line"
    kafka = events[2]
    assert kafka["log"]["logger"] == "enforcer.kafka"
    assert kafka["enforcer"] == {
        "kafka": {"facility": "GETPID", "client": "enforcer-producer-w#producer-3"}
    }
    assert kafka["message"] == "Coordinator load in progress"
    failed = events[3]
    assert failed["log.level"] == "error"
    assert (failed["error"]["type"], failed["error"]["message"]) == ("ValueError", "boom")
    assert 'raise ValueError("boom")' in failed["error"]["stack_trace"]


@pytest.mark.usefixtures("restore_root")
def test_a_line_about_a_traced_record_carries_its_trace_id() -> None:
    """``trace_fields`` of a record's ``traceparent`` gives ``trace.id`` (the 32 hex digits
    of the trace, not the producer's span); nothing for a record without one. In text,
    the same field as ``trace.id=…``."""
    assert trace_fields(None) == {}
    assert trace_fields(TRACEPARENT) == {TRACE_ID: "4bf92f3577b34da6a3ce929d0e0e4736"}
    for log_format in ("json", "text"):
        stream = io.StringIO()
        setup_logging("info", log_format, stream)
        log = logging.getLogger("enforcer.guard")
        log.warning("dead letters over the limit", extra=trace_fields(TRACEPARENT))
        log.warning("dead letters over the limit", extra=trace_fields(None))
        traced, untraced = stream.getvalue().splitlines()
        if log_format == "json":
            assert json.loads(traced)["trace"] == {"id": "4bf92f3577b34da6a3ce929d0e0e4736"}
            assert "trace" not in json.loads(untraced)
        else:
            assert traced.endswith("trace.id=4bf92f3577b34da6a3ce929d0e0e4736")
            assert "trace" not in untraced


@pytest.mark.usefixtures("restore_root")
def test_text_lines_are_one_per_event() -> None:
    """Plain text: one line per event too, line breaks escaped, fields as key=value."""
    lines = _log("text")
    assert len(lines) == 4
    assert lines[0].endswith(
        "INFO enforcer.engine: assigned partitions: src[0], src[1] partitions=2"
    )
    assert lines[1].endswith("a message\\nwith a second line")
    assert "WARNING enforcer.kafka: GETPID [enforcer-producer-w#producer-3] Coordinator" in lines[2]
    assert "ValueError: boom" in lines[3]


def test_run_and_lag_exporter_take_a_log_format() -> None:
    """`--log-format json|text` on both long-running commands; nothing else accepted."""
    parser = build_parser()
    assert parser.parse_args(["run", "--log-format", "json"]).log_format == "json"
    assert parser.parse_args(["lag-exporter", "--log-format", "text"]).log_format == "text"
    with pytest.raises(Exception, match="invalid choice"):
        parser.parse_args(["run", "--log-format", "xml"])
