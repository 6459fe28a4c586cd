"""The materialized ledger in memory: (subject, type, fingerprint) → granted purposes.

The default store. Its layout and logic are :class:`enforcer.ledger.slots.SlotLedger`'s
(one ``bytes`` blob of 40-byte slots per subject); here the blobs live in a ``dict``.
The disk store for more than memory is :class:`enforcer.ledger.disk.DiskLedgerState`;
both satisfy :class:`enforcer.ledger.store.LedgerStore`.
"""

from __future__ import annotations

from collections.abc import Iterator

from enforcer.core.fingerprint import FINGERPRINT_PREFIX
from enforcer.ledger.slots import SlotLedger, subject_digest
from enforcer.ledger.store import (
    Grant,
    LedgerStore,
    Passes,
    Retraction,
    RetractionReason,
    Undo,
    grants_of,
)

__all__ = [
    "FINGERPRINT_PREFIX",
    "Grant",
    "LedgerState",
    "LedgerStore",
    "Passes",
    "Retraction",
    "RetractionReason",
    "Undo",
    "grants_of",
    "subject_digest",
]


class LedgerState(SlotLedger):
    """The ledger's current grants, for the partitions one worker holds, in memory."""

    __slots__ = ("_dict",)

    def __init__(self) -> None:
        self._dict: dict[bytes, bytes] = {}
        super().__init__(self._dict)

    def close(self) -> None:
        """Nothing to release: the state goes with its last reference."""

    def _stored(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._dict.items())
