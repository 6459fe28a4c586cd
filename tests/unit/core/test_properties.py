"""Properties of the default policy over many generated records (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enforcer.core.policy.load import load_policy
from enforcer.core.policy.vocabulary import FIDES, builtin_vocabulary
from enforcer.core.purposes import normalize_tag, within_any
from enforcer.core.step import InputRecord, Outcome, OutcomeKind, Source

from ..conftest import make_step

SECURITY = load_policy(None).rules[0].namespaces
ADVERTISING = ("marketing.advertising",)
STEP = make_step()

segment = st.sampled_from(
    [
        "security",
        "mfa",
        "marketing",
        "advertising",
        "essential",
        "service",
        "authentication",
        "fraud_detection",
        "analytics",
        "notifications",
        "sms",
        "securityx",
        "advertisingx",
        "x-1",
    ]
)
tag = (
    st.lists(segment, min_size=1, max_size=3).map(".".join)
    | st.sampled_from(
        ["essential.service.security", "essential.fraud_detection", " Security.MFA ", "SECURITY"]
    )
    | st.sampled_from(sorted(builtin_vocabulary(FIDES).keys))
    | st.sampled_from(sorted(builtin_vocabulary(FIDES).keys)).map(lambda t: f" {t.upper()}")
)
text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12)
# Values carry a marker that nothing else in a violation can contain.
value = text.map(lambda t: "\u2602" + t)
identifier = st.fixed_dictionaries(
    {"type": st.sampled_from(["email", "phone", "Phone", "device_id"]), "value": value},
    optional={"purposes": st.lists(tag, max_size=3) | st.none(), "extra": st.integers()},
)
valid_event = st.fixed_dictionaries(
    {
        "event_id": text,
        "subject_id": text,
        "occurred_at": st.sampled_from(["2019-10-08T12:00:00Z", "2019-10-09T01:30:00+02:00"]),
        "identifiers": st.lists(identifier, max_size=4),
    },
    optional={"context": st.dictionaries(st.text(max_size=5), st.integers() | text, max_size=3)},
)
junk = st.binary(max_size=64) | st.recursive(
    st.none() | st.booleans() | st.integers() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
).map(lambda v: json.dumps(v).encode())


def _security_only(item: dict[str, Any]) -> bool:
    tags = [normalize_tag(p) for p in item.get("purposes") or []]
    return bool(tags) and all(t is not None and within_any(t, SECURITY) for t in tags)


def _dumps(data: Any) -> bytes:
    # The standard library: unlike orjson it writes integers of any size.
    return json.dumps(data, ensure_ascii=False).encode()


def _run(value: bytes) -> Outcome:
    return STEP(InputRecord(b"k", value, (), Source("identity.events", 0, 1)))


@given(valid_event)
def test_no_security_only_identifier_is_ever_forwarded(data: dict[str, Any]) -> None:
    """Whatever else the record holds, a security-only identifier never reaches the sink."""
    out = _run(_dumps(data))
    if out.forward_value is None:
        return
    forwarded = json.loads(out.forward_value)["identifiers"]
    assert not any(_security_only(item) for item in forwarded)
    assert all(item.get("purposes") for item in forwarded)  # missing purpose fails closed


def _for_advertising(item: dict[str, Any]) -> bool:
    tags = [normalize_tag(p) for p in item.get("purposes") or []]
    return any(t is not None and within_any(t, ADVERTISING) for t in tags)


@given(valid_event)
def test_only_identifiers_given_for_advertising_are_forwarded(data: dict[str, Any]) -> None:
    """Under the default, an identifier reaches audience building if and only if one of
    its purposes lies within marketing.advertising (unless its record is dropped)."""
    assert load_policy(None).allowed == ADVERTISING
    out = _run(_dumps(data))
    if out.kind is OutcomeKind.DEADLETTERED:
        return
    identifiers = data["identifiers"]
    if out.forward_value is None:  # dropped: it had identifiers and none may go
        assert identifiers and not any(_for_advertising(item) for item in identifiers)
        return
    forwarded = json.loads(out.forward_value)["identifiers"]
    assert forwarded == [item for item in identifiers if _for_advertising(item)]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(valid_event | junk)
def test_every_input_yields_exactly_one_outcome(value: Any) -> None:
    """passed/redacted forward, dropped only reports, dead-lettered only dead-letters."""
    out = _run(value if isinstance(value, bytes) else _dumps(value))
    forwards = out.forward_value is not None
    dead = out.kind is OutcomeKind.DEADLETTERED
    assert forwards == (out.kind in (OutcomeKind.PASSED, OutcomeKind.REDACTED))
    assert dead == (out.error_reason is not None)
    assert not (forwards and dead)
    if out.kind is OutcomeKind.DROPPED:
        assert out.violation is not None and out.violation["action"] == "dropped"


@given(valid_event)
def test_a_redacted_record_equals_its_input_minus_the_removed_identifiers(
    data: dict[str, Any],
) -> None:
    """Same object, same fields, same values; only the findings' entries are gone."""
    out = _run(_dumps(data))
    if out.kind is not OutcomeKind.REDACTED:
        return
    assert out.violation is not None and out.forward_value is not None
    removed = {f["identifier_index"] for f in out.violation["findings"]}
    expected = dict(data)
    expected["identifiers"] = [x for i, x in enumerate(data["identifiers"]) if i not in removed]
    assert json.loads(out.forward_value) == expected


@given(valid_event)
def test_no_raw_value_appears_in_a_violation(data: dict[str, Any]) -> None:
    """Violations carry fingerprints, never values (values longer than trivial)."""
    out = _run(_dumps(data))
    if out.violation is None:
        return
    findings = out.violation["findings"]
    dumped = json.dumps(findings, ensure_ascii=False)
    assert "\u2602" not in dumped
    assert findings


@given(st.lists(identifier, min_size=1, max_size=3), text)
def test_no_raw_value_appears_in_a_dead_letter_message(
    items: list[dict[str, Any]], secret: str
) -> None:
    """Broken records keep identifier values out of the error message."""
    secret = "S3cr3t" + secret
    broken = {
        "event_id": "e",
        "subject_id": "s",
        "occurred_at": secret,
        "identifiers": [*items, {"type": "phone", "value": secret, "purposes": [secret]}],
    }
    out = _run(_dumps(broken))
    assert out.kind is OutcomeKind.DEADLETTERED
    assert secret not in (out.error_message or "")


anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
field_value = anything | st.sampled_from(
    [
        "",
        " ",
        "2019-10-08T12:00:00Z",
        "2019-02-30T00:00:00Z",
        "2019-10-08 12:00:00+01:00",
        "\uff12\uff1019-10-08T12:00:00Z",
        "2019-10-08T12:00:00",
        " phone",
        "phone",
        "Phone ",
    ]
)
near_identifier = st.dictionaries(
    st.sampled_from(["type", "value", "purposes", "x"]),
    field_value | st.lists(field_value, max_size=3),
    max_size=4,
)
near_event = st.dictionaries(
    st.sampled_from(["event_id", "subject_id", "occurred_at", "event_type", "identifiers", "x"]),
    field_value | st.lists(near_identifier | field_value, max_size=3),
    max_size=6,
)


@settings(max_examples=400)
@given(valid_event | near_event)
def test_the_fast_path_only_vouches_for_what_the_model_accepts(data: dict[str, Any]) -> None:
    """Whatever the fast path accepts, the pydantic model accepts, with equal fields."""
    from enforcer.core.parse import _validate, _vouch

    value = _dumps(data)
    fast = _vouch(value)
    if fast is not None:
        assert _validate(value) == fast._replace(document=None)
