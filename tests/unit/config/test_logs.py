"""Logs: one line per event, as text or as JSON objects (``--log-format``)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from enforcer.cli import build_parser
from enforcer.config.logs import setup_logging


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


@pytest.mark.usefixtures("restore_root")
def test_json_lines_have_time_level_logger_message_and_fields() -> None:
    """Each event is one JSON object on one line; extra fields and librdkafka's parts
    are fields of their own; a traceback stays inside its line."""
    lines = _log("json")
    assert len(lines) == 4
    events = [json.loads(line) for line in lines]
    first = events[0]
    assert first["message"] == "assigned partitions: src[0], src[1]"
    assert (first["level"], first["logger"], first["partitions"]) == ("info", "enforcer.engine", 2)
    assert first["time"].endswith("Z") and first["time"][10] == "T"
    assert events[1]["message"] == "a message\nwith a second line"
    kafka = events[2]
    assert (kafka["logger"], kafka["facility"], kafka["client"]) == (
        "enforcer.kafka",
        "GETPID",
        "enforcer-producer-w#producer-3",
    )
    assert kafka["message"] == "Coordinator load in progress"
    assert (events[3]["level"], "ValueError: boom" in events[3]["exception"]) == ("error", True)


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
