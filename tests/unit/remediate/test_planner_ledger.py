"""Planning against a purpose ledger (docs/remediate.md): an exposed identifier is judged
as the decision judges it now, by what the ledger grants when it knows it."""

from __future__ import annotations

import orjson

from enforcer.core.clock import FixedClock
from enforcer.core.policy.load import parse_policy
from enforcer.ledger.lookup import WholeLedger
from enforcer.ledger.replay import replay_ledger_lines
from enforcer.remediate.history import SinkRecord
from enforcer.remediate.judge import Judge
from enforcer.remediate.planner import Planner
from enforcer.testing.ledger import ledger_value

from ..conftest import NOW
from .histories import FP, POLICY, SINK

ADS, ANALYTICS = "marketing.advertising", "analytics.reporting"


def _forwarded(offset: int, *identifiers: tuple[str, str, list[str]]) -> SinkRecord:
    event = {
        "event_id": f"e{offset}",
        "subject_id": "acct-1",
        "occurred_at": "2025-11-30T00:00:00Z",
        "identifiers": [{"type": t, "value": v, "purposes": p} for t, v, p in identifiers],
    }
    headers = (("enforcer.action", b"passed"),)
    return SinkRecord(b"acct-1", orjson.dumps(event), headers, 0, offset, 1_764_500_000_000)


def test_the_ledger_decides_for_the_identifiers_it_knows() -> None:
    """Under ``fallback``: a@ was forwarded for ads and the ledger now grants analytics
    only (retracted); b@ was forwarded for analytics but the ledger grants ads (kept);
    c@ is unknown to the ledger and judged by its own tags (ads: kept)."""
    ledger = replay_ledger_lines(
        [
            ledger_value(
                "acct-1",
                "2025-12-01T00:00:00Z",
                [("email", "a@x.org", [ANALYTICS]), ("email", "b@x.org", [ADS])],
            )
        ],
        FP,
    )
    policy = parse_policy((POLICY + "ledger: fallback\n").encode(), origin="test.yaml")
    judge = Judge(policy, FP, FixedClock(NOW), WholeLedger(ledger.state))
    planner = Planner(judge, SINK, "identity.events")
    planner.add(
        _forwarded(
            0,
            ("email", "a@x.org", [ADS]),
            ("email", "b@x.org", [ANALYTICS]),
            ("email", "c@x.org", [ADS]),
        )
    )
    plan = planner.plan()
    assert plan.ledger == "fallback"
    assert plan.exposed == 3
    assert [(r.fingerprint, r.rule) for r in plan.retractions] == [
        (FP("email", "a@x.org"), "purpose-not-granted")
    ]
