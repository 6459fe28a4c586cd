"""The decision's ledger lookup over one state for the whole ledger (replay, ``explain``).

The live worker keeps one state per ledger partition instead
(:class:`enforcer.live.ledger.LiveLedger`); both answer
:class:`enforcer.core.ledger_view.LedgerLookup`.
"""

from __future__ import annotations

from enforcer.ledger.state import LedgerState


class WholeLedger:
    """One state for every partition (replay and ``explain`` read the whole ledger)."""

    __slots__ = ("state",)

    def __init__(self, state: LedgerState) -> None:
        self.state = state

    def granted(
        self, partition: int, subject_id: str, identifier_type: str, mac: bytes
    ) -> tuple[str, ...] | None:
        """The ledger's purposes for the identifier, whatever the partition."""
        return self.state.purposes_of_mac(subject_id, identifier_type, mac)
