"""Applying a plan, the pure part: which of its retractions the sink already holds,
what is left to write, in which transactions, and what each does to the exposure topic
(docs/remediate.md, "Applying a plan").

Idempotence and resumption rest on one fact: every retraction a plan writes carries
the plan's id, and a batch is committed whole or not at all. Before writing, the
sink's committed retractions with this plan's id are read back; what they name is not
written again. A second apply finds everything and writes nothing; an apply killed
midway finds the batches it committed and writes the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import NamedTuple

from enforcer.core.step import HEADER_POLICY, Headers
from enforcer.exposure.model import (
    ExposureEntry,
    SubjectExposure,
    exposure_value,
    parse_exposure_record,
)
from enforcer.exposure.retract import ExposureRetraction
from enforcer.ledger.retract import RETRACTION_HEADER
from enforcer.remediate.history import SinkKind, kind_of, read_retraction
from enforcer.remediate.plan import Plan

Identity = tuple[str, str, str]


def written_by(plan_id: str, records: Iterable[tuple[Headers, bytes | None]]) -> set[Identity]:
    """The (subject, type, fingerprint) of every retraction among ``records`` (headers
    and value of the sink's committed records) that carries ``plan_id``."""
    found: set[Identity] = set()
    for headers, value in records:
        if kind_of(headers) is not SinkKind.RETRACTION:
            continue
        retraction = read_retraction(value)
        if retraction is not None and retraction.plan_id == plan_id:
            found.add(retraction.identity)
    return found


def still_to_write(plan: Plan, written: set[Identity]) -> list[ExposureRetraction]:
    """The plan's retractions the sink does not hold yet, in the plan's order."""
    return [
        r
        for r in plan.exposure_retractions()
        if (r.subject_id, r.identifier_type, r.fingerprint) not in written
    ]


def batches(items: list[ExposureRetraction], size: int) -> Iterator[list[ExposureRetraction]]:
    """``items`` in consecutive batches of at most ``size``."""
    if size < 1:
        raise ValueError("a batch holds at least one retraction")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def retraction_headers(policy_version: str) -> Headers:
    """A retraction record's headers (docs/contract.md, "Retraction"): marked
    ``retracted``, with the policy version the plan judged by."""
    return (RETRACTION_HEADER, (HEADER_POLICY, policy_version.encode()))


class ExposureHeld(NamedTuple):
    """A subject's value in the exposure topic, and the partition it is in."""

    partition: int
    exposure: SubjectExposure


def misplaced(held: Mapping[str, ExposureHeld], partition_of: Callable[[str], int]) -> list[str]:
    """The subjects whose exposure value is in another partition than ``partition_of``
    gives their id (the source's partitioner): seeded there by an earlier apply that
    guessed the partitioner, or written under producers that changed it. A worker never
    finds them where its subject's events are."""
    return sorted(s for s, h in held.items() if h.partition != partition_of(s))


def exposure_held(
    records: Iterable[tuple[int, bytes | None, bytes | None]],
) -> dict[str, ExposureHeld]:
    """Each subject's latest exposure among ``records`` (partition, key, value; in each
    partition's order). A value the reader refuses forgets the subject, as a worker does
    (docs/exposure.md, "A malformed value")."""
    held: dict[str, ExposureHeld] = {}
    for partition, key, value in records:
        parsed = parse_exposure_record(key, value)
        if isinstance(parsed, SubjectExposure):
            held[parsed.subject_id] = ExposureHeld(partition, parsed)
        elif key:
            subject = key.decode("utf-8", "replace")
            held[subject] = ExposureHeld(partition, SubjectExposure(subject, ()))
    return held


class ExposureWrite(NamedTuple):
    """A subject's new exposure value (``None``: a tombstone) and where it goes
    (``None``: the partition its key falls in)."""

    subject_id: str
    value: bytes | None
    partition: int | None


def exposure_writes(plan: Plan, held: Mapping[str, ExposureHeld]) -> list[ExposureWrite]:
    """What seeding exposure from ``plan`` writes: for each subject the plan names, the
    entries held less the plan's retractions, and the plan's exposed identifiers not held
    yet. Only values that change are written, so a second seeding writes nothing."""
    if plan.exposure is None:
        raise ValueError("the plan holds no exposure (plan --with-exposure)")
    sink = plan.sink_topic
    retracted = {r.identity for r in plan.retractions}
    seeds: dict[str, list[ExposureEntry]] = {}
    for seed in plan.exposure:
        seeds.setdefault(seed.subject_id, []).append(seed.entry(sink))
    subjects = sorted(set(seeds) | {r.subject_id for r in plan.retractions if r.subject_id in held})
    writes = []
    for subject in subjects:
        now = held.get(subject)
        old = now.exposure.entries if now is not None else ()
        kept = [
            e
            for e in old
            if e.sink_topic != sink or (subject, e.identifier_type, e.fingerprint) not in retracted
        ]
        have = {e.identity for e in kept}
        merged = (*kept, *(e for e in seeds.get(subject, ()) if e.identity not in have))
        if merged == old:
            continue
        value = exposure_value(SubjectExposure(subject, merged))
        writes.append(ExposureWrite(subject, value, None if now is None else now.partition))
    return writes


class Transaction(NamedTuple):
    """What one transaction of an apply writes: retractions to the plan's sink and, with
    an exposure topic, the new values of the subjects they leave changed."""

    retractions: list[ExposureRetraction]
    exposure: list[ExposureWrite]


def apply_transactions(
    plan: Plan,
    written: set[Identity],
    held: dict[str, ExposureHeld] | None,
    size: int,
) -> list[Transaction]:
    """The transactions an apply writes, in order.

    Without an exposure topic (``held`` is ``None``): the retractions still to write, in
    batches of ``size``. With one, each batch also removes the identifiers it retracts
    from their subjects' exposure values (a value left empty is a tombstone), so that
    the sink and exposure change together; then the plan's identifiers retracted
    earlier (by an apply without the exposure topic) but still in exposure are removed,
    ``size`` subjects a transaction. Only values that change are written, so an apply
    run again writes nothing. ``held`` is updated to what the topic holds after them.
    """
    transactions = [
        Transaction(batch, [] if held is None else _removed(plan.sink_topic, batch, held))
        for batch in batches(still_to_write(plan, written), size)
    ]
    if held is not None:
        rest = _removed(plan.sink_topic, plan.exposure_retractions(), held)
        transactions.extend(
            Transaction([], rest[start : start + size]) for start in range(0, len(rest), size)
        )
    return transactions


def _removed(
    sink: str, retractions: list[ExposureRetraction], held: dict[str, ExposureHeld]
) -> list[ExposureWrite]:
    """The exposure values of ``retractions``' subjects without what they retract (on
    ``sink``), for the subjects whose value changes; ``held`` updated to match."""
    by_subject: dict[str, set[tuple[str, str]]] = {}
    for r in retractions:
        if r.subject_id in held:
            by_subject.setdefault(r.subject_id, set()).add((r.identifier_type, r.fingerprint))
    writes = []
    for subject, gone in by_subject.items():
        now = held[subject]
        kept = tuple(
            e
            for e in now.exposure.entries
            if e.sink_topic != sink or (e.identifier_type, e.fingerprint) not in gone
        )
        if len(kept) == len(now.exposure.entries):
            continue
        exposure = SubjectExposure(subject, kept)
        held[subject] = ExposureHeld(now.partition, exposure)
        writes.append(ExposureWrite(subject, exposure_value(exposure), now.partition))
    return writes


def under_other_keys(plan: Plan, held: Mapping[str, ExposureHeld]) -> dict[str, int]:
    """Per key id other than the plan's: how many subjects the plan retracts from hold
    exposure entries on the plan's sink made under it. A retraction names its
    fingerprint under the plan's key, so those entries are not taken out of exposure
    (docs/remediate.md, key rotation); the caller says so."""
    subjects = {r.subject_id for r in plan.retractions}
    found: dict[str, int] = {}
    for subject in sorted(subjects & held.keys()):
        keys = {
            e.key_id
            for e in held[subject].exposure.entries
            if e.sink_topic == plan.sink_topic and e.key_id != plan.key_id
        }
        for key_id in keys:
            found[key_id] = found.get(key_id, 0) + 1
    return found
