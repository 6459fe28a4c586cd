"""The progress bar of the commands that read a history (``replay``, ``remediate
plan``): a tqdm bar on standard error when it is a terminal, nothing otherwise, so that
a redirected or piped command writes no bar into its log."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ProgressBar:
    """A tqdm bar when ``enabled``, nothing otherwise; shows records per second either
    way (a bar in records itself, a bar in other units as a postfix)."""

    def __init__(self, enabled: bool, total: int, unit: str, desc: str) -> None:
        self.enabled = enabled
        self._records = 0
        self._started = time.monotonic()
        self._tqdm: Any = None
        # A bar in records shows records/s itself; a bar in bytes gets it as a postfix.
        self._show_rate = unit != "rec"
        if enabled:
            from tqdm import tqdm

            self._tqdm = tqdm(
                total=total,
                unit=unit,
                unit_scale=True,
                desc=desc,
                file=sys.stderr,
                dynamic_ncols=True,
            )

    def callback(self, advance: Callable[[T], None]) -> Callable[[T], None] | None:
        """``advance`` when the bar shows, else nothing to call for each record."""
        return advance if self.enabled else None

    def advance(self, amount: int) -> None:
        """One record done; ``amount`` units (bytes or offsets) further."""
        if self._tqdm is None:
            return
        self._records += 1
        self._tqdm.update(amount)
        if self._show_rate and self._records % 2000 == 0:
            rate = self._records / max(time.monotonic() - self._started, 1e-6)
            self._tqdm.set_postfix_str(f"{rate:,.0f} rec/s", refresh=False)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *_: object) -> None:
        if self._tqdm is not None:
            self._tqdm.close()


def progress_bar(progress: bool, total: int, unit: str, desc: str) -> ProgressBar:
    """A bar that shows when ``progress`` is asked for and standard error is a terminal."""
    return ProgressBar(progress and sys.stderr.isatty(), total, unit, desc)
