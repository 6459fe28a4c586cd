"""What the step asks of a record format other than the plain identity event.

The core judges events; it does not read Avro, Protobuf or a topic's own JSON shape.
A :class:`RecordReader` (built by ``enforcer.formats`` from the policy's mappings and a
schema registry's schemas) turns a record's value into the :class:`Event` the decision
judges, and writes a redacted value back in the record's own format. The step hands it
every record first; a record the reader does not claim (``None``) is decided as a plain
identity event, on the one pass. The reader does no I/O: the schemas it needs are
fetched by the driver (live, replay, explain) before the records are decided.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from enforcer.core.models import Event
from enforcer.core.parse import ParseFailure


class Decoded(NamedTuple):
    """A record a reader decoded: the event the core judges, where each of its
    identifiers sits in the record, and the reader's own decoded form for
    :meth:`RecordReader.redact`."""

    event: Event
    locations: tuple[str, ...]
    """The record path of ``event.identifiers[i]`` (``contact.email``, ``phones[1]``),
    named in dead-letter messages instead of the event's ``identifiers[i]``."""
    native: object


class Unredactable(NamedTuple):
    """Why a redacted record cannot be written in its format (a field its schema does
    not let be emptied): the record is dropped and its violation says this. Names
    fields and schema types, never values."""

    why: str


class RecordReader(Protocol):
    """A record format between the bytes and the decision (docs/formats.md)."""

    def read(
        self, topic: str, partition: int, offset: int, value: bytes | None
    ) -> Decoded | ParseFailure | None:
        """The value's event, why it cannot be judged (a dead letter), or ``None`` when
        the value is not this reader's to decide (a plain identity event). The record's
        coordinates choose the mapping (by topic) and name an event that has no id of
        its own."""
        ...

    def record_path(self, decoded: Decoded, path: str) -> str:
        """A problem's path in ``decoded.event`` (``identifiers[1].purposes[0]``) as the
        record's own path, for a dead letter's message."""
        ...

    def redact(self, decoded: Decoded, removed: frozenset[int]) -> bytes | Unredactable:
        """``decoded``'s value re-encoded in its own format (the same schema id) without
        the identifiers at ``removed`` (indexes into ``decoded.event.identifiers``).
        Once per read: it may change what ``decoded`` holds (a plain JSON record read
        directly is emptied in place)."""
        ...
