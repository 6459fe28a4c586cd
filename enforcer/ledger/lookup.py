"""The decision's ledger lookup over one state for the whole ledger (replay, ``explain``).

The live worker keeps one state per ledger partition instead
(:class:`enforcer.live.ledger.LiveLedger`); both answer
:class:`enforcer.core.ledger_view.LedgerLookup`.
"""

from __future__ import annotations

from enforcer.core.ledger_view import SubjectGrants
from enforcer.ledger.state import LedgerState


class WholeLedger:
    """One state for every partition (replay and ``explain`` read the whole ledger)."""

    __slots__ = ("state",)

    def __init__(self, state: LedgerState) -> None:
        self.state = state

    def subject(self, partition: int, subject_id: str) -> SubjectGrants | None:
        """What the ledger grants the subject's identifiers, whatever the partition."""
        return self.state.subject(subject_id)
