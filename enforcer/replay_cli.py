"""File replay wiring for the command line: source, step, outputs, progress bar."""

from __future__ import annotations

import sys
from pathlib import Path

from enforcer.clock import SystemClock
from enforcer.fingerprint import Fingerprinter
from enforcer.policy.compiled import Policy
from enforcer.replay import replay
from enforcer.report.model import ReplaySource, Report
from enforcer.sinks.files import FileOutputs
from enforcer.sources.jsonl import jsonl_source_name, read_jsonl
from enforcer.step import InputRecord, Step


class ReplayInputError(OSError):
    """The replay input cannot be read."""


def replay_file(
    path: Path, out: Path, policy: Policy, fingerprinter: Fingerprinter, progress: bool
) -> Report:
    """Replay a JSON Lines file into ``out``; a progress bar shows on a terminal."""
    clock = SystemClock()
    step = Step(policy, fingerprinter, clock)
    source = ReplaySource(kind="file", name=str(path))
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise ReplayInputError(f"{path}: {exc.strerror}") from None
    with stream, FileOutputs(out) as outputs:
        records = read_jsonl(stream, jsonl_source_name(path))
        if progress and sys.stderr.isatty():
            from tqdm import tqdm

            total = path.stat().st_size
            with tqdm(
                total=total, unit="B", unit_scale=True, desc="replay", file=sys.stderr
            ) as bar:

                def advance(record: InputRecord) -> None:
                    bar.update(len(record.value or b"") + 1)

                report = replay(records, step, outputs, source, clock, advance)
        else:
            report = replay(records, step, outputs, source, clock)
        outputs.write_report(report)
    return report
