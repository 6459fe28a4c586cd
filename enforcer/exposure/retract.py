"""Exact retractions: the exposed identifiers that are no longer allowed, and their records.

A retraction is owed for an identifier exactly when it is exposed (it reached the sink
and was not retracted since) and is no longer allowed: by the purpose ledger after a
withdrawal or an erasure, or by a new policy. Never for an identifier that was not
forwarded (docs/exposure.md).

The record is the ledger's retraction (:mod:`enforcer.ledger.retract`, docs/contract.md
"Retraction"): keyed by subject id, header ``enforcer.action: retracted``, value
``{"retraction": {"subject_id", "identifier_type", "fingerprint", "reason", ...}}``,
with the fingerprint's ``key_id`` added and the fields its reason needs: the ledger's
time for ``purpose-withdrawn`` and ``subject-erased``, the policy version now in force
for ``policy-changed``, the plan's id (and the version it was judged under) for
``remediated``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

import orjson

from enforcer.core.fingerprint import FINGERPRINT_PREFIX, mac_of_fingerprint
from enforcer.core.ledger_view import LedgerMode
from enforcer.exposure.model import ExposureEntry, SubjectExposure
from enforcer.ledger.store import LedgerStore, Passes, RetractionReason

Allowed = Callable[[str, ExposureEntry], bool]
"""``allowed(subject_id, entry)``: may this exposed identifier stay exposed?"""


class Rekeyed(NamedTuple):
    """During a key rotation, how an entry made under the previous key is found in the
    ledger when its subject's ledger record is applied: the update lists the subject's
    identifiers with their raw values, so each one's MAC under both keys is known."""

    key_id: str
    """The previous key's id."""
    macs: Callable[[], Mapping[tuple[str, bytes], bytes]]
    """``(type, the previous key's MAC) -> the MAC under the key in force`` of every
    identifier the update lists; computed when first asked (only for a subject holding an
    entry made under ``key_id``)."""


_LEDGER_REASONS = frozenset({RetractionReason.PURPOSE_WITHDRAWN, RetractionReason.SUBJECT_ERASED})


class ExposureRetraction(NamedTuple):
    """What a sink topic must be told to forget: never the raw value."""

    sink_topic: str
    """The topic the retraction goes to: the one the identifier was forwarded to."""
    subject_id: str
    identifier_type: str
    fingerprint: str
    key_id: str
    reason: RetractionReason
    ledger_updated_at: str | None = None
    """For ``purpose-withdrawn`` (the update's ``updated_at``) and ``subject-erased``
    (the tombstone's record time)."""
    policy_version: str | None = None
    """For ``policy-changed`` and ``remediated``: the version that no longer allows it."""
    plan_id: str | None = None
    """For ``remediated``: the plan that retracts it."""


def not_allowed(exposure: SubjectExposure, allowed: Allowed) -> tuple[ExposureEntry, ...]:
    """The exposed entries of ``exposure`` that ``allowed`` no longer allows."""
    return tuple(e for e in exposure.entries if not allowed(exposure.subject_id, e))


def allowed_under(
    passes: Passes,
    mode: LedgerMode,
    ledger: LedgerStore | None,
    key_id: str | None = None,
    rekeyed: Rekeyed | None = None,
    claimed: Passes | None = None,
) -> Allowed:
    """Whether an exposed identifier would be forwarded now, decided as the decision
    decides (docs/ledger.md): by what the ledger grants it when the ledger knows it;
    unknown to the ledger, not at all under ``authoritative``, and under ``fallback``
    by the purposes it was judged by, unless those were the ledger's (the ledger knew
    it then and no longer does: it was left out of its subject's state). With the
    ledger off (or none), by the purposes it was judged by.

    ``passes(type, purposes)`` is the policy's verdict (:func:`enforcer.ledger.retract.
    passes_under`). With ``key_id`` (the fingerprint key in force), an entry made under
    another key (before a key rotation) cannot be looked up in the ledger, whose
    fingerprints are under the key in force: it is judged by the purposes it was
    forwarded under (docs/exposure.md, "Key rotation"), unless ``rekeyed`` (a ledger
    update of its subject, during a rotation) tells what that key's fingerprints are
    under the key in force: an entry made under the previous key is then judged as if
    made under the key in force, and one the update does not list is unknown to the
    ledger.

    ``claimed`` judges the purposes an entry was forwarded by when they were its
    event's own tags, not the ledger's (:func:`enforcer.ledger.retract.
    claimed_passes_under`: a tag outside a ``reject`` taxonomy dead-letters the record
    that claims it); ``passes`` when not given."""
    by_tags = passes if claimed is None else claimed

    def as_forwarded(entry: ExposureEntry) -> bool:
        """Judged by the purposes it was forwarded by: the ledger's, or its event's."""
        judge = passes if entry.by_ledger else by_tags
        return judge(entry.identifier_type, entry.purposes)

    if ledger is None or mode is LedgerMode.OFF:
        return lambda _subject, entry: as_forwarded(entry)
    known: list[Mapping[tuple[str, bytes], bytes]] = []

    def in_force(entry: ExposureEntry) -> str | None:
        """The entry's fingerprint under the key in force, if the update lists it."""
        assert rekeyed is not None
        if not known:
            known.append(rekeyed.macs())
        mac = known[0].get((entry.identifier_type, mac_of_fingerprint(entry.fingerprint)))
        return None if mac is None else FINGERPRINT_PREFIX + mac.hex()

    def allowed(subject_id: str, entry: ExposureEntry) -> bool:
        kind = entry.identifier_type
        fingerprint: str | None = entry.fingerprint
        if key_id is not None and entry.key_id != key_id:
            if rekeyed is None or entry.key_id != rekeyed.key_id:
                return as_forwarded(entry)
            fingerprint = in_force(entry)
        granted = None if fingerprint is None else ledger.purposes(subject_id, kind, fingerprint)
        if granted is not None:
            return passes(kind, granted)
        if mode is LedgerMode.AUTHORITATIVE or entry.by_ledger:
            return False
        return by_tags(kind, entry.purposes)

    return allowed


def retractions_of(
    subject_id: str,
    entries: Iterable[ExposureEntry],
    reason: RetractionReason,
    *,
    ledger_updated_at: str | None = None,
    policy_version: str | None = None,
    plan_id: str | None = None,
) -> list[ExposureRetraction]:
    """One retraction per entry, each to the sink the entry was forwarded to.

    Raises ``ValueError`` when ``reason`` lacks the field it needs."""
    _check(reason, ledger_updated_at, policy_version, plan_id)
    return [
        ExposureRetraction(
            e.sink_topic,
            subject_id,
            e.identifier_type,
            e.fingerprint,
            e.key_id,
            reason,
            ledger_updated_at,
            policy_version,
            plan_id,
        )
        for e in entries
    ]


def _check(
    reason: RetractionReason,
    ledger_updated_at: str | None,
    policy_version: str | None,
    plan_id: str | None,
) -> None:
    if reason in _LEDGER_REASONS and ledger_updated_at is None:
        raise ValueError(f"a {reason.value} retraction needs ledger_updated_at")
    if reason is RetractionReason.POLICY_CHANGED and policy_version is None:
        raise ValueError("a policy-changed retraction needs policy_version")
    if reason is RetractionReason.REMEDIATED and (plan_id is None or policy_version is None):
        raise ValueError("a remediated retraction needs plan_id and policy_version")


def retraction_value(retraction: ExposureRetraction) -> bytes:
    """The record's value, JSON: the ledger's retraction fields plus ``key_id``, and
    only the reason's own optional fields."""
    r = retraction
    _check(r.reason, r.ledger_updated_at, r.policy_version, r.plan_id)
    body: dict[str, str] = {
        "subject_id": r.subject_id,
        "identifier_type": r.identifier_type,
        "fingerprint": r.fingerprint,
        "key_id": r.key_id,
        "reason": r.reason.value,
    }
    if r.ledger_updated_at is not None:
        body["ledger_updated_at"] = r.ledger_updated_at
    if r.policy_version is not None:
        body["policy_version"] = r.policy_version
    if r.plan_id is not None:
        body["plan_id"] = r.plan_id
    return orjson.dumps({"retraction": body})
