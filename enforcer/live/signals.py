"""SIGTERM and SIGINT as a flag the loop reads (no Kafka imported here).

``enforcer run`` installs it as the very first thing it does, before the Kafka client is
imported, so that a signal during start-up also ends the worker cleanly (status 0). A
second signal, or a shutdown longer than its deadline, ends the process at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

log = logging.getLogger("enforcer")


class StopSignal:
    """SIGTERM and SIGINT as a flag the loop reads; installed before anything starts,
    so a signal during start-up also ends the worker cleanly."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.deadline_s = 30.0
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Take over SIGTERM and SIGINT (main thread only) until :meth:`uninstall`."""
        self._previous = {
            signum: signal.signal(signum, self._handle)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }

    def uninstall(self) -> None:
        """Give SIGTERM and SIGINT back to whoever had them (a test process, say)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __call__(self) -> bool:
        return self._event.is_set()

    def _handle(self, signum: int, _: FrameType | None) -> None:
        if self._event.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(128 + signum)
        self._event.set()
        name = signal.Signals(signum).name
        log.info("%s received: committing what is decided and leaving the group", name)
        timer = threading.Timer(self.deadline_s, self._too_slow)
        timer.daemon = True
        timer.start()

    def _too_slow(self) -> None:
        log.error(
            "shutdown took longer than %.0fs (ENFORCER_SHUTDOWN_TIMEOUT): exiting now",
            self.deadline_s,
        )
        logging.shutdown()
        os._exit(1)


_installed: StopSignal | None = None


def install_stop_signal() -> StopSignal:
    """The process's stop signal, installed on the first call."""
    global _installed  # noqa: PLW0603 - one per process, like the signal handlers themselves
    if _installed is None:
        _installed = StopSignal()
        _installed.install()
    return _installed


def uninstall_stop_signal() -> None:
    """Give the signals back (for a process that runs ``main`` more than once: tests)."""
    global _installed  # noqa: PLW0603
    if _installed is not None:
        _installed.uninstall()
        _installed = None
