"""The retraction record the sink receives when an identifier may no longer flow
(docs/ledger.md): keyed by subject id, marked ``enforcer.action: retracted``, never carrying
the raw value."""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.evaluate import judge_ledger_purposes
from enforcer.core.step import HEADER_ACTION
from enforcer.ledger.state import Passes, Retraction

ACTION_RETRACTED = b"retracted"
RETRACTION_HEADER = (HEADER_ACTION, ACTION_RETRACTED)
"""The header that marks a sink record as a retraction, not an event."""


def is_retraction(headers: Iterable[tuple[str, bytes | None]]) -> bool:
    """Whether a sink record with these headers is a retraction."""
    return RETRACTION_HEADER in headers


def retraction_value(retraction: Retraction) -> bytes:
    """``{"retraction": {subject_id, identifier_type, fingerprint, reason,
    ledger_updated_at}}`` as JSON bytes."""
    return orjson.dumps(
        {
            "retraction": {
                "subject_id": retraction.subject_id,
                "identifier_type": retraction.identifier_type,
                "fingerprint": retraction.fingerprint,
                "reason": retraction.reason.value,
                "ledger_updated_at": retraction.ledger_updated_at,
            }
        }
    )


def passes_under(policy: Policy) -> Passes:
    """``passes(type, purposes)``: would an identifier the ledger grants these purposes
    flow to the destination under ``policy``? (The judge of retractions.)"""
    return lambda kind, purposes: judge_ledger_purposes(policy, kind, purposes) is None


def claimed_passes_under(policy: Policy) -> Passes:
    """``passes(type, purposes)`` for purposes an identifier's own event claimed (not
    the ledger's): :func:`passes_under`, except that a tag outside a ``reject``
    taxonomy never passes (the decision dead-letters its record: nothing of it would
    reach the destination)."""
    passes = passes_under(policy)
    taxonomy = policy.taxonomy
    if taxonomy is None or taxonomy.unknown != "reject":
        return passes
    return lambda kind, purposes: (
        taxonomy.first_unknown(purposes) is None and passes(kind, purposes)
    )
