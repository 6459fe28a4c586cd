"""Metrics (docs/contract.md: metrics): the metric names, the snapshot model, a batch's
counts and their observer.

Every metric is listed once in :data:`METRICS` with its description; the periodic
snapshot on the metrics topic and the Prometheus endpoint both read the same
:class:`MetricsRecorder`, so they cannot disagree. Nothing here ever sees an
identifier's value: the recorder reads outcome kinds, rule names, identifier types
and source coordinates only.

Every label value comes from a bounded set: outcomes, reasons and results are enums,
rule names come from the policy, topics and partitions from the assignment. The one
label fed from event data, ``identifier_type``, is bounded here: a type outside the
configured set (:func:`metric_identifier_types`) is counted as ``other``, so a producer
inventing types cannot make unbounded series. Violations and reports keep the real type.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from enforcer.core.clock import Clock, rfc3339
from enforcer.core.models import Mode
from enforcer.core.policy.compiled import Policy
from enforcer.core.step import FindingSummary, Outcome, OutcomeKind
from enforcer.outputs.report.model import RecordCounts

_OUT = ConfigDict(extra="forbid", frozen=True)


class MetricDef(NamedTuple):
    """One exposed metric: Prometheus name, type, labels and what it means."""

    name: str
    kind: str
    labels: tuple[str, ...]
    description: str


RECORDS_IN = MetricDef(
    "enforcer_records_in_total", "counter", (), "Input records decided by this instance."
)
RECORDS = MetricDef(
    "enforcer_records_total",
    "counter",
    ("outcome",),
    "Input records by outcome: passed, redacted, dropped or deadlettered (they sum to in).",
)
VIOLATIONS = MetricDef(
    "enforcer_violations_total",
    "counter",
    (),
    "Records with at least one finding, i.e. violation events emitted.",
)
VIOLATIONS_BY_RULE = MetricDef(
    "enforcer_rule_violations_total",
    "counter",
    ("rule",),
    "Findings (identifiers a rule matched) per rule; report.json's violations_by_rule. "
    "The default's rules: security-only-purpose, missing-purpose, purpose-not-allowed; "
    "with a purpose ledger also purpose-not-granted.",
)
IDENTIFIERS_REDACTED = MetricDef(
    "enforcer_identifiers_redacted_total",
    "counter",
    ("identifier_type",),
    "Findings per identifier type; in audit mode, what enforce mode would have redacted. "
    "Types outside ENFORCER_METRIC_IDENTIFIER_TYPES and the policy's rules count as other.",
)
LATENCY = MetricDef(
    "enforcer_processing_latency_seconds",
    "histogram",
    (),
    "Per record: from the start of its batch until its outputs were delivered and it was "
    "acknowledged.",
)
CONSUMER_LAG = MetricDef(
    "enforcer_consumer_lag",
    "gauge",
    ("topic", "partition"),
    "Records (offsets) on an assigned source partition not yet processed by this instance.",
)
INFO = MetricDef(
    "enforcer_info",
    "gauge",
    ("instance_id", "policy_version", "mode"),
    "Always 1; its labels say which instance runs which policy in which mode.",
)
BUILD_INFO = MetricDef(
    "enforcer_build_info",
    "gauge",
    ("version", "python", "core"),
    "Always 1; its labels say which version of the enforcer runs, on which Python, and "
    'whether its decision core is compiled (core="compiled") or plain Python '
    '(core="plain": the same decisions at a third more CPU or more).',
)
POLICY_SECURITY_OVERRIDE = MetricDef(
    "enforcer_policy_security_override",
    "gauge",
    (),
    "1 when the policy lets identifiers whose purposes all lie within security namespaces "
    "reach the destination, as its security_override states; else 0.",
)
DEADLETTERS = MetricDef(
    "enforcer_deadletters_total",
    "counter",
    ("reason",),
    "Dead letters by reason (invalid-json, not-an-object, schema, internal-error); in audit "
    "mode, records enforce mode would have dead-lettered (they were forwarded unchanged).",
)
GUARD_TRIPS = MetricDef(
    "enforcer_deadletter_guard_trips_total",
    "counter",
    (),
    "Times the dead-letter guard tripped: in enforce mode the worker then stops; in audit "
    "mode it would have, and goes on (counted each time the share rises over the limit).",
)
TRANSACTIONS = MetricDef(
    "enforcer_transactions_total",
    "counter",
    ("result",),
    "Commits (result committed) and aborted transactions (result aborted: their records "
    "are decided again) of this instance.",
)
REBALANCES = MetricDef(
    "enforcer_rebalances_total",
    "counter",
    (),
    "Partition assignments this instance received (eager: one per rebalance it joined).",
)
ASSIGNED_PARTITIONS = MetricDef(
    "enforcer_assigned_partitions",
    "gauge",
    (),
    "Source partitions assigned to this instance now (0: a standby).",
)
SCHEMA_REGISTRY_UP = MetricDef(
    "enforcer_schema_registry_up",
    "gauge",
    (),
    "0 while the schema registry cannot be reached and records wait for it (nothing is "
    "decided or dead-lettered for them); else 1, also without a registry.",
)
LEDGER_IDENTIFIERS = MetricDef(
    "enforcer_ledger_identifiers",
    "gauge",
    (),
    "Identifiers in this instance's materialized purpose ledger (its ledger partitions).",
)
LEDGER_SUBJECTS = MetricDef(
    "enforcer_ledger_subjects",
    "gauge",
    (),
    "Subjects with at least one identifier in this instance's materialized ledger.",
)
LEDGER_RESTORING = MetricDef(
    "enforcer_ledger_restoring_partitions",
    "gauge",
    (),
    "Ledger partitions being restored now; their source partitions wait until it is done.",
)
LEDGER_RESTORED = MetricDef(
    "enforcer_ledger_restored_records_total",
    "counter",
    (),
    "Ledger records applied by restores (silently: no retraction, no dead letter).",
)
LEDGER_RESTORE_SECONDS = MetricDef(
    "enforcer_ledger_restore_seconds_total",
    "counter",
    (),
    "Seconds spent restoring ledger partitions (per partition, summed).",
)
LEDGER_LAST_RESTORE = MetricDef(
    "enforcer_ledger_last_restore_seconds",
    "gauge",
    (),
    "How long the last finished restore of a ledger partition took.",
)
LEDGER_RECORDS = MetricDef(
    "enforcer_ledger_records_total",
    "counter",
    ("outcome",),
    "Ledger records read beyond the restore and committed: applied, or deadlettered "
    "(invalid: they grant nothing, and one whose key names a subject leaves it no purpose).",
)
RETRACTIONS = MetricDef(
    "enforcer_retractions_total",
    "counter",
    ("reason",),
    "Retractions written to the sink (audit mode: that would have been), by reason: "
    "purpose-withdrawn, subject-erased, policy-changed or remediated.",
)
EXPOSURE_IDENTIFIERS = MetricDef(
    "enforcer_exposure_identifiers",
    "gauge",
    (),
    "Identifiers exposed (forwarded and not retracted) in this instance's exposure partitions.",
)
EXPOSURE_SUBJECTS = MetricDef(
    "enforcer_exposure_subjects",
    "gauge",
    (),
    "Subjects with at least one exposed identifier in this instance's exposure partitions.",
)
EXPOSURE_RESTORING = MetricDef(
    "enforcer_exposure_restoring_partitions",
    "gauge",
    (),
    "Exposure partitions being restored now; their source partitions wait until it is done.",
)
EXPOSURE_WRITES = MetricDef(
    "enforcer_exposure_writes_total",
    "counter",
    (),
    "Exposure records written (a subject's value changed), committed.",
)
EXPOSURE_MALFORMED = MetricDef(
    "enforcer_exposure_malformed_total",
    "counter",
    (),
    "Exposure records refused at a restore (their subjects' exposure forgotten).",
)
GC_COLLECTIONS = MetricDef(
    "enforcer_gc_collections_total",
    "counter",
    ("generation",),
    "Collections by Python's cyclic garbage collector since the worker started, by "
    "generation (0 the youngest, 2 a full collection).",
)
GC_PAUSE = MetricDef(
    "enforcer_gc_pause_seconds_total",
    "counter",
    (),
    "Seconds spent in cyclic garbage collections since the worker started (the process "
    "does nothing else meanwhile).",
)
POLICY_RELOADS = MetricDef(
    "enforcer_policy_reloads_total",
    "counter",
    (),
    "Policy changes applied without a restart: the policy file's content changed, "
    "loaded and passed the same checks as at start (enforcer_info then names the new "
    "policy_version).",
)
POLICY_RELOAD_FAILURES = MetricDef(
    "enforcer_policy_reload_failures_total",
    "counter",
    (),
    "Changed policy file contents refused (invalid, refused by the security guardrail, "
    "unreadable, or a change only a restart can apply), once each time the content "
    "changes; the last good policy stays in force.",
)
POLICY_FILE_REFUSED = MetricDef(
    "enforcer_policy_file_refused",
    "gauge",
    (),
    "1 while the policy file's current content is refused and an older policy stays in "
    "force (the file and the running policy differ); 0 once the file is fixed or put back.",
)
GC_METRICS = (GC_COLLECTIONS, GC_PAUSE)
POLICY_RELOAD_METRICS = (POLICY_RELOADS, POLICY_RELOAD_FAILURES, POLICY_FILE_REFUSED)
LEDGER_METRICS = (
    LEDGER_IDENTIFIERS,
    LEDGER_SUBJECTS,
    LEDGER_RESTORING,
    LEDGER_RESTORED,
    LEDGER_RESTORE_SECONDS,
    LEDGER_LAST_RESTORE,
    LEDGER_RECORDS,
    RETRACTIONS,
    EXPOSURE_IDENTIFIERS,
    EXPOSURE_SUBJECTS,
    EXPOSURE_RESTORING,
    EXPOSURE_WRITES,
    EXPOSURE_MALFORMED,
)
METRICS: tuple[MetricDef, ...] = (
    RECORDS_IN,
    RECORDS,
    VIOLATIONS,
    VIOLATIONS_BY_RULE,
    IDENTIFIERS_REDACTED,
    DEADLETTERS,
    LATENCY,
    CONSUMER_LAG,
    INFO,
    BUILD_INFO,
    POLICY_SECURITY_OVERRIDE,
    GUARD_TRIPS,
    TRANSACTIONS,
    REBALANCES,
    ASSIGNED_PARTITIONS,
    SCHEMA_REGISTRY_UP,
    *POLICY_RELOAD_METRICS,
    *GC_METRICS,
    *LEDGER_METRICS,
)
"""Every metric a worker exposes, each once (besides prometheus_client's ``process_*``
and ``python_*`` metrics of the process itself)."""

GROUP_LAG = MetricDef(
    "enforcer_group_lag",
    "gauge",
    ("group", "topic", "partition"),
    "From the broker: the partition's end (last stable offset) minus the group's committed "
    "offset (or the partition's start when it has none); reported with every worker down.",
)
GROUP_END_OFFSET = MetricDef(
    "enforcer_group_end_offset",
    "gauge",
    ("group", "topic", "partition"),
    "From the broker: the partition's end offset (last stable offset).",
)
GROUP_COMMITTED_OFFSET = MetricDef(
    "enforcer_group_committed_offset",
    "gauge",
    ("group", "topic", "partition"),
    "From the broker: the group's committed offset (absent when it has none).",
)
GROUP_LAG_UP = MetricDef(
    "enforcer_group_lag_up",
    "gauge",
    ("group", "topic"),
    "1 when the last scrape read the offsets from the broker, 0 when it could not.",
)
LAG_EXPORTER_METRICS: tuple[MetricDef, ...] = (
    GROUP_LAG,
    GROUP_END_OFFSET,
    GROUP_COMMITTED_OFFSET,
    GROUP_LAG_UP,
)
"""What ``enforcer lag-exporter`` exposes: lag as the broker sees it, workers or not."""

LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Upper bounds (seconds) of the latency histogram's buckets; ``+Inf`` is implied."""


OTHER_IDENTIFIER_TYPE = "other"
"""The ``identifier_type`` label value of every type outside the configured set."""

DEFAULT_METRIC_IDENTIFIER_TYPES: tuple[str, ...] = (
    "email", "phone", "device_id", "advertising_id", "ip_address", "cookie_id", "user_id",
)  # fmt: skip
"""Identifier types counted under their own name by default (``ENFORCER_METRIC_IDENTIFIER_TYPES``);
the types the policy's rules name are added to them."""


def metric_identifier_types(configured: Iterable[str], policy: Policy) -> frozenset[str]:
    """The identifier types metrics count by name: ``configured`` plus every type a rule of
    ``policy`` is limited to (lower-cased, as the decision compares them)."""
    named = {kind for rule in policy.rules if rule.types is not None for kind in rule.types}
    return frozenset(kind.strip().lower() for kind in (*configured, *named) if kind.strip())


class LatencySummary(BaseModel):
    """Processing latency over one snapshot interval; ``None`` when nothing was processed."""

    model_config = _OUT

    records: int
    p50_seconds: float | None
    p99_seconds: float | None
    max_seconds: float | None


class PartitionLag(BaseModel):
    """Consumer lag of one assigned source partition."""

    model_config = _OUT

    topic: str
    partition: int
    end_offset: int
    """The partition's end (the last stable offset under ``read_committed``)."""
    next_offset: int
    """The next offset this instance will process."""
    lag: int


@dataclass
class LedgerStats:
    """What the ledger side of a worker did (docs/ledger.md). Counts are of committed work."""

    restoring: int = 0
    """Ledger partitions being restored now (their source partitions wait)."""
    restored_records: int = 0
    """Ledger records applied silently by restores, cumulative."""
    restores: int = 0
    """Partition restores finished."""
    restore_seconds: float = 0.0
    """Seconds spent restoring, cumulative."""
    last_restore_seconds: float = 0.0
    records: Counter[str] = field(default_factory=Counter)
    """Ledger records read beyond the restore: ``applied`` or ``deadlettered``."""
    retractions: Counter[str] = field(default_factory=Counter)
    """Retractions written (in audit mode: that would have been), by reason."""
    identifiers: int = 0
    subjects: int = 0


@dataclass
class ExposureStats:
    """What the exposure side of a worker did (docs/exposure.md). Counts are of
    committed work."""

    identifiers: int = 0
    subjects: int = 0
    restoring: int = 0
    """Exposure partitions being restored now (their source partitions wait)."""
    restores: int = 0
    restored_records: int = 0
    malformed: int = 0
    """Exposure records the reader refused at a restore (their subjects forgotten)."""
    writes: int = 0
    """Exposure records written."""
    unrecorded: int = 0
    """Forwarded records whose subject's exposure would not fit the exposure topic
    (enforce mode dead-letters them; audit mode forwards them unrecorded)."""
    retractions: Counter[str] = field(default_factory=Counter)
    """Retractions written from exposure (audit mode: that would have been), by reason."""


@dataclass
class PolicyReloadStats:
    """Changes of the policy file a running worker applied or refused
    (:mod:`enforcer.live.policy_reload`)."""

    reloads: int = 0
    failures: int = 0
    refused_now: bool = False
    """The file's current content is refused (the last good policy runs instead)."""


GC_GENERATIONS = 3


@dataclass
class GcStats:
    """The cyclic garbage collector's work in this process since the worker started
    (written by :class:`enforcer.live.garbage.CollectionTimer`)."""

    collections: list[int] = field(default_factory=lambda: [0] * GC_GENERATIONS)
    """Collections per generation (index 0: the youngest)."""
    pause_seconds: float = 0.0
    """Seconds spent collecting, summed."""


class GcSnapshot(BaseModel):
    """The garbage collector part of a metrics snapshot."""

    model_config = _OUT

    collections_by_generation: dict[str, int]
    pause_seconds: float

    @classmethod
    def of(cls, stats: GcStats) -> GcSnapshot:
        """The snapshot of ``stats`` now."""
        return cls(
            collections_by_generation={
                str(generation): n for generation, n in enumerate(stats.collections)
            },
            pause_seconds=round(stats.pause_seconds, 6),
        )


class LedgerSnapshot(BaseModel):
    """The ledger part of a metrics snapshot."""

    model_config = _OUT

    identifiers: int
    subjects: int
    restoring_partitions: int
    restored_records: int
    restores: int
    restore_seconds: float
    last_restore_seconds: float
    records_by_outcome: dict[str, int]
    retractions_by_reason: dict[str, int]

    @classmethod
    def of(cls, stats: LedgerStats) -> LedgerSnapshot:
        """The snapshot of ``stats`` now."""
        return cls(
            identifiers=stats.identifiers,
            subjects=stats.subjects,
            restoring_partitions=stats.restoring,
            restored_records=stats.restored_records,
            restores=stats.restores,
            restore_seconds=round(stats.restore_seconds, 3),
            last_restore_seconds=round(stats.last_restore_seconds, 3),
            records_by_outcome=dict(sorted(stats.records.items())),
            retractions_by_reason=dict(sorted(stats.retractions.items())),
        )


class ExposureSnapshot(BaseModel):
    """The exposure part of a metrics snapshot (docs/exposure.md)."""

    model_config = _OUT

    identifiers: int
    subjects: int
    restoring_partitions: int
    restores: int
    restored_records: int
    malformed_records: int
    writes: int
    unrecorded: int
    retractions_by_reason: dict[str, int]

    @classmethod
    def of(cls, stats: ExposureStats) -> ExposureSnapshot:
        """The snapshot of ``stats`` now."""
        return cls(
            identifiers=stats.identifiers,
            subjects=stats.subjects,
            restoring_partitions=stats.restoring,
            restores=stats.restores,
            restored_records=stats.restored_records,
            malformed_records=stats.malformed,
            writes=stats.writes,
            unrecorded=stats.unrecorded,
            retractions_by_reason=dict(sorted(stats.retractions.items())),
        )


class MetricsSnapshot(BaseModel):
    """One message on the metrics topic (docs/contract.md: metrics), keyed by ``instance_id``.

    Counts are cumulative since the instance started; latency covers the interval
    since the previous snapshot; lag is as of ``time``.
    """

    model_config = _OUT

    instance_id: str
    time: str
    policy_version: str
    mode: Mode
    interval_seconds: float
    records: RecordCounts
    violations: int
    identifiers_redacted_by_type: dict[str, int]
    violations_by_rule: dict[str, int]
    latency: LatencySummary
    consumer_lag: list[PartitionLag]
    deadletters_by_reason: dict[str, int]
    """Dead letters by reason; in audit mode, the would-be ones (forwarded instead)."""
    ledger: LedgerSnapshot | None = None
    """The purpose ledger's figures, when the worker reads one."""
    exposure: ExposureSnapshot | None = None
    """Exposure's figures, when the worker keeps exposure."""
    gc: GcSnapshot | None = None
    """The garbage collector's work, when the worker watches it (``enforcer run`` does)."""


class LatencyWindow:
    """Latencies of the records processed since the last :meth:`take`.

    A batch's latency applies to each of its records, so it is kept once with a
    weight: memory grows with the number of batches in an interval, not of records.
    """

    def __init__(self) -> None:
        self._samples: list[tuple[float, int]] = []

    def add(self, seconds: float, records: int) -> None:
        """``records`` records each took ``seconds``."""
        if records > 0:
            self._samples.append((seconds, records))

    def take(self) -> LatencySummary:
        """Summarize the window and start a new one."""
        samples, self._samples = sorted(self._samples), []
        total = sum(weight for _, weight in samples)
        if not total:
            return LatencySummary(records=0, p50_seconds=None, p99_seconds=None, max_seconds=None)
        return LatencySummary(
            records=total,
            p50_seconds=_quantile(samples, total, 0.50),
            p99_seconds=_quantile(samples, total, 0.99),
            max_seconds=samples[-1][0],
        )


def _quantile(samples: Sequence[tuple[float, int]], total: int, q: float) -> float:
    """Nearest-rank quantile of sorted weighted samples."""
    rank = max(1, math.ceil(q * total))
    seen = 0
    for seconds, weight in samples:
        seen += weight
        if seen >= rank:
            return seconds
    return samples[-1][0]


TopicPartition = tuple[str, int]


def consumer_lag(
    end_offsets: Mapping[TopicPartition, int], next_offsets: Mapping[TopicPartition, int]
) -> list[PartitionLag]:
    """Lag of each partition with a known end and next offset, sorted by partition."""
    lags = []
    for (topic, partition), end in sorted(end_offsets.items()):
        next_offset = next_offsets.get((topic, partition))
        if next_offset is None:
            continue
        lags.append(
            PartitionLag(
                topic=topic,
                partition=partition,
                end_offset=end,
                next_offset=next_offset,
                lag=max(0, end - next_offset),
            )
        )
    return lags


class BatchCounts:
    """What the metrics learn of one batch: counts, never its outcomes.

    The engine adds each outcome while the batch is decided and lets the outcome go
    once its records are sent; the counts wait for the batch's transaction to commit
    (and are dropped with it when it aborts). Keeping thousands of outcomes alive until
    a commit only made the garbage collector scan them again and again.
    """

    __slots__ = (
        "deadletters",
        "findings",
        "kinds",
        "next_offsets",
        "records",
        "started",
        "violations",
    )

    def __init__(self, started: float) -> None:
        self.started = started
        """When the batch's processing began (monotonic seconds): its latency's start."""
        self.records = 0
        self.kinds: dict[OutcomeKind, int] = {}
        self.violations = 0
        """Records with at least one finding."""
        self.findings: dict[FindingSummary, int] = {}
        """Findings by (rule, identifier type), the type as the event gave it."""
        self.deadletters: dict[str, int] = {}
        """Dead letters (audit: would-be ones) by reason."""
        self.next_offsets: dict[TopicPartition, int] = {}
        """Per source partition, the offset after the highest one decided."""

    @classmethod
    def of(cls, outcomes: Iterable[Outcome], started: float) -> BatchCounts:
        """The counts of ``outcomes``, a batch begun at ``started``."""
        counts = cls(started)
        for outcome in outcomes:
            counts.add(outcome)
        return counts

    def add(self, outcome: Outcome) -> None:
        """Count one outcome (on the hot path: plain dicts, no work for a passed record
        beyond its kind and offset)."""
        self.records += 1
        kinds = self.kinds
        kind = outcome.kind
        kinds[kind] = kinds.get(kind, 0) + 1
        findings = outcome.findings
        if findings:
            self.violations += 1
            by_finding = self.findings
            for finding in findings:
                by_finding[finding] = by_finding.get(finding, 0) + 1
        reason = outcome.error_reason
        if reason is not None:
            self.deadletters[reason.value] = self.deadletters.get(reason.value, 0) + 1
        source = outcome.record.source
        key = (source.topic, source.partition)
        following = source.offset + 1
        if following > self.next_offsets.get(key, -1):
            self.next_offsets[key] = following


BatchObserver = Callable[[BatchCounts], None]
"""Called once a batch's transaction is committed, with the batch's counts."""


class MetricsRecorder:
    """The batch observer behind snapshots and the Prometheus endpoint.

    Register it in ``Engine.observers``; the loop calls it after each commit. The
    HTTP endpoint reads it from another thread, holding :attr:`lock`.
    """

    def __init__(
        self,
        instance_id: str,
        policy_version: str,
        mode: Mode,
        clock: Clock,
        monotonic: Callable[[], float],
        identifier_types: Iterable[str] = DEFAULT_METRIC_IDENTIFIER_TYPES,
    ) -> None:
        self.instance_id = instance_id
        self.identifier_types = frozenset(identifier_types)
        """Types counted by name; any other is counted as ``other`` (bounded labels)."""
        self.policy_version = policy_version
        self.mode = mode
        self._clock = clock
        self._monotonic = monotonic
        self.outcomes: Counter[OutcomeKind] = Counter()
        self.violations = 0
        self.by_rule: Counter[str] = Counter()
        self.by_type: Counter[str] = Counter()
        self.deadletters: Counter[str] = Counter()
        self.latency_buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self._window = LatencyWindow()
        self._next_offsets: dict[TopicPartition, int] = {}
        self._last_snapshot = monotonic()
        self.lock = threading.Lock()
        self.ledger: LedgerStats | None = None
        """The ledger side's figures, when the worker reads a ledger."""
        self.exposure: ExposureStats | None = None
        """The exposure side's figures, when the worker keeps exposure."""
        self.gc: GcStats | None = None
        """The garbage collector's work, when the worker watches it."""
        self.security_override = False
        """The policy runs under a security override (docs/policy.md: the security guardrail)."""
        self.policy_reload = PolicyReloadStats()
        """Policy changes applied or refused while running (zero without a policy file)."""

    def use_policy(self, policy: Policy, identifier_types: Iterable[str]) -> None:
        """A reloaded policy is in force: its version, mode and flags from now on
        (counts so far stay; they are cumulative over the worker's life)."""
        with self.lock:
            self.policy_version = policy.version
            self.mode = policy.mode
            self.identifier_types = frozenset(identifier_types)
            self.security_override = policy.security_override is not None

    def __call__(self, batch: BatchCounts) -> None:
        """Count one committed batch (a :data:`BatchObserver`)."""
        if not batch.records:
            return
        latency = max(0.0, self._monotonic() - batch.started)
        with self.lock:
            self._count(batch, latency)

    def _count(self, batch: BatchCounts, latency: float) -> None:
        self.outcomes.update(batch.kinds)
        self.violations += batch.violations
        types = self.identifier_types
        for (rule, kind), n in batch.findings.items():
            self.by_rule[rule] += n
            self.by_type[kind if kind in types else OTHER_IDENTIFIER_TYPE] += n
        self.deadletters.update(batch.deadletters)
        next_offsets = self._next_offsets
        for key, following in batch.next_offsets.items():
            if following > next_offsets.get(key, -1):
                next_offsets[key] = following
        records = batch.records
        self._window.add(latency, records)
        self.latency_buckets[_bucket(latency)] += records
        self.latency_sum += latency * records

    def next_offsets(self) -> dict[TopicPartition, int]:
        """The next offset to process, per partition this instance has processed."""
        return dict(self._next_offsets)

    def forget_partitions(self, keep: Iterable[TopicPartition]) -> None:
        """Drop next offsets of partitions no longer assigned (another instance moves them)."""
        kept = set(keep)
        for key in [key for key in self._next_offsets if key not in kept]:
            del self._next_offsets[key]

    def counts(self) -> RecordCounts:
        """Cumulative record counts."""
        kinds = self.outcomes
        return RecordCounts(
            in_=sum(kinds.values()),
            passed=kinds[OutcomeKind.PASSED],
            redacted=kinds[OutcomeKind.REDACTED],
            dropped=kinds[OutcomeKind.DROPPED],
            deadlettered=kinds[OutcomeKind.DEADLETTERED],
        )

    def snapshot(self, lag: Sequence[PartitionLag]) -> MetricsSnapshot:
        """The snapshot as of now; starts a new latency interval."""
        now = self._monotonic()
        interval, self._last_snapshot = now - self._last_snapshot, now
        return MetricsSnapshot(
            instance_id=self.instance_id,
            time=rfc3339(self._clock.now()),
            policy_version=self.policy_version,
            mode=self.mode,
            interval_seconds=round(interval, 3),
            records=self.counts(),
            violations=self.violations,
            identifiers_redacted_by_type=dict(sorted(self.by_type.items())),
            violations_by_rule=dict(sorted(self.by_rule.items())),
            latency=self._window.take(),
            consumer_lag=list(lag),
            deadletters_by_reason=dict(sorted(self.deadletters.items())),
            ledger=LedgerSnapshot.of(self.ledger) if self.ledger is not None else None,
            exposure=ExposureSnapshot.of(self.exposure) if self.exposure is not None else None,
            gc=GcSnapshot.of(self.gc) if self.gc is not None else None,
        )


def _bucket(seconds: float) -> int:
    for index, bound in enumerate(LATENCY_BUCKETS):
        if seconds <= bound:
            return index
    return len(LATENCY_BUCKETS)
