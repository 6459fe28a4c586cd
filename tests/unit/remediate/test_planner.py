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
from enforcer.core.models import Mode
from enforcer.core.policy.load import parse_policy
from enforcer.core.step import InputRecord, Source, Step
from enforcer.remediate.history import SinkRecord
from enforcer.remediate.judge import Judge
from enforcer.remediate.plan import Plan, parse_plan, plan_bytes
from enforcer.remediate.planner import Planner

from ..conftest import NOW
from .histories import FP, POLICY, SINK, VALUES, History, histories, records_of, reference

POLICY_OBJECT = parse_policy(POLICY.encode(), origin="test.yaml")


def _plan(records: list[SinkRecord]) -> tuple[Planner, Plan]:
    planner = Planner(Judge(POLICY_OBJECT, FP, FixedClock(NOW)), SINK, "identity.events")
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


@settings(max_examples=100, deadline=None)
@given(histories, st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_the_order_partitions_are_read_in(
    history: History, rnd: random.Random
) -> None:
    records = records_of(history)
    by_partition: dict[int, list[SinkRecord]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record)
    # Any interleaving that keeps each partition's own order, as a reader may yield.
    shuffled: list[SinkRecord] = []
    queues = [list(q) for q in by_partition.values()]
    while queues:
        queue = rnd.choice(queues)
        shuffled.append(queue.pop(0))
        queues = [q for q in queues if q]
    assert _plan(shuffled)[1] == _plan(records)[1]
    assert _plan(shuffled)[1].plan_id == _plan(records)[1].plan_id


@settings(max_examples=100, deadline=None)
@given(histories)
def test_no_raw_value_is_ever_in_the_plan(history: History) -> None:
    _, plan = _plan(records_of(history))
    text = plan_bytes(plan)
    for values in VALUES.values():
        for value in values:
            assert value.encode() not in text
    assert parse_plan(text) == plan


def test_counts_of_what_was_read() -> None:
    """Forwarded, retractions, foreign records and unreadable forwarded ones are counted
    apart; only the first two move exposure."""
    event = {
        "event_id": "e",
        "subject_id": "acct-1",
        "occurred_at": "2025-11-30T00:00:00Z",
        "identifiers": [
            {"type": "email", "value": "a@x.org", "purposes": ["analytics.reporting"]},
            {"type": "email", "value": "b@x.org", "purposes": ["marketing.advertising"]},
        ],
    }
    passed = (("enforcer.action", b"passed"),)
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
            (f.type, f.mac, j.rule_name)
            for f, j in zip(outcome.forwarded_identifiers, decision.identifiers, strict=True)
        ]
        assert judge(source) == (outcome.subject_id, listed)
