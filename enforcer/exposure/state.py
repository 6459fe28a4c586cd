"""The exposure of a worker's partitions in memory: per partition, per subject.

It must hold 10^7 exposed identifiers per worker within 2 GiB (docs/exposure.md), so,
like the ledger's state (:mod:`enforcer.ledger.slots`), it keeps few Python objects:

- per partition one ``dict`` from the subject id's UTF-8 bytes (the exposure record's
  key, needed again to write the subject's value and its retractions) to one ``bytes``
  blob of fixed-size slots, one per exposed identifier;
- a slot is the fingerprint's 32-byte MAC, small numbers for the sink topic, the
  identifier type, the key id, the purpose set and the policy version (each interned
  in a table: a stream has few of them), a flag for "judged by the ledger", and the
  first and last forwarded times as seconds since 1970.

Every change returns the record to write (:class:`ExposureWrite`), and only a change
does: forwarding an identifier again under the same purposes, policy and key on the
same UTC day as its last forward changes nothing (docs/exposure.md: "When it is
written"). Times come in as RFC 3339 text from the caller's clock; none is read here.
"""

from __future__ import annotations

import struct
from binascii import hexlify
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Generic, NamedTuple, Protocol, TypeVar

import orjson

from enforcer.core.fingerprint import FINGERPRINT_PREFIX, MAC_BYTES, mac_of_fingerprint
from enforcer.core.memo import remember
from enforcer.exposure.model import (
    FORMAT,
    ExposureEntry,
    ExposureFailure,
    Forward,
    SubjectExposure,
    exposure_key,
    parse_exposure_record,
    seconds_of,
    text_of,
)
from enforcer.exposure.retract import Allowed, ExposureRetraction, retractions_of
from enforcer.ledger.store import RetractionReason

SLOT = struct.Struct("<32sHHHBIIII")
"""MAC, sink topic id, type id, key id id, by-ledger flag, purpose-set id, policy
version id, first and last forwarded (seconds since 1970): 55 bytes."""
_SLOT_SIZE = SLOT.size

_IDENTITY_SIZE = MAC_BYTES + 4
"""A slot's identity: MAC, sink topic id and type id (its first 36 bytes)."""
_ATTRIBUTES = struct.Struct("<HBII")
"""The part of a slot after the identity and before the times: key id id, flag,
purpose-set id, policy version id."""
_HEAD = struct.Struct("<HH")
"""The sink topic id and type id that end a slot's identity."""
_TIMES = struct.Struct("<II")
_TIMES_AT = _IDENTITY_SIZE + _ATTRIBUTES.size
_LAST = struct.Struct("<I")
_LAST_AT = _TIMES_AT + 4
"""Where a slot's last forwarded time starts."""
_DAY = 86_400
_SMALL_TABLE = 0xFFFF
_PURPOSES_AT = _IDENTITY_SIZE + 3
"""Where a slot's purpose-set id starts (after the key id's id and the flag)."""
_PURPOSE_ID = struct.Struct("<I")
PURPOSE_SETS_KEPT = 1 << 16
"""Distinct purpose sets the state holds before it forgets those no slot uses any more
(:meth:`ExposureState.forget_unused_purposes`)."""

Undo = dict[tuple[int, bytes], "bytes | None"]
"""What a transaction changed: each touched (partition, subject key) before its first
change in the transaction (``None``: nothing exposed). :meth:`ExposureState.rollback`
puts it back when the transaction is aborted."""


class ExposureWrite(NamedTuple):
    """A record for the exposure topic: the subject's new value (``None``: tombstone)."""

    partition: int
    key: bytes
    value: bytes | None


class PreviousKey(NamedTuple):
    """The fingerprint key in force before a rotation, as a forward knows it."""

    key_id: str
    macs: Callable[[], Sequence[bytes]]
    """The previous key's MAC of each forwarded identifier, in order: asked at most once
    per record, and only for a subject holding an entry made under ``key_id``."""


class Rejudged(NamedTuple):
    """What a policy change retracts in one partition, and the values to write."""

    retractions: list[ExposureRetraction]
    writes: list[ExposureWrite]


_T = TypeVar("_T", str, tuple[str, ...])


class _Interned(Generic[_T]):
    """A table of values referred to by small numbers; a value keeps its number."""

    __slots__ = ("ids", "limit", "values")

    def __init__(self, limit: int = 0xFFFFFFFF) -> None:
        self.ids: dict[_T, int] = {}
        self.values: list[_T] = []
        self.limit = limit

    def id_of(self, value: _T) -> int:
        found = self.ids.get(value)
        if found is None:
            if len(self.values) > self.limit:
                raise ValueError("too many distinct values for the exposure state's table")
            found = self.ids[value] = len(self.values)
            self.values.append(value)
        return found


class SubjectTable(Protocol):
    """One partition's subjects: the subject key's bytes -> its blob of slots. A
    ``dict`` in memory (:class:`MemoryTable`), RocksDB on disk
    (:class:`enforcer.exposure.disk.DiskTable`)."""

    def get(self, key: bytes) -> bytes | None: ...
    def __setitem__(self, key: bytes, blob: bytes) -> None: ...
    def __delitem__(self, key: bytes) -> None: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __len__(self) -> int: ...
    def items(self) -> Iterable[tuple[bytes, bytes]]: ...
    def close(self) -> None:
        """Release the table (a disk table removes its files)."""


class MemoryTable(dict[bytes, bytes]):
    """A partition's subjects in memory."""

    def close(self) -> None:
        """Forget every subject."""
        self.clear()


class ExposureState:
    """What each subject of the worker's partitions has had forwarded, in memory (or,
    given disk tables, its blobs on disk and its small tables in memory)."""

    __slots__ = (
        "_at",
        "_attributes",
        "_entries",
        "_heads",
        "_json_attributes",
        "_json_heads",
        "_json_times",
        "_key_ids",
        "_new_table",
        "_partitions",
        "_per_partition",
        "_purposes",
        "_purposes_kept",
        "_purposes_least",
        "_sinks",
        "_types",
        "_versions",
    )

    def __init__(
        self,
        new_table: Callable[[int], SubjectTable] = lambda _: MemoryTable(),
        purpose_sets_kept: int = PURPOSE_SETS_KEPT,
    ) -> None:
        self._new_table = new_table
        self._partitions: dict[int, SubjectTable] = {}
        self._per_partition: dict[int, int] = {}
        """Entries held per partition (a disk table cannot count them cheaply)."""
        self._sinks: _Interned[str] = _Interned(_SMALL_TABLE)
        self._types: _Interned[str] = _Interned(_SMALL_TABLE)
        self._key_ids: _Interned[str] = _Interned(_SMALL_TABLE)
        self._purposes: _Interned[tuple[str, ...]] = _Interned()
        self._purposes_least = purpose_sets_kept
        self._purposes_kept = purpose_sets_kept
        """How many purpose sets may be held before the unused ones are forgotten."""
        self._versions: _Interned[str] = _Interned()
        self._entries = 0
        self._at = ("", 0)  # the last time text converted: a batch shares one
        # A slot's packed sink and type ids, and its packed attributes, by what they
        # pack: a stream repeats few, and a re-forward is on the hot path.
        self._heads: dict[tuple[str, str], bytes] = {}
        self._attributes: dict[tuple[str, bool, tuple[str, ...], str], bytes] = {}
        # The JSON text of a slot's parts, by their bytes (value()).
        self._json_heads: dict[bytes, bytes] = {}
        self._json_attributes: dict[bytes, bytes] = {}
        self._json_times: dict[bytes, bytes] = {}

    # -- sizes and reading -------------------------------------------------------

    def __len__(self) -> int:
        """The number of exposed identifiers held (entries)."""
        return self._entries

    def entries_in(self, partition: int) -> int:
        """The number of exposed identifiers held for one partition."""
        return self._per_partition.get(partition, 0)

    @property
    def subjects(self) -> int:
        """The number of subjects with at least one exposed identifier."""
        return sum(len(p) for p in self._partitions.values())

    @property
    def purpose_sets(self) -> int:
        """The distinct purpose sets held (some perhaps used by no slot any more)."""
        return len(self._purposes.values)

    @property
    def partitions(self) -> tuple[int, ...]:
        """The partitions held, sorted."""
        return tuple(sorted(self._partitions))

    def subject_ids(self, partition: int) -> list[str]:
        """The subjects of ``partition`` with something exposed."""
        table = self._partitions.get(partition)
        if table is None:
            return []
        return [key.decode("utf-8", "surrogatepass") for key in table]

    def exposure(self, partition: int, subject_id: str) -> SubjectExposure:
        """The subject's exposure (no entry when nothing is exposed)."""
        table = self._partitions.get(partition)
        blob = (None if table is None else table.get(exposure_key(subject_id))) or b""
        return SubjectExposure(subject_id, self._decode(blob))

    def slots(self, partition: int, subject_id: str) -> bytes:
        """The subject's blob of slots as it stands (empty: nothing exposed)."""
        table = self._partitions.get(partition)
        return (None if table is None else table.get(exposure_key(subject_id))) or b""

    def put_back(self, partition: int, subject_id: str, blob: bytes) -> None:
        """Make ``blob`` (from :meth:`slots`) the subject's slots again: a change undone
        within a transaction, whose undo log keeps what the transaction began with."""
        self._put(partition, exposure_key(subject_id), blob, None)

    def value(self, partition: int, subject_id: str) -> bytes | None:
        """The subject's exposure record value as it stands (``None``: a tombstone).

        Written straight from the slots, each field's JSON text made once per distinct
        value and remembered: what :func:`~enforcer.exposure.model.exposure_value`
        writes for :meth:`exposure`, at a fraction of the cost (the forward path writes
        one per changed subject)."""
        table = self._partitions.get(partition)
        blob = None if table is None else table.get(exposure_key(subject_id))
        if not blob:
            return None
        heads, attributes, times = self._json_heads, self._json_attributes, self._json_times
        # One list of parts joined once: no bytes made per entry but the MAC's hex.
        parts = [b'{"format":%d,"subject_id":' % FORMAT, orjson.dumps(subject_id), b',"entries":[']
        add = parts.append
        for start in range(0, len(blob), _SLOT_SIZE):
            head = blob[start + MAC_BYTES : start + _IDENTITY_SIZE]
            attribute = blob[start + _IDENTITY_SIZE : start + _TIMES_AT]
            time = blob[start + _TIMES_AT : start + _SLOT_SIZE]
            if start:
                add(b",")
            add(heads.get(head) or self._head_json(head))
            add(hexlify(blob[start : start + MAC_BYTES]))
            add(attributes.get(attribute) or self._attributes_json(attribute))
            add(times.get(time) or self._times_json(time))
        add(b"]}")
        return b"".join(parts)

    def _head_json(self, head: bytes) -> bytes:
        sink, kind = _HEAD.unpack(head)
        text = b'{"sink_topic":%s,"identifier_type":%s,"fingerprint":"%s' % (
            orjson.dumps(self._sinks.values[sink]),
            orjson.dumps(self._types.values[kind]),
            FINGERPRINT_PREFIX.encode(),
        )
        return remember(self._json_heads, head, text, _MEMO_LIMIT)

    def _attributes_json(self, attribute: bytes) -> bytes:
        key_id, by_ledger, purposes, version = _ATTRIBUTES.unpack(attribute)
        text = b'","key_id":%s,"purposes":%s,"by_ledger":%s,"policy_version":%s,' % (
            orjson.dumps(self._key_ids.values[key_id]),
            orjson.dumps(list(self._purposes.values[purposes])),
            b"true" if by_ledger else b"false",
            orjson.dumps(self._versions.values[version]),
        )
        return remember(self._json_attributes, attribute, text, _MEMO_LIMIT)

    def _times_json(self, times: bytes) -> bytes:
        first, last = _TIMES.unpack(times)
        text = b'"first_forwarded_at":"%s","last_forwarded_at":"%s"}' % (
            text_of(first).encode(),
            text_of(last).encode(),
        )
        return remember(self._json_times, times, text, _MEMO_LIMIT)

    def _decode(self, blob: bytes) -> tuple[ExposureEntry, ...]:
        return tuple(self._entry(slot) for slot in SLOT.iter_unpack(blob))

    def _entry(self, slot: tuple[bytes, int, int, int, int, int, int, int, int]) -> ExposureEntry:
        mac, sink, kind, key_id, by_ledger, purposes, version, first, last = slot
        return ExposureEntry(
            self._sinks.values[sink],
            self._types.values[kind],
            FINGERPRINT_PREFIX + mac.hex(),
            self._key_ids.values[key_id],
            self._purposes.values[purposes],
            bool(by_ledger),
            self._versions.values[version],
            text_of(first),
            text_of(last),
        )

    def _slot(self, entry: ExposureEntry) -> bytes:
        return SLOT.pack(
            mac_of_fingerprint(entry.fingerprint),
            self._sinks.id_of(entry.sink_topic),
            self._types.id_of(entry.identifier_type),
            self._key_ids.id_of(entry.key_id),
            entry.by_ledger,
            self._purposes.id_of(tuple(sorted(set(entry.purposes)))),
            self._versions.id_of(entry.policy_version),
            seconds_of(entry.first_forwarded_at),
            seconds_of(entry.last_forwarded_at),
        )

    # -- changes -----------------------------------------------------------------

    def forwarded(
        self,
        partition: int,
        subject_id: str,
        forwards: Iterable[Forward],
        at: str,
        undo: Undo | None = None,
    ) -> ExposureWrite | None:
        """Record that ``forwards`` (one record's identifiers) reached the sink at
        ``at`` (RFC 3339). Returns the subject's new value to write, or ``None`` when
        its value did not change.

        A new identity (sink, type, fingerprint) is a new entry, first and last
        forwarded ``at``. An exposed one changes when its key id, purposes, ledger
        flag or policy version differ (then its last forwarded time becomes ``at`` if
        later), or when ``at`` falls on a later UTC day than its last forward; else
        nothing changes. The first forwarded time never changes."""
        seconds = self._seconds(at)
        key = exposure_key(subject_id)
        table = self._partitions.get(partition)
        old = (None if table is None else table.get(key)) or b""
        blob = bytearray(old)
        merge = self._merge
        for sink, kind, fingerprint, key_id, purposes, by_ledger, version in forwards:
            merge(
                blob,
                mac_of_fingerprint(fingerprint),
                sink,
                kind,
                key_id,
                purposes,
                by_ledger,
                version,
                seconds,
            )
        if blob == old:
            return None
        self._put(partition, key, bytes(blob), undo)
        return ExposureWrite(partition, key, self.value(partition, subject_id))

    def forwarded_macs(
        self,
        partition: int,
        subject_id: str,
        sink_topic: str,
        key_id: str,
        policy_version: str,
        identifiers: Sequence[tuple[str, bytes, tuple[str, ...], bool]],
        at: str,
        undo: Undo | None = None,
        previous: PreviousKey | None = None,
    ) -> bool:
        """:meth:`forwarded` for one record's identifiers as the decision lists them
        (``(type, MAC, purposes, by_ledger)``: :class:`enforcer.core.step.
        ForwardedIdentifier`), all to ``sink_topic`` under ``key_id`` and
        ``policy_version``; True when the subject's value changed (its new value is
        :meth:`value`). The live worker's path: no fingerprint text is made.

        With ``previous`` (a key rotation under way), an identifier whose entry the
        subject holds under the previous key takes that entry over instead of becoming a
        second one (:meth:`_rekey`)."""
        seconds = self._seconds(at)
        key = exposure_key(subject_id)
        table = self._partitions.get(partition)
        old = (None if table is None else table.get(key)) or b""
        blob = bytearray(old)
        if previous is not None and self.holds_key(old, previous.key_id):
            self._rekey(blob, sink_topic, key_id, policy_version, identifiers, seconds, previous)
        else:
            merge = self._merge
            for kind, mac, purposes, by_ledger in identifiers:
                merge(
                    blob,
                    mac,
                    sink_topic,
                    kind,
                    key_id,
                    purposes,
                    by_ledger,
                    policy_version,
                    seconds,
                )
        if blob == old:
            return False
        self._put(partition, key, bytes(blob), undo)
        return True

    def unchanged(
        self,
        blob: bytes,
        sink_topic: str,
        key_id: str,
        policy_version: str,
        identifiers: Sequence[tuple[str, bytes, tuple[str, ...], bool]],
        at: str,
    ) -> bool:
        """Whether :meth:`forwarded_macs` of ``identifiers`` (without a previous key)
        would leave ``blob``, a subject's :meth:`slots`, as it is: each identifier's
        slot is there with the same attributes, last forwarded on ``at``'s UTC day or
        later. The steady state's check, an identifier forwarded again: one search per
        identifier and no copy of the blob. False whenever in doubt (the merge then
        decides, as without this check)."""
        heads, attributes = self._heads, self._attributes
        seconds = self._seconds(at)
        today = seconds - seconds % _DAY
        for kind, mac, purposes, by_ledger in identifiers:
            head = heads.get((sink_topic, kind)) or self._head_bytes(sink_topic, kind)
            attribute = attributes.get(
                (key_id, by_ledger, purposes, policy_version)
            ) or self._attribute_bytes(key_id, by_ledger, purposes, policy_version)
            # The first match is the slot the merge would find only when it is aligned.
            start = blob.find(mac + head)
            if (
                start < 0
                or start % _SLOT_SIZE
                or blob[start + _IDENTITY_SIZE : start + _TIMES_AT] != attribute
                or _LAST.unpack_from(blob, start + _LAST_AT)[0] < today
            ):
                return False
        return True

    def holds_key(self, blob: bytes, key_id: str) -> bool:
        """Whether a slot of ``blob`` (a subject's :meth:`slots`) was made under
        ``key_id``: two strided slices and a search, at C speed (no Python loop over the
        slots)."""
        number = self._key_ids.ids.get(key_id)
        if number is None or not blob:
            return False
        low, high = number & 0xFF, number >> 8
        lows = blob[_IDENTITY_SIZE::_SLOT_SIZE]
        highs = blob[_IDENTITY_SIZE + 1 :: _SLOT_SIZE]
        at = lows.find(low)
        while at >= 0:
            if highs[at] == high:
                return True
            at = lows.find(low, at + 1)
        return False

    def _rekey(
        self,
        blob: bytearray,
        sink: str,
        key_id: str,
        version: str,
        identifiers: Sequence[tuple[str, bytes, tuple[str, ...], bool]],
        seconds: int,
        previous: PreviousKey,
    ) -> None:
        """:meth:`_merge` for a subject that holds entries made under the previous key: an
        identifier whose previous-key entry (same sink and type, the previous key's MAC
        of the same value) is there takes that entry over, so the subject keeps one entry
        per identifier, with the earlier first forwarded time (docs/exposure.md, "Key
        rotation")."""
        old_number = self._key_ids.ids[previous.key_id]
        macs: Sequence[bytes] | None = None
        for index, (kind, mac, purposes, by_ledger) in enumerate(identifiers):
            head = self._heads.get((sink, kind)) or self._head_bytes(sink, kind)
            if not _holds_head_under(blob, head, old_number):
                self._merge(blob, mac, sink, kind, key_id, purposes, by_ledger, version, seconds)
                continue
            if macs is None:
                macs = previous.macs()  # once per record, and only here
            old_at = _find_under(blob, macs[index] + head, old_number)
            if old_at < 0:
                self._merge(blob, mac, sink, kind, key_id, purposes, by_ledger, version, seconds)
                continue
            first, last = _TIMES.unpack_from(blob, old_at + _TIMES_AT)
            new_at = _find(blob, mac + head)
            if new_at >= 0:
                # Already forwarded under the key in force too (a rotation that began
                # without the previous key): the two entries become the new-key one.
                new_first, new_last = _TIMES.unpack_from(blob, new_at + _TIMES_AT)
                first, last = min(first, new_first), max(last, new_last)
                del blob[new_at : new_at + _SLOT_SIZE]
                old_at = _find_under(blob, macs[index] + head, old_number)
            blob[old_at : old_at + _SLOT_SIZE] = (
                mac
                + head
                + self._attribute_bytes(key_id, by_ledger, purposes, version)
                + _TIMES.pack(min(first, seconds), max(last, seconds))
            )

    def _head_bytes(self, sink: str, kind: str) -> bytes:
        """A slot's packed sink and type ids, remembered."""
        return remember(
            self._heads,
            (sink, kind),
            _HEAD.pack(self._sinks.id_of(sink), self._types.id_of(kind)),
            _MEMO_LIMIT,
        )

    def _attribute_bytes(
        self, key_id: str, by_ledger: bool, purposes: tuple[str, ...], version: str
    ) -> bytes:
        """A slot's packed attributes, remembered."""
        return remember(
            self._attributes,
            (key_id, by_ledger, purposes, version),
            _ATTRIBUTES.pack(
                self._key_ids.id_of(key_id),
                by_ledger,
                self._purposes.id_of(tuple(sorted(set(purposes)))),
                self._versions.id_of(version),
            ),
            _MEMO_LIMIT,
        )

    def _seconds(self, at: str) -> int:
        text, seconds = self._at
        if at != text:
            seconds = seconds_of(at)
            self._at = (at, seconds)
        return seconds

    def _merge(
        self,
        blob: bytearray,
        mac: bytes,
        sink: str,
        kind: str,
        key_id: str,
        purposes: tuple[str, ...],
        by_ledger: bool,
        version: str,
        seconds: int,
    ) -> None:
        # The packed parts are remembered, and looked up inline: a re-forward is on the
        # hot path.
        head = self._heads.get((sink, kind)) or self._head_bytes(sink, kind)
        identity = mac + head
        attributes = self._attributes.get(
            (key_id, by_ledger, purposes, version)
        ) or self._attribute_bytes(key_id, by_ledger, purposes, version)
        start = _find(blob, identity)
        if start < 0:
            blob += identity + attributes + _TIMES.pack(seconds, seconds)
            return
        first, last = _TIMES.unpack_from(blob, start + _TIMES_AT)
        same = blob[start + _IDENTITY_SIZE : start + _TIMES_AT] == attributes
        if same and seconds // _DAY <= last // _DAY:
            return
        blob[start + _IDENTITY_SIZE : start + _SLOT_SIZE] = attributes + _TIMES.pack(
            first, max(last, seconds)
        )

    def retract(
        self,
        partition: int,
        subject_id: str,
        allowed: Allowed,
        undo: Undo | None = None,
    ) -> tuple[tuple[ExposureEntry, ...], ExposureWrite | None]:
        """Remove the subject's exposed entries that ``allowed`` no longer allows.
        Returns them, and the subject's new value to write (``None`` when nothing was
        removed; a tombstone value when nothing stays exposed)."""
        key = exposure_key(subject_id)
        table = self._partitions.get(partition)
        blob = None if table is None else table.get(key)
        if blob is None:
            return (), None
        kept, removed = [], []
        for slot in SLOT.iter_unpack(blob):
            entry = self._entry(slot)
            if allowed(subject_id, entry):
                kept.append(SLOT.pack(*slot))
            else:
                removed.append(entry)
        if not removed:
            return (), None
        self._put(partition, key, b"".join(kept), undo)
        return tuple(removed), ExposureWrite(partition, key, self.value(partition, subject_id))

    def rejudge(
        self,
        partition: int,
        allowed: Allowed,
        policy_version: str,
        undo: Undo | None = None,
        subjects: Iterable[str] | None = None,
    ) -> Rejudged:
        """A policy change: re-judge every subject of ``partition`` (or those of
        ``subjects``: a part of them, when the work is split) by ``allowed`` (the new
        policy, and the ledger as it stands) and remove what it no longer allows.
        Returns a ``policy-changed`` retraction (naming ``policy_version``, the new one)
        per removed entry, and the changed subjects' new values."""
        retractions: list[ExposureRetraction] = []
        writes: list[ExposureWrite] = []
        for subject_id in self.subject_ids(partition) if subjects is None else subjects:
            removed, write = self.retract(partition, subject_id, allowed, undo)
            if write is None:
                continue
            writes.append(write)
            retractions += retractions_of(
                subject_id, removed, RetractionReason.POLICY_CHANGED, policy_version=policy_version
            )
        return Rejudged(retractions, writes)

    def forget_unused_purposes(self) -> int | None:
        """Once more distinct purpose sets are held than ``purpose_sets_kept`` (or
        twice the number last kept, or a sixteenth of the entries, whichever is more),
        keep only those some slot still uses and number them anew, in every slot;
        returns how many were kept, or ``None`` when it was not yet time.

        Every purpose set ever forwarded stays in the table otherwise, used or not: a
        stream whose tags vary (a campaign or request id among them) would grow it
        without end. Call it only between transactions: an undo log or a caller holding
        a slot's bytes would still name the old numbers."""
        held = len(self._purposes.values)
        if held <= max(self._purposes_kept, self._entries // 16):
            return None
        old = self._purposes.values
        renumbered: dict[int, int] = {}
        kept = _Interned[tuple[str, ...]]()
        for table in self._partitions.values():
            for key in list(table):
                blob = table.get(key)
                if not blob:
                    continue
                slots = bytearray(blob)
                for at in range(_PURPOSES_AT, len(slots), _SLOT_SIZE):
                    (number,) = _PURPOSE_ID.unpack_from(slots, at)
                    new = renumbered.get(number)
                    if new is None:
                        new = renumbered[number] = kept.id_of(old[number])
                    _PURPOSE_ID.pack_into(slots, at, new)
                if slots != blob:
                    table[key] = bytes(slots)
        self._purposes = kept
        # Their bytes and their JSON name sets by the old numbers.
        self._attributes.clear()
        self._json_attributes.clear()
        self._purposes_kept = max(self._purposes_least, 2 * len(kept.values))
        return len(kept.values)

    def restore(
        self, partition: int, key: bytes | None, value: bytes | None
    ) -> ExposureFailure | None:
        """Apply one record of the exposure topic (a restore): its value replaces the
        subject's exposure, a tombstone empties it. A malformed record forgets the
        subject's exposure and is returned (docs/exposure.md: "A malformed value")."""
        parsed = parse_exposure_record(key, value)
        if isinstance(parsed, ExposureFailure):
            if key:
                self._put(partition, key, b"", None)
            return parsed
        try:
            blob = b"".join(self._slot(entry) for entry in parsed.entries)
        except ValueError as exc:  # a table full: refused like a malformed value
            if key:
                self._put(partition, key, b"", None)
            return ExposureFailure(str(exc))
        self._put(partition, exposure_key(parsed.subject_id), blob, None)
        return None

    def drop(self, partition: int) -> None:
        """Forget a partition (it was revoked); its table is closed."""
        table = self._partitions.pop(partition, None)
        if table is not None:
            table.close()
        self._entries -= self._per_partition.pop(partition, 0)

    def close(self) -> None:
        """Forget every partition and close its table."""
        for partition in self.partitions:
            self.drop(partition)

    def rollback(self, undo: Undo) -> None:
        """Put back every subject ``undo`` recorded, as it was, and empty ``undo``."""
        for (partition, key), old in undo.items():
            self._put(partition, key, old or b"", None)
        undo.clear()

    def _put(self, partition: int, key: bytes, blob: bytes, undo: Undo | None) -> None:
        """Make ``blob`` the subject's slots (empty: forget the subject)."""
        table = self._partitions.get(partition)
        if table is None:
            table = self._partitions[partition] = self._new_table(partition)
        old = table.get(key)
        if undo is not None:
            undo.setdefault((partition, key), old)
        if blob:
            table[key] = blob
        elif old is not None:
            del table[key]
        change = (len(blob) - len(old or b"")) // _SLOT_SIZE
        self._entries += change
        self._per_partition[partition] = self._per_partition.get(partition, 0) + change

    def holds_text(self, text: str) -> bool:
        """Whether ``text`` appears in anything kept besides the subject ids (for
        tests: never a raw value)."""
        needle = text.encode("utf-8", "surrogatepass")
        blobs: Iterator[tuple[bytes, bytes]] = (
            item for table in self._partitions.values() for item in table.items()
        )
        if any(needle in blob for _, blob in blobs):
            return True
        tables: list[object] = [
            *self._sinks.values,
            *self._types.values,
            *self._key_ids.values,
            *self._purposes.values,
            *self._versions.values,
        ]
        return any(text in repr(value) for value in tables)


_MEMO_LIMIT = 4096


def _find(blob: bytearray, identity: bytes) -> int:
    """Where the slot with this identity starts in ``blob``, or -1 (slots are aligned:
    a match inside a slot's other fields is no match)."""
    start = blob.find(identity)
    while start >= 0:
        if start % _SLOT_SIZE == 0:
            return start
        start = blob.find(identity, start + 1)
    return -1


def _holds_head_under(blob: bytearray, head: bytes, key_number: int) -> bool:
    """Whether a slot of ``blob`` has this sink and type and was made under the key
    interned as ``key_number`` (the sink, type and key ids lie side by side in a slot)."""
    needle = head + struct.pack("<H", key_number)
    start = blob.find(needle)
    while start >= 0:
        if start % _SLOT_SIZE == MAC_BYTES:
            return True
        start = blob.find(needle, start + 1)
    return False


def _find_under(blob: bytearray, identity: bytes, key_number: int) -> int:
    """:func:`_find`, for a slot made under the key interned as ``key_number``."""
    key = struct.pack("<H", key_number)
    start = blob.find(identity)
    while start >= 0:
        if (
            start % _SLOT_SIZE == 0
            and blob[start + _IDENTITY_SIZE : start + _IDENTITY_SIZE + 2] == key
        ):
            return start
        start = blob.find(identity, start + 1)
    return -1
