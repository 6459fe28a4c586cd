"""The enforcer's ``Step`` as every peer pipeline runs it: one record in, the records
its outcome produces out (forwarded record, violation, dead letter, as
:func:`enforcer.outputs.records.output_records` makes them), so the peers write what
the enforcer writes.

No Kafka client is imported here: the peers in bench/setup-peers.sh's venv use it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from enforcer.core.clock import SystemClock
from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.core.policy.load import load_policy
from enforcer.core.step import Headers, InputRecord, Source, Step
from enforcer.outputs.records import OutputRecord, OutputTopics, output_records

RawHeaders = Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None
"""Headers as the Kafka clients hand them over (a list of pairs, or a dict)."""


class PeerStep:
    """The default policy's ``Step`` with a fresh fingerprint key, writing to ``topics``."""

    def __init__(self, topics: OutputTopics) -> None:
        self._step = Step(
            load_policy(None), Fingerprinter(key_from_text(generate_key())), SystemClock()
        )
        self._topics = topics

    def __call__(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: RawHeaders,
        source: Source,
    ) -> list[OutputRecord]:
        """The output records of one input record."""
        record = InputRecord(key, value, as_headers(headers), source)
        return output_records(self._step(record), self._topics)


def as_headers(raw: RawHeaders) -> Headers:
    """A client's headers as ``Step`` takes them (a null value stays null)."""
    if not raw:
        return ()
    items = raw.items() if isinstance(raw, Mapping) else raw
    return tuple(
        (name, value.encode() if isinstance(value, str) else value) for name, value in items
    )
