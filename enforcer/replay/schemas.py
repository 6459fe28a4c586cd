"""Replay's schemas: fetched from the registry before the records that name them are
decided, as the live worker does (docs/formats.md: running with a schema registry).

Records go on in chunks: each chunk's missing schema ids are loaded first. A registry
that does not answer is waited for (one line said, then asked again with a growing
pause) up to the deadline, then the replay stops with one line: an outage never turns
a record into a dead letter, in replay either.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Protocol, TypeVar

from enforcer.core.record_format import RecordReader
from enforcer.core.step import InputRecord, Outcome
from enforcer.formats.registry import RegistryUnavailableError

CHUNK = 500
"""Records whose schemas are fetched together (one request per new id)."""
FIRST_RETRY_S = 0.5
LONGEST_RETRY_S = 5.0


class RegistryDownError(OSError):
    """The schema registry stayed unreachable past the deadline (one line, no data)."""


class Loader(Protocol):
    """What replay asks of the schema cache (the live worker's ``SchemaLoader``)."""

    def missing(self, values: Iterable[bytes | None]) -> set[int]:
        """The schema ids ``values`` name that are not loaded yet."""
        ...

    def load(self, ids: Iterable[int]) -> None:
        """Fetch ``ids``; raises ``RegistryUnavailableError`` on an outage."""
        ...


@dataclass(frozen=True)
class ReplayFormats:
    """How replay reads framed records: the schema cache, the reader the step is
    handed, and how long to wait for an unreachable registry."""

    loader: Loader | None
    """The schema cache; ``None`` without a registry (plain JSON mapped by the policy)."""
    reader: RecordReader | None
    deadline_s: float
    say: Callable[[str], None] = field(default=print)
    """Where the one line about an outage goes (the command line's stderr)."""
    sleep: Callable[[float], None] = field(default=time.sleep)
    monotonic: Callable[[], float] = field(default=time.monotonic)
    command: str = "replay"
    """The command that reads, as the lines about an outage name it."""


_Item = TypeVar("_Item", bound=InputRecord | Outcome)


def prefetched(records: Iterable[_Item], formats: ReplayFormats) -> Iterator[_Item]:
    """``records``, each handed on once the schemas its chunk names are loaded (an
    outcome its source decided names none).

    Raises :class:`RegistryDownError` when the registry stays down past the deadline."""
    loader = formats.loader
    if loader is None:
        yield from records
        return
    it = iter(records)
    while chunk := list(islice(it, CHUNK)):
        missing = loader.missing(r.value for r in chunk if not isinstance(r, Outcome))
        if missing:
            _load(missing, formats)
        yield from chunk


def _load(ids: set[int], formats: ReplayFormats) -> None:
    since: float | None = None
    pause = FIRST_RETRY_S
    while True:
        try:
            assert formats.loader is not None
            formats.loader.load(ids)
        except RegistryUnavailableError as exc:
            now = formats.monotonic()
            if since is None:
                since = now
                formats.say(
                    f"{exc}; waiting for it (no record is dead-lettered for it; "
                    f"{formats.command} stops if it stays down for {formats.deadline_s:.0f} s)"
                )
            elif now - since >= formats.deadline_s:
                raise RegistryDownError(
                    f"{exc} (no answer for {now - since:.0f} s, "
                    f"--schema-registry-deadline); {formats.command} stopped"
                ) from None
            formats.sleep(pause)
            pause = min(pause * 2, LONGEST_RETRY_S)
            continue
        if since is not None:
            formats.say(
                f"the schema registry answers again after {formats.monotonic() - since:.0f} s"
            )
        return
