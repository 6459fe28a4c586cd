"""The one pass and the reference path agree on adversarial JSON text, and neither ever
forwards an identifier a rule stopped.

The property tests of tests/unit/core/test_one_pass.py generate records as Python data
and write them with a JSON library; these write the text themselves, so that it can
hold what no library writes: a key twice, a key in other letter cases, in look-alike
letters or with escapes, a byte-order mark, bytes that are not UTF-8, trailing text,
numbers beyond a float's range, ``NaN``, deep nesting, identifiers nested in other
fields, purposes that are not lists. Whatever the record, both paths give the same
outcome (docs/architecture.md), and a forwarded value read by a parser that keeps the
first of two keys, one that keeps the last, or one that matches names without case,
holds no stopped identifier among its identifiers (docs/contract.md: forwarded record).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from enforcer.core.models import DeadLetterReason, Mode
from enforcer.core.step import InputRecord, OutcomeKind, Source, Step

from .test_one_pass import EXPOSING, STEPS

# A node of JSON text: ("obj", [(key text, node)]), ("arr", [node]) or ("raw", text).
Node = tuple[str, Any]

STOPPED = "+14155550101"  # given for security only: every setting here stops it
KEPT = "a@x.io"  # given for advertising

_SPELLINGS = {
    "type": ['"type"', '"TYPE"', '"Type"', '"t\\u0079pe"', '"typ\\u0065"'],
    "value": ['"value"', '"VALUE"', '"Value"', '"v\\u0061lue"', '"valu\\u0065"'],
    "purposes": ['"purposes"', '"PURPOSES"', '"purpo\u017fes"', '"purpose\\u0073"'],
    "identifiers": ['"identifiers"', '"IDENTIFIERS"', '"\u0131dentifiers"', '"identifier\\u0073"'],
    "subject_id": ['"subject_id"', '"SUBJECT_ID"', '"\u017fubject_id"', '"subject\\u005fid"'],
}


def _key(name: str) -> st.SearchStrategy[str]:
    spellings = _SPELLINGS.get(name)
    if spellings is None:
        return st.just(json.dumps(name))
    # Mostly plain, so that most records are valid and both paths get to decide.
    return st.sampled_from(spellings[:1] * 12 + spellings)


_ODD_SCALARS = [
    "1e400",
    "-1e400",
    "123456789012345678901234567890",
    "1.0000000000000000000001",
    "-0.0",
    "NaN",
    "Infinity",
    "true",
    "null",
    '"\\ud800"',
    '"\\ud83d\\ude00"',
    '"caf\\u00e9"',
    '"\\/"',
    '"+1\\u0034155550101"',
    json.dumps(STOPPED),
    json.dumps(KEPT),
]
_PLAIN_SCALARS = ["1", "2.5", '"x"', "false", "{}", "[]"]
scalar: st.SearchStrategy[Node] = st.sampled_from(_PLAIN_SCALARS * 3 + _ODD_SCALARS).map(
    lambda text: ("raw", text)
)


def _deep(depth: int) -> Node:
    return ("raw", "[" * depth + "]" * depth)


odd_value: st.SearchStrategy[Node] = st.recursive(
    scalar | st.sampled_from([30, 150]).map(_deep),
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda items: ("arr", items))
        | st.lists(
            st.tuples(st.sampled_from([*_SPELLINGS, "x"]).flatmap(_key), inner), max_size=3
        ).map(lambda pairs: ("obj", pairs))
    ),
    max_leaves=6,
)


def _string(text: str) -> Node:
    return ("raw", json.dumps(text))


def _tags(tags: list[str]) -> Node:
    return ("arr", [_string(tag) for tag in tags])


@st.composite
def identifier(draw: st.DrawFn) -> Node:
    stopped = draw(st.booleans())
    kind = "phone" if stopped else "email"
    pairs: list[tuple[str, Node]] = [
        (draw(_key("type")), _string(draw(st.sampled_from([kind, kind.upper(), f" {kind}"])))),
        (draw(_key("value")), _string(STOPPED if stopped else KEPT)),
    ]
    purposes = ["security.mfa"] if stopped else ["marketing.advertising"]
    written = draw(
        st.sampled_from(["list"] * 8 + ["string", "object", "nested", "absent", "absent"])
    )
    if written == "list":
        pairs.append((draw(_key("purposes")), _tags(purposes)))
    elif written == "string":
        pairs.append((draw(_key("purposes")), _string(purposes[0])))
    elif written == "object":
        pairs.append((draw(_key("purposes")), ("obj", [('"a"', _tags(purposes))])))
    elif written == "nested":
        pairs.append((draw(_key("purposes")), ("arr", [_tags(purposes)])))
    # Extra pairs, a judged key again among them (with the other identifier's value,
    # or purposes that would let it through: only beside its own, which stop it).
    again = ["value", "type", *["note"] * 4, "identifiers"]
    again += ["purposes"] if written != "absent" else []
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        name = draw(st.sampled_from(again))
        if name == "value":
            extra: Node = _string(KEPT if stopped else STOPPED)
        elif name == "purposes":
            extra = _tags(["marketing.advertising"])
        elif name == "type":
            extra = _string("device_id")
        else:
            extra = draw(odd_value)
        pairs.insert(draw(st.integers(0, len(pairs))), (draw(_key(name)), extra))
    return ("obj", pairs)


@st.composite
def event_text(draw: st.DrawFn) -> bytes:
    identifiers: Node = ("arr", draw(st.lists(identifier(), min_size=2, max_size=3)))
    pairs: list[tuple[str, Node]] = [
        ('"event_id"', _string("e1")),
        (draw(_key("subject_id")), _string("acct-1")),
        ('"occurred_at"', _string("2019-10-08T12:00:00Z")),
        (draw(_key("identifiers")), identifiers),
    ]
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        name = draw(st.sampled_from(["identifiers", "subject_id", "event_type", "extra"]))
        if name == "identifiers":
            extra: Node = ("arr", [draw(identifier())])
        elif name == "subject_id":
            extra = _string("acct-2")
        else:
            extra = draw(odd_value)
        pairs.insert(draw(st.integers(0, len(pairs))), (draw(_key(name)), extra))
    text = _write(("obj", pairs)).encode()
    envelope = draw(st.sampled_from([""] * 12 + ["bom", "trailing", "garbage", "latin-1"]))
    if envelope == "bom":
        return b"\xef\xbb\xbf" + text
    if envelope == "trailing":
        return text + b" \r\n\t"
    if envelope == "garbage":
        return text + b"x"
    if envelope == "latin-1":
        return text.replace(b'"e1"', b'"\xe91"')
    return text


def _write(node: Node) -> str:
    kind, content = node
    if kind == "raw":
        return str(content)
    if kind == "arr":
        return "[" + ",".join(_write(item) for item in content) + "]"
    return "{" + ",".join(f"{key}:{_write(item)}" for key, item in content) + "}"


def _stopped_values_read(value: bytes) -> set[str]:
    """The identifier values a parser keeping the first of two keys, one keeping the
    last, or one matching names without case (first or last) reads from ``value``
    that are the stopped one."""
    found: set[str] = set()

    def first_blind(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        read: dict[str, Any] = {}
        for name, item in pairs:
            read.setdefault(name.lower(), item)
        return read

    def last_blind(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        return {name.lower(): item for name, item in pairs}

    def first(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        read: dict[str, Any] = {}
        for name, item in pairs:
            read.setdefault(name, item)
        return read

    for hook in (first, first_blind, last_blind, None):
        document = json.loads(value, object_pairs_hook=hook, parse_constant=_not_json)
        items = document.get("identifiers") if isinstance(document, dict) else None
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and item.get("value") == STOPPED:
                found.add(STOPPED)
    return found


def _not_json(name: str) -> object:
    raise AssertionError(f"a forwarded value holds {name}, which is not JSON")


def _agree(step: Step, value: bytes) -> None:
    record = InputRecord(b"k", value, (), Source("t", 1, 5))
    reference = step.explain_by_reference(record)
    outcome = step(record)
    assert outcome == reference[0]
    assert step.explain(record) == reference
    if step.policy.mode is Mode.ENFORCE and outcome.kind in (
        OutcomeKind.PASSED,
        OutcomeKind.REDACTED,
    ):
        assert outcome.forward_value is not None
        assert not _stopped_values_read(outcome.forward_value)
    if outcome.violation is not None:
        assert STOPPED not in json.dumps(outcome.violation)
    assert STOPPED not in (outcome.error_message or "")


_BIG_NUMBER_BESIDE_A_STOPPED_PHONE = (
    b'{"event_id":"e1","subject_id":"acct-1","occurred_at":"2019-10-08T12:00:00Z",'
    b'"identifiers":[{"type":"phone","value":"+14155550101","purposes":["security.mfa"]},'
    b'{"type":"email","value":"a@x.io","purposes":["marketing.advertising"]}],"x":1e400}'
)


@settings(max_examples=500)
@example("default", _BIG_NUMBER_BESIDE_A_STOPPED_PHONE)
@given(st.sampled_from(sorted(STEPS)), event_text())
def test_adversarial_text_gives_one_outcome_and_forwards_no_stopped_identifier(
    name: str, value: bytes
) -> None:
    _agree(STEPS[name], value)


@settings(max_examples=200)
@given(st.sampled_from(sorted(EXPOSING)), event_text())
def test_adversarial_text_with_exposure_gives_one_outcome(name: str, value: bytes) -> None:
    _agree(EXPOSING[name], value)


_HEADERS = st.lists(
    st.tuples(
        st.sampled_from(["traceparent", "TRACEPARENT", "enforcer.action", "__value_schema_id"]),
        st.none() | st.binary(max_size=60),
    ),
    max_size=3,
).map(tuple)


_EVERY_STEP = dict(STEPS) | {f"{name}, exposing": step for name, step in EXPOSING.items()}


@settings(max_examples=300)
@given(st.sampled_from(sorted(_EVERY_STEP)), event_text(), _HEADERS)
def test_adversarial_text_is_never_an_internal_error(
    name: str, value: bytes, headers: tuple[tuple[str, bytes | None], ...]
) -> None:
    """Whatever the text and the headers (null values included), the record is judged
    or dead-lettered for what it holds, never for an error of the enforcer's own: both
    paths agreeing is not enough, as a value contradicting a type the compiled core
    declares raises on both."""
    step = _EVERY_STEP[name]
    record = InputRecord(b"k", value, headers, Source("t", 1, 5))
    for outcome in (step(record), step.explain_by_reference(record)[0]):
        assert outcome.error_reason is not DeadLetterReason.INTERNAL, outcome.error_message
