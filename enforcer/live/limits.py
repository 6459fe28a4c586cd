"""Outputs sized against what their topics accept (docs/contract.md: liveness). Pure.

An output larger than its topic's ``max.message.bytes`` would fail in the producer, and
the failure would abort every transaction that holds it, for ever: one record would
halt the pipeline. So each outcome is fitted before anything is sent: an outcome with
an output that does not fit becomes a dead letter (``output-too-large``), and a dead
letter that does not fit itself goes without its value, with headers naming the value's
size and SHA-256 (the original stays in the source topic).

The check is on the hot path (every output of every record), and nearly every output
is far below its limit: a cheap upper bound of the size (:func:`size_bound`, lengths
only, no encoding) settles it, and the exact size is computed only for an output whose
bound reaches its topic's limit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from enforcer.core.models import DeadLetterReason
from enforcer.core.step import Outcome, OutcomeKind, dead_letter
from enforcer.outputs.records import OutputRecord, OutputTopics, output_records

RECORD_OVERHEAD = 512
"""Bytes allowed for the record and batch framing around key, value and headers."""
HEADER_VALUE_SIZE = "enforcer.error.value.size"
HEADER_VALUE_SHA256 = "enforcer.error.value.sha256"


def record_size(record: OutputRecord) -> int:
    """The record's size as Kafka counts it, plus a margin for the framing."""
    headers = sum(len(k.encode()) + len(v or b"") for k, v in record.headers)
    return len(record.key or b"") + len(record.value or b"") + headers + RECORD_OVERHEAD


UTF8_MOST_PER_CHARACTER = 4


def size_bound(record: OutputRecord) -> int:
    """At least :func:`record_size`, from lengths alone: a header name's UTF-8 is at
    most four bytes a character, so no name is encoded."""
    key, value = record.key, record.value
    size = RECORD_OVERHEAD + (len(key) if key else 0) + (len(value) if value else 0)
    for name, header in record.headers:
        size += UTF8_MOST_PER_CHARACTER * len(name) + (len(header) if header else 0)
    return size


@dataclass(frozen=True)
class OutputLimits:
    """The largest record each output topic accepts (its ``max.message.bytes``)."""

    topics: OutputTopics
    largest: Mapping[str, int]

    def fits(self, record: OutputRecord) -> bool:
        """Whether ``record`` is within its topic's limit (unknown topics: no limit)."""
        limit = self.largest.get(record.topic)
        return limit is None or record_size(record) <= limit

    def fit(self, outcome: Outcome) -> tuple[Outcome, list[OutputRecord]]:
        """``outcome`` and its outputs, or a dead letter in its place if they do not fit."""
        outputs = output_records(outcome, self.topics)
        largest = self.largest
        for out in outputs:
            limit = largest.get(out.topic)
            if limit is not None and size_bound(out) > limit:
                return self._refit(outcome, outputs)  # near a limit: the exact sizes decide
        return outcome, outputs

    def _refit(
        self, outcome: Outcome, outputs: list[OutputRecord]
    ) -> tuple[Outcome, list[OutputRecord]]:
        too_large = [out for out in outputs if not self.fits(out)]
        if not too_large:
            return outcome, outputs
        if outcome.kind is OutcomeKind.DEADLETTERED:
            # Already a dead letter (invalid JSON, say): it keeps its reason, only slimmed.
            return outcome, [self._slimmed(out) for out in outputs]
        first = too_large[0]
        limit = self.largest[first.topic]
        letter = dead_letter(
            outcome.record,
            DeadLetterReason.OUTPUT_TOO_LARGE,
            f"the output for topic {first.topic} is {record_size(first)} bytes with "
            f"framing; the topic accepts {limit} (max.message.bytes)",
        )
        letters = output_records(letter, self.topics)
        return letter, [self._slimmed(out) for out in letters]

    def _slimmed(self, record: OutputRecord) -> OutputRecord:
        """A dead letter without its value, then (if still too large: a huge key or
        headers) without its key and input headers too; sizes and hashes say what went."""
        if self.fits(record):
            return record
        value = record.value or b""
        sized = (
            (HEADER_VALUE_SIZE, str(len(value)).encode()),
            (HEADER_VALUE_SHA256, hashlib.sha256(value).hexdigest().encode()),
        )
        slim = OutputRecord(record.topic, record.key, None, (*record.headers, *sized))
        if self.fits(slim):
            return slim
        own = tuple(h for h in record.headers if h[0].startswith("enforcer."))
        return OutputRecord(record.topic, None, None, (*own, *sized))
