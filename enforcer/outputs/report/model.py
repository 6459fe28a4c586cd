"""The impact report (``report.json``): what a replay found, for an incident write-up."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from enforcer.core.models import Mode

_OUT = ConfigDict(extra="forbid", frozen=True)


class RecordCounts(BaseModel):
    """Every input record ends as exactly one of these; ``in`` is their sum."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True
    )

    in_: int = Field(default=0, alias="in")
    passed: int = 0
    redacted: int = 0
    dropped: int = 0
    deadlettered: int = 0


class DaySummary(BaseModel):
    """One UTC day of ``occurred_at``."""

    model_config = _OUT

    day: str
    records: int
    findings: int
    affected_subjects: int


class OffsetRange(BaseModel):
    """The offsets ``[start, end)`` replayed from one partition of a topic."""

    model_config = _OUT

    partition: int
    start: int
    end: int


class ReplaySource(BaseModel):
    """What was replayed: a file, or a topic with the range asked for and resolved."""

    model_config = _OUT

    kind: str
    name: str
    start: str | None = None
    """``--start`` as given (``earliest``, an offset or a time)."""
    end: str | None = None
    """``--end`` as given (``latest``, an offset or a time)."""
    offsets: list[OffsetRange] = Field(default_factory=list)
    """For a topic: the offsets each partition's range resolved to."""
    sha256: str | None = None
    """For a file: the hex SHA-256 of the bytes read. For a topic: ``None``; the
    partitions' offset ranges identify what was read (records interleave across
    partitions in no fixed order, so no byte stream has a reproducible hash)."""


class RuleSummary(BaseModel):
    """One rule of the policy and what it matched (rules with no findings included)."""

    model_config = _OUT

    rule: str
    description: str
    action: str
    """``redact`` or ``drop`` (in audit mode, what enforce mode would do)."""
    findings: int
    affected_subjects: int
    affected_subjects_by_type: dict[str, int]
    first_seen: str | None
    last_seen: str | None


class TypeSummary(BaseModel):
    """One identifier type that a rule matched."""

    model_config = _OUT

    identifier_type: str
    findings: int
    affected_subjects: int
    first_seen: str | None
    last_seen: str | None


class LedgerStateSize(BaseModel):
    """The size of the ledger state the records were judged against."""

    model_config = _OUT

    subjects: int
    identifiers: int


class LedgerRecords(BaseModel):
    """What became of the ledger's lines (a file) or records (a topic)."""

    model_config = _OUT

    applied: int
    """Values and tombstones applied, each replacing or erasing one subject's state."""
    erased: int
    """Of ``applied``, the tombstones (a topic only)."""
    invalid: int
    """Invalid lines or records: they granted nothing (a topic's record under a
    subject's key left that subject no purpose)."""
    after_as_of: int
    """Valid ones skipped because they are later than ``as_of``."""


class LedgerJudged(BaseModel):
    """Identifiers of judged records, by whether the ledger knew them (same subject,
    type and normalized value). Counted once per record an identifier appears in."""

    model_config = _OUT

    known: int = 0
    unknown: int = 0


class NotGrantedDay(BaseModel):
    """One UTC day of ``occurred_at`` with ``purpose-not-granted`` findings."""

    model_config = _OUT

    day: str
    findings: int
    affected_subjects: int


class NotGranted(BaseModel):
    """``purpose-not-granted`` findings: an event claimed, for an identifier the ledger
    knows, a purpose the ledger does not grant (the 2019 question: whose 2FA-only
    identifier was claimed for advertising, and when)."""

    model_config = _OUT

    findings: int = 0
    affected_subjects: int = 0
    first_seen: str | None = None
    """Earliest ``occurred_at`` of a record with such a finding."""
    last_seen: str | None = None
    by_day: list[NotGrantedDay] = Field(default_factory=list)
    """Only the days with such findings, in order (the report's ``by_day`` counts all)."""


class LedgerSummary(BaseModel):
    """The purpose ledger the records were judged against (only when one was used)."""

    model_config = _OUT

    source: ReplaySource
    """``file`` (with its SHA-256) or ``topic`` (with the offsets read)."""
    as_of: str | None
    """``--ledger-as-of`` as given, or ``None``: the ledger as of its end."""
    mode: str
    """The ledger setting in effect: ``authoritative`` or ``fallback``."""
    state: LedgerStateSize
    records: LedgerRecords
    identifiers_judged: LedgerJudged = Field(default_factory=LedgerJudged)
    purpose_not_granted: NotGranted = Field(default_factory=NotGranted)


class Report(BaseModel):
    """``report.json``: counts, who was affected, by which rule and type, and when."""

    model_config = _OUT

    policy_version: str
    policy_origin: str
    mode: Mode
    destination: str
    key_id: str
    """Public id of the fingerprint key of ``violations.jsonl`` (compare fingerprints only
    across reports with the same key id)."""
    source: ReplaySource
    generated_at: str
    summary: str
    """One sentence: what the policy would have done with these records. A replay changes
    nothing; every count below is what would have happened."""
    records: RecordCounts
    violations: int
    """Records with at least one finding (one violation event each)."""
    violations_by_rule: dict[str, int]
    """Findings per rule."""
    identifiers_redacted_by_type: dict[str, int]
    """Findings per identifier type."""
    affected_subjects: int
    affected_subjects_by_rule: dict[str, int]
    affected_subjects_by_type: dict[str, int]
    deadletters_by_reason: dict[str, int]
    first_seen: str | None
    """Earliest ``occurred_at`` of a record with a finding."""
    last_seen: str | None
    """Latest ``occurred_at`` of a record with a finding."""
    by_day: list[DaySummary]
    """Every UTC day with at least one judged record, in order."""
    rules: list[RuleSummary] = Field(default_factory=list)
    """Per rule, in policy order: findings, accounts (also per type), first and last seen."""
    identifier_types: list[TypeSummary] = Field(default_factory=list)
    """Per identifier type with findings: accounts, first and last seen."""
    ledger: LedgerSummary | None = None
    """The purpose ledger used, and what it changed; left out of ``report.json`` when
    the replay used none."""

    @model_serializer(mode="wrap")
    def _without_absent_ledger(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.ledger is None:
            data.pop("ledger", None)
        return data
