"""How the decision asks the ledger about one identifier of an event.

A worker holds one materialized state per ledger partition (the partitions matching
its source partitions), so a lookup names the event's partition; replay and
``explain`` hold one state for the whole ledger (:class:`WholeLedger`).
"""

from __future__ import annotations

from typing import Protocol

from enforcer.ledger.state import LedgerState


class LedgerLookup(Protocol):
    """What the ledger grants an identifier of an event read from ``partition``."""

    def granted(
        self, partition: int, subject_id: str, identifier_type: str, mac: bytes
    ) -> tuple[str, ...] | None:
        """The ledger's purposes for the identifier (``mac``: its fingerprint's bytes,
        :meth:`~enforcer.fingerprint.Fingerprinter.mac`), or ``None`` when unknown."""
        ...


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
