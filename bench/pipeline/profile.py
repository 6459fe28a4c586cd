"""Profiles of pipelines while they drain, with py-spy (optional; not a dependency).

``--profile DIR`` on the command line records each pipeline process from its first
output until the backlog is committed (``py-spy record --format raw``: one collapsed
stack a line, with its sample count; idle waits are not sampled). ``pip install
py-spy`` into the virtualenv first. Summarise a profile with::

    python -m bench.pipeline.profile DIR/enforcer-eos-1000ms.txt [--top 25]

which prints, per function, the share of samples in which it is on the stack
(inclusive) and at the top of it (self).
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

_LINE = re.compile(r"^(.*) (\d+)$")
# "function (path/to/module.py:123)" -> "function (path/to/module.py)"
_LINENO = re.compile(r":\d+\)$")


class Profiler:
    """``py-spy record`` attached to one process until :meth:`stop`."""

    def __init__(self, pid: int, output: Path, *, rate: int = 250) -> None:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        output.parent.mkdir(parents=True, exist_ok=True)
        self.output = output
        self._log = output.with_suffix(".log").open("wb")
        self._process = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(output),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        """Stop sampling and let py-spy write its file (SIGINT, as Ctrl-C)."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()


def summarise(lines: Iterable[str]) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, inclusive samples per function, self samples per function."""
    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in lines:
        match = _LINE.match(line.strip())
        if not match:
            continue
        stack, count = match.group(1), int(match.group(2))
        frames = [_LINENO.sub(")", frame) for frame in stack.split(";")]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    return total, inclusive, own


def main(argv: list[str] | None = None) -> None:
    """Print the top functions of a raw py-spy profile."""
    parser = argparse.ArgumentParser(description="Summarise a raw py-spy profile.")
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    total, inclusive, own = summarise(args.profile.read_text().splitlines())
    print(f"{total} samples")
    for title, counts in (("inclusive", inclusive), ("self", own)):
        print(f"\n-- {title}")
        for frame, count in counts.most_common(args.top):
            print(f"{100 * count / max(total, 1):5.1f}%  {frame}")


if __name__ == "__main__":
    main()
