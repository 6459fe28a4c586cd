"""One record in → exactly one outcome out. Pure, and never raises.

The live agent, replay and ``explain`` all call :meth:`Step.__call__`; replay
results equal live behaviour by construction.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

import orjson
from mypy_extensions import mypyc_attr

from enforcer.core.clock import Clock, rfc3339
from enforcer.core.fingerprint import FINGERPRINT_PREFIX, Fingerprinter
from enforcer.core.json_numbers import numbers_may_change
from enforcer.core.ledger_view import LedgerLookup, LedgerMode
from enforcer.core.models import DeadLetterReason, Event, Mode
from enforcer.core.one_pass import OnePass
from enforcer.core.parse import (
    ParseFailure,
    dumps_keeping_numbers,
    loads_keeping_numbers,
    parse_event,
)
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.evaluate import Decision, Judgement, Rejection, Verdict, decide
from enforcer.core.record_format import Decoded, RecordReader, Unredactable

# A header value may be null (Kafka allows it); it is kept as null, never made empty.
Headers = tuple[tuple[str, bytes | None], ...]

HEADER_ACTION = "enforcer.action"
HEADER_POLICY = "enforcer.policy"
HEADER_TRACEPARENT = "traceparent"
"""W3C Trace Context: an input record's header, carried onto its violation event."""
_OWN_PREFIX = "enforcer."
"""The enforcer's own header names (``enforcer.action``, ``enforcer.error.reason``…)."""


SCHEMA_ID_HEADER = "__value_schema_id"
"""Where Confluent's serializers can put a value's schema id instead of its frame; their
deserializers look there first, before the frame."""
_FRAMED_WITH_A_SCHEMA_HEADER = (
    f"the value is framed with a schema id and also carries a {SCHEMA_ID_HEADER} header: "
    "a consumer reading the header would decode it under another schema than the one "
    "it was judged by"
)


def names_a_schema_in_its_headers(value: bytes | None, headers: Headers) -> bool:
    """Whether a framed ``value`` (byte 0 a zero) comes with a schema id header too
    (names compared without case or surrounding white space)."""
    return (
        value is not None
        and value[:1] == b"\x00"
        and any(name.strip().lower() == SCHEMA_ID_HEADER for name, _ in headers)
    )


def foreign_headers(headers: Headers) -> Headers:
    """An input record's headers without any in the enforcer's own namespace, in any
    letter case and with any white space around (``ENFORCER.ACTION``, ``enforcer.action
    ``): only the enforcer sets those on what it writes, so a consumer reading the first
    header of a name, or matching names without case, never meets a forged one (a forged
    ``enforcer.error.message`` could carry anything, a phone number included)."""
    if not any(_OWN_PREFIX in name.lower() for name, _ in headers):
        return headers  # the common case: nothing to take out, nothing copied
    return tuple(h for h in headers if not h[0].strip().lower().startswith(_OWN_PREFIX))


# W3C Trace Context level 1: version 00 is exactly this; a later version may append
# fields after a dash, which are not carried. Anything else is ignored, never copied:
# a header that is not a trace context could hold anything, identifiers included.
_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.S)
_ZERO_TRACE, _ZERO_PARENT = b"0" * 32, b"0" * 16


def traceparent(headers: Headers) -> str | None:
    """The record's valid W3C ``traceparent`` header (its first 55 characters), if any."""
    for name, value in headers:
        if name.lower() != HEADER_TRACEPARENT or value is None:
            continue
        match = _TRACEPARENT.fullmatch(value.strip())
        if match is None:
            return None
        version, trace, parent, _, rest = match.groups()
        if version == b"ff" or (version == b"00" and rest) or trace == _ZERO_TRACE:
            return None
        if parent == _ZERO_PARENT:
            return None
        return match.group(0)[:55].decode()
    return None


_MILLISECOND = timedelta(milliseconds=1)
_Found = tuple[dict[str, Any], tuple["FindingSummary", ...], Headers]
"""A violation, the summaries of its findings, and its record's headers."""
_ACTION_BYTES = {"passed": b"passed", "redacted": b"redacted"}
_VIOLATION_NAMESPACE = uuid.UUID("6f1f9b4e-4c36-5a8e-9d0b-7b8f3e0c2a11")


class Source(NamedTuple):
    """Coordinates of an input record."""

    topic: str
    partition: int
    offset: int

    def as_dict(self) -> dict[str, Any]:
        """The ``source`` object of violations and dead letters."""
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


class InputRecord(NamedTuple):
    """A record as read from a topic or a file: raw bytes, nothing decoded yet."""

    key: bytes | None
    value: bytes | None
    headers: Headers
    source: Source


class OutcomeKind(StrEnum):
    """Every input record ends as exactly one of these."""

    PASSED = "passed"
    REDACTED = "redacted"
    DROPPED = "dropped"
    DEADLETTERED = "deadlettered"


class FindingSummary(NamedTuple):
    """What metrics and reports may know of a finding: never the value."""

    rule: str
    identifier_type: str


class ForwardedIdentifier(NamedTuple):
    """One identifier that reached the sink with its record, as the decision judged it:
    what exposure records (docs/exposure.md, "What the decision hands exposure")."""

    type: str
    """Lower-cased, as judged."""
    mac: bytes
    """The fingerprint's 32 bytes (:meth:`~enforcer.core.fingerprint.Fingerprinter.mac`,
    the bytes the ledger lookup compares: remembered, so never hashed twice)."""
    purposes: tuple[str, ...]
    """What it was judged by: the ledger's purposes when ``by_ledger``, else the
    event's tags, normalized."""
    by_ledger: bool
    """Whether ``purposes`` are the purpose ledger's (the ledger knew the identifier)."""

    @property
    def fingerprint(self) -> str:
        """``hmac-sha256:<64 hex>``, as violations carry it."""
        return FINGERPRINT_PREFIX + self.mac.hex()


_new_forwarded = tuple.__new__


@mypyc_attr(native_class=False)  # a tuple subclass: compiled code cannot subclass tuple
class Rekeyable(tuple[ForwardedIdentifier, ...]):
    """A forwarded record's identifiers, from a step that knows the previous fingerprint
    key (a key rotation under way): each one's MAC under that key is computed only when
    :meth:`previous_macs` is asked, which exposure does only for a subject that still holds
    an entry made under the previous key (docs/exposure.md, "Key rotation")."""

    _values: list[tuple[str, str]]
    _previous: Fingerprinter

    def previous_macs(self) -> tuple[bytes, ...]:
        """The previous key's MAC of each identifier, in the same order."""
        mac = self._previous.mac
        return tuple(mac(kind, value) for kind, value in self._values)


def _rekeyable(
    found: list[ForwardedIdentifier], values: list[tuple[str, str]], previous: Fingerprinter
) -> Rekeyable:
    listed = Rekeyable(found)
    listed._values = values  # the outcome holds the record's raw bytes anyway
    listed._previous = previous
    return listed


class Outcome(NamedTuple):
    """The single outcome of one input record.

    ``forward_value``/``forward_headers`` are set when the record goes to the sink; ``violation``
    (docs/contract.md: violation event) when it had findings, with ``violation_headers`` for its
    record; ``error_reason`` and ``error_message`` when it is dead-lettered, or, in audit mode, when
    enforce mode would have dead-lettered it (it is then ``passed``, forwarded unchanged, and
    ``violation`` reports the would-be dead letter).

    ``forwarded_identifiers`` is filled only by a step built with ``exposure=True``, and
    only for a forwarded record: the identifiers its forwarded value holds, in order
    (``()`` for a record audit mode forwards but could not read); else ``None``."""

    kind: OutcomeKind
    record: InputRecord
    forward_value: bytes | None = None
    forward_headers: Headers | None = None
    violation: dict[str, Any] | None = None
    findings: tuple[FindingSummary, ...] = ()
    subject_id: str | None = None
    occurred_at: str | None = None
    error_reason: DeadLetterReason | None = None
    error_message: str | None = None
    violation_headers: Headers = ()
    forwarded_identifiers: tuple[ForwardedIdentifier, ...] | None = None

    @property
    def forwarded(self) -> bool:
        """Whether the record goes to the sink (its value may be null)."""
        return self.kind is OutcomeKind.PASSED or self.kind is OutcomeKind.REDACTED

    @property
    def would_dead_letter(self) -> bool:
        """Dead-lettered, or (audit mode) forwarded where enforce mode would dead-letter."""
        return self.error_reason is not None

    def dead_letter_headers(self) -> Headers:
        """Input headers plus the error headers of docs/contract.md: dead letter."""
        source = self.record.source
        return (
            *foreign_headers(self.record.headers),
            ("enforcer.error.reason", str(self.error_reason).encode()),
            ("enforcer.error.message", (self.error_message or "").encode()),
            ("enforcer.source.topic", source.topic.encode()),
            ("enforcer.source.partition", str(source.partition).encode()),
            ("enforcer.source.offset", str(source.offset).encode()),
        )


_new_outcome = tuple.__new__
_VERDICT_OF = {
    OutcomeKind.PASSED: Verdict.PASSED,
    OutcomeKind.REDACTED: Verdict.REDACTED,
    OutcomeKind.DROPPED: Verdict.DROPPED,
}


def violation_id(source: Source) -> str:
    """A UUIDv5 of the source coordinates only: the same record, the same id.

    Equal to ``uuid.uuid5(_VIOLATION_NAMESPACE, "topic\\0partition\\0offset")``,
    computed without building UUID objects (this is on the violation path): the
    namespace's hash state is copied, and the version and variant bits are set on the
    hex digits they fall in.
    """
    digest = _NAMESPACE_SHA1.copy()
    digest.update(f"{source.topic}\x00{source.partition}\x00{source.offset}".encode())
    h = digest.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:32]}"


_NAMESPACE_SHA1 = hashlib.sha1(_VIOLATION_NAMESPACE.bytes)  # noqa: S324 - UUIDv5 is defined on SHA-1
# RFC 4122 variant: the top two bits of the 17th hex digit are 10.
_VARIANT_DIGIT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


class Step:
    """The per-record decision step, configured once with policy, key and clock, the
    purpose ledger when one is configured (docs/ledger.md), and the reader of record
    formats other than the plain identity event when the policy or the topics need one
    (:mod:`enforcer.core.record_format`, docs/formats.md).

    With ``exposure``, every forwarded outcome also lists the identifiers that reached the
    sink (:attr:`Outcome.forwarded_identifiers`); without it, nothing of that is computed.

    Raises :class:`~enforcer.core.policy.compiled.PolicyConfigError` when the policy asks
    for a ledger and none is given.
    """

    def __init__(
        self,
        policy: Policy,
        fingerprinter: Fingerprinter,
        clock: Clock,
        ledger: LedgerLookup | None = None,
        reader: RecordReader | None = None,
        *,
        exposure: bool = False,
        previous_fingerprinter: Fingerprinter | None = None,
    ) -> None:
        self.policy = policy
        self.exposure = exposure
        """Whether forwarded outcomes list their identifiers (for exposure)."""
        self.previous_fingerprinter = previous_fingerprinter
        """The fingerprint key in force before a rotation, when one is under way: the
        forwarded identifiers are then :class:`Rekeyable` (exposure re-keys its entries)."""
        self._reader = reader
        self.ledger_mode = policy.ledger_mode(ledger is not None)
        self._ledger = ledger if self.ledger_mode is not LedgerMode.OFF else None
        self.fingerprinter = fingerprinter
        self.key_id = fingerprinter.key_id
        self._clock = clock
        self._policy_header = policy.version.encode()
        self.types_judged = (
            any(rule.types is not None for rule in policy.rules)
            or self._ledger is not None
            or exposure
        )
        """Whether an identifier's type matters beyond its purposes (a repeated ``type``
        is then refused): a rule looks at types, the ledger is asked by type, or exposure
        records it."""
        self._audit = policy.mode is Mode.AUDIT
        self._mode = policy.mode.value
        # The own headers of a forwarded record that came without headers: the same
        # two tuples every time.
        self._bare_headers = {
            kind: ((HEADER_ACTION, _ACTION_BYTES[kind]), (HEADER_POLICY, self._policy_header))
            for kind in (OutcomeKind.PASSED, OutcomeKind.REDACTED)
        }
        self._one_pass = OnePass(self, self._ledger)
        # detected_at is written to the millisecond: formatted once per millisecond.
        self._detected_in: tuple[datetime, datetime, str] | None = None

    def _detected_at(self) -> str:
        """The clock's time as a violation's ``detected_at``."""
        now = self._clock.now()
        known = self._detected_in
        if known is not None and known[0] <= now < known[1]:
            return known[2]
        start = now.replace(microsecond=now.microsecond - now.microsecond % 1000)
        text = rfc3339(now)
        self._detected_in = (start, start + _MILLISECOND, text)
        return text

    def __call__(self, record: InputRecord) -> Outcome:
        """Decide one record. An unexpected error dead-letters it (fail closed).

        Most records are decided in one pass (:mod:`enforcer.core.one_pass`); the rest,
        and any the one pass fails on, on the reference path
        (:meth:`explain_by_reference`), which gives the same outcome for every record
        the one pass decides."""
        if self._reader is not None:
            formatted = self._explain_formatted(self._reader, record)
            if formatted is not None:
                return formatted[0]
        try:
            outcome = self._one_pass(record)
        except Exception:
            outcome = None
        if outcome is None:
            return self.explain_by_reference(record)[0]
        return outcome

    def explain(self, record: InputRecord) -> tuple[Outcome, Decision | None]:
        """The outcome, and the per-identifier decision behind it when there is one
        (the same outcome as :meth:`__call__`)."""
        if self._reader is not None:
            formatted = self._explain_formatted(self._reader, record)
            if formatted is not None:
                return formatted
        judged: list[Judgement] = []
        try:
            outcome = self._one_pass(record, judged)
        except Exception:
            outcome = None
        if outcome is None:
            return self.explain_by_reference(record)
        return outcome, Decision(tuple(judged), _VERDICT_OF[outcome.kind])

    def judgements(
        self, record: InputRecord
    ) -> tuple[str, Sequence[Judgement], Sequence[str]] | None:
        """Each identifier of the record judged as :meth:`explain` judges it, without
        building what would be output (for ``enforcer remediate``, which asks of every
        forwarded record only how its identifiers are judged now): the subject id, the
        judgements and the identifiers' values, in record order; ``None`` for a record
        the step would dead-letter."""
        try:
            if self._reader is not None:
                decoded = self._reader.read(*record.source, record.value)
                if isinstance(decoded, ParseFailure):
                    return None
                if decoded is not None:
                    return self._judged(record.source.partition, decoded.event)
            try:
                found = self._one_pass.judgements(record)
            except Exception:
                found = None
            if found is not None:
                return found
            parsed = parse_event(record.value, types_judged=self.types_judged)
            if isinstance(parsed, ParseFailure):
                return None
            return self._judged(record.source.partition, parsed)
        except Exception:
            return None  # what the step would dead-letter as an internal error

    def _judged(
        self, partition: int, event: Event
    ) -> tuple[str, Sequence[Judgement], Sequence[str]] | None:
        decision = self._decide(partition, event)
        if isinstance(decision, Rejection):
            return None
        return (
            event.subject_id,
            decision.identifiers,
            [identifier.value for identifier in event.identifiers],
        )

    def explain_by_reference(self, record: InputRecord) -> tuple[Outcome, Decision | None]:
        """:meth:`explain` in two stages: parse and validate the whole event
        (:func:`~enforcer.core.parse.parse_event`), then decide it
        (:func:`~enforcer.core.policy.evaluate.decide`). The one pass is held equal to
        it; it decides what the one pass hands back."""
        try:
            parsed = parse_event(record.value, types_judged=self.types_judged)
            if isinstance(parsed, ParseFailure):
                return self._dead_letter(record, parsed.reason, parsed.message), None
            decision = self._decide(record.source.partition, parsed)
            if isinstance(decision, Rejection):
                message = f"{decision.path}: {decision.problem}"
                return self._dead_letter(record, DeadLetterReason.SCHEMA, message), None
            return self._act(record, parsed, decision), decision
        except Exception as exc:
            message = f"internal error: {type(exc).__name__}"
            return self._dead_letter(record, DeadLetterReason.INTERNAL, message), None

    def _explain_formatted(
        self, reader: RecordReader, record: InputRecord
    ) -> tuple[Outcome, Decision | None] | None:
        """A record in a format the reader claims: read by it, decided as the reference
        path decides an event, redacted by it; ``None`` when the reader leaves the
        record to the plain identity event's path."""
        try:
            if record.headers and names_a_schema_in_its_headers(record.value, record.headers):
                message = _FRAMED_WITH_A_SCHEMA_HEADER
                return self._dead_letter(record, DeadLetterReason.SCHEMA, message), None
            decoded = reader.read(*record.source, record.value)
            if decoded is None:
                return None
            if isinstance(decoded, ParseFailure):
                return self._dead_letter(record, decoded.reason, decoded.message), None
            event = decoded.event
            decision = self._decide(record.source.partition, event)
            if isinstance(decision, Rejection):
                message = f"{reader.record_path(decoded, decision.path)}: {decision.problem}"
                return self._dead_letter(record, DeadLetterReason.SCHEMA, message), None
            return self._act(record, event, decision, decoded), decision
        except Exception as exc:
            message = f"internal error: {type(exc).__name__}"
            return self._dead_letter(record, DeadLetterReason.INTERNAL, message), None

    def _decide(self, partition: int, event: Event) -> Decision | Rejection:
        """Judge ``event``'s identifiers, asking the ledger when one is configured."""
        if self._ledger is None:
            return decide(self.policy, event)
        granted = self._granted(partition, event)
        return decide(self.policy, event, self.ledger_mode, granted)

    def _granted(
        self, partition: int, event: Event
    ) -> Callable[[int, str], tuple[str, ...] | None]:
        """The ledger lookup for one event's identifiers (the fingerprints it computes
        are remembered by the fingerprinter, for the violation's findings)."""
        ledger = self._ledger
        assert ledger is not None
        grants = ledger.subject(partition, event.subject_id)
        if grants is None:
            return _unknown_to_the_ledger  # so are all its identifiers
        mac_of = self.fingerprinter.mac
        identifiers = event.identifiers

        def granted(index: int, kind: str) -> tuple[str, ...] | None:
            return grants(kind, mac_of(kind, identifiers[index].value))

        return granted

    def _dead_letter(self, record: InputRecord, reason: DeadLetterReason, message: str) -> Outcome:
        if not self._audit:
            return Outcome(
                OutcomeKind.DEADLETTERED, record, error_reason=reason, error_message=message
            )
        # Audit is a shadow mode: the record flows on unchanged, and what enforce mode
        # would have dead-lettered is reported on the violations topic instead.
        trace = traceparent(record.headers) if record.headers else None
        report: dict[str, Any] = {
            "violation_id": violation_id(record.source),
            "detected_at": self._detected_at(),
            "mode": Mode.AUDIT.value,
            "action": "deadlettered",
            "policy_version": self.policy.version,
            "key_id": self.key_id,
            "source": record.source.as_dict(),
            "deadletter": {"reason": reason.value, "message": message},
            "findings": [],
        }
        if trace is not None:
            report["traceparent"] = trace
        if self.policy.security_override is not None:
            report["security_override"] = True
        return Outcome(
            OutcomeKind.PASSED,
            record,
            forward_value=record.value,
            forward_headers=self._own_headers(record, OutcomeKind.PASSED),
            violation=report,
            error_reason=reason,
            error_message=message,
            violation_headers=_trace_headers(trace),
            # Not read, so exposure cannot know which identifiers it holds.
            forwarded_identifiers=() if self.exposure else None,
        )

    def _act(
        self,
        record: InputRecord,
        parsed: Event,
        decision: Decision,
        decoded: Decoded | None = None,
    ) -> Outcome:
        exposure = self.exposure
        if decision.verdict is Verdict.PASSED:
            forwarded = None
            if exposure:
                texts = [identifier.value for identifier in parsed.identifiers]
                forwarded = self.forwarded_of(decision.identifiers, texts, everything=True)
            return self.passed(
                record, record.value, parsed.subject_id, parsed.occurred_at, forwarded
            )
        judged = list(decision.identifiers)
        values = [identifier.value for identifier in parsed.identifiers]
        ids = (parsed.event_id, parsed.subject_id, parsed.occurred_at)
        if self.policy.mode is Mode.AUDIT:
            found = self._violation(record, *ids, decision.verdict, judged, values)
            # Audit mode forwards the record unchanged: every identifier reached the sink.
            forwarded = self.forwarded_of(judged, values, everything=True) if exposure else None
            return self._forward(record, OutcomeKind.PASSED, record.value, ids, found, forwarded)
        if decision.verdict is Verdict.DROPPED:
            return self.dropped(record, *ids, judged, values)
        removed = {index for index, j in enumerate(judged) if j.rule is not None}
        if decoded is None:
            redacted = _without_identifiers(record.value or b"", removed, parsed.document)
        else:
            assert self._reader is not None
            written = self._reader.redact(decoded, frozenset(removed))
            if isinstance(written, Unredactable):
                # Fail closed: a record its format cannot hold without the identifiers.
                return self.dropped(record, *ids, judged, values, because=written.why)
            redacted = written
        forwarded = self.forwarded_of(judged, values, everything=False) if exposure else None
        return self.redacted(record, redacted, *ids, judged, values, forwarded)

    def forwarded_of(
        self, judged: Sequence[Judgement], values: Sequence[str], *, everything: bool
    ) -> tuple[ForwardedIdentifier, ...]:
        """The identifiers of a forwarded record that reached the sink: every one
        (``everything``: passed, or audit mode) or those no rule stopped (redacted);
        ``judged[i]`` judges the identifier whose value is ``values[i]``.

        Fingerprinted through the fingerprinter's memory of recent identifiers: under a
        ledger setting, the lookup has just computed the same MAC, and a stream's
        identifiers recur."""
        # A plain loop: a comprehension, zip(strict=True) and a NamedTuple's own __new__
        # made this twice as slow (it runs for every forwarded record).
        mac = self.fingerprinter.mac
        found = []
        for j, value in zip(judged, values):  # noqa: B905 - equal lengths by construction
            if everything or j.rule is None:
                kind = j.type
                found.append(
                    _new_forwarded(
                        ForwardedIdentifier, (kind, mac(kind, value), j.purposes, j.from_ledger)
                    )
                )
        previous = self.previous_fingerprinter
        if previous is not None:
            # During a key rotation: the same list, able to give each identifier's MAC
            # under the previous key when exposure asks (its raw values kept for that).
            kept = [
                (j.type, value)
                for j, value in zip(judged, values)  # noqa: B905 - equal lengths
                if everything or j.rule is None
            ]
            return _rekeyable(found, kept, previous)
        return tuple(found)

    def passed(
        self,
        record: InputRecord,
        value: bytes | None,
        subject_id: str,
        occurred_at: str,
        forwarded: tuple[ForwardedIdentifier, ...] | None = None,
    ) -> Outcome:
        """A record forwarded unchanged, with no findings (``forwarded``: its
        identifiers, with exposure)."""
        headers = (
            self._own_headers(record, OutcomeKind.PASSED)
            if record.headers
            else self._bare_headers[OutcomeKind.PASSED]
        )
        # Every field given, so tuple.__new__ directly: the NamedTuple's own __new__ is
        # Python code that fills defaults, a third of the cost of building the outcome.
        passed = (OutcomeKind.PASSED, record, value, headers, None, (), subject_id, occurred_at)
        return _new_outcome(Outcome, (*passed, None, None, (), forwarded))

    def dropped(
        self,
        record: InputRecord,
        event_id: str,
        subject_id: str,
        occurred_at: str,
        judged: list[Judgement],
        values: list[str],
        because: str | None = None,
    ) -> Outcome:
        """A record dropped for its findings: ``judged[i]`` judges the identifier whose
        value is ``values[i]``; ``because`` says why when redaction would have kept it
        but its format cannot (the violation's ``action_reason``)."""
        violation, findings, trace = self._violation(
            record, event_id, subject_id, occurred_at, Verdict.DROPPED, judged, values
        )
        if because is not None:
            violation["action_reason"] = because
        return Outcome(
            OutcomeKind.DROPPED,
            record,
            None,
            None,
            violation,
            findings,
            subject_id,
            occurred_at,
            None,
            None,
            trace,
        )

    def redacted(
        self,
        record: InputRecord,
        value: bytes,
        event_id: str,
        subject_id: str,
        occurred_at: str,
        judged: list[Judgement],
        values: list[str],
        forwarded: tuple[ForwardedIdentifier, ...] | None = None,
    ) -> Outcome:
        """A record forwarded as ``value``, the input without the identifiers a rule
        stopped (as :meth:`dropped` for ``judged`` and ``values``; ``forwarded``: the
        kept identifiers, with exposure)."""
        found = self._violation(
            record, event_id, subject_id, occurred_at, Verdict.REDACTED, judged, values
        )
        ids = (event_id, subject_id, occurred_at)
        return self._forward(record, OutcomeKind.REDACTED, value, ids, found, forwarded)

    @staticmethod
    def redacted_json(value: bytes, document: dict[str, Any], kept: list[Any]) -> bytes | None:
        """``document`` (parsed from ``value`` by orjson, and changed here: the caller
        owns it and needs it no more) with only the ``kept`` identifiers (items of its
        ``identifiers``), or ``None`` when its ``identifiers`` is no list."""
        if numbers_may_change(value):
            # orjson read a number as a double that may not read back as written: the
            # value is read again with each number kept as its text came.
            items = document.get("identifiers")
            if type(items) is not list:
                return None
            keep = {id(item) for item in kept}
            removed = {index for index, item in enumerate(items) if id(item) not in keep}
            return _without_identifiers(value, removed)
        document["identifiers"] = kept  # the key keeps its place
        return orjson.dumps(document)

    def _forward(
        self,
        record: InputRecord,
        kind: OutcomeKind,
        value: bytes | None,
        ids: tuple[str, str, str],
        found: _Found,
        forwarded: tuple[ForwardedIdentifier, ...] | None = None,
    ) -> Outcome:
        headers = self._own_headers(record, kind) if record.headers else self._bare_headers[kind]
        violation, findings, trace = found
        return Outcome(
            kind,
            record,
            value,
            headers,
            violation,
            findings,
            ids[1],
            ids[2],
            None,
            None,
            trace,
            forwarded,
        )

    def _own_headers(self, record: InputRecord, kind: OutcomeKind) -> Headers:
        own: Headers = ((HEADER_ACTION, _ACTION_BYTES[kind]), (HEADER_POLICY, self._policy_header))
        if record.headers:
            # Headers claiming to be the enforcer's are replaced, never trusted.
            own = foreign_headers(record.headers) + own
        return own

    def _violation(
        self,
        record: InputRecord,
        event_id: str,
        subject_id: str,
        occurred_at: str,
        verdict: Verdict,
        judged: list[Judgement],
        values: list[str],
    ) -> _Found:
        """The violation event, what metrics may know of its findings, and the headers
        of the violation's record."""
        findings = []
        summaries = []
        fingerprint = self.fingerprinter
        for index, j in enumerate(judged):
            rule = j.rule_name
            if rule is None:
                continue
            finding: dict[str, Any] = {
                "rule": rule,
                "identifier_index": index,
                "identifier_type": j.type,
                "purposes": list(j.purposes),
                # Made once per identifier: the ledger lookup's is remembered.
                "fingerprint": fingerprint(j.type, values[index]),
            }
            if j.claimed is not None:
                # Judged under a ledger setting: what the event claimed, beside what
                # the identifier was judged by (the ledger's purposes when it knows it).
                finding["claimed_purposes"] = list(j.claimed)
                finding["ledger"] = "known" if j.from_ledger else "unknown"
            findings.append(finding)
            summaries.append(FindingSummary(rule, j.type))
        violation: dict[str, Any] = {
            "violation_id": violation_id(record.source),
            "detected_at": self._detected_at(),
            "mode": self._mode,
            "action": "dropped" if verdict is Verdict.DROPPED else "redacted",
            "policy_version": self.policy.version,
            "key_id": self.key_id,
            "source": record.source.as_dict(),
            "event_id": event_id,
            "subject_id": subject_id,
            "occurred_at": occurred_at,
            "findings": findings,
        }
        trace = traceparent(record.headers) if record.headers else None
        if trace is not None:
            violation["traceparent"] = trace
        if self.policy.security_override is not None:
            # Readers must be able to tell these apart from violations under a policy
            # that keeps security-only identifiers out (docs/policy.md).
            violation["security_override"] = True
        return violation, tuple(summaries), _trace_headers(trace)


def _unknown_to_the_ledger(_index: int, _kind: str) -> tuple[str, ...] | None:
    """The ledger's answer for every identifier of a subject it does not know."""
    return None


def dead_letter(record: InputRecord, reason: DeadLetterReason, message: str) -> Outcome:
    """The dead-letter outcome of ``record`` (``message`` names no record data)."""
    return Outcome(OutcomeKind.DEADLETTERED, record, error_reason=reason, error_message=message)


def _trace_headers(trace: str | None) -> Headers:
    """The violation record's own headers: the trace context, when there is one."""
    return () if trace is None else ((HEADER_TRACEPARENT, trace.encode()),)


def _without_identifiers(
    value: bytes, removed: set[int], parsed: dict[str, Any] | None = None
) -> bytes:
    """The same JSON object minus the identifiers at ``removed``; all else kept.

    ``parsed`` is the object as orjson already read it, if it did.
    """
    try:
        document = parsed if parsed is not None else orjson.loads(value)
    except orjson.JSONDecodeError:
        pass  # a number orjson refuses (1e400): the exact parser below keeps it
    else:
        if not numbers_may_change(value):
            try:
                # A new dict: the key keeps its place, the parsed object is not changed.
                return orjson.dumps(
                    {**document, "identifiers": _kept(document["identifiers"], removed)}
                )
            except orjson.JSONEncodeError:
                pass  # nesting deeper than orjson writes: see below
    # orjson reads integers beyond 64 bits as floats, any parser reads a number past 17
    # digits as another double, and orjson refuses a number beyond a float's range: the
    # exact parser keeps every number as its text came.
    return _exactly_without_identifiers(value, removed)


def _exactly_without_identifiers(value: bytes, removed: set[int]) -> bytes:
    """:func:`_without_identifiers` by the standard library, every number written as
    the record wrote it."""
    document = loads_keeping_numbers(value)
    document["identifiers"] = _kept(document["identifiers"], removed)
    return dumps_keeping_numbers(document)


def _kept(identifiers: list[Any], removed: set[int]) -> list[Any]:
    return [item for index, item in enumerate(identifiers) if index not in removed]
