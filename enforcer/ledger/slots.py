"""The ledger's layout and logic, shared by the memory and the disk store.

It holds no raw value: identifiers enter already fingerprinted (docs/contract.md: violation event),
subjects are kept as 16-byte BLAKE2b digests of their id. It must hold 10^7 identifiers per worker
within 2 GiB (docs/ledger.md), so the layout is chosen for memory:

- one entry per *subject*, its value one ``bytes`` blob of fixed-size slots, one per
  identifier: the 32-byte fingerprint MAC, a type id and a purpose-set id;
- identifier types and purpose sets are interned in tables: a stream has few of
  each, so a slot refers to them by a 4-byte number instead of holding objects.

A subject has few identifiers, so finding one is a scan of a short blob (in C, by
``bytes.find``). The tables stay in memory in both stores. Types are few and never
forgotten; a purpose set no identifier refers to any more is forgotten after the next
commit (:meth:`SlotLedger.forget_unused_purposes`), so that grants that keep changing do
not grow the table for ever.

Where the subjects' blobs live is the subclass's choice (:class:`SlotLedger` takes any
:class:`Blobs`: a ``dict``, a RocksDB database). Applying a subject's update replaces
its whole previous state; an erasure replaces it with a marker: an erased subject is
known to the ledger with no identifier and no purpose. Each apply can report the
identifiers whose verdict turned from pass to not-pass (:class:`Retraction`), under a
judge given by the caller, so this module knows nothing of policies.
"""

from __future__ import annotations

import hashlib
import struct
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Generic, Protocol, TypeVar

from enforcer.core.fingerprint import FINGERPRINT_PREFIX, MAC_BYTES, mac_of_fingerprint
from enforcer.core.ledger_view import SubjectGrants
from enforcer.ledger.store import Grant, MacGrant, Passes, Retraction, RetractionReason, Undo

SLOT = struct.Struct(f"<{MAC_BYTES}sII")
"""One identifier: fingerprint MAC, type id, purpose-set id (40 bytes)."""
_SLOT_SIZE = SLOT.size
_KEY_SIZE = MAC_BYTES + 4
"""A slot's identity: its MAC and type id (two slots with one identity are merged)."""
_IDS = struct.Struct("<II")
ERASED = b"E"
"""The state of an erased subject: known to the ledger, with no identifier and no
purpose (its length is no multiple of a slot, so it is never mistaken for one)."""


def subject_digest(subject_id: str) -> bytes:
    """The 16-byte key of a subject (BLAKE2b; 10^7 subjects never collide in practice).

    From a copy of an empty hash state: building a new one per call (parsing its
    parameters) cost half as much again, and every event's lookup makes one."""
    digest = _EMPTY_SUBJECT_DIGEST.copy()
    digest.update(subject_id.encode("utf-8", "surrogatepass"))
    return digest.digest()


_EMPTY_SUBJECT_DIGEST = hashlib.blake2b(digest_size=16)


def _nothing_granted(_identifier_type: str, _mac: bytes) -> tuple[str, ...]:
    """An erased subject's grants: every identifier known, with no purpose."""
    return ()


def _slots(blob: bytes | None) -> bytes:
    """The identifier slots of a stored state (none for an erased or absent subject)."""
    return b"" if blob is None or blob == ERASED else blob


_T = TypeVar("_T", str, tuple[str, ...])


class _Interned(Generic[_T]):
    """A table of values referred to by small numbers; a value keeps its number."""

    __slots__ = ("ids", "values")

    def __init__(self) -> None:
        self.ids: dict[_T, int] = {}
        self.values: list[_T] = []

    def id_of(self, value: _T) -> int:
        found = self.ids.get(value)
        if found is None:
            found = self.ids[value] = len(self.values)
            self.values.append(value)
        return found


class _PurposeSets:
    """The interned purpose sets, each with the number of slots that refer to it.

    A set no slot refers to any more is forgotten at :meth:`forget_unused` (after a
    commit, when no rollback can bring back a slot that refers to it), and its number
    is given to the next new set: the table holds the sets in use, not every set ever
    granted (a ledger whose grants keep changing would otherwise grow it for ever)."""

    __slots__ = ("counts", "free", "ids", "unused", "values")

    def __init__(self) -> None:
        self.ids: dict[tuple[str, ...], int] = {}
        self.values: list[tuple[str, ...]] = []
        self.counts: list[int] = []
        self.unused: set[int] = set()
        """Numbers of sets no slot refers to: forgotten at the next :meth:`forget_unused`."""
        self.free: list[int] = []

    def __len__(self) -> int:
        return len(self.values) - len(self.free)

    def id_of(self, value: tuple[str, ...]) -> int:
        found = self.ids.get(value)
        if found is None:
            if self.free:
                found = self.free.pop()
                self.values[found] = value
            else:
                found = len(self.values)
                self.values.append(value)
                self.counts.append(0)
            self.ids[value] = found
            self.unused.add(found)  # until a stored slot refers to it
        return found

    def referred(self, blob: bytes, by: int) -> None:
        """Count the slots of ``blob`` in (``by`` 1) or out (``by`` -1)."""
        counts, unused = self.counts, self.unused
        for (purposes_id,) in _PURPOSES_ID.iter_unpack(blob):
            count = counts[purposes_id] = counts[purposes_id] + by
            if count == 0:
                unused.add(purposes_id)
            elif count == by == 1:
                unused.discard(purposes_id)

    def forget_unused(self) -> int:
        """Forget the sets no slot refers to; their numbers go to new sets. Only when no
        rollback is pending: one could bring back a slot referring to a forgotten set."""
        forgotten = 0
        for purposes_id in self.unused:
            if self.counts[purposes_id] == 0:
                del self.ids[self.values[purposes_id]]
                self.values[purposes_id] = ()  # no purpose: never read while unused
                self.free.append(purposes_id)
                forgotten += 1
        self.unused.clear()
        return forgotten


_PURPOSES_ID = struct.Struct(f"<{MAC_BYTES + 4}xI")
"""A slot's purpose-set id alone."""


class Blobs(Protocol):
    """Where subjects' blobs are kept, by subject digest. A ``dict[bytes, bytes]`` is
    one; a key is only deleted when present."""

    def get(self, key: bytes, /) -> bytes | None: ...

    def __setitem__(self, key: bytes, value: bytes, /) -> None: ...

    def __delitem__(self, key: bytes, /) -> None: ...


class SlotLedger(ABC):
    """The ledger's current grants, its subjects' blobs kept in a :class:`Blobs`."""

    __slots__ = (
        "_blobs",
        "_erased",
        "_identifiers",
        "_purposes",
        "_subjects",
        "_types",
    )

    def __init__(self, blobs: Blobs) -> None:
        self._blobs = blobs
        self._types: _Interned[str] = _Interned()
        self._purposes = _PurposeSets()
        self._identifiers = 0
        self._subjects = 0
        self._erased = 0

    @abstractmethod
    def _stored(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (subject digest, blob) kept (for :meth:`holds_text`)."""

    def __len__(self) -> int:
        """The number of identifiers held."""
        return self._identifiers

    @property
    def subjects(self) -> int:
        """The number of subjects held (erased ones aside)."""
        return self._subjects

    @property
    def erased(self) -> int:
        """The number of erased subjects remembered (while their tombstones are read)."""
        return self._erased

    @property
    def purpose_sets(self) -> int:
        """The number of distinct purpose sets held (those no identifier refers to any
        more are forgotten at :meth:`forget_unused_purposes`)."""
        return len(self._purposes)

    def forget_unused_purposes(self) -> int:
        """Forget the purpose sets no identifier refers to any more (after a commit:
        never while a rollback is pending); returns how many."""
        return self._purposes.forget_unused()

    def purposes(
        self, subject_id: str, identifier_type: str, fingerprint: str
    ) -> tuple[str, ...] | None:
        """The purposes the ledger grants this identifier, or ``None`` when the
        identifier is unknown to the ledger (docs/ledger.md: same subject, type and value).

        Raises ``ValueError`` when ``fingerprint`` is not an ``hmac-sha256:`` one."""
        return self.purposes_of_mac(subject_id, identifier_type, mac_of_fingerprint(fingerprint))

    def purposes_of_mac(
        self, subject_id: str, identifier_type: str, mac: bytes
    ) -> tuple[str, ...] | None:
        """:meth:`purposes` by the fingerprint's 32 bytes (:meth:`Fingerprinter.mac`)."""
        grants = self.subject(subject_id)
        return None if grants is None else grants(identifier_type, mac)

    def subject(self, subject_id: str) -> SubjectGrants | None:
        """What the ledger grants the subject's identifiers (by type and fingerprint
        MAC), or ``None`` when it does not know the subject: its blob is read once, for
        all the identifiers of an event. Valid until the subject's state next changes."""
        blob = self._blobs.get(subject_digest(subject_id))
        if blob is None:
            return None
        if blob == ERASED:
            return _nothing_granted  # erased: none of its identifiers has any purpose
        types, purposes = self._types.values, self._purposes.values

        def granted(identifier_type: str, mac: bytes) -> tuple[str, ...] | None:
            start = blob.find(mac)
            while start >= 0:
                # A match inside a slot's other fields is no match: slots are aligned.
                if start % _SLOT_SIZE == 0:
                    type_id, purposes_id = _IDS.unpack_from(blob, start + MAC_BYTES)
                    if types[type_id] == identifier_type:
                        found: tuple[str, ...] = purposes[purposes_id]
                        return found
                start = blob.find(mac, start + 1)
            return None

        return granted

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
        """Make ``grants`` the subject's whole state (an update, docs/ledger.md).

        An identifier listed twice (or two values with one fingerprint) gets the union
        of its purposes. With ``passes``, returns a ``purpose-withdrawn`` retraction for
        each identifier that passed before and does not now (purposes changed, or the
        identifier is no longer listed); without, returns nothing (a silent restore).
        ``unknown_passed`` (the ``fallback`` setting, where an identifier unknown to the
        ledger is judged by the event's tags): an identifier listed for the first time
        may have passed before, so it is retracted if it does not pass now.
        """
        macs = [(g.type, mac_of_fingerprint(g.fingerprint), g.purposes) for g in grants]
        return self.replace_macs(
            subject_id, updated_at, macs, passes, undo, unknown_passed=unknown_passed
        )

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
        """:meth:`replace` with each fingerprint as its 32 bytes (what a restore makes:
        one MAC per identifier, never its hex text)."""
        blob = self._blob(grants)
        stored = self._put(subject_digest(subject_id), blob or None, undo)
        if passes is None:
            return []
        return self._retractions(
            subject_id,
            updated_at,
            _slots(stored),
            blob,
            passes,
            RetractionReason.PURPOSE_WITHDRAWN,
            new_passed=unknown_passed and stored != ERASED,
        )

    def _blob(self, grants: Sequence[MacGrant]) -> bytes:
        """The subject's slots, in the grants' order."""
        type_ids, purpose_ids = self._types.ids, self._purposes.ids
        slots = []
        for kind, mac, purposes in grants:
            type_id = type_ids.get(kind)
            if type_id is None:
                type_id = self._types.id_of(kind)
            # Interned purpose sets are sorted and de-duplicated, so a hit needs nothing
            # more; a miss is made canonical first.
            purposes_id = purpose_ids.get(purposes)
            if purposes_id is None:
                purposes_id = self._purposes.id_of(tuple(sorted(set(purposes))))
            slots.append(SLOT.pack(mac, type_id, purposes_id))
        if len(slots) > 1 and len({slot[:_KEY_SIZE] for slot in slots}) < len(slots):
            return self._merged_blob(grants)
        return b"".join(slots)

    def _merged_blob(self, grants: Sequence[MacGrant]) -> bytes:
        """The slots when an identifier is listed twice: one slot, the union of its
        purposes, where it first appears."""
        merged: dict[tuple[bytes, int], set[str]] = {}
        for kind, mac, purposes in grants:
            merged.setdefault((mac, self._types.id_of(kind)), set()).update(purposes)
        return b"".join(
            SLOT.pack(mac, type_id, self._purposes.id_of(tuple(sorted(purposes))))
            for (mac, type_id), purposes in merged.items()
        )

    def erase(
        self,
        subject_id: str,
        erased_at: str,
        passes: Passes | None = None,
        undo: Undo | None = None,
    ) -> list[Retraction]:
        """Erase the subject (a tombstone): it stays known, with no purpose.
        ``erased_at`` (RFC 3339, the record's time: a tombstone has no ``updated_at``)
        goes into the ``subject-erased`` retractions of the identifiers that passed;
        none without ``passes``."""
        stored = self._put(subject_digest(subject_id), ERASED, undo)
        if passes is None:
            return []
        return self._retractions(
            subject_id, erased_at, _slots(stored), b"", passes, RetractionReason.SUBJECT_ERASED
        )

    def withhold(
        self,
        subject_id: str,
        refused_at: str,
        passes: Passes | None = None,
        undo: Undo | None = None,
    ) -> list[Retraction]:
        """The subject's latest value was refused (invalid, ambiguous, or not fitting
        its key): until a valid value comes, it is known with no purpose, as an erased
        subject is (it may have withdrawn what the subject had). ``refused_at`` (RFC
        3339, the record's time) goes into the ``purpose-withdrawn`` retractions of the
        identifiers that passed; none without ``passes``."""
        stored = self._put(subject_digest(subject_id), ERASED, undo)
        if passes is None:
            return []
        return self._retractions(
            subject_id, refused_at, _slots(stored), b"", passes, RetractionReason.PURPOSE_WITHDRAWN
        )

    def grants_nothing(self, subject_id: str) -> bool:
        """Whether the subject is known with no purpose for any identifier (erased, or
        its latest value refused), whatever key its identifiers were
        fingerprinted under."""
        return self._blobs.get(subject_digest(subject_id)) == ERASED

    def rollback(self, undo: Undo) -> None:
        """Put back every subject ``undo`` recorded, as it was before its first change,
        and empty ``undo``."""
        for key, old in undo.items():
            self._put(key, old, None)
        undo.clear()

    def _put(self, key: bytes, blob: bytes | None, undo: Undo | None) -> bytes | None:
        """Make ``blob`` the subject's state (``None``: forget it), keeping the counts;
        return its previous state (``None``: none)."""
        old = self._blobs.get(key)
        if undo is not None:
            undo.setdefault(key, old)
        if blob is not None:
            self._blobs[key] = blob
        elif old is not None:
            del self._blobs[key]
        self._purposes.referred(_slots(old), -1)
        self._purposes.referred(_slots(blob), 1)
        self._identifiers += (len(_slots(blob)) - len(_slots(old))) // _SLOT_SIZE
        self._subjects += _listed(blob) - _listed(old)
        self._erased += (blob == ERASED) - (old == ERASED)
        return old

    def _retractions(
        self,
        subject_id: str,
        when: str,
        old: bytes,
        new: bytes,
        passes: Passes,
        reason: RetractionReason,
        *,
        new_passed: bool = False,
    ) -> list[Retraction]:
        """Identifiers of ``old`` that passed and do not in ``new``; with ``new_passed``
        also those ``new`` lists for the first time and that do not pass."""
        before = {(mac, type_id): p for mac, type_id, p in SLOT.iter_unpack(old)}
        now = {(mac, type_id): p for mac, type_id, p in SLOT.iter_unpack(new)}
        out = []
        for (mac, type_id), purposes_id in before.items():
            kind = self._type(type_id)
            if not passes(kind, self._purpose_set(purposes_id)):
                continue
            still = now.get((mac, type_id))
            if still is not None and passes(kind, self._purpose_set(still)):
                continue
            out.append(Retraction(subject_id, kind, FINGERPRINT_PREFIX + mac.hex(), reason, when))
        if new_passed:
            for (mac, type_id), purposes_id in now.items():
                kind = self._type(type_id)
                if (mac, type_id) in before or passes(kind, self._purpose_set(purposes_id)):
                    continue
                out.append(
                    Retraction(subject_id, kind, FINGERPRINT_PREFIX + mac.hex(), reason, when)
                )
        return out

    def _type(self, type_id: int) -> str:
        return self._types.values[type_id]

    def _purpose_set(self, purposes_id: int) -> tuple[str, ...]:
        return self._purposes.values[purposes_id]

    def holds_text(self, text: str) -> bool:
        """Whether ``text`` appears anywhere in the state's stored objects (for tests:
        the state must never hold a raw value)."""
        needle = text.encode("utf-8", "surrogatepass")
        if any(needle in key or needle in blob for key, blob in self._stored()):
            return True
        tables = [*self._types.values, *self._purposes.values]
        return any(text in repr(value) for value in tables)


def _listed(blob: bytes | None) -> int:
    """1 for a subject with identifiers (not erased, not absent)."""
    return 1 if _slots(blob) else 0
