"""Records the reader claims, through the step (docs/formats.md: "How a record is
read"): passed, redacted in their own format, dropped, dead-lettered, with ``explain``
and ``__call__`` giving the same outcome."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.models import DeadLetterReason, ViolationEvent
from enforcer.core.policy.load import default_policy_bytes, parse_policy
from enforcer.core.step import InputRecord, Outcome, OutcomeKind, Source, Step
from enforcer.formats.framing import frame
from enforcer.formats.reader import build_reader

from ..conftest import KEY, NOW
from .dict_codec import Codecs, DictCodec, field

POLICY = (
    default_policy_bytes()
    + b"""
formats:
  mappings:
    - name: accounts
      topics: [identity.accounts]
      subject_id: user.id
      occurred_at: at
      identifiers:
        - {path: contact.email, type: email, purposes: {path: contact.tags}}
        - {path: "phones[*].number", type: phone, purposes: {path: "phones[*].tags"}}
"""
)
CODEC = DictCodec(
    5,
    "com.acme.Signup",
    field("subject_id"),
    field("occurred_at"),
    field("phone", "string", "PII_PHONE", "purpose:security.mfa", emptiable=False),
    field("email", "string", "PII_EMAIL", "purpose:marketing.advertising"),
)


def make_step() -> Step:
    policy = parse_policy(POLICY, origin="test.yaml")
    return Step(
        policy, Fingerprinter(KEY), FixedClock(NOW), reader=build_reader(policy, Codecs(CODEC))
    )


def decide(step: Step, value: bytes, topic: str = "identity.accounts") -> Outcome:
    record = InputRecord(b"k", value, (), Source(topic, 0, 11))
    outcome = step(record)
    explained, decision = step.explain(record)
    assert explained == outcome
    assert (decision is None) == (outcome.kind is OutcomeKind.DEADLETTERED)
    return outcome


def account(**over: Any) -> dict[str, Any]:
    return {
        "user": {"id": "u-1"},
        "at": "2019-10-08T12:00:00Z",
        "contact": {"email": "a@b.c", "tags": ["marketing.advertising"]},
        "phones": [{"number": "+1", "tags": ["marketing.advertising"]}],
        "plan": {"tier": "gold", "seats": 3},
    } | over


def test_passed_forwards_the_original_bytes() -> None:
    """Nothing stopped: the value as it came."""
    value = orjson.dumps(account())
    out = decide(make_step(), value)
    assert out.kind is OutcomeKind.PASSED and out.forward_value is value


def test_redacted_rewrites_the_json_without_the_stopped_field() -> None:
    """The security-only phone is null; every other field is untouched; the violation
    names the finding and never the value."""
    data = account(
        phones=[
            {"number": "+1", "tags": ["security.mfa"]},
            {"number": "+2", "tags": ["marketing.advertising"]},
        ]
    )
    out = decide(make_step(), orjson.dumps(data))
    assert out.kind is OutcomeKind.REDACTED
    assert out.forward_value is not None
    expected = account(
        phones=[
            {"number": None, "tags": ["security.mfa"]},
            {"number": "+2", "tags": ["marketing.advertising"]},
        ]
    )
    assert orjson.loads(out.forward_value) == expected
    assert out.violation is not None
    ViolationEvent.model_validate(out.violation)
    assert out.violation["event_id"] == "identity.accounts/0/11"
    assert [(f["rule"], f["identifier_index"]) for f in out.violation["findings"]] == [
        ("security-only-purpose", 1)
    ]
    assert b"+1" not in orjson.dumps(out.violation)


def test_dropped_when_every_identifier_is_stopped() -> None:
    """The core's rule: a record left with no identifiers is dropped."""
    data = account(contact={"email": "a@b.c", "tags": ["security.mfa"]}, phones=[])
    out = decide(make_step(), orjson.dumps(data))
    assert out.kind is OutcomeKind.DROPPED and out.forward_value is None


def test_dead_lettered_with_the_records_path() -> None:
    """A wrong-typed identifier; a purpose tag that is not one (named by the record's path)."""
    step = make_step()
    wrong = decide(step, orjson.dumps(account(phones=[{"number": 15551234}])))
    assert wrong.kind is OutcomeKind.DEADLETTERED
    assert (wrong.error_reason, wrong.error_message) == (
        DeadLetterReason.SCHEMA,
        "phones[0].number: a number, not a string",
    )
    bad_tag = decide(step, orjson.dumps(account(contact={"email": "a@b.c", "tags": ["NOT A TAG"]})))
    assert bad_tag.error_reason is DeadLetterReason.SCHEMA
    assert bad_tag.error_message is not None
    # Named by the tag list the mapping read the purposes from, not the email's field.
    assert bad_tag.error_message.startswith("contact.tags[0]: ")
    assert "NOT A TAG" not in bad_tag.error_message


def test_unmapped_topics_keep_the_identity_events_path() -> None:
    """The same outcome as a step without a reader."""
    value = orjson.dumps(
        {
            "event_id": "e",
            "subject_id": "s",
            "occurred_at": "2019-10-08T12:00:00Z",
            "identifiers": [{"type": "phone", "value": "+1", "purposes": ["security.mfa"]}],
        }
    )
    policy = parse_policy(POLICY, origin="test.yaml")
    plain = Step(policy, Fingerprinter(KEY), FixedClock(NOW))
    record = InputRecord(b"k", value, (), Source("identity.events", 0, 11))
    assert decide(make_step(), value, "identity.events") == plain(record)


def test_framed_redaction_and_the_format_that_cannot_hold_it() -> None:
    """A stopped field the schema lets be emptied: re-encoded with the same schema id;
    one it does not: dropped, and the violation says why."""
    step = make_step()
    signup = {"subject_id": "s", "occurred_at": "2019-10-08T12:00:00Z", "email": "a@b.c"}
    passed = decide(step, frame(5, CODEC.body(signup)), "signups")
    assert passed.kind is OutcomeKind.PASSED
    with_phone = decide(step, frame(5, CODEC.body(signup | {"phone": "+1"})), "signups")
    assert with_phone.kind is OutcomeKind.DROPPED
    assert with_phone.violation is not None
    assert with_phone.violation["action_reason"] == "field 'phone' cannot be null under its schema"
    unknown = decide(step, frame(6, b"{}"), "signups")
    assert unknown.error_reason is DeadLetterReason.UNKNOWN_SCHEMA


def test_framed_redaction_keeps_the_schema_id() -> None:
    """The email given only for security is emptied; the frame is the same."""
    step = make_step()
    signup = {"subject_id": "s", "occurred_at": "2019-10-08T12:00:00Z", "email": "a@b.c"}
    codec = DictCodec(
        9,
        "com.acme.Other",
        field("subject_id"),
        field("occurred_at"),
        field("email", "string", "PII_EMAIL", "purpose:security.mfa"),
        field("phone", "string", "PII_PHONE", "purpose:marketing.advertising"),
    )
    step = Step(
        step.policy,
        Fingerprinter(KEY),
        FixedClock(NOW),
        reader=build_reader(step.policy, Codecs(codec)),
    )
    out = decide(step, frame(9, codec.body(signup | {"phone": "+1"})), "signups")
    assert out.kind is OutcomeKind.REDACTED
    assert out.forward_value is not None and out.forward_value[:5] == frame(9, b"")
    assert orjson.loads(out.forward_value[5:]) == signup | {"email": None, "phone": "+1"}


TAGS = st.sampled_from([["security.mfa"], ["marketing.advertising"], None, ["analytics"]])


@given(st.lists(st.tuples(st.one_of(st.none(), st.text(min_size=1, max_size=5)), TAGS), max_size=5))
def test_generated_phone_lists(phones: list[tuple[str | None, list[str] | None]]) -> None:
    """Whatever the list: each phone is judged by its own tags, a stopped one is null
    in the forwarded record, and everything else is kept."""
    items = [{"number": n, "tags": t} for n, t in phones]
    data = account(contact=None, phones=items)
    out = decide(make_step(), orjson.dumps(data))
    present = [(i, t) for i, (n, t) in enumerate(phones) if n]
    stopped = {i for i, t in present if t != ["marketing.advertising"]}
    if not stopped:
        assert out.kind is OutcomeKind.PASSED
        return
    if len(stopped) == len(present):
        assert out.kind is OutcomeKind.DROPPED
        return
    assert out.kind is OutcomeKind.REDACTED and out.forward_value is not None
    expected = account(
        contact=None,
        phones=[
            {"number": None if i in stopped else n, "tags": t} for i, (n, t) in enumerate(phones)
        ],
    )
    assert orjson.loads(out.forward_value) == expected


@given(
    st.sampled_from(["__value_schema_id", "__VALUE_SCHEMA_ID", " __value_schema_id "]),
    st.lists(st.sampled_from(["traceparent", "x-team", "__key_schema_id"]), max_size=3),
)
def test_a_framed_value_with_a_schema_id_header_is_a_dead_letter(
    header: str, others: list[str]
) -> None:
    """Confluent's deserializers read a schema id from the ``__value_schema_id`` header
    before the frame: a framed value carrying one too would be decoded downstream under
    another schema than the one the enforcer judged it by (a field it never saw could
    hold a phone number). Such a record is a dead letter; without the header, or with
    the header on a value that is not framed (plain JSON, judged as it is), nothing
    changes."""
    step = make_step()
    signup = {"subject_id": "s", "occurred_at": "2019-10-08T12:00:00Z", "email": "a@b.c"}
    value = frame(5, CODEC.body(signup))
    headers = tuple((name, b"\x01" + bytes(16)) for name in [*others, header])
    record = InputRecord(b"k", value, headers, Source("signups", 0, 3))
    outcome = step(record)
    assert step.explain(record)[0] == outcome
    assert outcome.error_reason is DeadLetterReason.SCHEMA
    assert "__value_schema_id header" in (outcome.error_message or "")
    plain = InputRecord(b"k", value, headers[:-1], Source("signups", 0, 3))
    assert step(plain).kind is OutcomeKind.PASSED
    event = orjson.dumps(account())
    unframed = InputRecord(b"k", event, headers, Source("identity.accounts", 0, 4))
    assert step(unframed).kind is not OutcomeKind.DEADLETTERED


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["marketing.advertising", "security.mfa", "a@b.c", "u-1", "NOT A TAG"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["id", "email", "tags", "number"]), inner, max_size=3)
    ),
    max_leaves=6,
)


@given(
    st.dictionaries(st.sampled_from(["user", "at", "contact", "phones"]), _JSON_VALUES, max_size=3),
    st.lists(st.fixed_dictionaries({"number": _JSON_VALUES, "tags": _JSON_VALUES}), max_size=3),
)
def test_no_record_of_any_shape_is_an_internal_error(
    fields: dict[str, Any], phones: list[dict[str, Any]]
) -> None:
    """Whatever the mapped fields hold (wrong types, integers beyond 64 bits, tags that
    are no tags), the record is judged or dead-lettered for what it holds, never for an
    error of the enforcer's own (the compiled core raises on a value that contradicts a
    declared type: that would be one)."""
    value = json.dumps(account(**fields) | ({"phones": phones} if phones else {})).encode()
    outcome = decide(make_step(), value)
    assert outcome.error_reason is not DeadLetterReason.INTERNAL, outcome.error_message
