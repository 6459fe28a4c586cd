"""The live ledger's bookkeeping, without a broker: restore up to the committed offset,
holds on a group's first start kept until a commit has them, rollback of an aborted
transaction, reuse of a partition given back unchanged, and a source partition whose
ledger partition is elsewhere kept waiting."""

from __future__ import annotations

from typing import Any, cast

import pytest
from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition

from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.models import DeadLetterReason
from enforcer.core.policy.load import load_policy
from enforcer.ledger.retract import passes_under
from enforcer.live.ledger import LiveLedger
from enforcer.testing.ledger import ledger_value

from ..conftest import KEY

LEDGER, SOURCE, SINK = "purposes", "events", "audience"
ADS, MFA = ("marketing.advertising",), ("security.mfa",)
FP = Fingerprinter(KEY)


class FakeMessage:
    """What LiveLedger reads of a consumed record."""

    def __init__(
        self,
        partition: int,
        offset: int,
        key: str | bytes | None,
        value: bytes | None,
        timestamp_ms: int = 1_700_000_000_000,
    ) -> None:
        self._partition, self._offset, self._key, self._value = partition, offset, key, value
        self._timestamp_ms = timestamp_ms

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key.encode() if isinstance(self._key, str) else self._key

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp_ms)


def message(
    partition: int,
    offset: int,
    key: str | bytes | None,
    value: bytes | None,
    timestamp_ms: int = 1_700_000_000_000,
) -> Message:
    return cast(Message, FakeMessage(partition, offset, key, value, timestamp_ms))


def consent(subject: str, purposes: tuple[str, ...], at: str = "2026-01-01T00:00:00Z") -> bytes:
    return ledger_value(subject, at, [("email", f"{subject}@example.org", purposes)])


def live(**settings: Any) -> LiveLedger:
    """A live ledger over the test's topics under the default policy (``settings``:
    LiveLedger's own)."""
    clock = iter(range(1000))
    return LiveLedger(
        LEDGER,
        SOURCE,
        SINK,
        FP,
        passes_under(load_policy(None)),
        "sha256:test",
        lambda: float(next(clock)),
        **settings,
    )


def committed_at(offsets: dict[int, int]) -> Any:
    def committed(partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, offsets.get(tp.partition, -1001))
            for tp in partitions
        ]

    return committed


def both(*partitions: int) -> list[TopicPartition]:
    return [TopicPartition(t, p) for p in partitions for t in (SOURCE, LEDGER)]


def granted(
    ledger: LiveLedger, partition: int, subject: str, value: str | None = None
) -> tuple[str, ...] | None:
    """What the partition's ledger grants the subject's email (``subject@example.org``
    unless ``value`` is given)."""
    grants = ledger.subject(partition, subject)
    email = value if value is not None else f"{subject}@example.org"
    return None if grants is None else grants("email", FP.mac("email", email))


def test_restore_is_silent_up_to_the_committed_offset_then_retracts() -> None:
    ledger = live()
    assignment, paused = ledger.assign(both(0), committed_at({0: 2}))
    assert TopicPartition(LEDGER, 0, OFFSET_BEGINNING) in assignment
    assert [(tp.topic, tp.partition) for tp in paused] == [(SOURCE, 0)]
    assert ledger.restoring(0)
    # Before the committed offset: applied silently, withdrawal included.
    assert ledger.read(message(0, 0, "a", consent("a", ADS))) is None
    assert ledger.read(message(0, 1, "a", consent("a", MFA))) is None
    assert ledger.restoring(0)
    # The first record at the committed offset ends the restore and is applied for real.
    read = ledger.read(message(0, 2, "b", consent("b", ADS)))
    assert read is not None and read.outputs == [] and read.dead_letter is None
    assert not ledger.restoring(0) and ledger.take_restored() == [0]
    assert granted(ledger, 0, "a") == MFA and granted(ledger, 0, "b") == ADS
    withdrawn = ledger.read(message(0, 3, "b", consent("b", MFA, "2026-02-01T00:00:00Z")))
    assert withdrawn is not None and len(withdrawn.outputs) == 1
    out = withdrawn.outputs[0]
    assert out.topic == SINK and out.key == b"b" and b"b@example.org" not in (out.value or b"")
    assert ("enforcer.action", b"retracted") in out.headers
    assert ledger.holds() == {}


def test_a_first_start_holds_the_end_until_a_commit_has_it() -> None:
    """An abort must not lose the offset the restore ended at (or the next owner would
    restore past updates this worker applied and never committed)."""
    ledger = live()
    ledger.assign(both(0), committed_at({}))
    assert ledger.read(message(0, 0, "a", consent("a", ADS))) is None
    ledger.at_end(0, 1)
    assert ledger.take_restored() == [0]
    assert ledger.holds() == {0: 1}
    ledger.rolled_back()  # an aborted transaction
    assert ledger.holds() == {0: 1}
    ledger.committed({(SOURCE, 0): 10})  # a commit without the ledger partition
    assert ledger.holds() == {0: 1}
    ledger.committed({(LEDGER, 0): 1})
    assert ledger.holds() == {}


def test_an_aborted_transaction_is_rolled_back_so_its_retraction_comes_again() -> None:
    ledger = live()
    ledger.assign(both(0), committed_at({0: 0}))
    ledger.at_end(0, 0)
    first = ledger.read(message(0, 0, "a", consent("a", ADS)))
    assert first is not None and first.outputs == []
    ledger.committed({(LEDGER, 0): 1})
    withdrawal = message(0, 1, "a", consent("a", MFA, "2026-02-01T00:00:00Z"))
    once = ledger.read(withdrawal)
    assert once is not None and len(once.outputs) == 1
    ledger.rolled_back()
    assert granted(ledger, 0, "a") == ADS
    again = ledger.read(withdrawal)  # read again after the rewind
    assert again is not None and again.outputs == once.outputs
    ledger.committed({(LEDGER, 0): 2})
    assert ledger.stats.retractions == {"purpose-withdrawn": 1}


def test_a_commit_forgets_the_purpose_sets_no_identifier_refers_to() -> None:
    """A subject whose grants keep changing leaves no trail of old purpose sets once
    committed; a rolled-back transaction's are kept until then, and its subject is
    granted what it was."""
    ledger = live()
    ledger.assign(both(0), committed_at({0: 0}))
    ledger.at_end(0, 0)
    for offset in range(4):
        value = consent("a", (f"consent.day{offset}",), f"2026-01-0{offset + 1}T00:00:00Z")
        ledger.read(message(0, offset, "a", value))
        ledger.committed({(LEDGER, 0): offset + 1})
    state = ledger.store(0)
    assert state is not None and state.purpose_sets == 1
    ledger.read(message(0, 4, "a", consent("a", ADS, "2026-02-01T00:00:00Z")))
    ledger.rolled_back()
    assert granted(ledger, 0, "a") == ("consent.day3",)
    ledger.committed({(SOURCE, 0): 1})
    assert state.purpose_sets == 1 and granted(ledger, 0, "a") == ("consent.day3",)


def test_a_partition_given_back_unchanged_is_kept_and_a_moved_one_restored() -> None:
    ledger = live()
    ledger.assign(both(0, 1), committed_at({0: 0, 1: 0}))
    for partition in (0, 1):
        ledger.at_end(partition, 0)
        ledger.read(message(partition, 0, f"s{partition}", consent(f"s{partition}", ADS)))
    ledger.committed({(LEDGER, 0): 1, (LEDGER, 1): 1})
    ledger.revoked()
    # Partition 0 comes back at the offset this worker committed; 1 was moved on.
    assignment, paused = ledger.assign(both(0, 1), committed_at({0: 1, 1: 5}))
    assert TopicPartition(LEDGER, 0, 1) in assignment
    assert TopicPartition(LEDGER, 1, OFFSET_BEGINNING) in assignment
    assert [(tp.topic, tp.partition) for tp in paused] == [(SOURCE, 1)]
    assert granted(ledger, 0, "s0") == ADS
    assert granted(ledger, 1, "s1") is None  # being restored afresh


def test_a_restore_ending_past_the_committed_offset_keeps_the_committed_one() -> None:
    """A transaction marker after the committed offset puts the end one further: the
    state still stands at the committed offset, so it is kept when given back."""
    ledger = live()
    ledger.assign(both(0), committed_at({0: 4}))
    ledger.at_end(0, 5)
    ledger.revoked()
    assignment, paused = ledger.assign(both(0), committed_at({0: 4}))
    assert TopicPartition(LEDGER, 0, 4) in assignment and paused == []


def test_a_source_partition_without_its_ledger_partition_waits() -> None:
    ledger = live()
    _, paused = ledger.assign(
        [TopicPartition(SOURCE, 0), TopicPartition(SOURCE, 1), TopicPartition(LEDGER, 0)],
        committed_at({0: 0}),
    )
    assert (SOURCE, 1) in {(tp.topic, tp.partition) for tp in paused}
    assert granted(ledger, 1, "x") is None


def mistaken_withdrawals(subject: str) -> list[bytes]:
    """A withdrawal (``subject`` keeps MFA only) written with one mistake each: a purpose
    tag that is no tag, an updated_at that is no time, not JSON, another subject_id, a
    NaN, not an object, nothing."""
    meant = consent(subject, MFA, "2026-02-01T00:00:00Z")
    return [
        meant.replace(b'"security.mfa"', b'"Security MFA"'),
        meant.replace(b"2026-02-01T00:00:00Z", b"yesterday"),
        meant[:-1],
        consent("someone-else", MFA, "2026-02-01T00:00:00Z"),
        meant.replace(b'"identifiers":', b'"x":NaN,"identifiers":'),
        b"[" + meant + b"]",
        b"",
    ]


def test_an_invalid_record_is_a_dead_letter_that_withholds_its_keys_subject() -> None:
    """Fail closed: a withdrawal written with a mistake must not leave the old grant in
    force. The record is dead-lettered, its key's subject keeps no purpose (known, so no
    fallback to an event's claim) and what passed is retracted as withdrawn; an abort
    puts the grant back; a restore that finds only that record (compaction) reaches the
    same state; the subject's next valid value is its state again."""
    for offset, value in enumerate(mistaken_withdrawals("a")):
        ledger = live()
        ledger.assign(both(0), committed_at({0: 0}))
        ledger.at_end(0, 0)
        assert ledger.read(message(0, 0, "a", consent("a", ADS))) is not None
        ledger.committed({(LEDGER, 0): 1})
        read = ledger.read(message(0, 1, "a", value, timestamp_ms=1_800_000_000_000))
        assert read is not None and read.dead_letter is not None, offset
        assert read.dead_letter.record.source.topic == LEDGER
        assert granted(ledger, 0, "a") == ()
        assert len(read.outputs) == 1, offset
        out = read.outputs[0].value or b""
        assert b"a@example.org" not in out and b"purpose-withdrawn" in out
        assert b'"2027-01-15T08:00:00.000Z"' in out  # dated by the record's time
        ledger.rolled_back()
        assert granted(ledger, 0, "a") == ADS
        ledger.read(message(0, 1, "a", value))
        ledger.committed({(LEDGER, 0): 2})
        assert ledger.stats.retractions == {"purpose-withdrawn": 1}
        again = ledger.read(message(0, 2, "a", consent("a", ADS, "2026-03-01T00:00:00Z")))
        assert again is not None and again.dead_letter is None and again.outputs == []
        assert granted(ledger, 0, "a") == ADS
        # Compacted to the invalid value alone, a restore finds the subject withheld.
        restored = live()
        restored.assign(both(0), committed_at({0: 2}))
        assert restored.read(message(0, 1, "a", value)) is None
        restored.at_end(0, 2)
        assert not restored.restoring(0) and granted(restored, 0, "a") == ()
    # A record of a partition this worker no longer holds is ignored.
    assert ledger.read(message(7, 0, "a", consent("a", ADS))) is None


def test_a_key_that_names_no_subject_withholds_nothing() -> None:
    """A key that is not UTF-8 (or empty) is no event's subject id: its invalid record
    is a dead letter that changes nothing."""
    ledger = live()
    ledger.assign(both(0), committed_at({0: 0}))
    ledger.at_end(0, 0)
    ledger.read(message(0, 0, "a", consent("a", ADS)))
    for offset, key in enumerate([b"a\xff", b""], start=1):
        read = ledger.read(message(0, offset, key, consent("a", MFA)))
        assert read is not None and read.dead_letter is not None and read.outputs == []
        bad_tag = consent("a", MFA).replace(b'"security.mfa"', b'"Security MFA"')
        read = ledger.read(message(0, offset, key, bad_tag))
        assert read is not None and read.dead_letter is not None and read.outputs == []
    assert granted(ledger, 0, "a") == ADS


def test_an_unkeyed_value_is_a_dead_letter_live_and_skipped_in_a_restore() -> None:
    """A value without a key grants nothing: read live it is a schema dead letter with the
    ledger's coordinates; met again during a restore it is skipped like any invalid one."""
    ledger = live()
    ledger.assign(both(0), committed_at({0: 1}))
    assert ledger.read(message(0, 0, None, consent("a", ADS))) is None  # restored: skipped
    read = ledger.read(message(0, 1, None, consent("b", ADS)))
    assert not ledger.restoring(0)
    assert read is not None and read.outputs == [] and read.dead_letter is not None
    dead = read.dead_letter
    assert (dead.record.source.topic, dead.record.source.partition) == (LEDGER, 0)
    assert dead.record.source.offset == 1 and dead.error_reason is DeadLetterReason.SCHEMA
    assert granted(ledger, 0, "a") is None and granted(ledger, 0, "b") is None


def test_a_record_time_past_the_year_9999_stops_nothing() -> None:
    """Kafka takes any timestamp a producer sets (10**15 ms is the year 33658: a producer
    writing microseconds). An erasure with one is applied like any other, and its
    retraction written; it neither raises nor is skipped."""
    ledger = live()
    ledger.assign(both(0), committed_at({0: 1}))
    assert ledger.read(message(0, 0, "a", consent("a", ADS), timestamp_ms=10**15)) is None
    read = ledger.read(message(0, 1, "b", consent("b", ADS)))
    assert read is not None and not ledger.restoring(0)
    assert granted(ledger, 0, "a") == ADS
    erased = ledger.read(message(0, 2, "a", None, timestamp_ms=10**15))
    assert erased is not None and len(erased.outputs) == 1
    assert b'"9999-12-31T23:59:59.999Z"' in (erased.outputs[0].value or b"")
    assert not granted(ledger, 0, "a")  # nothing granted any more


def ambiguous(subject: str) -> bytes:
    """A value whose identifier has two purposes keys: a reader taking the first sees
    MFA only (a withdrawal), the enforcer's parser the last (advertising)."""
    grant_ads = consent(subject, ADS)
    return grant_ads.replace(b'"purposes":', b'"purposes":["security.mfa"],"purposes":', 1)


def test_an_ambiguous_record_is_a_dead_letter_and_withdraws_what_passed() -> None:
    """Live: dead-lettered, the subject keeps no purpose, its passing identifier is
    retracted; in a restore the subject keeps none either; an abort puts it back."""
    ledger = live()
    ledger.assign(both(0), committed_at({0: 2}))
    assert ledger.read(message(0, 0, "a", consent("a", ADS))) is None
    assert ledger.read(message(0, 1, "a", ambiguous("a"))) is None  # restored silently
    assert granted(ledger, 0, "a") == ()
    assert ledger.read(message(0, 2, "b", consent("b", ADS))) is not None
    ledger.committed({(LEDGER, 0): 3})
    read = ledger.read(message(0, 3, "b", ambiguous("b")))
    assert read is not None and read.dead_letter is not None
    assert read.dead_letter.error_reason is DeadLetterReason.SCHEMA
    assert granted(ledger, 0, "b") == ()
    assert len(read.outputs) == 1 and b"b@example.org" not in (read.outputs[0].value or b"")
    assert b"purpose-withdrawn" in (read.outputs[0].value or b"")
    ledger.rolled_back()
    assert granted(ledger, 0, "b") == ADS


@pytest.mark.parametrize("kind", ["ambiguous", "bad tag"])
def test_a_withheld_subject_asks_exposure_for_exact_retractions(kind: str) -> None:
    """With exposure, a refused value asks for what was forwarded and no longer allowed,
    as a withdrawal does: the state it sees already keeps no purpose."""
    ledger = live()
    ledger.assign(both(0), committed_at({0: 0}))
    ledger.at_end(0, 0)
    asked: list[tuple[int, str, str, tuple[str, ...] | None]] = []

    def exact(
        partition: int, subject_id: str, reason: Any, updated_at: str, rekeyed: Any = None
    ) -> list[Any]:
        # What exposure's judgement will see: the state after the record.
        now = granted(ledger, 0, subject_id, "a@example.org")
        asked.append((partition, subject_id, str(reason), now))
        return []

    ledger.exact = exact
    ledger.read(message(0, 0, "a", consent("a", ADS)))
    refused = ambiguous("a") if kind == "ambiguous" else mistaken_withdrawals("a")[0]
    read = ledger.read(message(0, 1, "a", refused))
    assert read is not None and read.dead_letter is not None
    assert asked == [(0, "a", "purpose-withdrawn", ADS), (0, "a", "purpose-withdrawn", ())]
