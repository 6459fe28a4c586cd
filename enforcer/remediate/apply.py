"""Applying a plan, the pure part: which of its retractions the sink already holds,
what is left to write, and in which batches (docs/remediate.md, "Applying a plan").

Idempotence and resumption rest on one fact: every retraction a plan writes carries
the plan's id, and a batch is committed whole or not at all. Before writing, the
sink's committed retractions with this plan's id are read back; what they name is not
written again. A second apply finds everything and writes nothing; an apply killed
midway finds the batches it committed and writes the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from enforcer.core.step import HEADER_POLICY, Headers
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
