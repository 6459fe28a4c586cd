"""The purpose ledger in the decision step (docs/contract.md: default policy, violation event;
docs/ledger.md).

The decision table through :class:`~enforcer.core.step.Step` under the shipped default
policy, properties over generated ledgers and events, and the edge cases: subject,
type and spelling of an identifier, a ``reject`` taxonomy, audit mode, ``ledger: off``
and a ledger setting without a ledger.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter, normalize_value
from enforcer.core.ledger_view import LedgerMode, SubjectGrants
from enforcer.core.models import DeadLetterReason
from enforcer.core.policy.compiled import Policy, PolicyConfigError
from enforcer.core.policy.load import (
    default_policy_bytes,
    load_policy,
    parse_policy,
)
from enforcer.core.purposes import normalize_tag, within_any
from enforcer.core.step import (
    HEADER_ACTION,
    FindingSummary,
    InputRecord,
    Outcome,
    OutcomeKind,
    Source,
    Step,
)
from enforcer.ledger.lookup import WholeLedger
from enforcer.ledger.model import SubjectErasure, SubjectUpdate, parse_ledger_record
from enforcer.ledger.state import LedgerState, Passes, Retraction, RetractionReason, grants_of

from ..conftest import KEY, NOW, event, ident, make_step, record

FP = Fingerprinter(KEY)
OFF, FALLBACK, AUTHORITATIVE = LedgerMode.OFF, LedgerMode.FALLBACK, LedgerMode.AUTHORITATIVE
ADS, MFA, SMS = "marketing.advertising", "security.mfa", "essential.service.notifications.sms"
SECURITY_ONLY, MISSING = "security-only-purpose", "missing-purpose"
NOT_ALLOWED, NOT_GRANTED = "purpose-not-allowed", "purpose-not-granted"
PASSED, REDACTED = OutcomeKind.PASSED, OutcomeKind.REDACTED
DROPPED, DEADLETTERED = OutcomeKind.DROPPED, OutcomeKind.DEADLETTERED
SUBJECT = "acct-1"  # the subject of conftest's event()
PHONE, OTHER_PHONE, EMAIL = "+14155550100", "+14155550199", "ads@example.com"
T0, T1 = "2019-10-01T00:00:00Z", "2019-10-02T00:00:00Z"


def policy_with(*, ledger: str | None = None, replace: Sequence[tuple[str, str]] = ()) -> Policy:
    """The shipped default policy's text, each ``(old, new)`` substituted (``old``
    occurs exactly once), and ``ledger: <setting>`` appended when given."""
    text = default_policy_bytes().decode()
    for old, new in replace:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    if ledger is not None:
        text += f"\nledger: {ledger}\n"
    return parse_policy(text.encode(), origin="ledger-test.yaml")


DEFAULT = load_policy(None)
SET_OFF = policy_with(ledger='"off"')  # quoted: see the unquoted test below
SET_FALLBACK = policy_with(ledger="fallback")
SET_AUTHORITATIVE = policy_with(ledger="authoritative")
SECURITY = DEFAULT.rules[0].namespaces


def ledger_value(subject: str, *identifiers: dict[str, Any], updated_at: str = T0) -> bytes:
    """A ledger record's value: the subject's whole current state."""
    return orjson.dumps(
        {"subject_id": subject, "updated_at": updated_at, "identifiers": list(identifiers)}
    )


def apply(
    state: LedgerState,
    subject: str,
    value: bytes | None,
    passes: Passes | None = None,
    *,
    unknown_passed: bool = False,
) -> list[Retraction]:
    """Apply one ledger record (``None``: a tombstone) the way a worker does: parsed,
    its raw values fingerprinted by :func:`grants_of`."""
    parsed = parse_ledger_record(subject.encode(), value)
    if isinstance(parsed, SubjectErasure):
        return state.erase(parsed.subject_id, T1, passes)
    assert isinstance(parsed, SubjectUpdate), parsed
    grants = grants_of(parsed.identifiers, FP)
    return state.replace(
        parsed.subject_id, parsed.updated_at, grants, passes, unknown_passed=unknown_passed
    )


def ledger_of(subject: str, *identifiers: dict[str, Any]) -> WholeLedger:
    """A ledger holding one subject's state."""
    state = LedgerState()
    apply(state, subject, ledger_value(subject, *identifiers))
    return WholeLedger(state)


def passes_under(policy: Policy) -> Passes:
    """The retraction judge: would an identifier with these ledger purposes flow?"""
    return lambda kind, purposes: policy.rule_for(kind, purposes) is None


def findings_of(out: Outcome) -> list[dict[str, Any]]:
    assert out.violation is not None
    findings: list[dict[str, Any]] = out.violation["findings"]
    return findings


# --- 1. The decision table ---------------------------------------------------------

CLAIMS: dict[str, list[str] | None] = {
    "none": None,  # the event declares no purpose (field left out)
    "security": [MFA],
    "advertising": [ADS],
    "both": [MFA, ADS],
    "other": [SMS],
}
LEDGERS: dict[str, list[str]] = {
    "security": [MFA],
    "advertising": [ADS],
    "none": [],  # known, nothing granted
    "other": [SMS],
}
PASS = None
Expected = tuple[str, list[str]] | None
"""``(rule, purposes judged by)`` of the phone's finding, or PASS."""

# Known to the ledger: judged by the ledger's purposes, in fallback and authoritative
# alike; purpose-not-granted when the event claims what the ledger does not grant.
KNOWN: dict[tuple[str, str], Expected] = {
    ("security", "none"): (SECURITY_ONLY, [MFA]),
    ("security", "security"): (SECURITY_ONLY, [MFA]),
    ("security", "advertising"): (NOT_GRANTED, [MFA]),
    ("security", "both"): (NOT_GRANTED, [MFA]),
    ("security", "other"): (NOT_GRANTED, [MFA]),
    ("advertising", "none"): PASS,
    ("advertising", "security"): PASS,
    ("advertising", "advertising"): PASS,
    ("advertising", "both"): PASS,
    ("advertising", "other"): PASS,
    ("none", "none"): (MISSING, []),
    ("none", "security"): (NOT_GRANTED, []),
    ("none", "advertising"): (NOT_GRANTED, []),
    ("none", "both"): (NOT_GRANTED, []),
    ("none", "other"): (NOT_GRANTED, []),
    ("other", "none"): (NOT_ALLOWED, [SMS]),
    ("other", "security"): (NOT_GRANTED, [SMS]),
    ("other", "advertising"): (NOT_GRANTED, [SMS]),
    ("other", "both"): (NOT_GRANTED, [SMS]),
    ("other", "other"): (NOT_ALLOWED, [SMS]),
}
# Ledger off, or unknown to the ledger under fallback: the event's tags alone.
BY_CLAIMS: dict[str, Expected] = {
    "none": (MISSING, []),
    "security": (SECURITY_ONLY, [MFA]),
    "advertising": PASS,
    "both": PASS,
    "other": (NOT_ALLOWED, [SMS]),
}
# Unknown to the ledger under authoritative: no purpose, whatever is claimed.
UNKNOWN_AUTHORITATIVE: Expected = (MISSING, [])


def expected(mode: LedgerMode, known: bool, ledger: str, claim: str) -> Expected:
    """The decision table of docs/ledger.md, looked up in the rows written out above."""
    if mode is OFF:
        return BY_CLAIMS[claim]
    if known:
        return KNOWN[ledger, claim]
    return BY_CLAIMS[claim] if mode is FALLBACK else UNKNOWN_AUTHORITATIVE


class Config(NamedTuple):
    policy: Policy
    with_ledger: bool
    mode: LedgerMode


CONFIGS = {
    "off-by-default-without-ledger": Config(DEFAULT, False, OFF),
    "off-set-with-ledger": Config(SET_OFF, True, OFF),
    "fallback-set": Config(SET_FALLBACK, True, FALLBACK),
    "authoritative-by-default-with-ledger": Config(DEFAULT, True, AUTHORITATIVE),
    "authoritative-set": Config(SET_AUTHORITATIVE, True, AUTHORITATIVE),
}
CASES = list(itertools.product(CONFIGS, [True, False], LEDGERS, CLAIMS))


def test_the_table_covers_every_known_combination() -> None:
    assert set(KNOWN) == set(itertools.product(LEDGERS, CLAIMS))
    assert len(CASES) == 5 * 2 * 4 * 5


@pytest.mark.parametrize(
    ("config", "known", "ledger", "claim"),
    CASES,
    ids=[
        "-".join([c, "known" if k else "unknown", f"ledger={g}", f"claims={m}"])
        for c, k, g, m in CASES
    ],
)
def test_the_decision_table(config: str, known: bool, ledger: str, claim: str) -> None:
    """The phone is judged per docs/ledger.md; an email the ledger grants advertising (and
    the event claims it for) always passes, so the record passes or is redacted."""
    policy, with_ledger, mode = CONFIGS[config]
    # Unknown: the ledger lists another number of the same subject with those purposes.
    listed = PHONE if known else OTHER_PHONE
    lookup = ledger_of(
        SUBJECT, ident("phone", listed, LEDGERS[ledger]), ident("email", EMAIL, [ADS])
    )
    step = make_step(policy, lookup if with_ledger else None)
    assert step.ledger_mode is mode
    companion = ident("email", EMAIL, [ADS])
    rec = record(event(ident("phone", PHONE, CLAIMS[claim]), companion))
    out = step(rec)

    want = expected(mode, known, ledger, claim)
    if want is PASS:
        assert out.kind is PASSED
        assert out.forward_value is rec.value  # unchanged bytes
        assert (out.violation, out.findings) == (None, ())
        return
    rule, purposes = want
    assert out.kind is REDACTED
    assert out.forward_value is not None
    assert orjson.loads(out.forward_value)["identifiers"] == [companion]
    assert PHONE.encode() not in out.forward_value
    finding: dict[str, Any] = {
        "rule": rule,
        "identifier_index": 0,
        "identifier_type": "phone",
        "purposes": purposes,
        "fingerprint": FP("phone", PHONE),
    }
    if mode is not OFF:
        finding["claimed_purposes"] = CLAIMS[claim] or []
        finding["ledger"] = "known" if known else "unknown"
    assert findings_of(out) == [finding]
    assert out.violation is not None
    assert (out.violation["action"], out.violation["mode"]) == ("redacted", "enforce")
    assert out.findings == (FindingSummary(rule, "phone"),)


# --- 2. Properties -----------------------------------------------------------------

security_tag = st.builds(
    lambda namespace, rest, messy: (
        f" {'.'.join([namespace, *rest]).upper()} " if messy else ".".join([namespace, *rest])
    ),
    st.sampled_from(SECURITY),
    st.lists(st.sampled_from(["mfa", "sms", "login"]), max_size=2),
    st.booleans(),
)
advertising_tag = st.sampled_from([ADS, f"{ADS}.sms", " Marketing.Advertising "])
other_tag = st.sampled_from(
    [SMS, "analytics", "securityx.foo", "security_team", "marketing", "advertising"]
)
invalid_tag = st.sampled_from(["Not A Tag!", "security..mfa", "", ".security", "ads/sms"])
ledger_purposes = st.lists(security_tag, min_size=1, max_size=3) | st.lists(
    security_tag | advertising_tag | other_tag, max_size=3
)
claims = st.none() | st.lists(security_tag | advertising_tag | other_tag | invalid_tag, max_size=3)

# Identities: (type, spellings); every spelling of one identity has one fingerprint.
POOL: list[tuple[str, tuple[str, ...]]] = [
    ("phone", ("+1 415-555-0101", "(415) 555-0101", "+14155550101")),
    ("phone", ("+1 415-555-0102", "415.555.0102")),
    ("email", ("a@x.io", " A@X.IO ")),
    ("email", ("b@x.io", "B@x.io")),
    ("device_id", ("dev-1", " dev-1 ")),
]


def test_every_spelling_of_an_identity_has_one_fingerprint() -> None:
    """What the properties below rely on: a spelling is the same identifier."""
    prints = [{FP(kind, spelling) for spelling in spellings} for kind, spellings in POOL]
    assert all(len(p) == 1 for p in prints)
    assert len(set().union(*prints)) == len(POOL)


class Scenario(NamedTuple):
    """A subject's ledger state and one of its events."""

    granted: list[list[str] | None]
    """Per identity of POOL, the ledger's purposes (``None``: not listed)."""
    ledger: bytes
    items: list[tuple[int, dict[str, Any]]]
    """The event's identifiers, each with the index of its identity in POOL."""

    def state(self) -> LedgerState:
        state = LedgerState()
        apply(state, SUBJECT, self.ledger)
        return state

    def record(self) -> InputRecord:
        return record(event(*(item for _, item in self.items)))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    granted = draw(st.lists(st.none() | ledger_purposes, min_size=len(POOL), max_size=len(POOL)))
    listed = []
    for (kind, spellings), purposes in zip(POOL, granted, strict=True):
        if purposes is not None:
            listed.append(ident(kind, draw(st.sampled_from(spellings)), purposes))
    items = []
    for _ in range(draw(st.integers(0, 5))):
        index = draw(st.integers(0, len(POOL) - 1))
        kind, spellings = POOL[index]
        kind = kind.upper() if draw(st.booleans()) else kind
        items.append((index, ident(kind, draw(st.sampled_from(spellings)), draw(claims))))
    return Scenario(granted, ledger_value(SUBJECT, *listed), items)


def security_only(purposes: list[str] | None) -> bool:
    """The default policy (docs/contract.md): at least one purpose, all within the security
    namespaces."""
    tags = [normalize_tag(p) for p in purposes or ()]
    return bool(tags) and all(t is not None and within_any(t, SECURITY) for t in tags)


LEDGER_POLICIES = st.sampled_from([SET_FALLBACK, SET_AUTHORITATIVE, DEFAULT])


@settings(max_examples=300)
@given(policy=LEDGER_POLICIES, case=scenarios())
def test_an_identifier_the_ledger_holds_for_security_only_is_never_forwarded(
    policy: Policy, case: Scenario
) -> None:
    """(a) The 2019 case with a ledger: whatever the event claims (advertising, other
    tags, invalid tags that dead-letter it), a security-only grant never reaches the sink."""
    state = case.state()
    out = make_step(policy, WholeLedger(state))(case.record())
    stopped = set()
    for (kind, spellings), purposes in zip(POOL, case.granted, strict=True):
        if security_only(purposes):
            fingerprint = FP(kind, spellings[0])
            assert state.purposes(SUBJECT, kind, fingerprint) is not None
            stopped.add(fingerprint)
    if not out.forwarded:
        assert out.forward_value is None
        assert out.kind in (DROPPED, DEADLETTERED)
        return
    assert out.forward_value is not None
    forwarded = json.loads(out.forward_value)["identifiers"]
    assert not [i for i in forwarded if FP(i["type"].lower(), i["value"]) in stopped]
    held = [item for index, item in case.items if security_only(case.granted[index])]
    assert not [item for item in held if item in forwarded]


@settings(max_examples=300)
@given(policy=LEDGER_POLICIES, case=scenarios())
def test_a_finding_carries_the_fingerprint_the_ledger_state_is_keyed_by(
    policy: Policy, case: Scenario
) -> None:
    """(c) A finding's fingerprint, computed from the event's spelling, is the key the
    state holds the ledger's spelling under: known iff the ledger lists the identity."""
    state = case.state()
    out = make_step(policy, WholeLedger(state))(case.record())
    if out.violation is None:
        return
    for finding in findings_of(out):
        index, _ = case.items[finding["identifier_index"]]
        kind, spellings = POOL[index]
        assert finding["identifier_type"] == kind
        assert finding["fingerprint"] == FP(kind, spellings[-1])
        held = state.purposes(SUBJECT, kind, finding["fingerprint"])
        if case.granted[index] is None:
            assert finding["ledger"] == "unknown"
            assert held is None
        else:
            assert finding["ledger"] == "known"
            assert held == tuple(finding["purposes"])


# (b) Updates and erasures of one subject, applied with the policy's judge.
SEQUENCE_POOL = POOL[0], POOL[2], POOL[4]
purpose_set = st.lists(st.sampled_from([ADS, f"{ADS}.sms", MFA, SMS, "analytics"]), max_size=2)
update = st.lists(
    st.tuples(st.integers(0, len(SEQUENCE_POOL) - 1), st.integers(0, 1), purpose_set), max_size=4
)


def verdicts(step: Step, subject: str) -> list[Outcome]:
    """Per identity, the outcome of an event of ``subject`` claiming advertising for it."""
    return [
        step(record(event(ident(kind, spellings[0], [ADS]), subject_id=subject)))
        for kind, spellings in SEQUENCE_POOL
    ]


def passing(outcomes: list[Outcome]) -> set[int]:
    return {index for index, out in enumerate(outcomes) if out.kind is PASSED}


@settings(max_examples=200)
@given(
    policy=st.sampled_from([SET_AUTHORITATIVE, DEFAULT]),
    operations=st.lists(st.none() | update, min_size=1, max_size=6),
)
def test_a_retraction_is_emitted_exactly_when_the_steps_verdict_turns_to_not_pass(
    policy: Policy, operations: list[list[tuple[int, int, list[str]]] | None]
) -> None:
    """(b) Retracted = passed before (by the step) minus passes after, one each, never
    another subject's; a retracted identifier's next finding has the retraction's
    fingerprint (c)."""
    state = LedgerState()
    step = make_step(policy, WholeLedger(state))
    assert step.ledger_mode is AUTHORITATIVE
    passes = passes_under(policy)
    bystander = [ident(kind, spellings[0], [ADS]) for kind, spellings in SEQUENCE_POOL]
    apply(state, "acct-2", ledger_value("acct-2", *bystander), passes)
    before = verdicts(step, SUBJECT)
    for number, operation in enumerate(operations):
        when = f"2019-10-{number + 1:02d}T00:00:00Z"
        if operation is None:
            value, reason = None, RetractionReason.SUBJECT_ERASED
        else:
            listed = [
                ident(SEQUENCE_POOL[i][0], SEQUENCE_POOL[i][1][spelling], purposes)
                for i, spelling, purposes in operation
            ]
            value = ledger_value(SUBJECT, *listed, updated_at=when)
            reason = RetractionReason.PURPOSE_WITHDRAWN
        retractions = apply(state, SUBJECT, value, passes)
        after = verdicts(step, SUBJECT)
        turned = passing(before) - passing(after)
        assert len(retractions) == len(turned)
        assert {(r.identifier_type, r.fingerprint) for r in retractions} == {
            (SEQUENCE_POOL[i][0], FP(SEQUENCE_POOL[i][0], SEQUENCE_POOL[i][1][0])) for i in turned
        }
        for retraction in retractions:
            assert retraction.subject_id == SUBJECT
            assert retraction.reason is reason
            assert retraction.ledger_updated_at == (T1 if operation is None else when)
            index = next(
                i for i, (kind, _) in enumerate(SEQUENCE_POOL) if kind == retraction.identifier_type
            )
            assert findings_of(after[index])[0]["fingerprint"] == retraction.fingerprint
        before = after
    assert passing(verdicts(step, "acct-2")) == set(range(len(SEQUENCE_POOL)))


marked = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=10).map(
    lambda t: "\u2602" + t  # a marker nothing but a value can contain
)


@settings(max_examples=200)
@given(
    policy=LEDGER_POLICIES,
    identities=st.lists(
        st.tuples(st.sampled_from(["phone", "email", "device_id"]), marked),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    granted=st.lists(st.none() | purpose_set, min_size=4, max_size=4),
    claimed=st.lists(st.none() | purpose_set, min_size=4, max_size=4),
    erase=st.booleans(),
)
def test_no_raw_value_in_a_violation_a_retraction_or_the_state(
    policy: Policy,
    identities: list[tuple[str, str]],
    granted: list[list[str] | None],
    claimed: list[list[str] | None],
    erase: bool,
) -> None:
    """(d) Values go in through the ledger and the event; none comes out."""
    listed = [
        ident(kind, value, purposes)
        for (kind, value), purposes in zip(identities, granted, strict=False)
        if purposes is not None
    ]
    state = LedgerState()
    passes = passes_under(policy)
    apply(state, SUBJECT, ledger_value(SUBJECT, *listed), passes)
    items = [
        ident(kind, value, purposes)
        for (kind, value), purposes in zip(identities, claimed, strict=False)
    ]
    out = make_step(policy, WholeLedger(state))(record(event(*items)))
    assert out.kind is not DEADLETTERED
    if out.violation is not None:
        assert "\u2602" not in json.dumps(out.violation, ensure_ascii=False)
        assert findings_of(out)
    for kind, value in identities:
        assert not state.holds_text(value)
        assert not state.holds_text(normalize_value(kind, value))
    if erase:
        retractions = apply(state, SUBJECT, None, passes)
    else:
        withdrawn = [{**item, "purposes": [MFA]} for item in listed]
        retractions = apply(state, SUBJECT, ledger_value(SUBJECT, *withdrawn), passes)
    assert {r.fingerprint for r in retractions} <= {FP(i["type"], i["value"]) for i in listed}
    assert not any("\u2602" in str(field) for r in retractions for field in r)
    assert not any(state.holds_text(value) for _, value in identities)


# --- 3. Edge cases -----------------------------------------------------------------


def only_finding(out: Outcome) -> dict[str, Any]:
    findings = findings_of(out)
    assert len(findings) == 1
    return findings[0]


def test_a_subject_only_knows_its_own_identifiers() -> None:
    """The ledger knows acct-A's phone; acct-B's event with the same phone is unknown."""
    lookup = ledger_of("acct-A", ident("phone", PHONE, [MFA]))
    claimed = ident("phone", PHONE, [ADS])
    owner = make_step(DEFAULT, lookup)(record(event(claimed, subject_id="acct-A")))
    assert owner.kind is DROPPED
    assert (only_finding(owner)["rule"], only_finding(owner)["ledger"]) == (NOT_GRANTED, "known")

    other = record(event(claimed, subject_id="acct-B"))
    out = make_step(DEFAULT, lookup)(other)
    assert out.kind is DROPPED
    assert only_finding(out) | {"fingerprint": None} == {
        "rule": MISSING,
        "identifier_index": 0,
        "identifier_type": "phone",
        "purposes": [],
        "fingerprint": None,
        "claimed_purposes": [ADS],
        "ledger": "unknown",
    }
    fallback = make_step(SET_FALLBACK, lookup)(other)
    assert fallback.kind is PASSED  # unknown: the event's advertising tag
    assert fallback.forward_value is other.value


@pytest.mark.parametrize(("listed_as", "sent_as"), [("email", "phone"), ("phone", "email")])
def test_the_same_value_under_another_type_is_unknown(listed_as: str, sent_as: str) -> None:
    """Known means same subject, type and value: the type is part of the identity."""
    lookup = ledger_of(SUBJECT, ident(listed_as, PHONE, [ADS]))
    step = make_step(DEFAULT, lookup)
    same = step(record(event(ident(listed_as.upper(), PHONE, [ADS]))))
    assert same.kind is PASSED  # the type is compared lower-cased
    out = step(record(event(ident(sent_as, PHONE, [ADS]))))
    assert out.kind is DROPPED
    finding = only_finding(out)
    assert (finding["rule"], finding["identifier_type"], finding["ledger"]) == (
        MISSING,
        sent_as,
        "unknown",
    )


def test_a_phone_written_differently_is_the_same_identifier() -> None:
    """``+1 415-555-0100`` in the ledger, ``(415) 555-0100`` in the event: one E.164
    number under the default region US, so the ledger knows it."""
    lookup = ledger_of(SUBJECT, ident("phone", "+1 415-555-0100", [MFA]))
    out = make_step(DEFAULT, lookup)(record(event(ident("phone", "(415) 555-0100", [ADS]))))
    assert out.kind is DROPPED
    assert only_finding(out) == {
        "rule": NOT_GRANTED,
        "identifier_index": 0,
        "identifier_type": "phone",
        "purposes": [MFA],
        "fingerprint": FP("phone", "+14155550100"),
        "claimed_purposes": [ADS],
        "ledger": "known",
    }
    assert FP("phone", "(415) 555-0100") == FP("phone", "+1 415-555-0100")


def test_without_a_default_region_a_national_number_is_another_identifier() -> None:
    """The control: with no default region (``ZZ``), ``(415) 555-0100`` is not E.164,
    so it differs from the ledger's ``+1 415-555-0100``."""
    fingerprinter = Fingerprinter(KEY, "ZZ")
    state = LedgerState()
    grants = grants_of([("phone", "+1 415-555-0100", (MFA,))], fingerprinter)
    state.replace(SUBJECT, T0, grants)
    step = Step(DEFAULT, fingerprinter, FixedClock(NOW), WholeLedger(state))
    out = step(record(event(ident("phone", "(415) 555-0100", [ADS]))))
    assert out.kind is DROPPED
    assert (only_finding(out)["rule"], only_finding(out)["ledger"]) == (MISSING, "unknown")


@pytest.mark.parametrize(
    ("granted", "claimed", "rule"),
    [
        (["security"], [" SECURITY.MFA "], SECURITY_ONLY),  # narrower than a grant: granted
        ([MFA], ["security"], NOT_GRANTED),  # broader than the grant: not granted
        ([f"{MFA}.sms"], [MFA], NOT_GRANTED),
        ([SMS], ["essential.service.notifications.sms.otp"], NOT_ALLOWED),
    ],
)
def test_a_claim_within_a_granted_namespace_is_granted(
    granted: list[str], claimed: list[str], rule: str
) -> None:
    """A claimed tag the ledger grants by namespace keeps the matching rule's name;
    ``claimed_purposes`` are the event's tags normalized."""
    lookup = ledger_of(SUBJECT, ident("phone", PHONE, granted))
    out = make_step(DEFAULT, lookup)(record(event(ident("phone", PHONE, claimed))))
    assert out.kind is DROPPED
    finding = only_finding(out)
    assert (finding["rule"], finding["purposes"], finding["ledger"]) == (rule, granted, "known")
    assert finding["claimed_purposes"] == [tag.strip().lower() for tag in claimed]


REJECTING = policy_with(replace=[("  unknown: ignore\n", "  unknown: reject\n")])


@pytest.mark.parametrize(
    ("granted", "claimed", "kind", "rule"),
    [
        (["acme.loyalty"], [ADS], DROPPED, NOT_GRANTED),
        (["acme.loyalty"], None, DROPPED, NOT_ALLOWED),
        (["acme.loyalty", ADS], [ADS], PASSED, None),
        ([MFA, "acme.loyalty"], [MFA], DROPPED, NOT_ALLOWED),
    ],
)
def test_a_ledger_tag_outside_a_rejecting_taxonomy_does_not_dead_letter_the_event(
    granted: list[str], claimed: list[str] | None, kind: OutcomeKind, rule: str | None
) -> None:
    """``taxonomy: unknown: reject`` refuses events with unknown tags; the ledger's
    unknown tag is judged like any other (it is simply not advertising)."""
    lookup = ledger_of(SUBJECT, ident("phone", PHONE, granted))
    step = make_step(REJECTING, lookup)
    assert step.ledger_mode is AUTHORITATIVE
    out = step(record(event(ident("phone", PHONE, claimed))))
    assert out.kind is kind
    if rule is not None:
        assert only_finding(out)["rule"] == rule
        assert only_finding(out)["purposes"] == sorted(granted)
    else:
        assert out.violation is None


def test_an_event_tag_outside_a_rejecting_taxonomy_still_dead_letters() -> None:
    """The control: the policy does reject, and the event's tags are validated even
    when the ledger knows the identifier."""
    lookup = ledger_of(SUBJECT, ident("phone", PHONE, ["acme.loyalty", ADS]))
    out = make_step(REJECTING, lookup)(record(event(ident("phone", PHONE, ["acme.loyalty"]))))
    assert out.kind is DEADLETTERED
    assert out.error_reason is DeadLetterReason.SCHEMA
    assert (
        out.error_message == "identifiers[0].purposes[0]: purpose is not in the policy's taxonomy"
    )


def test_audit_mode_with_a_ledger_forwards_unchanged_and_reports_purpose_not_granted() -> None:
    """Audit is a shadow: the record flows byte-identical, the violation says what
    enforce mode would have done and why."""
    audit = policy_with(replace=[("\nmode: enforce\n", "\nmode: audit\n")])
    lookup = ledger_of(SUBJECT, ident("phone", PHONE, [MFA]), ident("email", EMAIL, [ADS]))
    step = make_step(audit, lookup)
    assert step.ledger_mode is AUTHORITATIVE
    rec = record(event(ident("phone", PHONE, [ADS]), ident("email", EMAIL, [ADS])))
    out = step(rec)
    assert out.kind is PASSED
    assert out.forward_value is rec.value
    assert dict(out.forward_headers or ())[HEADER_ACTION] == b"passed"
    assert out.violation is not None
    assert (out.violation["mode"], out.violation["action"]) == ("audit", "redacted")
    assert only_finding(out) == {
        "rule": NOT_GRANTED,
        "identifier_index": 0,
        "identifier_type": "phone",
        "purposes": [MFA],
        "fingerprint": FP("phone", PHONE),
        "claimed_purposes": [ADS],
        "ledger": "known",
    }
    assert out.findings == (FindingSummary(NOT_GRANTED, "phone"),)


class SpyLedger:
    """A ledger lookup that records its calls and grants only ``security.mfa``."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, str, str]] = []

    def subject(self, partition: int, subject_id: str) -> SubjectGrants:
        def granted(identifier_type: str, mac: bytes) -> tuple[str, ...]:
            self.calls.append((partition, subject_id, identifier_type, "hmac-sha256:" + mac.hex()))
            return (MFA,)

        return granted


def test_ledger_off_ignores_a_given_ledger() -> None:
    """``ledger: off``: the event's tags decide, and the ledger is never asked."""
    spy = SpyLedger()
    step = make_step(SET_OFF, spy)
    assert step.ledger_mode is OFF
    rec = record(event(ident("phone", PHONE, [ADS])))
    out = step(rec)
    assert out.kind is PASSED
    assert out.forward_value is rec.value
    assert spy.calls == []
    # The same ledger under the default setting stops it.
    assert make_step(DEFAULT, spy)(rec).kind is DROPPED


def test_the_ledger_is_asked_for_the_records_partition_subject_type_and_fingerprint() -> None:
    """A worker holds a state per partition: the lookup names the event's."""
    spy = SpyLedger()
    data = orjson.dumps(event(ident("Phone", "(415) 555-0100", [ADS]), subject_id="acct-9"))
    out = make_step(DEFAULT, spy)(InputRecord(b"acct-9", data, (), Source("t", 7, 3)))
    assert spy.calls == [(7, "acct-9", "phone", FP("phone", PHONE))]
    assert only_finding(out)["fingerprint"] == FP("phone", PHONE)


@pytest.mark.parametrize("setting", ["authoritative", "fallback"])
def test_a_ledger_setting_without_a_ledger_is_a_configuration_error(setting: str) -> None:
    """The policy asks for a ledger that is not configured: refused, naming the file."""
    policy = policy_with(ledger=setting)
    with pytest.raises(PolicyConfigError, match=f"ledger-test.yaml: .*'ledger: {setting}'"):
        make_step(policy)
    assert make_step(SET_OFF).ledger_mode is OFF


# --- Found by these tests, fixed ---------------------------------------------------


def test_an_unquoted_ledger_off_is_accepted() -> None:
    """YAML 1.1 reads an unquoted ``off`` as false: it still means ``ledger: off``."""
    assert policy_with(ledger="off").ledger is OFF


# Under ``fallback`` an identifier unknown to the ledger is judged by the event's tags,
# but LedgerState's retractions assume what is unknown does not pass (authoritative).


def test_fallback_a_first_grant_that_stops_a_passing_identifier_retracts_it() -> None:
    """Under fallback an identifier unknown to the ledger may have flowed by its tags:
    its first grant, if it does not pass, retracts it (the worker passes
    ``unknown_passed`` in that mode)."""
    state = LedgerState()
    step = make_step(SET_FALLBACK, WholeLedger(state))
    claimed = record(event(ident("phone", PHONE, [ADS])))
    assert step(claimed).kind is PASSED  # unknown: forwarded by its advertising tag
    value = ledger_value(SUBJECT, ident("phone", PHONE, [MFA]))
    retractions = apply(state, SUBJECT, value, passes_under(SET_FALLBACK), unknown_passed=True)
    assert step(claimed).kind is DROPPED  # now known, security only
    assert [r.fingerprint for r in retractions] == [FP("phone", PHONE)]


def test_fallback_an_erased_identifier_is_not_forwarded_after_its_retraction() -> None:
    """An erased subject's identifiers have no purpose (known, nothing granted), so the
    event's tags do not let them flow again under fallback."""
    state = LedgerState()
    step = make_step(SET_FALLBACK, WholeLedger(state))
    passes = passes_under(SET_FALLBACK)
    apply(state, SUBJECT, ledger_value(SUBJECT, ident("phone", PHONE, [ADS])), passes)
    claimed = record(event(ident("phone", PHONE, [ADS])))
    assert step(claimed).kind is PASSED
    retractions = apply(state, SUBJECT, None, passes)
    assert [r.reason for r in retractions] == [RetractionReason.SUBJECT_ERASED]
    assert step(claimed).kind is not PASSED
