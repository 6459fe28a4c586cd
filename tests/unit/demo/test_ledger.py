"""The demo's ledger: built from the sample events as collected, with the 2019 mistake
injected and withdrawals that retract (pure; no broker)."""

from __future__ import annotations

import orjson

from enforcer.core.clock import SystemClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, Source, Step
from enforcer.demo.ledger import demo_ledger
from enforcer.demo.sample import sample_values
from enforcer.ledger.lookup import WholeLedger
from enforcer.ledger.model import SubjectErasure, SubjectUpdate, parse_ledger_record
from enforcer.ledger.retract import passes_under
from enforcer.ledger.state import LedgerState, grants_of

from ..conftest import KEY


def test_the_demo_ledger_catches_the_claims_and_retracts_the_withdrawals() -> None:
    values = list(sample_values(1500, seed=5))
    demo = demo_ledger(values, seed=5, withdrawals=40)
    fingerprinter = Fingerprinter(KEY)
    policy = load_policy(None)
    state = LedgerState()
    for subject, value in demo.ledger:
        parsed = parse_ledger_record(subject.encode(), value)
        assert isinstance(parsed, SubjectUpdate), parsed
        state.replace(subject, parsed.updated_at, grants_of(parsed.identifiers, fingerprinter))
    step = Step(policy, fingerprinter, SystemClock(), WholeLedger(state))
    rules = [
        finding.rule
        for n, value in enumerate(demo.events)
        for finding in step(InputRecord(None, value, (), Source("t", 0, n))).findings
    ]
    assert demo.miss_claims > 0
    # Every injected claim is caught by the ledger, whatever else the event says.
    assert rules.count("purpose-not-granted") >= demo.miss_claims
    assert len(demo.events) == len(values)
    retracted = []
    for subject, value in demo.withdrawals:
        parsed = parse_ledger_record(subject.encode(), value)
        passes = passes_under(policy)
        if isinstance(parsed, SubjectErasure):
            retracted += state.erase(subject, "2019-10-04T12:00:00Z", passes)
        else:
            assert isinstance(parsed, SubjectUpdate), parsed
            grants = grants_of(parsed.identifiers, fingerprinter)
            retracted += state.replace(subject, parsed.updated_at, grants, passes)
    reasons = {r.reason.value for r in retracted}
    assert reasons == {"purpose-withdrawn", "subject-erased"}
    assert sum(1 for _, v in demo.withdrawals if v is None) == 8
    text = b"".join(orjson.dumps(r._asdict()) for r in retracted)
    assert b"@example.com" not in text
