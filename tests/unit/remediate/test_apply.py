"""What an apply still has to write (docs/remediate.md, "Applying a plan"): the plan's
retractions less those the sink holds with this plan's id, in batches, each taking what
it retracts out of exposure when there is an exposure topic."""

from __future__ import annotations

import orjson
import pytest

from enforcer.core.step import Headers
from enforcer.exposure.model import (
    ExposureEntry,
    SubjectExposure,
    exposure_value,
    parse_exposure_record,
)
from enforcer.exposure.retract import retraction_value
from enforcer.remediate.apply import (
    ExposureHeld,
    apply_transactions,
    batches,
    exposure_held,
    exposure_writes,
    misplaced,
    retraction_headers,
    still_to_write,
    under_other_keys,
    written_by,
)
from enforcer.remediate.partitioners import crc32_partition
from enforcer.remediate.plan import HistoryCounts, Plan, PlannedExposure, PlannedRetraction

KEY_ID = "0123456789abcdef"


def _plan(count: int) -> Plan:
    retractions = tuple(
        PlannedRetraction(f"acct-{i}", "email", "hmac-sha256:" + f"{i:064x}", KEY_ID, "r")
        for i in range(count)
    )
    return Plan(
        "sink",
        "v2",
        KEY_ID,
        "off",
        None,
        None,
        (),
        HistoryCounts(),
        count,
        {},
        {},
        {},
        count,
        retractions,
    ).with_id()


def test_a_retraction_written_by_the_plan_is_not_written_again() -> None:
    plan = _plan(5)
    mine = plan.exposure_retractions()
    other = _plan(6).exposure_retractions()  # another plan: its id differs
    headers = retraction_headers(plan.policy_version)
    forwarded: Headers = (("enforcer.action", b"passed"),)
    sink: list[tuple[Headers, bytes | None]] = [
        (headers, retraction_value(mine[1])),
        (headers, retraction_value(mine[3])),
        (headers, retraction_value(other[0])),
        (headers, retraction_value(other[2])),
        (forwarded, retraction_value(mine[0])),  # not a retraction: its header says so
        (headers, None),
        (headers, b"not json"),
    ]
    written = written_by(plan.plan_id, sink)
    assert written == {(r.subject_id, r.identifier_type, r.fingerprint) for r in (mine[1], mine[3])}
    assert still_to_write(plan, written) == [mine[0], mine[2], mine[4]]
    everything = {(r.subject_id, r.identifier_type, r.fingerprint) for r in mine}
    assert still_to_write(plan, everything) == []


def test_batches() -> None:
    items = _plan(7).exposure_retractions()
    assert [len(b) for b in batches(items, 3)] == [3, 3, 1]
    assert [r for b in batches(items, 3) for r in b] == items
    with pytest.raises(ValueError):
        list(batches(items, 0))


def test_the_headers_mark_a_retraction() -> None:
    assert retraction_headers("v2") == (
        ("enforcer.action", b"retracted"),
        ("enforcer.policy", b"v2"),
    )
    body = orjson.loads(retraction_value(_plan(1).exposure_retractions()[0]))
    assert body["retraction"]["reason"] == "remediated"


def _seeded_plan() -> Plan:
    """Two subjects: acct-1 keeps e1 and has e2 retracted; acct-2 keeps e3."""
    fp = "hmac-sha256:" + "{:064x}"
    exposure = tuple(
        PlannedExposure(
            subject, "email", fp.format(n), KEY_ID, ("marketing.advertising",), False, "v1",
            "2026-11-30T10:00:00Z", "2026-12-01T10:00:00Z",
        )
        for subject, n in (("acct-1", 1), ("acct-2", 3))
    )  # fmt: skip
    retractions = (PlannedRetraction("acct-1", "email", fp.format(2), KEY_ID, "r"),)
    return Plan(
        "sink", "v2", KEY_ID, "off", None, None, (), HistoryCounts(), 3, {}, {}, {}, 1,
        retractions, exposure,
    ).with_id()  # fmt: skip


def test_seeding_writes_what_changes_and_nothing_the_second_time() -> None:
    plan = _seeded_plan()
    assert plan.exposure is not None
    e1, e3 = (seed.entry("sink") for seed in plan.exposure)
    e2 = e1._replace(fingerprint=plan.retractions[0].fingerprint)
    other_sink = e1._replace(sink_topic="another-sink")
    held = exposure_held(
        [
            (2, b"acct-1", exposure_value(SubjectExposure("acct-1", (e2, other_sink)))),
            (0, b"acct-9", b"not a value"),  # forgotten, as a worker forgets it
        ]
    )
    assert held["acct-9"].exposure.entries == ()
    writes = exposure_writes(plan, held)
    # acct-1: the retracted e2 goes, the other sink's entry stays, e1 comes; in its
    # partition. acct-2: new, where its key falls.
    assert [(w.subject_id, w.partition) for w in writes] == [("acct-1", 2), ("acct-2", None)]
    values = {w.subject_id: parse_exposure_record(w.subject_id.encode(), w.value) for w in writes}
    assert values["acct-1"] == SubjectExposure("acct-1", (other_sink, e1))
    assert values["acct-2"] == SubjectExposure("acct-2", (e3,))
    again = exposure_held(
        (2 if w.partition == 2 else 0, w.subject_id.encode(), w.value) for w in writes
    )
    assert exposure_writes(plan, again) == []


def test_a_plan_without_exposure_cannot_seed() -> None:
    with pytest.raises(ValueError, match="with-exposure"):
        exposure_writes(_plan(1), {})


def _entry(n: int, sink: str = "sink") -> ExposureEntry:
    return ExposureEntry(
        sink, "email", "hmac-sha256:" + f"{n:064x}", KEY_ID, ("marketing.advertising",), False,
        "v1", "2026-11-30T10:00:00Z", "2026-12-01T10:00:00Z",
    )  # fmt: skip


def _held(values: dict[str, tuple[ExposureEntry, ...]]) -> dict[str, ExposureHeld]:
    return exposure_held(
        (i, s.encode(), exposure_value(SubjectExposure(s, e)))
        for i, (s, e) in enumerate(values.items())
    )


def test_without_an_exposure_topic_only_retractions_are_written() -> None:
    plan = _plan(5)
    transactions = apply_transactions(plan, set(), None, 2)
    assert [len(t.retractions) for t in transactions] == [2, 2, 1]
    assert all(t.exposure == [] for t in transactions)


def test_each_transaction_takes_what_it_retracts_out_of_exposure() -> None:
    """acct-0 holds its retracted email and another sink's entry: the entry for the plan's
    sink goes, the other stays. acct-1 holds only its retracted email: a tombstone.
    acct-2 holds an email the plan does not retract: unchanged, not written. acct-3..4
    are not in the topic: nothing to write for them."""
    plan = _plan(5)
    other = _entry(0, "another-sink")
    held = _held({"acct-0": (_entry(0), other), "acct-1": (_entry(1),), "acct-2": (_entry(99),)})
    transactions = apply_transactions(plan, set(), held, 2)
    assert [[r.subject_id for r in t.retractions] for t in transactions] == [
        ["acct-0", "acct-1"],
        ["acct-2", "acct-3"],
        ["acct-4"],
    ]
    first = transactions[0].exposure
    assert [(w.subject_id, w.partition) for w in first] == [("acct-0", 0), ("acct-1", 1)]
    assert parse_exposure_record(b"acct-0", first[0].value) == SubjectExposure("acct-0", (other,))
    assert first[1].value is None
    assert transactions[1].exposure == [] and transactions[2].exposure == []
    # What the topic now holds, as the apply found it after its writes.
    assert held["acct-0"].exposure.entries == (other,) and held["acct-1"].exposure.entries == ()
    assert held["acct-2"].exposure.entries == (_entry(99),)


def test_retractions_written_earlier_are_still_taken_out_of_exposure_and_twice_is_once() -> None:
    """An apply without the exposure topic wrote acct-0..2's retractions; run again with
    it, the apply writes the other retractions and takes every retracted identifier out
    of exposure; a third run writes nothing."""
    plan = _plan(4)
    written = {(r.subject_id, r.identifier_type, r.fingerprint) for r in plan.retractions[:3]}
    held = _held({f"acct-{i}": (_entry(i), _entry(50 + i)) for i in range(4)})
    transactions = apply_transactions(plan, written, held, 2)
    assert [[r.subject_id for r in t.retractions] for t in transactions] == [["acct-3"], [], []]
    assert [[w.subject_id for w in t.exposure] for t in transactions] == [
        ["acct-3"],
        ["acct-0", "acct-1"],
        ["acct-2"],
    ]
    for i in range(4):
        assert held[f"acct-{i}"].exposure.entries == (_entry(50 + i),)
    everything = {(r.subject_id, r.identifier_type, r.fingerprint) for r in plan.retractions}
    assert apply_transactions(plan, everything, held, 2) == []


def test_seeding_after_the_retractions_only_adds() -> None:
    plan = _seeded_plan()
    assert plan.exposure is not None
    e1 = plan.exposure[0].entry("sink")
    e2 = e1._replace(fingerprint=plan.retractions[0].fingerprint)
    held = _held({"acct-1": (e2,)})
    [transaction] = apply_transactions(plan, set(), held, 10)
    assert [(w.subject_id, w.value) for w in transaction.exposure] == [("acct-1", None)]
    writes = exposure_writes(plan, held)
    assert [(w.subject_id, w.partition) for w in writes] == [("acct-1", 0), ("acct-2", None)]
    assert parse_exposure_record(b"acct-1", writes[0].value) == SubjectExposure("acct-1", (e1,))


def test_entries_under_another_key_are_counted_per_key_and_subject() -> None:
    """acct-0 holds its retracted email under the plan's key and another under an old
    key; acct-1 two entries under the old key (counted once); acct-2 an old-key entry on
    another sink (not the plan's: not counted); acct-9 is not in the plan."""
    old = "fedcba9876543210"
    held = _held(
        {
            "acct-0": (_entry(0), _entry(40)._replace(key_id=old)),
            "acct-1": (_entry(41)._replace(key_id=old), _entry(42)._replace(key_id=old)),
            "acct-2": (_entry(43, "another-sink")._replace(key_id=old),),
            "acct-9": (_entry(44)._replace(key_id="0000000000000000"),),
        }
    )
    assert under_other_keys(_plan(3), held) == {old: 2}
    assert under_other_keys(_plan(3), _held({"acct-0": (_entry(0),)})) == {}


def test_apply_warns_once_per_other_key(capsys: pytest.CaptureFixture[str]) -> None:
    """The line an apply with an exposure topic writes: never a value, only counts, the
    sink and the key ids."""
    from enforcer.cli.remediate import _warn_of_other_keys

    old = "fedcba9876543210"
    held = _held({"acct-1": (_entry(41)._replace(key_id=old),)})
    _warn_of_other_keys(_plan(3), held)
    assert capsys.readouterr().err == (
        f"enforcer: warning: exposure entries on sink under key id {old}, not the plan's "
        f"{KEY_ID}, in 1 subject of the plan: they stay in exposure (docs/remediate.md, key "
        "rotation)\n"
    )


def test_an_apply_with_nothing_to_write_says_why() -> None:
    """A plan with no retractions (one that only seeds exposure, or found nothing to take
    back) is not said to have "0 retractions all in the sink already"; a plan whose
    retractions are all there says so, with their number."""
    from enforcer.cli.remediate import _nothing_to_write

    empty = _plan(0)
    assert _nothing_to_write(empty) == (
        f"nothing to write to sink: plan {empty.plan_id} has no retractions"
    )
    full = _plan(1200)
    assert _nothing_to_write(full) == (
        f"nothing to write: the 1,200 retractions of plan {full.plan_id} are all in sink already"
    )


def test_misplaced_names_the_subjects_held_where_the_partitioner_does_not_put_them() -> None:
    """An earlier apply that seeded with murmur2 a source written with crc32: those
    values are where no worker looks for them."""

    def held(subject: str, partition: int) -> ExposureHeld:
        return ExposureHeld(partition, SubjectExposure(subject, ()))

    subjects = [f"acct-{n:05d}" for n in range(30)]
    right = {s: held(s, crc32_partition(s.encode(), 4)) for s in subjects}
    assert misplaced(right, lambda s: crc32_partition(s.encode(), 4)) == []
    wrong = {**right, "acct-00003": held("acct-00003", (right["acct-00003"].partition + 1) % 4)}
    assert misplaced(wrong, lambda s: crc32_partition(s.encode(), 4)) == ["acct-00003"]
