"""What a ledger store is: the records it takes and returns, and its interface.

Two stores hold the materialized ledger (docs/ledger.md) with the same behaviour: one in
memory (:class:`enforcer.ledger.state.LedgerState`, the default) and one on disk
(:class:`enforcer.ledger.disk.DiskLedgerState`, for more than memory). Code that only
reads and applies the ledger takes a :class:`LedgerStore` and works with either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import NamedTuple, Protocol

from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import SubjectGrants
from enforcer.ledger.model import SubjectErasure, SubjectUpdate

Passes = Callable[[str, tuple[str, ...]], bool]
"""``passes(identifier_type, purposes)``: would an identifier with these ledger
purposes flow? Takes the type because a policy's rules may be limited to types."""

Undo = dict[bytes, "bytes | None"]
"""What a transaction changed: each touched subject's state before its first change in
the transaction (``None``: it had none). :meth:`LedgerStore.rollback` puts it
back when the transaction is aborted and its ledger records will be read again."""


class RetractionReason(StrEnum):
    """Why an identifier that would have flowed no longer does."""

    PURPOSE_WITHDRAWN = "purpose-withdrawn"
    SUBJECT_ERASED = "subject-erased"
    POLICY_CHANGED = "policy-changed"
    """A new policy would not have forwarded it (exposure: docs/exposure.md)."""
    REMEDIATED = "remediated"
    """A remediation plan retracts it (exposure: docs/exposure.md)."""


class Retraction(NamedTuple):
    """What the sink must be told to forget: never the raw value (docs/ledger.md)."""

    subject_id: str
    identifier_type: str
    fingerprint: str
    reason: RetractionReason
    ledger_updated_at: str


class Grant(NamedTuple):
    """One fingerprinted identifier of a subject and the purposes it was given for
    (normalized, sorted, de-duplicated)."""

    type: str
    fingerprint: str
    purposes: tuple[str, ...]


MacGrant = tuple[str, bytes, tuple[str, ...]]
"""A :class:`Grant` as ``(type, mac, purposes)``, its fingerprint the 32 bytes of its
MAC (:meth:`~enforcer.core.fingerprint.Fingerprinter.mac`): what the stores keep. A
plain tuple: a restore makes millions."""


def grants_of(
    identifiers: Iterable[tuple[str, str, tuple[str, ...]]], fingerprinter: Fingerprinter
) -> list[Grant]:
    """Fingerprint ``(type, raw value, purposes)`` triples: the raw values stop here."""
    return [
        Grant(kind, fingerprinter(kind, value), purposes) for kind, value, purposes in identifiers
    ]


class LedgerStore(Protocol):
    """The ledger's current grants for the partitions one worker holds, wherever kept.

    Both stores start empty and are filled by a restore; neither survives its process.
    """

    def __len__(self) -> int:
        """The number of identifiers held."""
        ...

    @property
    def subjects(self) -> int:
        """The number of subjects held (erased ones aside)."""
        ...

    @property
    def erased(self) -> int:
        """The number of erased subjects remembered."""
        ...

    @property
    def purpose_sets(self) -> int:
        """The number of distinct purpose sets held."""
        ...

    def forget_unused_purposes(self) -> int:
        """Forget the purpose sets no identifier refers to any more (only when no
        rollback is pending); returns how many."""
        ...

    def purposes(
        self, subject_id: str, identifier_type: str, fingerprint: str
    ) -> tuple[str, ...] | None:
        """The purposes the ledger grants this identifier, or ``None`` when unknown."""
        ...

    def purposes_of_mac(
        self, subject_id: str, identifier_type: str, mac: bytes
    ) -> tuple[str, ...] | None:
        """:meth:`purposes` by the fingerprint's 32 bytes."""
        ...

    def subject(self, subject_id: str) -> SubjectGrants | None:
        """What the ledger grants the subject's identifiers, read once for an event's
        identifiers; ``None`` when it does not know the subject."""
        ...

    def replace(
        self,
        subject_id: str,
        updated_at: str,
        grants: Iterable[Grant],
        passes: Passes | None = None,
        undo: Undo | None = None,
        *,
        unknown_passed: bool = False,
    ) -> list[Retraction]:
        """Make ``grants`` the subject's whole state; with ``passes``, the retractions."""
        ...

    def replace_macs(
        self,
        subject_id: str,
        updated_at: str,
        grants: Sequence[MacGrant],
        passes: Passes | None = None,
        undo: Undo | None = None,
        *,
        unknown_passed: bool = False,
    ) -> list[Retraction]:
        """:meth:`replace` with each fingerprint as its MAC's bytes."""
        ...

    def erase(
        self,
        subject_id: str,
        erased_at: str,
        passes: Passes | None = None,
        undo: Undo | None = None,
    ) -> list[Retraction]:
        """Forget the subject (a tombstone); with ``passes``, the retractions."""
        ...

    def withhold(
        self,
        subject_id: str,
        refused_at: str,
        passes: Passes | None = None,
        undo: Undo | None = None,
    ) -> list[Retraction]:
        """Keep no purpose for the subject (its latest value was refused);
        with ``passes``, the retractions."""
        ...

    def grants_nothing(self, subject_id: str) -> bool:
        """Whether the subject is known with no purpose at all (erased, or withheld)."""
        ...

    def rollback(self, undo: Undo) -> None:
        """Put back every subject ``undo`` recorded and empty ``undo``."""
        ...

    def holds_text(self, text: str) -> bool:
        """Whether ``text`` appears in anything the store keeps (for tests)."""
        ...

    def close(self) -> None:
        """Release the store (the disk store removes its directory)."""
        ...


def apply_record(
    store: LedgerStore,
    record: SubjectUpdate | SubjectErasure,
    fingerprinter: Fingerprinter,
    erased_at: str,
    passes: Passes | None = None,
    undo: Undo | None = None,
    *,
    unknown_passed: bool = False,
) -> list[Retraction]:
    """Apply one valid ledger record: an update replaces its subject's state (the raw
    values are fingerprinted here), a tombstone erases the subject as of ``erased_at``
    (a tombstone has no ``updated_at``). Returns the retractions; none without
    ``passes`` (a silent restore)."""
    if isinstance(record, SubjectErasure):
        return store.erase(record.subject_id, erased_at, passes, undo)
    # Each identifier is fingerprinted once, straight to the MAC the store keeps.
    mac = fingerprinter.mac_once
    grants = [(kind, mac(kind, value), purposes) for kind, value, purposes in record.identifiers]
    return store.replace_macs(
        record.subject_id, record.updated_at, grants, passes, undo, unknown_passed=unknown_passed
    )
