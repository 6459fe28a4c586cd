"""What an apply still has to write (docs/remediate.md, "Applying a plan"): the plan's
retractions less those the sink holds with this plan's id, in batches."""

from __future__ import annotations

import orjson
import pytest

from enforcer.core.step import Headers
from enforcer.exposure.retract import retraction_value
from enforcer.remediate.apply import batches, retraction_headers, still_to_write, written_by
from enforcer.remediate.plan import HistoryCounts, Plan, PlannedRetraction

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
