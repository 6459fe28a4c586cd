"""Replay fetches a chunk's schemas before deciding it, waits for an unreachable
registry, and stops in one line past the deadline (docs/formats.md)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from enforcer.core.step import InputRecord, Source
from enforcer.formats.framing import frame, schema_ids
from enforcer.formats.registry import RegistryUnavailableError
from enforcer.replay.schemas import CHUNK, RegistryDownError, ReplayFormats, prefetched

CAUSE = "schema registry http://127.0.0.1:1 did not answer schemas/ids/3: Connection refused"


class Loader:
    def __init__(self, down_for: int) -> None:
        self.down_for = down_for
        self.loaded: set[int] = set()
        self.attempts = 0

    def missing(self, values: Iterable[bytes | None]) -> set[int]:
        return schema_ids(values) - self.loaded

    def load(self, ids: Iterable[int]) -> None:
        self.attempts += 1
        if self.attempts <= self.down_for:
            raise RegistryUnavailableError(CAUSE)
        self.loaded |= set(ids)


class Time:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _records(count: int) -> list[InputRecord]:
    return [
        InputRecord(None, frame(3 + n // CHUNK, b"body"), (), Source("t", 0, n))
        for n in range(count)
    ]


def _formats(loader: Loader, clock: Time, said: list[str], deadline_s: float) -> ReplayFormats:
    return ReplayFormats(
        loader, None, deadline_s, say=said.append, sleep=clock.sleep, monotonic=lambda: clock.now
    )


def test_each_chunk_is_handed_on_after_its_schemas_are_loaded_waiting_out_an_outage() -> None:
    loader, clock, said = Loader(down_for=3), Time(), list[str]()
    seen: list[int] = []
    for record in prefetched(_records(CHUNK + 1), _formats(loader, clock, said, 60.0)):
        assert schema_ids([record.value]) <= loader.loaded
        seen.append(record.source.offset)
    assert seen == list(range(CHUNK + 1))
    assert clock.slept == [0.5, 1.0, 2.0]
    assert loader.loaded == {3, 4}
    assert len(said) == 2 and said[0].startswith(CAUSE) and "no record is dead-lettered" in said[0]
    assert said[1] == "the schema registry answers again after 4 s"


def test_a_registry_down_past_the_deadline_stops_the_replay_in_one_line() -> None:
    loader, clock, said = Loader(down_for=1000), Time(), list[str]()
    with pytest.raises(RegistryDownError) as stopped:
        list(prefetched(_records(3), _formats(loader, clock, said, 20.0)))
    message = str(stopped.value)
    assert message.startswith(CAUSE) and "--schema-registry-deadline" in message
    assert "\n" not in message and len(said) == 1
    assert clock.now >= 20.0


@pytest.mark.parametrize("command", ["replay", "remediate plan"])
def test_the_lines_about_an_outage_name_the_command_that_reads(command: str) -> None:
    loader, clock, said = Loader(down_for=1000), Time(), list[str]()
    formats = _formats(loader, clock, said, 20.0)
    if command != "replay":  # replay's is the default
        formats = ReplayFormats(**{**formats.__dict__, "command": command})
    with pytest.raises(RegistryDownError) as stopped:
        list(prefetched(_records(3), formats))
    assert f"; {command} stops if it stays down for 20 s)" in said[0]
    assert str(stopped.value).endswith(f"--schema-registry-deadline); {command} stopped")
    if command != "replay":
        assert "replay" not in said[0] and "replay" not in str(stopped.value)
