"""Exposure judged as the decision judges: what the step forwards under a policy is
allowed by the same policy (re-judging it retracts nothing), and under another policy
an exposed identifier is allowed exactly when the step would pass it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import event as event_
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerMode
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.load import parse_policy
from enforcer.core.step import OutcomeKind
from enforcer.exposure.model import Forward
from enforcer.exposure.retract import allowed_under
from enforcer.exposure.state import ExposureState
from enforcer.ledger.lookup import WholeLedger
from enforcer.ledger.retract import claimed_passes_under, passes_under
from enforcer.ledger.state import Grant, LedgerState

from ..conftest import KEY, event, ident, make_step, record

FP = Fingerprinter(KEY)
DEFAULT = (Path(__file__).resolve().parents[3] / "policies" / "default.yaml").read_text(
    encoding="utf-8"
)
# The new policy: the default without its advertising allow-list (looser), or with an
# allow-list of email advertising only (stricter).
LOOSER = DEFAULT.split("destinations:")[0] + "taxonomy:" + DEFAULT.split("taxonomy:")[1]
STRICTER = DEFAULT.replace("allow: [marketing.advertising]", "allow: [marketing.advertising.email]")
VALUES = {"email": ["ann@example.com", "bob@example.com"], "phone": ["+14155550100"]}
TAGS = [
    [],
    ["marketing.advertising"],
    ["marketing.advertising.email"],
    ["security.mfa"],
    ["marketing.advertising", "security.mfa"],
    ["analytics.reporting"],
]
MODE_LINE = {LedgerMode.OFF: "ledger: off\n", LedgerMode.FALLBACK: "ledger: fallback\n"}


def _policy(text: str, mode: LedgerMode, version: str) -> Policy:
    text = MODE_LINE.get(mode, "") + text
    return parse_policy(text.encode(), origin=f"{version}.yaml", destination="audience-building")


_identifier = st.sampled_from(["email", "phone"]).flatmap(
    lambda kind: st.tuples(st.just(kind), st.sampled_from(VALUES[kind]), st.sampled_from(TAGS))
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(list(LedgerMode)),
    st.lists(_identifier, min_size=1, max_size=3),
    st.lists(_identifier, max_size=3),
    st.sampled_from([LOOSER, STRICTER]),
)
def test_exposure_is_judged_as_the_step_judges(
    mode: LedgerMode,
    identifiers: list[tuple[str, str, list[str]]],
    granted: list[tuple[str, str, list[str]]],
    new_text: str,
) -> None:
    ledger = LedgerState()
    ledger.replace(
        "acct-1",
        "2026-11-30T12:00:00Z",
        [Grant(kind, FP(kind, value), tuple(sorted(set(tags)))) for kind, value, tags in granted],
    )
    lookup = None if mode is LedgerMode.OFF else WholeLedger(ledger)
    old, new = _policy(DEFAULT, mode, "v1"), _policy(new_text, mode, "v2")
    the_event: dict[str, Any] = event(*(ident(k, v, t) for k, v, t in identifiers))
    outcome, decision = make_step(old, lookup).explain(record(the_event))
    if decision is None or outcome.kind not in {OutcomeKind.PASSED, OutcomeKind.REDACTED}:
        return  # nothing of it reached the sink
    forwarded = [
        (
            index,
            Forward(
                "sink",
                j.type,
                FP(j.type, identifiers[index][1]),
                FP.key_id,
                j.purposes,
                j.from_ledger,
                old.version,
            ),
        )
        for index, j in enumerate(decision.identifiers)
        if j.rule is None
    ]
    state = ExposureState()
    state.forwarded(0, "acct-1", [f for _, f in forwarded], "2026-11-30T12:00:00Z")
    # the same policy and ledger: nothing to retract
    same = allowed_under(passes_under(old), mode, ledger if lookup else None)
    assert all(same("acct-1", e) for e in state.exposure(0, "acct-1").entries)
    # a new policy: allowed exactly when the step under it passes the identifier
    _, new_decision = make_step(new, lookup).explain(record(the_event))
    assert new_decision is not None  # the same tags, the same taxonomy: judged again
    allowed = allowed_under(passes_under(new), mode, ledger if lookup else None)
    entries = {e.fingerprint: e for e in state.exposure(0, "acct-1").entries}
    retracted = 0
    # An identifier listed twice in one record is exposed under its last judgement.
    last = {forward.fingerprint: index for index, forward in forwarded}
    for index, forward in forwarded:
        if last[forward.fingerprint] != index:
            continue
        entry = entries[forward.fingerprint]
        assert allowed("acct-1", entry) == (new_decision.identifiers[index].rule is None)
        retracted += not allowed("acct-1", entry)
    event_(f"{mode.value}: {len(forwarded)} forwarded, {retracted} retracted by the change")


# The default with a taxonomy that rejects (dead-letters) a record claiming a tag outside
# it: analytics is not in it.
REJECTING = DEFAULT + "\ntaxonomy:\n  purposes: [marketing, security]\n  unknown: reject\n"


def test_a_tag_outside_a_rejecting_taxonomy_is_not_allowed_when_the_event_claimed_it() -> None:
    """The new policy dead-letters a record whose identifier claims a tag outside its
    taxonomy: exposed by its event's own tags, the identifier is no longer allowed.
    Exposed by the ledger's purposes, the same tag is judged like any other (a ledger's
    tag never dead-letters a record)."""
    tags = ["marketing.advertising", "analytics.reporting"]
    the_event = event(ident("email", "ann@example.com", tags))
    old = _policy(DEFAULT, LedgerMode.OFF, "v1")
    new = _policy(REJECTING, LedgerMode.OFF, "v2")
    assert make_step(old).explain(record(the_event))[0].kind is OutcomeKind.PASSED
    assert make_step(new).explain(record(the_event))[0].kind is OutcomeKind.DEADLETTERED
    state = ExposureState()
    for by_ledger in (False, True):
        forward = Forward(
            "sink",
            "email",
            FP("email", "ann@example.com"),
            FP.key_id,
            tuple(sorted(tags)),
            by_ledger,
            old.version,
        )
        state.forwarded(0, f"acct-{by_ledger}", [forward], "2026-11-30T12:00:00Z")
    allowed = allowed_under(
        passes_under(new), LedgerMode.OFF, None, claimed=claimed_passes_under(new)
    )
    assert [
        allowed(subject, entry)
        for subject in ("acct-False", "acct-True")
        for entry in state.exposure(0, subject).entries
    ] == [False, True]
    # Under the default, which has no taxonomy, both stay allowed.
    before = allowed_under(
        passes_under(old), LedgerMode.OFF, None, claimed=claimed_passes_under(old)
    )
    assert all(
        before(s, e) for s in ("acct-False", "acct-True") for e in state.exposure(0, s).entries
    )
