"""Log setup for the long-running commands: one line per event, text or JSON.

- ``text``: ``2026-11-30T12:00:00.123Z INFO enforcer.engine: assigned partitions: …``
- ``json``: one Elastic Common Schema (ECS) object a line, written by Elastic's
  ``ecs-logging`` formatter (docs/decisions.md): ``@timestamp``, ``log.level``,
  ``message``, ``log.logger``, ``ecs.version``, ``process.*``, ``error.*`` for an
  exception, ``trace.id`` when the line is about a record that carried a W3C
  ``traceparent``, and the fields a call passed in ``extra`` under ``enforcer.*``
  (``enforcer.partitions``, ``enforcer.group``, …): ECS's own names (``group``,
  ``client``) mean something else, and custom fields belong in a namespace of their own.

Either way a line is one event: line breaks inside a message or a traceback are
escaped, never written. librdkafka's own lines (logger ``enforcer.kafka``, formatted
by confluent-kafka as ``FAC [client] text``) get the same shape, with
``enforcer.kafka.facility`` and ``enforcer.kafka.client`` in JSON. Nothing here adds
record data: log calls pass counts, names, partitions and trace ids, never identifier
values.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import ecs_logging

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


TRACE_ID = "trace.id"
"""The ECS field of a W3C trace id; pass :func:`trace_fields` as ``extra``."""
CUSTOM_NAMESPACE = "enforcer"
"""Where ``extra`` fields without a dot go in JSON (a dotted name is an ECS field)."""
_LEFT_OUT = ("log.original", "process.name", "process.thread.id")  # message again; noise


def trace_fields(traceparent: str | None) -> dict[str, str]:
    """``extra`` for a log line about a record: its trace id (``trace.id``) when the record
    carried a valid W3C ``traceparent`` (``00-<trace id>-<parent id>-<flags>``), else
    nothing. Only the trace id: the parent is the producer's span, not this line's."""
    if traceparent is None:
        return {}
    return {TRACE_ID: traceparent.split("-")[1]}


def _ecs_record(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of ``record`` whose extra fields are ECS names: dotted ones as given,
    others under :data:`CUSTOM_NAMESPACE`; librdkafka's line split into its parts."""
    fields = _fields(record)
    copy = logging.makeLogRecord(
        {name: value for name, value in vars(record).items() if name in _STANDARD}
    )
    copy.msg, copy.args = fields.pop("message"), None
    kafka = record.name == _KAFKA_LOGGER
    for name, value in fields.items():
        if kafka and name in ("facility", "client"):
            setattr(copy, f"{CUSTOM_NAMESPACE}.kafka.{name}", value)
        elif "." in name:
            setattr(copy, name, value)  # an ECS field the caller named, e.g. trace.id
        else:
            setattr(copy, f"{CUSTOM_NAMESPACE}.{name}", value)
    return copy


class JsonFormatter(ecs_logging.StdlibFormatter):
    """One ECS object per line (see the module's docstring for the fields)."""

    def __init__(self) -> None:
        super().__init__(exclude_fields=_LEFT_OUT)

    def format_to_ecs(self, record: logging.LogRecord) -> dict[str, Any]:
        """The ECS fields of ``record``, its extra fields renamed first."""
        fields: dict[str, Any] = super().format_to_ecs(_ecs_record(record))
        return fields


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
