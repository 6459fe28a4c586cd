"""Which purposes an identifier is judged by, under each ledger mode (docs/ledger.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.ledger_view import (
    PURPOSE_NOT_GRANTED,
    LedgerMode,
    purposes_to_judge,
)
from enforcer.core.policy.evaluate import Judgement
from enforcer.core.policy.load import load_policy
from enforcer.core.purposes import within_any

OFF, FALLBACK, AUTH = LedgerMode.OFF, LedgerMode.FALLBACK, LedgerMode.AUTHORITATIVE
ADS, MFA = "marketing.advertising", "security.mfa"
DEFAULT = load_policy(None)
SECURITY = DEFAULT.rules[0].namespaces


def passes(purposes: tuple[str, ...]) -> bool:
    """The default policy's rule: an identifier flows iff a purpose is advertising."""
    return within_any_of(purposes, (ADS,))


def within_any_of(purposes: tuple[str, ...], namespaces: tuple[str, ...]) -> bool:
    return any(within_any(tag, namespaces) for tag in purposes)


UNKNOWN = None
# ledger purposes: unknown, advertising, security only, known with nothing granted
LEDGERS = [UNKNOWN, (ADS,), (MFA,), ()]
# event claims: none declared, advertising, security, both, an invalid tag
CLAIMS = [None, [ADS], [MFA], [MFA, ADS], ["Not A Tag!"]]


def expected(
    mode: LedgerMode, ledger: tuple[str, ...] | None, claimed: list[str] | None
) -> tuple[list[str] | None, bool]:
    """The decision table of docs/ledger.md, written out case by case."""
    if mode is OFF or (ledger is UNKNOWN and mode is FALLBACK):
        return claimed, False
    if ledger is UNKNOWN:
        return None, False  # authoritative: no purpose, fail closed
    if ledger == (ADS,):
        return [ADS], False  # granted advertising: passes whatever is claimed
    granted_claims: list[list[str] | None] = [None, [MFA]] if ledger == (MFA,) else [None]
    return list(ledger), claimed not in granted_claims


@pytest.mark.parametrize("mode", list(LedgerMode))
@pytest.mark.parametrize("ledger", LEDGERS)
@pytest.mark.parametrize("claimed", CLAIMS)
def test_the_decision_table(
    mode: LedgerMode, ledger: tuple[str, ...] | None, claimed: list[str] | None
) -> None:
    """Every combination of mode, known or unknown, granted and claimed."""
    view = purposes_to_judge(mode, ledger, claimed, passes)
    assert (view.purposes, view.not_granted) == expected(mode, ledger, claimed)
    assert view.claimed_purposes == claimed
    assert view.from_ledger is (mode is not OFF and ledger is not UNKNOWN)


def test_a_claim_within_a_granted_purpose_is_granted() -> None:
    """A narrower tag under a grant is granted; a broader one is not."""
    view = purposes_to_judge(AUTH, ("security",), ["security.mfa.sms"], passes)
    assert not view.not_granted
    view = purposes_to_judge(AUTH, (MFA,), ["security"], passes)
    assert view.not_granted


def test_the_finding_rule_is_renamed_only_when_not_granted() -> None:
    """``purpose-not-granted`` replaces the matching rule's name, nothing else."""
    rule = next(r for r in DEFAULT.rules if r.name == "security-only-purpose")
    plain = Judgement("phone", (MFA,), rule, claimed=(MFA,), from_ledger=True)
    assert plain.rule_name == "security-only-purpose"
    claimed = plain._replace(not_granted=True, claimed=(ADS,))
    assert claimed.rule_name == PURPOSE_NOT_GRANTED
    assert claimed._replace(rule=None).rule_name is None


def test_the_stand_in_passes_agrees_with_the_default_policy() -> None:
    """The tests' ``passes`` is the shipped default policy's verdict."""
    for purposes in [(), (ADS,), (MFA,), (MFA, ADS), ("analytics",), (f"{ADS}.email",)]:
        assert passes(purposes) is (DEFAULT.rule_for("phone", purposes) is None)


tag = st.lists(
    st.sampled_from(["security", "mfa", "marketing", "advertising", "essential", "x", "fraud"]),
    min_size=1,
    max_size=3,
).map(".".join)
security_tag = st.builds(
    lambda ns, rest: ".".join([ns, *rest]),
    st.sampled_from(SECURITY),
    st.lists(st.sampled_from(["mfa", "sms", "login"]), max_size=2),
)


@given(
    mode=st.sampled_from([FALLBACK, AUTH]),
    ledger=st.lists(security_tag, min_size=1, max_size=3),
    claimed=st.none() | st.lists(tag | st.just(ADS), max_size=4),
)
def test_security_only_in_the_ledger_never_passes_whatever_the_event_claims(
    mode: LedgerMode, ledger: list[str], claimed: list[str] | None
) -> None:
    """The 2019 case: a number given for 2FA stays out, however the event is tagged."""
    view = purposes_to_judge(mode, tuple(sorted(set(ledger))), claimed, passes)
    assert view.purposes is not None
    assert not passes(tuple(view.purposes))
    assert DEFAULT.rule_for("phone", tuple(view.purposes)) is not None
