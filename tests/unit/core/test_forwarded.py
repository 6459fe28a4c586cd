"""What a step built with ``exposure=True`` lists as forwarded (docs/exposure.md, "What
the decision hands exposure"): the same on the formats path as on the identity event's
path, each identifier fingerprinted once even when the ledger asked about it, and
nothing at all without exposure."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerLookup
from enforcer.core.policy.load import default_policy_bytes, load_policy, parse_policy
from enforcer.core.step import InputRecord, Outcome, OutcomeKind, Source, Step
from enforcer.formats.reader import build_reader

from ..conftest import KEY, NOW, event, ident, record
from .test_one_pass import FP, LEDGER

MAPPING = b"""
formats:
  mappings:
    - name: accounts
      topics: [identity.accounts]
      subject_id: user.id
      occurred_at: at
      identifiers:
        - {path: "emails[*].value", type: email, purposes: {path: "emails[*].tags"}}
        - {path: "phones[*].value", type: phone, purposes: {path: "phones[*].tags"}}
"""
LEDGER_LINES = {"off": b"", "fallback": b"\nledger: fallback\n", "audit": b""}


def formats_step(setting: str) -> Step:
    text = default_policy_bytes() + MAPPING + LEDGER_LINES[setting]
    if setting == "audit":
        text = text.replace(b"mode: enforce", b"mode: audit")
    policy = parse_policy(text, origin="forwarded.yaml")
    ledger = LEDGER if setting == "fallback" else None
    reader = build_reader(policy, None)
    return Step(policy, Fingerprinter(KEY), FixedClock(NOW), ledger, reader, exposure=True)


STEPS = {setting: formats_step(setting) for setting in LEDGER_LINES}
tags = st.lists(
    st.sampled_from(
        ["marketing.advertising", "security.mfa", "analytics", " Marketing.Advertising"]
    ),
    max_size=2,
)
entry = st.fixed_dictionaries(
    {"value": st.sampled_from(["\u2602a", "\u2602b", "+14155550100", " \u2602a"]), "tags": tags}
)


@settings(max_examples=300)
@given(
    st.sampled_from(sorted(STEPS)),
    st.lists(entry, max_size=3),
    st.lists(entry, max_size=3),
)
def test_the_formats_path_lists_what_the_identity_events_path_lists(
    setting: str, emails: list[dict[str, Any]], phones: list[dict[str, Any]]
) -> None:
    """One account as a mapped JSON record and as an identity event: the same kind of
    outcome and the same forwarded identifiers, in the same order."""
    step = STEPS[setting]
    mapped: dict[str, Any] = {"user": {"id": "acct-1"}, "at": "2019-10-08T12:00:00Z"}
    mapped |= {"emails": emails, "phones": phones}
    identity = event(
        *(ident("email", e["value"], e["tags"]) for e in emails),
        *(ident("phone", p["value"], p["tags"]) for p in phones),
    )
    source = Source("identity.accounts", 0, 1)
    on_formats = step(InputRecord(b"k", orjson.dumps(mapped), (), source))
    as_event = record(identity)
    on_one_pass = step(as_event)
    assert on_one_pass == step.explain_by_reference(as_event)[0]
    assert on_formats.kind == on_one_pass.kind
    assert on_formats.forwarded_identifiers == on_one_pass.forwarded_identifiers


def _computed(exposure: bool, ledger: LedgerLookup | None, outcome_kind: OutcomeKind) -> int:
    text = default_policy_bytes() + (b"\nledger: fallback\n" if ledger else b"")
    policy = parse_policy(text, origin="count.yaml")
    fingerprinter = Fingerprinter(KEY)
    step = Step(policy, fingerprinter, FixedClock(NOW), ledger, exposure=exposure)
    outcome: Outcome = step(
        record(
            event(
                ident("email", "\u2602a", ["marketing.advertising"]),
                ident("device_id", "d-1", ["marketing.advertising"]),
                ident("phone", "+14155550100", ["security.mfa"]),
            )
        )
    )
    assert outcome.kind is outcome_kind
    # Every value here is short, so each MAC computed is one remembered.
    return fingerprinter.remembered()


def test_an_identifier_the_ledger_asked_about_is_not_fingerprinted_again() -> None:
    """With a ledger every identifier is fingerprinted for the lookup; exposure reuses
    those. Without one, exposure fingerprints the kept identifiers (the violation
    fingerprints the stopped one)."""
    assert _computed(False, LEDGER, OutcomeKind.REDACTED) == 3
    assert _computed(True, LEDGER, OutcomeKind.REDACTED) == 3
    assert _computed(False, None, OutcomeKind.REDACTED) == 1
    assert _computed(True, None, OutcomeKind.REDACTED) == 3


def test_the_listed_identifiers_carry_the_violations_fingerprints() -> None:
    step = Step(load_policy(None), Fingerprinter(KEY), FixedClock(NOW), exposure=True)
    outcome = step(record(event(ident("Email", "Ann@Example.com", ["marketing.advertising"]))))
    assert outcome.forwarded_identifiers is not None
    (only,) = outcome.forwarded_identifiers
    assert only.fingerprint == FP("email", "Ann@Example.com") == FP("email", "ann@example.com")
    assert (only.type, only.purposes) == ("email", ("marketing.advertising",))
    assert not only.by_ledger


def test_without_exposure_nothing_is_listed() -> None:
    step = Step(load_policy(None), Fingerprinter(KEY), FixedClock(NOW))
    assert not step.exposure
    for tags_given in (["marketing.advertising"], ["security.mfa"]):
        outcome = step(record(event(ident("email", "a@b.c", tags_given))))
        assert outcome.forwarded_identifiers is None
