"""The worker's disk ledger store at run time: a directory that appeared after the
check at start stops the worker with one line naming it."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from enforcer.config.settings import EnforcerSettings
from enforcer.live.failures import WorkerStopError
from enforcer.live.health import Health
from enforcer.live.worker import STALLED_AFTER_S, Watchdog, _store_maker


def test_a_foreign_store_directory_met_at_run_time_stops_the_worker(tmp_path: Path) -> None:
    settings = EnforcerSettings(
        ledger_store="disk", ledger_topic="identity.purposes", data_dir=tmp_path
    )
    foreign = tmp_path / "ledger" / "identity.purposes-2"
    foreign.mkdir(parents=True)
    (foreign / "x.txt").write_text("x")
    new_store = _store_maker(settings)
    with pytest.raises(WorkerStopError) as stopped:
        new_store(2)
    assert f"cannot use {foreign} for the disk ledger store" in str(stopped.value)
    assert (foreign / "x.txt").read_text() == "x"
    new_store(0).close()  # another partition's store opens as before


class _Exits:
    """Stands in for ``os._exit``: records the status, and says when it was called."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.called = threading.Event()

    def __call__(self, status: int) -> None:
        self.statuses.append(status)
        self.called.set()


def _started_health() -> Health:
    health = Health(time.monotonic, STALLED_AFTER_S)
    health.on_started()
    return health


def test_closing_that_blocks_past_its_deadline_ends_the_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After the loop ended on an error there is no signal's deadline: a client's close
    that blocks (a consumer leaving its group, the brokers gone) must not keep the
    worker from exiting to be restarted."""
    exits = _Exits()
    watchdog = Watchdog(_started_health(), lambda: False, STALLED_AFTER_S, exits, every_s=0.01)
    watchdog.start()
    with caplog.at_level(logging.ERROR, logger="enforcer"):
        watchdog.closing(0.05)
        assert exits.called.wait(5.0)  # the close "blocks": nothing calls stop()
    assert exits.statuses == [1]
    assert [r.getMessage() for r in caplog.records] == [
        "closing the clients took longer than 0s (ENFORCER_SHUTDOWN_TIMEOUT): exiting now"
    ]


def test_a_close_done_in_time_ends_nothing() -> None:
    exits = _Exits()
    watchdog = Watchdog(_started_health(), lambda: False, STALLED_AFTER_S, exits, every_s=0.01)
    watchdog.start()
    watchdog.closing(0.2)
    watchdog.stop()  # closed in time
    assert not exits.called.wait(0.5)


def test_a_stalled_loop_still_ends_the_process() -> None:
    clock = [0.0]
    health = Health(lambda: clock[0], 1.0)
    health.on_started()
    clock[0] = 100.0  # the loop has not gone round since
    exits = _Exits()
    watchdog = Watchdog(health, lambda: False, 1.0, exits, every_s=0.01)
    watchdog.start()
    assert exits.called.wait(5.0) and exits.statuses == [1]
    assert health.fatal is not None and health.fatal.startswith("stuck for 100s in starting")
