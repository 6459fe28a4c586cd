"""Log setup for the long-running commands: one line per event, text or JSON.

- ``text``: ``2026-11-30T12:00:00.123Z INFO enforcer.engine: assigned partitions: …``
- ``json``: one object a line with ``time``, ``level``, ``logger``, ``message`` and any
  fields the call passed in ``extra`` (``partitions``, ``instance_id``, …).

Either way a line is one event: line breaks inside a message or a traceback are
escaped, never written. librdkafka's own lines (logger ``enforcer.kafka``, formatted
by confluent-kafka as ``FAC [client] text``) get the same shape, with ``facility`` and
``client`` as fields in JSON. Nothing here adds record data: log calls pass counts,
names and partitions, never identifier values.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

# Attributes every LogRecord has; anything else came in through ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_KAFKA_LOGGER = "enforcer.kafka"
_KAFKA_FORMAT = "%s [%s] %s"  # how confluent-kafka hands librdkafka's log lines over


def _time(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's message and its extra fields; librdkafka's split into parts."""
    args = record.args
    if (
        record.name == _KAFKA_LOGGER
        and record.msg == _KAFKA_FORMAT
        and isinstance(args, tuple)
        and len(args) == 3
    ):
        facility, client, text = args
        fields: dict[str, Any] = {"message": str(text), "facility": facility, "client": client}
    else:
        fields = {"message": record.getMessage()}
    for name, value in vars(record).items():
        if name not in _STANDARD and not name.startswith("_"):
            fields[name] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [key=value …]`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        message = fields.pop("message")
        if "facility" in fields:
            message = f"{fields.pop('facility')} [{fields.pop('client')}] {message}"
        text = f"{_time(record)} {record.levelname} {record.name}: {message}"
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        if record.exc_info:
            text += " | " + self.formatException(record.exc_info)
        return _one_line(text)


def _one_line(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")


def setup_logging(level: str, log_format: LogFormat, stream: TextIO | None = None) -> None:
    """Send every logger's records at ``level`` and above to ``stream`` (stderr), one
    line each in ``log_format``; replaces whatever handlers the root logger had."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
