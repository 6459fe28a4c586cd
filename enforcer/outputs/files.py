"""Replay outputs as files in one directory (docs/contract.md: command line)."""

from __future__ import annotations

import base64
from pathlib import Path
from types import TracebackType

import orjson

from enforcer.core.step import Outcome, OutcomeKind
from enforcer.outputs.report.html import render_html
from enforcer.outputs.report.model import Report

FORWARDED = "forwarded.jsonl"
VIOLATIONS = "violations.jsonl"
DEADLETTER = "deadletter.jsonl"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
_BUFFER = 1 << 20


def _one_line(value: bytes) -> bytes:
    # A forwarded value is valid JSON; one spread over lines (from a topic) is
    # written compactly so that the file keeps one value a line.
    if b"\n" in value or b"\r" in value:
        return orjson.dumps(orjson.loads(value))
    return value


class FileOutputs:
    """Writes forwarded values, violations and dead letters as JSON Lines."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._forwarded = (directory / FORWARDED).open("wb", buffering=_BUFFER)
        self._violations = (directory / VIOLATIONS).open("wb", buffering=_BUFFER)
        self._deadletter = (directory / DEADLETTER).open("wb", buffering=_BUFFER)

    def write(self, outcome: Outcome) -> None:
        """Write what one outcome produces."""
        if outcome.forward_value is not None:
            self._forwarded.write(_one_line(outcome.forward_value) + b"\n")
        if outcome.violation is not None:
            self._violations.write(orjson.dumps(outcome.violation) + b"\n")
        if outcome.kind is OutcomeKind.DEADLETTERED:
            record = outcome.record
            line = {
                "source": record.source.as_dict(),
                "reason": str(outcome.error_reason),
                "message": outcome.error_message,
                "key_base64": base64.b64encode(record.key).decode() if record.key else None,
                "value_base64": base64.b64encode(record.value or b"").decode(),
            }
            self._deadletter.write(orjson.dumps(line) + b"\n")

    def write_report(self, report: Report) -> None:
        """Write ``report.json`` and the HTML page."""
        write_report(self.directory, report)

    def close(self) -> None:
        """Flush and close the files."""
        for handle in (self._forwarded, self._violations, self._deadletter):
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


def write_report(directory: Path, report: Report) -> None:
    """Write ``report.json`` and ``report.html`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / REPORT_JSON).write_bytes(
        orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n"
    )
    (directory / REPORT_HTML).write_text(render_html(report), encoding="utf-8")
