"""What an apply still has to write (docs/remediate.md, "Applying a plan"): the plan's
retractions less those the sink holds with this plan's id, in batches."""

from __future__ import annotations

import orjson
import pytest

from enforcer.core.step import Headers
from enforcer.exposure.model import SubjectExposure, exposure_value, parse_exposure_record
from enforcer.exposure.retract import retraction_value
from enforcer.remediate.apply import (
    batches,
    exposure_held,
    exposure_writes,
    retraction_headers,
    still_to_write,
    written_by,
)
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
