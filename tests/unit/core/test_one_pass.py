"""The one pass (enforcer/core/one_pass.py) decides exactly as the reference path.

``Step.__call__`` and ``Step.explain`` take the one pass when it can vouch for a record
and the reference path (``Step.explain_by_reference``: parse, validate, decide)
otherwise. Over generated records,
valid and nearly valid, under policies that judge types, drop, audit and consult a
ledger in each setting, the outcome of the two is the same, field for field.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from enforcer.core.clock import FixedClock, SystemClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import SubjectGrants
from enforcer.core.models import is_plain_rfc3339, parse_rfc3339
from enforcer.core.parse import ParseFailure, parse_event
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.load import default_policy_bytes, load_policy, parse_policy
from enforcer.core.step import InputRecord, OutcomeKind, Source, Step
from enforcer.demo.sample import sample_values

from ..conftest import KEY, NOW, make_step
from .test_properties import near_event, valid_event

ADS = "marketing.advertising"


def _policy(text: str, name: str) -> Policy:
    return parse_policy(text.encode(), origin=f"{name}.yaml")


def _default_with(*pairs: tuple[str, str], ledger: str | None = None) -> Policy:
    text = default_policy_bytes().decode()
    for old, new in pairs:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    if ledger is not None:
        text += f"\nledger: {ledger}\n"
    return _policy(text, "one-pass")


class DictLedger:
    """A ledger that grants advertising to some fingerprints, nothing to others, and
    knows nothing of the subject ``UNKNOWN_SUBJECT``."""

    def __init__(self, granted: dict[bytes, tuple[str, ...]]) -> None:
        self._granted = granted

    def subject(self, partition: int, subject_id: str) -> SubjectGrants | None:
        return None if subject_id == UNKNOWN_SUBJECT else self.granted

    def granted(self, identifier_type: str, mac: bytes) -> tuple[str, ...] | None:
        return self._granted.get(mac)


UNKNOWN_SUBJECT = "acct-unknown"


FP = Fingerprinter(KEY)
LEDGER = DictLedger(
    {
        FP.mac("email", "\u2602a"): (ADS,),
        FP.mac("phone", "\u2602a"): ("security.mfa",),
        FP.mac("device_id", "\u2602b"): (),
    }
)
SETTINGS: dict[str, tuple[Policy, DictLedger | None]] = {
    "default": (load_policy(None), None),
    "audit": (_default_with(("mode: enforce", "mode: audit")), None),
    "types judged, drop": (
        _default_with(
            (
                "    when: no-purpose\n    action: redact\n",
                "    when: no-purpose\n    action: drop\n    types: [phone, email]\n",
            )
        ),
        None,
    ),
    "fallback ledger": (_default_with(ledger="fallback"), LEDGER),
    "authoritative ledger": (_default_with(ledger="authoritative"), LEDGER),
    "audit, fallback ledger": (
        _default_with(("mode: enforce", "mode: audit"), ledger="fallback"),
        LEDGER,
    ),
}
STEPS = {name: make_step(policy, ledger) for name, (policy, ledger) in SETTINGS.items()}


def exposing_step(name: str) -> Step:
    """The step of ``SETTINGS[name]`` that lists forwarded identifiers (for exposure)."""
    policy, ledger = SETTINGS[name]
    return Step(policy, Fingerprinter(KEY), FixedClock(NOW), ledger, exposure=True)


EXPOSING = {name: exposing_step(name) for name in SETTINGS}

value = st.sampled_from(["\u2602a", "\u2602b", "\u2602c", " \u2602a", ""])
tags = st.lists(
    st.sampled_from(
        [ADS, "security.mfa", "analytics", " Marketing.Advertising", "NOT A TAG", "essential"]
    ),
    max_size=3,
)
simple_identifier = st.fixed_dictionaries(
    {"type": st.sampled_from(["email", "phone", "Phone", "device_id", " phone"]), "value": value},
    optional={"purposes": tags | st.none(), "note": st.integers(min_value=2**64, max_value=2**70)},
)
simple_event = st.fixed_dictionaries(
    {
        "event_id": st.sampled_from(["e1", ""]),
        "subject_id": st.sampled_from(["acct-1", UNKNOWN_SUBJECT]),
        "occurred_at": st.sampled_from(
            ["2019-10-08T12:00:00Z", "2019-10-08T12:00:00.123+02:00", "2019-02-29T00:00:00Z"]
        ),
        "identifiers": st.lists(simple_identifier, max_size=4),
    },
    optional={"event_type": st.sampled_from(["login", None, 3])},
)
_ONE_PHONE = {"event_id": "e", "subject_id": "s", "occurred_at": "2019-10-08T12:00:00Z"}
_SPACED_PHONE = {"type": " phone", "value": "1", "purposes": ["security.mfa"]}
headers = st.sampled_from(
    [
        (),
        (("x", b"1"),),
        (("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),),
        (("enforcer.action", b"passed"), ("x", None)),
    ]
)


def _encode(data: Any, how: str) -> bytes:
    if how == "stdlib":
        return json.dumps(data, ensure_ascii=False).encode()
    if how == "escaped":
        return json.dumps(data).encode()
    return json.dumps(data, indent=1).encode()  # whitespace between the tokens


@settings(max_examples=600)
@example("types judged, drop", {**_ONE_PHONE, "identifiers": [_SPACED_PHONE]}, "stdlib", ())
@example("default", {**_ONE_PHONE, "identifiers": [_SPACED_PHONE]}, "stdlib", ())
@example("default", {**_ONE_PHONE, "identifiers": [{"type": "email", "value": ""}]}, "stdlib", ())
@given(
    st.sampled_from(sorted(STEPS)),
    simple_event | valid_event | near_event,
    st.sampled_from(["stdlib", "escaped", "spaced"]),
    headers,
)
def test_the_one_pass_and_the_reference_path_give_the_same_outcome(
    name: str, data: dict[str, Any], how: str, record_headers: tuple[Any, ...]
) -> None:
    step = STEPS[name]
    record = InputRecord(b"k", _encode(data, how), record_headers, Source("t", 2, 7))
    reference = step.explain_by_reference(record)
    assert step(record) == reference[0]
    assert step.explain(record) == reference


@settings(max_examples=600)
@example("audit", {**_ONE_PHONE, "identifiers": [_SPACED_PHONE]}, "stdlib", ())
@example("default", {**_ONE_PHONE, "identifiers": [{"type": "email", "value": ""}]}, "stdlib", ())
@given(
    st.sampled_from(sorted(EXPOSING)),
    simple_event | valid_event | near_event,
    st.sampled_from(["stdlib", "escaped", "spaced"]),
    headers,
)
def test_with_exposure_both_paths_list_the_same_forwarded_identifiers(
    name: str, data: dict[str, Any], how: str, record_headers: tuple[Any, ...]
) -> None:
    """The same equality with exposure on: the forwarded identifiers are part of the
    outcome, listed for every forwarded record and for no other; and everything else
    of the outcome is what the step without exposure gives."""
    step = EXPOSING[name]
    record = InputRecord(b"k", _encode(data, how), record_headers, Source("t", 2, 7))
    reference = step.explain_by_reference(record)
    outcome = step(record)
    assert outcome == reference[0]
    assert step.explain(record) == reference
    assert (outcome.forwarded_identifiers is not None) == outcome.forwarded
    assert outcome._replace(forwarded_identifiers=None) == STEPS[name](record)


@settings(max_examples=600)
@example("default", {**_ONE_PHONE, "identifiers": [_SPACED_PHONE]}, "stdlib")
@example("audit", {**_ONE_PHONE, "identifiers": [{"type": "email", "value": ""}]}, "stdlib")
@given(
    st.sampled_from(sorted(STEPS)),
    simple_event | valid_event | near_event,
    st.sampled_from(["stdlib", "escaped", "spaced"]),
)
def test_judgements_alone_are_the_decisions_judgements(
    name: str, data: dict[str, Any], how: str
) -> None:
    """What ``Step.judgements`` gives (for remediate) is what the reference path judges:
    the subject, each identifier's judgement and value in order; nothing for a record
    the step dead-letters (reported, in audit mode)."""
    step = STEPS[name]
    record = InputRecord(b"k", _encode(data, how), (), Source("t", 2, 7))
    found = step.judgements(record)
    _, decision = step.explain_by_reference(record)
    if decision is None:
        assert found is None
        return
    parsed = parse_event(record.value, types_judged=step.types_judged)
    assert not isinstance(parsed, ParseFailure)
    assert found is not None
    subject, judged, values = found
    assert subject == parsed.subject_id
    assert tuple(judged) == decision.identifiers
    assert list(values) == [identifier.value for identifier in parsed.identifiers]


@settings(max_examples=100)
@given(
    st.sampled_from(sorted(EXPOSING)),
    st.lists(simple_event | valid_event, min_size=1, max_size=8),
)
def test_remembered_fingerprints_do_not_change_a_batch(
    name: str, batch: list[dict[str, Any]]
) -> None:
    """A step that has fingerprinted a batch's identifiers before (its fingerprinter
    remembers them) lists what a new step lists for each record."""
    warm = EXPOSING[name]
    for offset, data in enumerate(batch):
        record = InputRecord(b"k", _encode(data, "stdlib"), (), Source("t", 0, offset))
        assert warm(record) == exposing_step(name)(record)


@given(st.binary(max_size=40) | st.sampled_from([b"null", b"[]", b'{"identifiers": 1}']))
def test_any_bytes_give_the_same_outcome_on_both_paths(value: bytes) -> None:
    step = STEPS["default"]
    record = InputRecord(None, value, (), Source("t", 0, 0))
    assert step(record) == step.explain_by_reference(record)[0]
    assert step.explain(record) == step.explain_by_reference(record)


def test_a_repeated_judged_field_is_left_to_the_reference_path() -> None:
    """orjson keeps the last of two equal keys; the record is dead-lettered."""
    step = STEPS["default"]
    value = (
        b'{"event_id":"e","subject_id":"s","occurred_at":"2019-10-08T12:00:00Z",'
        b'"identifiers":[{"type":"phone","value":"1","purposes":["security.mfa"],'
        b'"purposes":["marketing.advertising"]}]}'
    )
    record = InputRecord(None, value, (), Source("t", 0, 0))
    assert step._one_pass(record) is None
    assert step(record).kind is OutcomeKind.DEADLETTERED


def _identifier_text(kind: str, value: str, purposes: list[str] | None, twice: str | None) -> str:
    """One identifier as JSON text; ``twice`` names a key written a second time, first
    (so a parser keeping the first reads it, one keeping the last does not)."""
    parts = []
    if twice == "type":
        parts.append('"type":"device_id"')
    if twice == "value":
        parts.append('"value":"+1 415 555 0000"')
    if twice == "purposes":
        parts.append('"purposes":["security.mfa"]')
    parts += [f'"type":{json.dumps(kind)}', f'"value":{json.dumps(value)}']
    if purposes is not None or twice == "purposes":
        parts.append(f'"purposes":{json.dumps(purposes or [])}')
    return "{" + ",".join(parts) + "}"


@settings(max_examples=300)
@given(
    st.sampled_from(sorted(set(STEPS) - {"audit", "audit, fallback ledger"})),
    st.lists(
        st.tuples(
            st.sampled_from(["email", "phone", "device_id"]),
            st.sampled_from(["a@x.io", "+1 415 555 0101", "dev-1"]),
            st.none() | st.lists(st.sampled_from([ADS, "security.mfa", "analytics"]), max_size=2),
        ),
        min_size=1,
        max_size=4,
    ),
    st.data(),
)
def test_a_judged_key_written_twice_is_never_forwarded(
    name: str, identifiers: list[tuple[str, str, list[str] | None]], data: st.DataObject
) -> None:
    """A record whose ``subject_id``, or one identifier's ``value``, ``purposes`` (even
    where another identifier has none) or, when types matter, ``type``, is written twice
    is dead-lettered as a schema problem on both paths: the enforcer and a consumer
    could read different identifiers, purposes or subjects from the same bytes."""
    step = STEPS[name]
    keys = ["value", "purposes", "subject_id", *(["type"] if step.types_judged else [])]
    twice = data.draw(st.sampled_from(keys))
    where = data.draw(st.integers(0, len(identifiers) - 1))
    items = ",".join(
        _identifier_text(kind, value, purposes, twice if index == where else None)
        for index, (kind, value, purposes) in enumerate(identifiers)
    )
    subject = '"subject_id":"other",' if twice == "subject_id" else ""
    text = (
        f'{{"event_id":"e",{subject}"subject_id":"acct-1",'
        f'"occurred_at":"2019-10-08T12:00:00Z","identifiers":[{items}]}}'
    )
    record = InputRecord(None, text.encode(), (), Source("t", 0, 0))
    for outcome in (step(record), step.explain_by_reference(record)[0]):
        assert outcome.kind is OutcomeKind.DEADLETTERED
        assert outcome.error_message == "a field the enforcer judges appears twice in one object"
    assert step.judgements(record) is None


_LOOK_ALIKES = {"s": "\u017f", "i": "\u0131"}
"""Letters a case-blind match takes for ASCII ones: long s (Go, Java, .NET), dotless i
(Java, .NET)."""


@st.composite
def other_case(draw: st.DrawFn, name: str) -> str:
    """``name`` spelled otherwise, as a case-blind consumer would still read it."""
    spelled = "".join(
        draw(st.sampled_from([letter, letter.upper(), _LOOK_ALIKES.get(letter, letter)]))
        for letter in name
    )
    return spelled if spelled != name else name.upper()


@settings(max_examples=300)
@given(
    st.sampled_from(sorted(set(STEPS) - {"audit", "audit, fallback ledger"})),
    st.sampled_from(["identifiers", "subject_id", "type", "value", "purposes"]),
    st.booleans(),
    st.data(),
)
@example("default", "identifiers", True, None)  # the review's "IDENTIFIERS" beside it
def test_a_judged_key_in_other_letter_cases_is_never_forwarded(
    name: str, key: str, before: bool, data: st.DataObject | None
) -> None:
    """A judged key written again in other letter cases ("VALUE", "identifier\u017f")
    where the enforcer reads it: a consumer matching names without case (Go's
    encoding/json takes the last match) could read a phone number nobody judged, so the
    record is dead-lettered on both paths, never forwarded. (``type`` only where a rule
    looks at types, as for a repeated ``type``.)"""
    step = STEPS[name]
    assume(key != "type" or step.types_judged)
    spelled = key.upper() if data is None else data.draw(other_case(key))
    smuggled = {
        "identifiers": [{"type": "phone", "value": "+1 415 555 0142", "purposes": [ADS]}],
        "subject_id": "acct-2",
        "type": "phone",
        "value": "+1 415 555 0142",
        "purposes": [ADS],
    }[key]
    extra = f"{json.dumps(spelled)}:{json.dumps(smuggled)}"
    identifier = '"type":"email","value":"a@x.io","purposes":["security.mfa"]'
    if key in ("type", "value", "purposes"):
        identifier = f"{extra},{identifier}" if before else f"{identifier},{extra}"
    event = '"event_id":"e","subject_id":"acct-1","occurred_at":"2019-10-08T12:00:00Z",'
    event += f'"identifiers":[{{{identifier}}}]'
    if key in ("identifiers", "subject_id"):
        event = f"{extra},{event}" if before else f"{event},{extra}"
    record = InputRecord(None, ("{" + event + "}").encode(), (), Source("t", 0, 0))
    for outcome in (step(record), step.explain_by_reference(record)[0]):
        assert outcome.kind is OutcomeKind.DEADLETTERED, outcome
        assert outcome.error_message is not None
        assert "other letter cases" in outcome.error_message
    assert step.judgements(record) is None


@pytest.mark.parametrize("name", sorted(set(STEPS) - {"audit", "audit, fallback ledger"}))
def test_the_one_pass_decides_nearly_every_record_of_a_realistic_stream(name: str) -> None:
    """It is the fast path only if it is taken: all but the malformed records (1%)."""
    step = STEPS[name]
    values = list(sample_values(2_000))
    decided = 0
    for offset, value in enumerate(values):
        record = InputRecord(None, value, (), Source("t", 0, offset))
        outcome = step._one_pass(record)
        if outcome is not None:
            decided += 1
            assert outcome == step.explain_by_reference(record)[0]
    assert decided >= 0.97 * len(values)


def test_detected_at_follows_the_clock_to_the_millisecond() -> None:
    """The formatted time is reused within one millisecond only."""
    clock = FixedClock(datetime(2026, 1, 1, 0, 0, 0, 999, tzinfo=UTC))
    step = Step(load_policy(None), FP, clock)
    assert step._detected_at() == "2026-01-01T00:00:00.000Z"
    clock.advance_to(datetime(2026, 1, 1, 0, 0, 0, 1000, tzinfo=UTC))
    assert step._detected_at() == "2026-01-01T00:00:00.001Z"
    clock.advance_to(datetime(2026, 1, 1, 0, 1, 0, 1000, tzinfo=UTC))
    assert step._detected_at() == "2026-01-01T00:01:00.001Z"
    assert Step(load_policy(None), FP, SystemClock())._detected_at().endswith("Z")
    assert NOW.tzinfo is UTC


timestamp_text = st.from_regex(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{0,3})?([Zz]|[+-][0-9]{2}:[0-9]{2})?",
    fullmatch=True,
) | st.text(max_size=30)


def _reference_plain(text: str) -> bool:
    if not text.isascii():
        return False
    try:
        parse_rfc3339(text)
    except ValueError:
        return False
    return True


@settings(max_examples=1000)
@given(timestamp_text)
def test_the_quick_timestamp_check_agrees_with_the_full_one(text: str) -> None:
    assert is_plain_rfc3339(text) == _reference_plain(text)
