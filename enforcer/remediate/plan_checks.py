"""What a plan file must hold beyond its shape (docs/remediate.md, "The plan file").

The plan id is a hash without a key: it catches a plan changed by accident, not one
changed on purpose (whoever edits a plan can hash it again). So a plan read back is
also held to what ``remediate plan`` can write: every field ``apply`` writes to Kafka or
trusts is checked, and a plan holding anything ``plan`` could not have made is refused.
A fingerprint that is not one (a raw value put in its place) never reaches the sink.

Each problem is a ``ValueError`` naming the field and the entry's index, never a value:
a value that fails a check may be a raw identifier.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from enforcer.core.fingerprint import FINGERPRINT_PREFIX, KEY_ID_HEX_DIGITS, MAC_BYTES
from enforcer.core.identifier_types import is_stored_type_name
from enforcer.core.ledger_view import LedgerMode
from enforcer.core.models import parse_rfc3339
from enforcer.core.policy.spec import RULE_NAME_MAX, RULE_NAME_PATTERN
from enforcer.exposure.model import ExposureFailure, parse_entry

if TYPE_CHECKING:
    from enforcer.remediate.plan import Plan, PlannedExposure, PlannedRetraction

FINGERPRINT = re.compile(re.escape(FINGERPRINT_PREFIX) + f"[0-9a-f]{{{2 * MAC_BYTES}}}")
"""A fingerprint as the planner writes it: the prefix and the MAC in lower-case hex."""
KEY_ID = re.compile(f"[0-9a-f]{{{KEY_ID_HEX_DIGITS}}}")
POLICY_VERSION = re.compile("sha256:[0-9a-f]{64}")
"""A policy's version: the SHA-256 of its file (enforcer/core/policy/load.py)."""
UNKNOWN_VERSION = "unknown"
"""The policy version of a forward whose record names none (the planner's word)."""
_RULE = re.compile(RULE_NAME_PATTERN)
# Kafka's own rule for topic names.
_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LEDGER = frozenset(mode.value for mode in LedgerMode)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Kafka record times start here: a plan cannot have read before it."""


def is_policy_version(text: str) -> bool:
    """Whether ``text`` is a policy version as the enforcer writes one."""
    return POLICY_VERSION.fullmatch(text) is not None


def check_plan(plan: Plan) -> None:
    """Raise ``ValueError`` (``field: problem``) for the first thing ``plan`` holds that
    ``remediate plan`` could not have written."""
    _check_header(plan)
    _check_range(plan)
    _check_retractions(plan.key_id, plan.retractions)
    _check_counts(plan)
    if plan.exposure is not None:
        _check_exposure(plan, plan.exposure)


def _check_header(plan: Plan) -> None:
    if _TOPIC.fullmatch(plan.sink_topic) is None or plan.sink_topic in (".", ".."):
        raise ValueError("sink_topic: not a Kafka topic name")
    if not is_policy_version(plan.policy_version):
        raise ValueError("policy_version: not a policy version (sha256: and 64 hex digits)")
    if KEY_ID.fullmatch(plan.key_id) is None:
        raise ValueError(f"key_id: not a key id ({KEY_ID_HEX_DIGITS} hex digits)")
    if plan.ledger not in _LEDGER:
        raise ValueError(f"ledger: not one of {', '.join(sorted(_LEDGER))}")


def _check_range(plan: Plan) -> None:
    times = []
    for name, text in (("since", plan.since), ("until", plan.until)):
        if text is None:
            continue
        try:
            at = parse_rfc3339(text)
        except ValueError:
            raise ValueError(f"{name}: not an RFC 3339 time") from None
        if at < EPOCH:
            raise ValueError(f"{name}: before 1970-01-01T00:00:00Z")
        times.append(at)
    if len(times) == 2 and times[0] > times[1]:
        raise ValueError("since: after until")
    previous = -1
    for index, span in enumerate(plan.offsets):
        if span.partition <= previous:
            raise ValueError(f"offsets[{index}]: partitions not sorted, or one twice")
        if span.start > span.end:
            raise ValueError(f"offsets[{index}]: start after end")
        previous = span.partition
    h = plan.history
    if h.records != h.forwarded + h.retractions + h.other:
        raise ValueError("history: records is not forwarded + retractions + other")
    if h.unreadable > h.forwarded:
        raise ValueError("history: more unreadable records than forwarded ones")


def _check_type(path: str, kind: str) -> None:
    # The decision trims and lower-cases each type name, and only such a name can be in
    # a plan: never a value written where the type belongs.
    if not is_stored_type_name(kind):
        raise ValueError(f"{path}.identifier_type: not a lower-cased identifier type name")


def _check_retractions(key_id: str, retractions: tuple[PlannedRetraction, ...]) -> None:
    previous: PlannedRetraction | None = None
    for index, r in enumerate(retractions):
        path = f"retractions[{index}]"
        _check_type(path, r.identifier_type)
        if FINGERPRINT.fullmatch(r.fingerprint) is None:
            raise ValueError(f"{path}.fingerprint: not an hmac-sha256 fingerprint")
        if r.key_id != key_id:
            raise ValueError(f"{path}.key_id: not the plan's key_id")
        if len(r.rule) > RULE_NAME_MAX or _RULE.fullmatch(r.rule) is None:
            raise ValueError(f"{path}.rule: not a rule name")
        if previous is not None:
            if previous.identity == r.identity:
                raise ValueError(f"{path}: the same identifier as retractions[{index - 1}]")
            if not previous < r:
                raise ValueError(f"{path}: retractions not sorted")
        previous = r


def _check_counts(plan: Plan) -> None:
    retractions = plan.retractions
    if not _same(plan.by_rule, (r.rule for r in retractions)):
        raise ValueError("counts.by_rule: not the retractions' rules counted")
    if not _same(plan.by_type, (r.identifier_type for r in retractions)):
        raise ValueError("counts.by_type: not the retractions' types counted")
    for day, count in plan.by_day.items():
        if _DAY.fullmatch(day) is None or not _is_date(day):
            raise ValueError("counts.by_day: a key that is not a date (YYYY-MM-DD)")
        if count < 1:
            raise ValueError("counts.by_day: a day with no retraction")
    if sum(plan.by_day.values()) != len(retractions):
        raise ValueError("counts.by_day: does not add up to the number of retractions")
    if plan.affected_subjects != len({r.subject_id for r in retractions}):
        raise ValueError("affected_subjects: not the retractions' distinct subjects")
    listed = len(retractions) + (len(plan.exposure) if plan.exposure is not None else 0)
    if plan.exposure is not None and plan.exposed != listed:
        raise ValueError("exposed: not the number of retractions and exposure entries")
    if plan.exposed < listed:
        raise ValueError("exposed: fewer than the retractions")


def _same(table: Mapping[str, int], names: Iterable[str]) -> bool:
    return dict(table) == dict(Counter(names))


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _check_exposure(plan: Plan, exposure: tuple[PlannedExposure, ...]) -> None:
    retracted = {r.identity for r in plan.retractions}
    previous: PlannedExposure | None = None
    for index, e in enumerate(exposure):
        path = f"exposure[{index}]"
        # The exposure topic's own strict reader: what it would refuse is not written.
        entry = parse_entry(
            path, {**e.entry(plan.sink_topic)._asdict(), "purposes": list(e.purposes)}
        )
        if isinstance(entry, ExposureFailure):
            raise ValueError(entry.message)
        if e.key_id != plan.key_id:
            raise ValueError(f"{path}.key_id: not the plan's key_id")
        for name in ("first_forwarded_at", "last_forwarded_at"):
            if getattr(entry, name) != getattr(e, name):
                raise ValueError(f"{path}.{name}: not in UTC to the second (...Z)")
        if e.policy_version != UNKNOWN_VERSION and not is_policy_version(e.policy_version):
            raise ValueError(f"{path}.policy_version: not a policy version")
        if e.by_ledger and plan.ledger == LedgerMode.OFF.value:
            raise ValueError(f"{path}.by_ledger: true in a plan judged without a ledger")
        identity = (e.subject_id, e.identifier_type, e.fingerprint)
        if identity in retracted:
            raise ValueError(f"{path}: an identifier the plan retracts")
        if previous is not None:
            if (previous.subject_id, previous.identifier_type, previous.fingerprint) == identity:
                raise ValueError(f"{path}: the same identifier as exposure[{index - 1}]")
            if not previous < e:
                raise ValueError(f"{path}: exposure entries not sorted")
        previous = e
