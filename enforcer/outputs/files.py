"""Replay outputs as files in one directory (docs/contract.md: command line)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import orjson

from enforcer.core.json_numbers import has_long_digit_run
from enforcer.core.parse import dumps_keeping_numbers, loads_keeping_numbers
from enforcer.core.step import Outcome, OutcomeKind
from enforcer.outputs.report.html import render_html
from enforcer.outputs.report.model import Report

FORWARDED = "forwarded.jsonl"
VIOLATIONS = "violations.jsonl"
DEADLETTER = "deadletter.jsonl"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
# Byte values, not one-byte strings: ``b"\n" in value`` first tries the needle as an
# integer and builds (and drops) a TypeError, which costs more than the search itself.
_LF, _CR = ord("\n"), ord("\r")
_FRAMED = 0
"""The first byte of a value in the Confluent wire format; JSON text never starts so."""
_OUTCOMES_PER_WRITE = 1024
"""Outcomes whose lines are collected before they are written: about 0.6 MiB of
forwarded records of the benchmark mix."""


class FileOutputs:
    """Writes forwarded values, violations and dead letters, one a line.

    Violations and dead letters are JSON. A forwarded value is written as it is when it
    is one line of JSON text (compacted when spread over lines), and as its base64 when it
    is not (a framed value of the Confluent wire format, or in audit mode a value that is
    not JSON); with ``base64_values`` every forwarded value is base64, the form of a
    ``--format confluent`` file (docs/formats.md: "Replay and explain").

    Lines are collected and written in blocks (:data:`_OUTCOMES_PER_WRITE` outcomes at
    a time): a line costs a list append, not a write call and a copy with its newline."""

    def __init__(self, directory: Path, *, base64_values: bool = False) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._base64_values = base64_values
        self._files = tuple(
            _owner_only(directory / name) for name in (FORWARDED, VIOLATIONS, DEADLETTER)
        )
        self._lines: tuple[list[bytes], list[bytes], list[bytes]] = ([], [], [])
        self._forwarded, self._violations, self._deadletter = self._lines
        self._unwritten = 0

    def write(self, outcome: Outcome) -> None:
        """Write what one outcome produces."""
        value = outcome.forward_value
        if value is not None:
            if self._base64_values or (value and value[0] == _FRAMED):
                value = base64.b64encode(value)
            elif _LF in value or _CR in value:
                value = _one_line(value)
            self._forwarded.append(value)
        if outcome.violation is not None:
            self._violations.append(orjson.dumps(outcome.violation))
        if outcome.kind is OutcomeKind.DEADLETTERED:
            record = outcome.record
            line = {
                "source": record.source.as_dict(),
                "reason": str(outcome.error_reason),
                "message": outcome.error_message,
                "key_base64": base64.b64encode(record.key).decode() if record.key else None,
                "value_base64": base64.b64encode(record.value or b"").decode(),
            }
            self._deadletter.append(orjson.dumps(line))
        self._unwritten += 1
        if self._unwritten >= _OUTCOMES_PER_WRITE:
            self.flush()

    def flush(self) -> None:
        """Write the lines collected so far."""
        for handle, lines in zip(self._files, self._lines, strict=True):
            if lines:
                lines.append(b"")  # the last line's newline
                handle.write(b"\n".join(lines))
                lines.clear()
        self._unwritten = 0

    def write_report(self, report: Report) -> None:
        """Write ``report.json`` and the HTML page."""
        write_report(self.directory, report)

    def close(self) -> None:
        """Flush and close the files."""
        try:
            self.flush()
        finally:
            for handle in self._files:
                handle.close()

    def __enter__(self) -> FileOutputs:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _owner_only(path: Path) -> BinaryIO:
    """``path`` opened for writing, emptied, readable and writable by its owner only.

    Forwarded values and dead letters hold records as they came, identifiers included
    (dead letters those the policy would have stopped), and violations name subjects:
    like the fingerprint key, they are not for every user of the machine, whatever the
    umask. A file left by an earlier replay is narrowed too."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        return os.fdopen(descriptor, "wb")
    except BaseException:
        os.close(descriptor)
        raise


def _one_line(value: bytes) -> bytes:
    """A value spread over lines (from a topic) in one line: JSON written compactly, and
    anything else (audit mode forwards records it cannot read) as its base64.

    orjson reads an integer beyond 64 bits as a float and refuses a number beyond a
    float's range: a value holding either is written by the exact writer, every number
    as it was (an integer changed, or a valid value written as base64, would say
    something else was forwarded)."""
    if not has_long_digit_run(value):
        try:
            return orjson.dumps(orjson.loads(value))
        except orjson.JSONDecodeError:
            pass  # no JSON, or a number orjson refuses
    try:
        return dumps_keeping_numbers(loads_keeping_numbers(value))
    except (ValueError, RecursionError):
        return base64.b64encode(value)


def write_report(directory: Path, report: Report) -> None:
    """Write ``report.json`` and ``report.html`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / REPORT_JSON).write_bytes(
        orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n"
    )
    (directory / REPORT_HTML).write_text(render_html(report), encoding="utf-8")
