"""The remediation plan: what a history still exposes that a policy would not have
forwarded, as a file (docs/remediate.md, "The plan file").

A plan holds fingerprints only, never a raw value. Its ``plan_id`` is the SHA-256 of
its own content (every field but the id, as canonical JSON: keys sorted, no spaces), so
the same history judged by the same policy, ledger and key gives the same id, and a
plan changed by accident no longer matches its id and is refused. The id has no key:
a plan edited on purpose, its id computed again, matches; so a plan read back is also
held to what ``remediate plan`` can write (:mod:`enforcer.remediate.plan_checks`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from enforcer.exposure.model import ExposureEntry
from enforcer.exposure.retract import ExposureRetraction
from enforcer.ledger.store import RetractionReason
from enforcer.remediate.plan_checks import check_plan

FORMAT = 1
"""The version of the plan file this code writes and reads."""
PLAN_ID_PREFIX = "sha256:"


class PlanError(ValueError):
    """A plan file that cannot be used (the message says why in one line, never a value
    from it)."""


class PlannedRetraction(NamedTuple):
    """One identifier to retract: still exposed, and not allowed under the plan's policy."""

    subject_id: str
    identifier_type: str
    fingerprint: str
    key_id: str
    rule: str
    """The finding the policy names for it (docs/contract.md: violation findings)."""

    @property
    def identity(self) -> tuple[str, str, str]:
        """(subject id, identifier type, fingerprint), as a retraction record names it."""
        return (self.subject_id, self.identifier_type, self.fingerprint)


class PlannedExposure(NamedTuple):
    """One identifier the history still exposes and the plan's policy allows: an exposure
    entry (docs/exposure.md) for a deployment that predates exposure, the sink topic
    being the plan's."""

    subject_id: str
    identifier_type: str
    fingerprint: str
    key_id: str
    purposes: tuple[str, ...]
    """What it is judged by now (the ledger's purposes when the ledger knows it), sorted."""
    by_ledger: bool
    policy_version: str
    """The version its last forward was made under (that record's ``enforcer.policy``)."""
    first_forwarded_at: str
    last_forwarded_at: str

    def entry(self, sink_topic: str) -> ExposureEntry:
        """The exposure entry it seeds."""
        return ExposureEntry(sink_topic, *self[1:])


class PartitionSpan(NamedTuple):
    """The offsets ``[start, end)`` of one sink partition the plan read."""

    partition: int
    start: int
    end: int


@dataclass(frozen=True)
class HistoryCounts:
    """What the plan read: sink records by kind."""

    records: int = 0
    forwarded: int = 0
    retractions: int = 0
    other: int = 0
    """Records without the enforcer's ``enforcer.action`` header: not the enforcer's."""
    unreadable: int = 0
    """Forwarded records the decision could not read (audit mode forwards what enforce
    mode dead-letters): their identifiers are unknown, so none can be judged."""


@dataclass(frozen=True)
class Plan:
    """A remediation plan (docs/remediate.md)."""

    sink_topic: str
    policy_version: str
    key_id: str
    ledger: str
    """The ledger setting the policy was judged with: ``off``, ``fallback`` or
    ``authoritative``."""
    since: str | None
    until: str | None
    offsets: tuple[PartitionSpan, ...]
    history: HistoryCounts
    exposed: int
    """Identifiers the history still exposes at its end (forwarded, not retracted since)."""
    by_rule: Mapping[str, int]
    by_type: Mapping[str, int]
    by_day: Mapping[str, int]
    """Retractions by the UTC day their identifier was last forwarded."""
    affected_subjects: int
    retractions: tuple[PlannedRetraction, ...]
    exposure: tuple[PlannedExposure, ...] | None = None
    """With ``plan --with-exposure``: every identifier still exposed and allowed, to seed
    exposure from (``apply --exposure-topic``); else ``None``."""
    plan_id: str = field(default="", compare=False)

    def with_id(self) -> Plan:
        """The same plan with its ``plan_id`` computed from its content."""
        return Plan(**{**self.__dict__, "plan_id": plan_id_of(content_of(self))})

    def exposure_retractions(self) -> list[ExposureRetraction]:
        """The retraction records to write: reason ``remediated``, with the plan's id
        and the policy version it judged by, each to the plan's sink topic."""
        return [
            ExposureRetraction(
                self.sink_topic,
                r.subject_id,
                r.identifier_type,
                r.fingerprint,
                r.key_id,
                RetractionReason.REMEDIATED,
                policy_version=self.policy_version,
                plan_id=self.plan_id,
            )
            for r in self.retractions
        ]


def content_of(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data, without its id."""
    h = plan.history
    return {
        "format": FORMAT,
        "sink_topic": plan.sink_topic,
        "policy_version": plan.policy_version,
        "key_id": plan.key_id,
        "ledger": plan.ledger,
        "since": plan.since,
        "until": plan.until,
        "offsets": [
            {"partition": s.partition, "start": s.start, "end": s.end} for s in plan.offsets
        ],
        "history": {
            "records": h.records,
            "forwarded": h.forwarded,
            "retractions": h.retractions,
            "other": h.other,
            "unreadable": h.unreadable,
        },
        "exposed": plan.exposed,
        "counts": {
            "by_rule": dict(sorted(plan.by_rule.items())),
            "by_type": dict(sorted(plan.by_type.items())),
            "by_day": dict(sorted(plan.by_day.items())),
        },
        "affected_subjects": plan.affected_subjects,
        # Written out rather than ``_asdict()``: a plan may list a million retractions.
        "retractions": [
            {
                "subject_id": subject_id,
                "identifier_type": identifier_type,
                "fingerprint": fingerprint,
                "key_id": key_id,
                "rule": rule,
            }
            for subject_id, identifier_type, fingerprint, key_id, rule in plan.retractions
        ],
        "exposure": None
        if plan.exposure is None
        else [{**e._asdict(), "purposes": list(e.purposes)} for e in plan.exposure],
    }


def plan_id_of(content: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the content as canonical JSON."""
    canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return PLAN_ID_PREFIX + hashlib.sha256(canonical).hexdigest()


def plan_bytes(plan: Plan) -> bytes:
    """The plan file: its id first, then its content, indented for reading."""
    document = {"plan_id": plan.plan_id or plan_id_of(content_of(plan)), **content_of(plan)}
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def write_plan(path: Path, plan: Plan) -> None:
    """Write the plan file (raises ``OSError``)."""
    path.write_bytes(plan_bytes(plan))


def read_plan(path: Path) -> Plan:
    """Read a plan file; :class:`PlanError` for one that cannot be used."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PlanError(f"{path}: {exc.strerror or 'cannot be read'}") from None
    return parse_plan(data, str(path))


def parse_plan(data: bytes, origin: str = "plan") -> Plan:
    """The plan ``data`` holds, checked field by field, against its id, then against
    what a plan can hold (:func:`~enforcer.remediate.plan_checks.check_plan`)."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise PlanError(f"{origin}: not a JSON plan file") from None
    if type(document) is not dict:
        raise PlanError(f"{origin}: not a JSON object")
    try:
        plan = _plan(document)
    except KeyError as exc:
        # Raised for the reader's own field names only (an entry's keys are checked
        # against them first), never for a key taken from the file.
        raise PlanError(f"{origin}: missing field {exc.args[0]}") from None
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{origin}: {exc}") from None
    if plan.plan_id != plan_id_of(content_of(plan)):
        raise PlanError(f"{origin}: plan_id does not match the plan's content (edited?)")
    try:
        check_plan(plan)
    except ValueError as exc:
        raise PlanError(f"{origin}: {exc}") from None
    return plan


_TOP = frozenset(
    {
        "plan_id",
        "format",
        "sink_topic",
        "policy_version",
        "key_id",
        "ledger",
        "since",
        "until",
        "offsets",
        "history",
        "exposed",
        "counts",
        "affected_subjects",
        "retractions",
        "exposure",
    }
)


def _plan(d: dict[str, Any]) -> Plan:
    if set(d) != _TOP:
        missing = sorted(_TOP - set(d))
        raise ValueError(f"missing field {missing[0]}" if missing else "an unknown field")
    if d["format"] != FORMAT:
        raise ValueError(f"format: this version reads plan format {FORMAT} only")
    history = _object(d, "history")
    counts = _object(d, "counts")
    return Plan(
        sink_topic=_text(d, "sink_topic"),
        policy_version=_text(d, "policy_version"),
        key_id=_text(d, "key_id"),
        ledger=_text(d, "ledger"),
        since=_optional_text(d, "since"),
        until=_optional_text(d, "until"),
        offsets=tuple(
            PartitionSpan(_count(s, "partition"), _count(s, "start"), _count(s, "end"))
            for s in _list(d, "offsets")
        ),
        history=HistoryCounts(
            **{name: _count(history, name) for name in HistoryCounts.__dataclass_fields__}
        ),
        exposed=_count(d, "exposed"),
        by_rule=_counts(counts, "by_rule"),
        by_type=_counts(counts, "by_type"),
        by_day=_counts(counts, "by_day"),
        affected_subjects=_count(d, "affected_subjects"),
        retractions=tuple(_retraction(r) for r in _list(d, "retractions")),
        exposure=None
        if d["exposure"] is None
        else tuple(_exposure(e) for e in _list(d, "exposure")),
        plan_id=_text(d, "plan_id"),
    )


def _retraction(item: object) -> PlannedRetraction:
    if type(item) is not dict or set(item) != set(PlannedRetraction._fields):
        raise ValueError("retractions: an entry without exactly its fields")
    return PlannedRetraction(*(_text(item, name) for name in PlannedRetraction._fields))


def _exposure(item: object) -> PlannedExposure:
    if type(item) is not dict or set(item) != set(PlannedExposure._fields):
        raise ValueError("exposure: an entry without exactly its fields")
    purposes = item["purposes"]
    if type(purposes) is not list or not all(type(p) is str for p in purposes):
        raise ValueError("exposure: purposes not a list of strings")
    if type(item["by_ledger"]) is not bool:
        raise ValueError("exposure: by_ledger not true or false")
    texts = [_text(item, name) for name in PlannedExposure._fields if name not in _NOT_TEXT]
    subject, kind, fingerprint, key_id, version, first, last = texts
    return PlannedExposure(
        subject, kind, fingerprint, key_id, tuple(purposes), item["by_ledger"], version, first, last
    )


_NOT_TEXT = frozenset({"purposes", "by_ledger"})


def _object(d: dict[str, Any], name: str) -> dict[str, Any]:
    value = d[name]
    if type(value) is not dict:
        raise ValueError(f"{name}: not an object")
    return value


def _list(d: dict[str, Any], name: str) -> list[Any]:
    value = d[name]
    if type(value) is not list:
        raise ValueError(f"{name}: not a list")
    return value


def _text(d: Mapping[str, Any], name: str) -> str:
    value = d[name]
    if type(value) is not str or not value:
        raise ValueError(f"{name}: not a non-empty string")
    return value


def _optional_text(d: Mapping[str, Any], name: str) -> str | None:
    return None if d[name] is None else _text(d, name)


def _count(d: object, name: str) -> int:
    if type(d) is not dict:
        raise ValueError(f"{name}: not in an object")
    value = d[name]
    if type(value) is not int or value < 0:
        raise ValueError(f"{name}: not a count")
    return value


def _counts(d: dict[str, Any], name: str) -> dict[str, int]:
    # Named by the table, never by the key: an edited plan's key may be a raw value.
    table = _object(d, name)
    for value in table.values():
        if type(value) is not int or value < 0:
            raise ValueError(f"counts.{name}: a value that is not a count")
    return dict(table)
