"""Planning over generated sink histories (docs/remediate.md, "How a plan is made"):
the retractions are exactly the identifiers exposed at the end of the history that the
policy does not allow, no raw value is ever in the plan, and the plan depends on the
history, not on the order partitions were read in."""

from __future__ import annotations

import random

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.models import Mode
from enforcer.core.policy.load import parse_policy
from enforcer.core.step import InputRecord, Source, Step
from enforcer.exposure.model import SubjectExposure, exposure_value, parse_exposure_record
from enforcer.remediate.history import SinkRecord
from enforcer.remediate.judge import Judge
from enforcer.remediate.merge import PartitionMerge
from enforcer.remediate.plan import Plan, parse_plan, plan_bytes
from enforcer.remediate.planner import Planner

from ..conftest import NOW
from .histories import (
    ADS,
    BASE_MS,
    FP,
    POLICY,
    SINK,
    VALUES,
    Forwarded,
    History,
    Identifier,
    Retracted,
    histories,
    records_of,
    reference,
)

POLICY_OBJECT = parse_policy(POLICY.encode(), origin="test.yaml")


PREVIOUS = Fingerprinter(b"the-key-before-the-rotation-0123")
"""The key used before the one in force (:data:`FP`'s), for the key rotation tests."""


def _plan(
    records: list[SinkRecord],
    *,
    with_exposure: bool = False,
    previous: Fingerprinter | None = None,
) -> tuple[Planner, Plan]:
    judge = Judge(POLICY_OBJECT, FP, FixedClock(NOW), previous=previous)
    planner = Planner(judge, SINK, "identity.events", with_exposure=with_exposure)
    planner.add_all(records)
    return planner, planner.plan()


@settings(max_examples=300, deadline=None)
@given(histories)
def test_retractions_are_exactly_the_exposed_identifiers_not_allowed(history: History) -> None:
    records = records_of(history)
    planner, plan = _plan(records)
    want = reference(records, history)
    assert {i: rule for i, rule in want.items() if rule} == {
        r.identity: r.rule for r in plan.retractions
    }
    assert planner.exposed().keys() == want.keys()
    assert plan.exposed == len(want)
    assert sum(plan.by_rule.values()) == len(plan.retractions) == sum(plan.by_day.values())
    assert plan.affected_subjects == len({r.subject_id for r in plan.retractions})
    assert all(r.key_id == FP.key_id for r in plan.retractions)
    assert plan.exposure is None


@settings(max_examples=200, deadline=None)
@given(histories)
def test_the_exposure_to_seed_is_exactly_what_stays_exposed(history: History) -> None:
    records = records_of(history)
    _, plan = _plan(records, with_exposure=True)
    want = reference(records, history)
    assert plan.exposure is not None
    assert {(e.subject_id, e.identifier_type, e.fingerprint) for e in plan.exposure} == {
        identity for identity, rule in want.items() if rule is None
    }
    for seed in plan.exposure:
        entry = seed.entry(SINK)
        value = exposure_value(SubjectExposure(seed.subject_id, (entry,)))
        assert parse_exposure_record(seed.subject_id.encode(), value) == SubjectExposure(
            seed.subject_id, (entry,)
        )
        assert seed.first_forwarded_at <= seed.last_forwarded_at


@settings(max_examples=200, deadline=None)
@given(histories, st.booleans())
def test_after_a_key_rotation_retractions_under_the_previous_key_are_matched(
    history: History, with_exposure: bool
) -> None:
    """The history's retractions were made under the previous key: given it, the plan
    is the one of the same history retracted under the key in force, seeds included."""
    rotated = records_of(history, retracted_under=PREVIOUS)
    planner, plan = _plan(rotated, with_exposure=with_exposure, previous=PREVIOUS)
    _, unrotated = _plan(records_of(history), with_exposure=with_exposure)
    assert plan.retractions == unrotated.retractions
    assert plan.exposed == unrotated.exposed
    assert plan.exposure == unrotated.exposure
    want = reference(records_of(history), history)
    assert planner.exposed().keys() == want.keys()
    assert planner.previous_key_retractions <= sum(
        isinstance(op, Retracted) for op, _, _ in history
    )


@settings(max_examples=100, deadline=None)
@given(histories)
def test_without_the_previous_key_its_retractions_match_nothing(history: History) -> None:
    """What the plan said before the previous key could be given: an identifier
    retracted under it still looks exposed (docs/remediate.md, "After a key rotation")."""
    _, plan = _plan(records_of(history, retracted_under=PREVIOUS))
    _, unrotated = _plan(records_of(history))
    assert set(unrotated.retractions) <= set(plan.retractions)
    assert plan.exposed >= unrotated.exposed


def test_retractions_under_a_key_the_plan_was_not_given_are_counted_by_key_id() -> None:
    """After a rotation planned without the previous key, the history's retractions
    under it match nothing: the planner counts them by key id so that the command can
    say which key to give; under the plan's key or the previous key they are not
    counted."""
    forward = Forwarded("acct-1", [Identifier("email", "a@x.org", ("analytics.reporting",))])
    retraction = Retracted("acct-1", "email", "a@x.org", None)
    history: History = [(forward, 0, 1_000), (retraction, 0, 2_000)]
    rotated = records_of(history, retracted_under=PREVIOUS)
    planner, plan = _plan(rotated)
    assert planner.other_key_retractions == {PREVIOUS.key_id: 1}
    assert len(plan.retractions) == 1
    planner, plan = _plan(rotated, previous=PREVIOUS)
    assert not planner.other_key_retractions and plan.retractions == ()
    planner, _ = _plan(records_of(history))
    assert not planner.other_key_retractions


def test_a_retraction_under_the_previous_key_read_first_is_settled_at_the_plan() -> None:
    """A forward in one partition and its retraction under the previous key in another,
    the retraction read first (the records' times disagree with the order they were
    written in): the plan still takes the identifier out of exposure when the
    retraction is the later record."""
    forward = Forwarded("acct-1", [Identifier("email", "a@x.org", ("analytics.reporting",))])
    retraction = Retracted("acct-1", "email", "a@x.org", None)
    history: History = [(forward, 0, 1_000), (retraction, 1, 2_000)]
    records = records_of(history, retracted_under=PREVIOUS)
    planner, plan = _plan(list(reversed(records)), previous=PREVIOUS)
    assert plan.retractions == () and plan.exposed == 0
    assert planner.previous_key_retractions == 1
    # Given before the forward in time too, it retracts nothing: the forward is later.
    early: History = [(forward, 0, 2_000), (retraction, 1, 1_000)]
    _, plan = _plan(records_of(early, retracted_under=PREVIOUS), previous=PREVIOUS)
    assert [r.rule for r in plan.retractions] == ["purpose-not-allowed"]


def _interleaved(records: list[SinkRecord], rnd: random.Random) -> list[SinkRecord]:
    """Any interleaving of ``records`` that keeps each partition's own order, as a
    reader may yield them."""
    by_partition: dict[int, list[SinkRecord]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record)
    shuffled: list[SinkRecord] = []
    queues = list(by_partition.values())
    while queues:
        queue = rnd.choice(queues)
        shuffled.append(queue.pop(0))
        queues = [q for q in queues if q]
    return shuffled


@settings(max_examples=100, deadline=None)
@given(histories, st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_the_order_partitions_are_read_in(
    history: History, rnd: random.Random
) -> None:
    records = records_of(history)
    shuffled = _interleaved(records, rnd)
    assert _plan(shuffled)[1] == _plan(records)[1]
    assert _plan(shuffled)[1].plan_id == _plan(records)[1].plan_id


@settings(max_examples=100, deadline=None)
@given(histories)
def test_no_raw_value_is_ever_in_the_plan(history: History) -> None:
    _, plan = _plan(records_of(history), with_exposure=True)
    text = plan_bytes(plan)
    for values in VALUES.values():
        for value in values:
            assert value.encode() not in text
    assert parse_plan(text) == plan


TWO_EMAILS = {
    "event_id": "e",
    "subject_id": "acct-1",
    "occurred_at": "2025-11-30T00:00:00Z",
    "identifiers": [
        {"type": "email", "value": "a@x.org", "purposes": ["analytics.reporting"]},
        {"type": "email", "value": "b@x.org", "purposes": ["marketing.advertising"]},
    ],
}
"""A forwarded event: one email the test policy stops (analytics), one it allows."""
PASSED = (("enforcer.action", b"passed"),)


def test_counts_of_what_was_read() -> None:
    """Forwarded, retractions, foreign records and unreadable forwarded ones are counted
    apart; only the first two move exposure."""
    event = TWO_EMAILS
    passed = PASSED
    records = [
        SinkRecord(b"acct-1", orjson.dumps(event), passed, 0, 0, 1_764_500_000_000),
        SinkRecord(b"acct-1", orjson.dumps(event), (), 0, 1, 1_764_500_000_001),
        SinkRecord(None, b"nope", passed, 0, 2, 1_764_500_000_002),
        SinkRecord(b"x", b"{}", (("enforcer.action", b"retracted"),), 0, 3, 1_764_500_000_003),
    ]
    _, plan = _plan(records)
    h = plan.history
    assert (h.records, h.forwarded, h.retractions, h.other, h.unreadable) == (4, 2, 0, 2, 1)
    assert plan.exposed == 2
    assert [r.fingerprint for r in plan.retractions] == [FP("email", "a@x.org")]
    assert dict(plan.by_day) == {"2025-11-30": 1}
    assert dict(plan.by_type) == {"email": 1}


@settings(max_examples=200, deadline=None)
@given(histories)
def test_the_judge_agrees_with_the_step_in_audit_mode(history: History) -> None:
    """Enforce mode (kept identifiers listed, stopped ones by their findings, a dropped
    record asked again) gives what audit mode lists for every identifier directly."""
    judge = Judge(POLICY_OBJECT, FP, FixedClock(NOW))
    audit = Step(POLICY_OBJECT.with_mode(Mode.AUDIT), FP, FixedClock(NOW), exposure=True)
    for record in records_of(history):
        source = InputRecord(record.key, record.value, record.headers, Source("s", 0, 0))
        outcome, decision = audit.explain(source)
        if outcome.error_reason is not None:
            assert judge(source) is None
            continue
        assert decision is not None and outcome.forwarded_identifiers is not None
        assert outcome.subject_id is not None
        listed = [
            (f.type, f.mac, j.rule_name, f.purposes, f.by_ledger, None)
            for f, j in zip(outcome.forwarded_identifiers, decision.identifiers, strict=True)
        ]
        assert judge(source) == (outcome.subject_id, listed)


def test_within_a_partition_the_offsets_decide_whatever_the_clocks_said() -> None:
    """A retraction written after a forward, in the same partition, by a worker whose
    clock is behind: still after it. Across partitions only the time tells."""
    event = {
        "event_id": "e",
        "subject_id": "acct-1",
        "occurred_at": "2025-11-30T00:00:00Z",
        "identifiers": [{"type": "email", "value": "a@x.org", "purposes": ["analytics.reporting"]}],
    }
    retraction = {
        "retraction": {
            "subject_id": "acct-1",
            "identifier_type": "email",
            "fingerprint": FP("email", "a@x.org"),
            "reason": "purpose-withdrawn",
        }
    }
    forwarded = SinkRecord(
        b"acct-1", orjson.dumps(event), (("enforcer.action", b"passed"),), 0, 5, 2_000
    )
    retracted = (("enforcer.action", b"retracted"),)
    behind = SinkRecord(b"acct-1", orjson.dumps(retraction), retracted, 0, 6, 1_000)
    assert _plan([forwarded, behind])[1].retractions == ()
    assert _plan([behind, forwarded])[1].retractions == ()
    elsewhere = behind._replace(partition=1, offset=0)
    assert len(_plan([forwarded, elsewhere])[1].retractions) == 1


def test_record_times_a_datetime_cannot_hold_are_held_at_its_ends() -> None:
    """A producer may give a sink record any 64-bit time (microseconds by mistake, -1):
    the plan's days hold it at 1970 or at the end of year 9999 (as the live worker
    holds record times), the exposure it seeds within the years exposure keeps (1970
    to 2106), rather than stopping the planner."""
    event = TWO_EMAILS
    passed = PASSED
    records = [
        SinkRecord(b"acct-1", orjson.dumps(event), passed, 0, 0, 2**62),
        SinkRecord(b"acct-1", orjson.dumps(event), passed, 1, 0, -5),
    ]
    _, plan = _plan(records, with_exposure=True)
    assert dict(plan.by_day) == {"9999-12-31": 1}
    assert plan.exposure is not None
    (seed,) = plan.exposure
    assert (seed.first_forwarded_at, seed.last_forwarded_at) == (
        "1970-01-01T00:00:00Z",
        "2106-02-07T06:28:15Z",
    )
    assert parse_plan(plan_bytes(plan)) == plan


def _merged(records: list[SinkRecord]) -> list[SinkRecord]:
    """``records`` as the reader gives them: merged by the partition merge."""
    merge = PartitionMerge({r.partition for r in records})
    for record in records:
        merge.add(record)
    for partition in {r.partition for r in records}:
        merge.end(partition)
    return list(merge.ready())


@settings(max_examples=100, deadline=None)
@given(histories, st.randoms(use_true_random=False))
def test_a_plan_with_exposure_does_not_depend_on_the_order_partitions_are_read_in(
    history: History, rnd: random.Random
) -> None:
    """Read through the partition merge (as ``remediate plan`` reads), any interleaving
    gives the same plan, its exposure to seed (first forwards included) and its id."""
    records = records_of(history)
    one = _plan(_merged(_interleaved(records, rnd)), with_exposure=True)[1]
    other = _plan(_merged(records), with_exposure=True)[1]
    assert one == other and one.plan_id == other.plan_id


def test_a_retraction_in_another_partition_between_two_forwards_restarts_the_first() -> None:
    """Forwarded at 10 s and 30 s in one partition, retracted at 20 s in another: the
    identifier is exposed since its forward at 30 s, whichever partition is read first."""
    event = {
        "event_id": "e",
        "subject_id": "acct-1",
        "occurred_at": "2025-11-30T00:00:00Z",
        "identifiers": [
            {"type": "email", "value": "a@x.org", "purposes": ["marketing.advertising"]}
        ],
    }
    retraction = {
        "retraction": {
            "subject_id": "acct-1",
            "identifier_type": "email",
            "fingerprint": FP("email", "a@x.org"),
            "reason": "purpose-withdrawn",
        }
    }
    base = 1_764_500_000_000
    first = SinkRecord(b"acct-1", orjson.dumps(event), PASSED, 0, 0, base + 10_000)
    again = SinkRecord(b"acct-1", orjson.dumps(event), PASSED, 0, 1, base + 30_000)
    retracted = SinkRecord(
        b"acct-1",
        orjson.dumps(retraction),
        (("enforcer.action", b"retracted"),),
        1,
        0,
        base + 20_000,
    )
    plans = [
        _plan(_merged(order), with_exposure=True)[1]
        for order in (
            [first, again, retracted],
            [retracted, first, again],
            [first, retracted, again],
        )
    ]
    assert plans[0] == plans[1] == plans[2]
    seeds = plans[0].exposure
    assert seeds is not None and len(seeds) == 1
    assert seeds[0].first_forwarded_at == seeds[0].last_forwarded_at


def test_a_retraction_that_names_no_key_is_matched_under_either_key() -> None:
    """A ledger retraction written without exposure names no key id: made before the
    rotation, its fingerprint is the previous key's, and matches the identifier it
    names; made after it, the key in force's, as ever."""
    forward = Forwarded("acct-1", [Identifier("email", "a@x.org", ("analytics.reporting",))])
    retraction = Retracted("acct-1", "email", "a@x.org", None)
    history: History = [(forward, 0, 1_000), (retraction, 1, 2_000)]

    def without_key_id(records: list[SinkRecord]) -> list[SinkRecord]:
        out = []
        for record in records:
            document = orjson.loads(record.value or b"null")
            if isinstance(document, dict) and "retraction" in document:
                del document["retraction"]["key_id"]
                out.append(record._replace(value=orjson.dumps(document)))
            else:
                out.append(record)
        return out

    for retracted_under in (PREVIOUS, FP):
        records = without_key_id(records_of(history, retracted_under=retracted_under))
        for ordered in (records, list(reversed(records))):
            planner, plan = _plan(ordered, previous=PREVIOUS)
            assert plan.retractions == () and plan.exposed == 0
            assert planner.previous_key_retractions == (retracted_under is PREVIOUS)


def _rotation_pair(
    records: list[SinkRecord], *, with_exposure: bool = False
) -> tuple[tuple[Planner, Plan], Plan]:
    """The plan of ``records`` (their retractions under :data:`PREVIOUS`) given the
    previous key, and the plan of the same records with their retractions made under
    the key in force instead, both read in the order given."""
    unrotated = []
    for record in records:
        if ("enforcer.action", b"retracted") in record.headers:
            document = orjson.loads(record.value or b"null")
            body = document["retraction"]
            kind = body["identifier_type"]
            (raw,) = [v for v in VALUES[kind] if PREVIOUS(kind, v) == body["fingerprint"]]
            body["fingerprint"], body["key_id"] = FP(kind, raw), FP.key_id
            unrotated.append(record._replace(value=orjson.dumps(document)))
        else:
            unrotated.append(record)
    rotated = _plan(records, with_exposure=with_exposure, previous=PREVIOUS)
    return rotated, _plan(unrotated, with_exposure=with_exposure)[1]


ALLOWED_EMAIL = Forwarded("acct-1", [Identifier("email", "a@x.org", (ADS,))])
"""A forward of one email the test policy allows (a seed, with exposure)."""
STOPPED_EMAIL = Forwarded("acct-1", [Identifier("email", "a@x.org", ("analytics.reporting",))])
"""A forward of one email the test policy stops."""
EMAIL_RETRACTED = Retracted("acct-1", "email", "a@x.org", None)


def test_a_retraction_under_the_previous_key_read_first_restarts_the_first_forward() -> None:
    """Retracted at 2 s in one partition, read first; forwarded at 1 s and 3 s in another:
    exposed since 3 s, as a retraction under the key in force read first says."""
    history: History = [
        (EMAIL_RETRACTED, 1, 2_000),
        (ALLOWED_EMAIL, 0, 1_000),
        (ALLOWED_EMAIL, 0, 3_000),
    ]
    (_, plan), unrotated = _rotation_pair(
        records_of(history, retracted_under=PREVIOUS), with_exposure=True
    )
    assert unrotated.exposure is not None and plan.exposure is not None
    assert [s.first_forwarded_at for s in unrotated.exposure] == ["2025-11-30T10:53:23Z"]
    assert plan.exposure == unrotated.exposure
    assert plan.plan_id == unrotated.plan_id


def test_a_retraction_under_the_previous_key_read_first_against_a_clock_that_went_back() -> None:
    """Read through the partition merge: forwarded at 10 s, then (the producer's clock
    gone back) at 1 s in one partition; retracted under the previous key at 5 s in
    another, so read first. The later forward by the log ends the retraction's effect,
    as under the key in force: the identifier is still exposed and retracted by the plan."""
    forward, retraction = STOPPED_EMAIL, EMAIL_RETRACTED
    history: History = [(forward, 0, 10_000), (forward, 0, 10_000), (retraction, 1, 5_000)]
    records = records_of(history, retracted_under=PREVIOUS)
    records[1] = records[1]._replace(timestamp_ms=records[1].timestamp_ms - 9_000)
    merged = _merged(records)
    assert merged[0].partition == 1  # the retraction is read first
    (_, plan), unrotated = _rotation_pair(merged)
    assert [r.rule for r in unrotated.retractions] == ["purpose-not-allowed"]
    assert plan.retractions == unrotated.retractions
    assert plan.exposed == unrotated.exposed == 1


def test_each_retraction_under_the_previous_key_is_counted_whenever_it_is_read() -> None:
    """Two retractions under the previous key of one identifier forwarded later: both
    named an identifier the history forwarded, read before or after its forward."""
    history: History = [
        (EMAIL_RETRACTED, 1, 1_000),
        (EMAIL_RETRACTED, 1, 2_000),
        (STOPPED_EMAIL, 0, 3_000),
    ]
    records = records_of(history, retracted_under=PREVIOUS)
    for ordered in (records, [records[2], records[0], records[1]]):
        planner, plan = _plan(ordered, previous=PREVIOUS)
        assert [r.rule for r in plan.retractions] == ["purpose-not-allowed"]
        assert planner.previous_key_retractions == 2


@settings(max_examples=300, deadline=None)
@given(histories, st.randoms(use_true_random=False), st.booleans(), st.booleans())
def test_after_a_key_rotation_any_read_order_gives_the_plan_under_the_key_in_force(
    history: History, rnd: random.Random, with_exposure: bool, clocks_go_back: bool
) -> None:
    """Read in any interleaving of the partitions (not only through the merge), the
    producers' clocks going back or not: the plan given the previous key is the one the
    same records would give with their retractions under the key in force, seeds' first
    forwards and plan id included; and every retraction of an identifier the history
    forwards is counted, once."""
    records = records_of(history, retracted_under=PREVIOUS)
    if clocks_go_back:  # each record at its own time, whatever its partition said before
        records = [
            r._replace(timestamp_ms=BASE_MS + at)
            for r, (_, _, at) in zip(records, history, strict=True)
        ]
    records = _interleaved(records, rnd)
    (planner, plan), unrotated = _rotation_pair(records, with_exposure=with_exposure)
    assert plan == unrotated and plan.plan_id == unrotated.plan_id
    forwarded = {
        (op.subject, i.kind, i.value)
        for op, _, _ in history
        if isinstance(op, Forwarded)
        for i in op.identifiers
    }
    assert planner.previous_key_retractions == sum(
        isinstance(op, Retracted) and (op.subject, op.kind, op.value) in forwarded
        for op, _, _ in history
    )


@settings(max_examples=300, deadline=None)
@given(histories, st.randoms(use_true_random=False), st.booleans(), st.booleans())
def test_retractions_under_both_keys_give_the_plan_under_the_key_in_force(
    history: History, rnd: random.Random, with_exposure: bool, clocks_go_back: bool
) -> None:
    """A history written during a rotation: some retractions under the previous key,
    some under the key in force, read in any order. Given the previous key, the plan is
    the one of the same history with every retraction under the key in force."""
    under_both = [
        rnd.choice([old, new])
        for old, new in zip(
            records_of(history, retracted_under=PREVIOUS), records_of(history), strict=True
        )
    ]
    if clocks_go_back:
        under_both = [
            r._replace(timestamp_ms=BASE_MS + at)
            for r, (_, _, at) in zip(under_both, history, strict=True)
        ]
    ordered = _interleaved(under_both, rnd)
    _, plan = _plan(ordered, with_exposure=with_exposure, previous=PREVIOUS)
    current = {(r.partition, r.offset): r for r in records_of(history)}
    unrotated = [r._replace(value=current[(r.partition, r.offset)].value) for r in ordered]
    _, want = _plan(unrotated, with_exposure=with_exposure)
    assert plan == want and plan.plan_id == want.plan_id
