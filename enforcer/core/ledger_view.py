"""Which purposes an identifier is judged by, once a ledger is configured (docs/ledger.md).

Pure and independent of the policy engine: the caller says whether purposes would
let the identifier flow through a ``passes(purposes)`` callable, bound to the
identifier's type and the policy.

=============  ======================  ==========================================
mode           known to the ledger     unknown to the ledger
=============  ======================  ==========================================
off            the event's tags        the event's tags
fallback       the ledger's purposes   the event's tags
authoritative  the ledger's purposes   no purpose (``missing-purpose``, fail closed)
=============  ======================  ==========================================

A known identifier that its ledger purposes do not let pass, while the event claims
a purpose the ledger does not grant, is named ``purpose-not-granted``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import NamedTuple, Protocol

from enforcer.core.purposes import normalize_tag, within_any

PURPOSE_NOT_GRANTED = "purpose-not-granted"
"""The rule name of a finding whose event claimed what the ledger does not grant."""
PURPOSE_NOT_GRANTED_MEANING = (
    "the event claimed a purpose the purpose ledger does not grant this identifier "
    "(named instead of the rule that the ledger's purposes matched)"
)


class LedgerMode(StrEnum):
    """The policy's ``ledger`` setting."""

    OFF = "off"
    FALLBACK = "fallback"
    AUTHORITATIVE = "authoritative"


class LedgerView(NamedTuple):
    """What to judge an identifier by, and how to name a finding about it.

    ``purposes`` are the tags to judge: raw event tags (``None`` when the event
    declared none) or the ledger's normalized purposes. ``not_granted`` says the
    finding, if any, is ``purpose-not-granted``; its ``purposes`` are then the
    ledger's and ``claimed_purposes`` the event's.
    """

    purposes: list[str] | None
    from_ledger: bool
    not_granted: bool
    claimed_purposes: list[str] | None


def purposes_to_judge(
    mode: LedgerMode,
    ledger_purposes: tuple[str, ...] | None,
    claimed: list[str] | None,
    passes: Callable[[tuple[str, ...]], bool],
) -> LedgerView:
    """Decide what an identifier is judged by.

    ``ledger_purposes`` is ``None`` when the identifier is unknown to the ledger (an
    empty tuple is known with nothing granted). ``claimed`` is the event's raw tags.
    ``passes`` is only called for a known identifier the event claims more for.
    """
    if mode is LedgerMode.OFF:
        return LedgerView(claimed, from_ledger=False, not_granted=False, claimed_purposes=claimed)
    if ledger_purposes is None:
        if mode is LedgerMode.FALLBACK:
            return LedgerView(
                claimed, from_ledger=False, not_granted=False, claimed_purposes=claimed
            )
        return LedgerView(None, from_ledger=False, not_granted=False, claimed_purposes=claimed)
    granted = list(ledger_purposes)
    not_granted = claims_ungranted(claimed, ledger_purposes) and not passes(ledger_purposes)
    return LedgerView(granted, from_ledger=True, not_granted=not_granted, claimed_purposes=claimed)


def claims_ungranted(claimed: list[str] | None, granted: tuple[str, ...]) -> bool:
    """True when some claimed tag does not lie within a granted purpose.

    A tag within a granted one is granted (``marketing.advertising.email`` under a
    grant of ``marketing.advertising``); a broader one is not. A claimed tag that is
    not a valid tag is a claim the ledger cannot grant.
    """
    for raw in claimed or ():
        tag = normalize_tag(raw)
        if tag is None or not within_any(tag, granted):
            return True
    return False


SubjectGrants = Callable[[str, bytes], tuple[str, ...] | None]
"""What the ledger grants one subject's identifiers: ``(lower-cased type, fingerprint
MAC)`` → the purposes, or ``None`` when the ledger does not know the identifier. The MAC
is :meth:`~enforcer.core.fingerprint.Fingerprinter.mac`'s 32 bytes."""


class LedgerLookup(Protocol):
    """What the ledger grants the identifiers of an event read from ``partition``.

    A worker holds one materialized state per ledger partition (the partitions matching
    its source partitions), so a lookup names the event's partition; replay and
    ``explain`` hold one state for the whole ledger
    (:class:`enforcer.ledger.lookup.WholeLedger`).

    The lookup is by subject, once per event: a subject the ledger does not know has no
    identifier it knows, so none of them needs a fingerprint to say so, and the ones of
    a known subject are found in what was read once.
    """

    def subject(self, partition: int, subject_id: str) -> SubjectGrants | None:
        """What the ledger grants the subject's identifiers, or ``None`` when it knows
        nothing of the subject (then it knows none of its identifiers). Valid until the
        ledger next changes: asked again for each event."""
        ...
