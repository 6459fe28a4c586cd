"""The worker's disk ledger store at run time: a directory that appeared after the
check at start stops the worker with one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from enforcer.config.settings import EnforcerSettings
from enforcer.live.failures import WorkerStopError
from enforcer.live.worker import _store_maker


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
