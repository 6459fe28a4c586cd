"""Judging a sink topic's history: what it still exposes, and what of that the given
policy would not have forwarded (docs/remediate.md, "How a plan is made").

One decision core: each forwarded record is decided again by the decision step, through
:class:`enforcer.remediate.judge.Judge`, which says for each identifier the value holds
which rule the policy would stop it by (``None``: it would flow).

Exposure is per identifier, as in docs/exposure.md: an identifier is retracted when
its own judgement names a rule, not because another identifier of its record would
have the record dropped. The last forward of an identifier is the one judged (it is
exposed under the purposes it was last forwarded with); a retraction of the same
(subject, type, fingerprint) later in the history ends its exposure.

After a key rotation, the history's retractions made under the previous key name
fingerprints of that key. Given the previous key (the judge's), each forwarded
identifier is fingerprinted under both, and a retraction under the previous key ends
the exposure of the identifier whose previous-key fingerprint it names: at once when
that identifier was forwarded before it was read, else as the identifier's first
forward is read, before that forward is taken into account (where a retraction under
the key in force would have been by then).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache

from enforcer.core.clock import kafka_millis
from enforcer.core.fingerprint import FINGERPRINT_PREFIX, mac_of_fingerprint
from enforcer.core.step import HEADER_POLICY, Headers, InputRecord, Source
from enforcer.exposure.model import MAX_SECONDS, text_of
from enforcer.remediate.history import SinkKind, SinkRecord, kind_of, read_retraction
from enforcer.remediate.judge import Judge
from enforcer.remediate.plan import (
    HistoryCounts,
    PartitionSpan,
    Plan,
    PlannedExposure,
    PlannedRetraction,
)
from enforcer.remediate.plan_checks import UNKNOWN_VERSION, is_policy_version

Identity = tuple[str, str, str]
"""(subject id, identifier type, fingerprint)."""
_Key = tuple[str, str, bytes]
"""An identity as kept while reading: the fingerprint's 32 bytes, not its text."""
Order = tuple[int, int, int]
_Last = tuple[Order, bool, str | None, int, int, tuple[str, ...], bool, str]
"""An identity's latest record: its order, whether it left the identifier exposed (a
forward) or not (a retraction), the rule the policy stops it by, its time; and for a
forward, the time of the first forward since the latest retraction, the purposes it
was judged by, whether they were the ledger's, and the policy version it was forwarded
under (its ``enforcer.policy`` header)."""


# Every field given: tuple.__new__ builds the named tuples of each forwarded record
# without their own Python __new__.
_new = tuple.__new__


def later(order: Order, than: Order) -> bool:
    """Whether a record at ``order`` (time, partition, offset) comes at or after one at
    ``than``: in one partition by offset (what the log says, whatever clocks said),
    across partitions by time, then partition and offset."""
    if order[1] == than[1]:
        return order[2] >= than[2]
    return order >= than


class Planner:
    """Reads a sink's history record by record (:meth:`add`), then makes the plan."""

    def __init__(
        self, judge: Judge, sink_topic: str, source_topic: str, *, with_exposure: bool = False
    ) -> None:
        self.judge = judge
        self.with_exposure = with_exposure
        """Whether the plan lists what stays exposed too (the policy version of each
        forward is read only then)."""
        self.sink_topic = sink_topic
        self.source_topic = source_topic
        """The topic forwarded records are judged as coming from (field mappings name
        source topics)."""
        self._last: dict[_Key, _Last] = {}
        self._current_of: dict[_Key, bytes] = {}
        """Under the previous key: an identity's fingerprint bytes under the key in force."""
        self._previous_retracted: dict[_Key, tuple[Order, int, int]] = {}
        """Under the previous key: the latest retraction of an identity not forwarded
        before it was read (its order and time), and how many such were read."""
        self.previous_key_retractions = 0
        """The history's retractions made under the previous key that name an identifier
        it forwarded."""
        self.other_key_retractions: Counter[str] = Counter()
        """The history's retractions made under a key id that is neither the plan's nor
        the previous key's, by key id: they match no identifier the plan fingerprints."""
        self._counts: Counter[str] = Counter()
        self._forwards = 0
        self._versions: dict[bytes, str] = {}

    def add_all(self, records: Iterable[SinkRecord]) -> None:
        """:meth:`add` each record."""
        for record in records:
            self.add(record)

    def add(self, record: SinkRecord) -> None:
        """Take one committed sink record into account."""
        kind = kind_of(record.headers)
        if kind is SinkKind.FORWARDED:
            self._forwards += 1  # a plain number: this runs for every record
            self._forwarded(record)
        elif kind is SinkKind.RETRACTION:
            self._counts["retractions" if self._retracted(record) else "other"] += 1
        else:
            self._counts["other"] += 1

    def _forwarded(self, record: SinkRecord) -> None:
        key, value, headers, partition, offset, at = record
        source = _new(Source, (self.source_topic, partition, offset))
        judged = self.judge(_new(InputRecord, (key, value, headers, source)))
        if judged is None:
            self._counts["unreadable"] += 1
            return
        subject, identifiers = judged
        version = self._version(headers) if self.with_exposure else ""
        # The loop runs for every forwarded identifier of the history: locals, and the
        # fingerprint's bytes (its text is made only for what the plan lists).
        order = (at, partition, offset)  # record.order
        last = self._last
        get = last.get
        current_of = self._current_of
        for kind, mac, rule, purposes, by_ledger, previous_mac in identifiers:
            identity = (subject, kind, mac)
            if previous_mac is not None:
                previous_identity = (subject, kind, previous_mac)
                if previous_identity not in current_of:
                    current_of[previous_identity] = mac
                    self._settle_previous_key(previous_identity, identity)
            old = get(identity)
            first = at
            if old is not None and old[1]:
                # Exposed since an earlier (or, read out of order, a later) forward:
                # its first forward is the earlier of the two.
                first = min(old[4], at)
            # Equal orders: one record naming an identifier twice; the last one counts.
            if old is None or later(order, old[0]):
                last[identity] = (order, True, rule, at, first, purposes, by_ledger, version)
            elif old[1] and first < old[4]:
                last[identity] = (*old[:4], first, *old[5:])

    def _version(self, headers: Headers) -> str:
        """The policy version a forwarded record's header names (interned: few);
        ``unknown`` without one, or with a header that is not a policy version (it is
        written to exposure: only what the enforcer itself writes is taken)."""
        for name, value in headers:
            if name == HEADER_POLICY and value:
                text = self._versions.get(value)
                if text is None:
                    text = value.decode("utf-8", "replace")
                    text = text if is_policy_version(text) else UNKNOWN_VERSION
                    self._versions[value] = text
                return text
        return UNKNOWN_VERSION

    def _retracted(self, record: SinkRecord) -> bool:
        retraction = read_retraction(record.value)
        if retraction is None:
            return False
        try:
            mac = mac_of_fingerprint(retraction.fingerprint)
        except ValueError:
            return False
        identity = (retraction.subject_id, retraction.identifier_type, mac)
        order, at = record.order, record.timestamp_ms
        previous_key = self.judge.previous_key_id
        made_under = retraction.key_id
        if made_under is not None and made_under not in (self.judge.key_id, previous_key):
            self.other_key_retractions[made_under] += 1
        # A retraction without a key id (a ledger retraction without exposure) may be
        # under either key: fingerprints under two keys never coincide, so one that is
        # the previous key's fingerprint of a forwarded identifier is that key's.
        if previous_key is not None and made_under in (previous_key, None):
            current = self._current_of.get(identity)
            if current is not None:
                self.previous_key_retractions += 1
                identity = (identity[0], identity[1], current)
            else:
                # Its identifier is not known yet (forwarded later): settled as its
                # first forward is read.
                held = self._previous_retracted.get(identity)
                if held is None:
                    self._previous_retracted[identity] = (order, at, 1)
                elif later(order, held[0]):
                    self._previous_retracted[identity] = (order, at, held[2] + 1)
                else:
                    self._previous_retracted[identity] = (*held[:2], held[2] + 1)
                if made_under is not None:
                    return True
        self._retract(identity, order, at)
        return True

    def _retract(self, identity: _Key, order: Order, at: int) -> None:
        old = self._last.get(identity)
        if old is None or later(order, old[0]):
            self._last[identity] = (order, False, None, at, at, (), False, "")

    def _settle_previous_key(self, previous_identity: _Key, identity: _Key) -> None:
        """As the first forward of ``identity`` (``previous_identity`` under the previous
        key) is read: the retractions under the previous key read before it take effect
        now, as a retraction under the key in force would have when it was read, so
        that the forward is weighed against them in the same way (whether it is later,
        and when its exposure started)."""
        held = self._previous_retracted.pop(previous_identity, None)
        if held is not None:
            order, at, count = held
            self.previous_key_retractions += count
            self._retract(identity, order, at)

    def exposed(self) -> dict[Identity, str | None]:
        """The identities still exposed at the end of what was read, each with the rule
        that would stop it now (``None``: allowed)."""
        return {
            (subject, kind, FINGERPRINT_PREFIX + mac.hex()): rule
            for (subject, kind, mac), (_, exposed, rule, *_) in self._last.items()
            if exposed
        }

    def plan(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        offsets: Iterable[PartitionSpan] = (),
    ) -> Plan:
        """The plan: every exposed identifier the policy stops, with counts; with
        :attr:`with_exposure`, also every one it allows, as exposure entries to seed."""
        key_id = self.judge.key_id
        retractions: list[PlannedRetraction] = []
        by_rule: Counter[str] = Counter()
        by_type: Counter[str] = Counter()
        by_day: Counter[str] = Counter()
        seeds: list[PlannedExposure] | None = [] if self.with_exposure else None
        exposed = 0
        for identity, (
            _,
            is_exposed,
            rule,
            at,
            first,
            purposes,
            by_ledger,
            version,
        ) in self._last.items():
            if not is_exposed:
                continue
            exposed += 1
            if rule is None:
                if seeds is not None:
                    subject, kind, mac = identity
                    seeds.append(
                        PlannedExposure(
                            subject,
                            kind,
                            FINGERPRINT_PREFIX + mac.hex(),
                            key_id,
                            tuple(sorted(set(purposes))),
                            by_ledger,
                            version,
                            _time(first),
                            _time(at),
                        )
                    )
                continue
            subject, kind, mac = identity
            fingerprint = FINGERPRINT_PREFIX + mac.hex()
            retractions.append(PlannedRetraction(subject, kind, fingerprint, key_id, rule))
            by_rule[rule] += 1
            by_type[kind] += 1
            by_day[_day(at)] += 1
        retractions.sort()
        counts = self._counts
        return Plan(
            sink_topic=self.sink_topic,
            policy_version=self.judge.policy_version,
            key_id=key_id,
            ledger=self.judge.ledger_mode.value,
            since=since,
            until=until,
            offsets=tuple(sorted(offsets)),
            history=HistoryCounts(
                records=self._forwards + counts["retractions"] + counts["other"],
                forwarded=self._forwards,
                retractions=counts["retractions"],
                other=counts["other"],
                unreadable=counts["unreadable"],
            ),
            exposed=exposed,
            by_rule=dict(by_rule),
            by_type=dict(by_type),
            by_day=dict(by_day),
            affected_subjects=len({r.subject_id for r in retractions}),
            retractions=tuple(retractions),
            exposure=None if seeds is None else tuple(sorted(seeds)),
        ).with_id()


def _time(timestamp_ms: int) -> str:
    """A record time as exposure writes it: RFC 3339, UTC, to the second (a producer's
    time outside the years exposure holds, 1970 to 2106, held at the nearer end)."""
    return text_of(min(kafka_millis(timestamp_ms) // 1000, MAX_SECONDS))


_DAY_MS = 86_400_000


@cache
def _day_of(day: int) -> str:
    return datetime.fromtimestamp(day * (_DAY_MS // 1000), UTC).date().isoformat()


def _day(timestamp_ms: int) -> str:
    """The UTC day of a record time (one date made per day, not per retraction)."""
    return _day_of(kafka_millis(timestamp_ms) // _DAY_MS)
