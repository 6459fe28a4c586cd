"""Generated sink histories for the remediation tests: forwarded records, retractions,
records that are not the enforcer's and forwarded records the decision cannot read,
spread over partitions, with the reference answer worked out independently."""

from __future__ import annotations

from typing import NamedTuple

import orjson
from hypothesis import strategies as st

from enforcer.core.fingerprint import Fingerprinter
from enforcer.remediate.history import SinkRecord

from ..conftest import KEY

FP = Fingerprinter(KEY)
ADS = "marketing.advertising"
TAGS = (ADS, "analytics.reporting", "security.mfa", "marketing.advertising.lookalike")
SUBJECTS = ("acct-1", "acct-2", "acct-3")
VALUES = {
    "email": ("a@x.org", "b@x.org", "c@x.org"),
    "device_id": ("dev-0001", "dev-0002"),
}
SINK = "audience.building"
BASE_MS = 1_764_500_000_000  # 2025-11-30

POLICY = f"""
format: 1
mode: enforce
rules:
  - name: device-for-analytics
    when: any-within
    within: [analytics]
    types: [device_id]
    action: drop
  - name: missing-purpose
    when: no-purpose
    action: redact
destinations:
  audience-building:
    allow: [{ADS}]
    action: redact
    rule: purpose-not-allowed
"""
"""Only advertising may flow, and a device id given for analytics drops its record: the
reference below says the same without the policy."""


def rule_of(kind: str, purposes: tuple[str, ...]) -> str | None:
    """The reference judgement of :data:`POLICY`: a device id with an analytics purpose
    (its record is dropped); no purpose, missing; a purpose within advertising, allowed
    (``None``); else not allowed."""
    if kind == "device_id" and any(p.split(".")[0] == "analytics" for p in purposes):
        return "device-for-analytics"
    if not purposes:
        return "missing-purpose"
    if any(p == ADS or p.startswith(ADS + ".") for p in purposes):
        return None
    return "purpose-not-allowed"


class Identifier(NamedTuple):
    kind: str
    value: str
    purposes: tuple[str, ...]


class Forwarded(NamedTuple):
    subject: str
    identifiers: list[Identifier]


class Retracted(NamedTuple):
    subject: str
    kind: str
    value: str
    plan_id: str | None


class Foreign(NamedTuple):
    """A record someone else wrote to the sink (no ``enforcer.action`` header)."""

    subject: str


class Unreadable(NamedTuple):
    """A forwarded record the decision cannot read (audit mode forwards those)."""


Op = Forwarded | Retracted | Foreign | Unreadable


@st.composite
def identifiers(draw: st.DrawFn) -> Identifier:
    kind = draw(st.sampled_from(sorted(VALUES)))
    value = draw(st.sampled_from(VALUES[kind]))
    purposes = tuple(draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True)))
    return Identifier(kind, value, purposes)


@st.composite
def retracted(draw: st.DrawFn) -> Retracted:
    kind = draw(st.sampled_from(sorted(VALUES)))
    return Retracted(
        draw(st.sampled_from(SUBJECTS)),
        kind,
        draw(st.sampled_from(VALUES[kind])),
        draw(st.none() | st.just("sha256:" + "0" * 64)),
    )


ops: st.SearchStrategy[Op] = st.one_of(
    st.builds(Forwarded, st.sampled_from(SUBJECTS), st.lists(identifiers(), max_size=3)),
    st.builds(Forwarded, st.sampled_from(SUBJECTS), st.lists(identifiers(), max_size=3)),
    retracted(),
    st.builds(Foreign, st.sampled_from(SUBJECTS)),
    st.builds(Unreadable),
)
"""Forwards twice as likely as each other kind."""

History = list[tuple[Op, int, int]]
histories: st.SearchStrategy[History] = st.lists(
    st.tuples(ops, st.integers(0, 2), st.integers(0, 3 * 86_400_000)), max_size=40
)
"""Each op with its partition and its time (ms after :data:`BASE_MS`), in any order."""


def records_of(history: History, retracted_under: Fingerprinter = FP) -> list[SinkRecord]:
    """The sink records of a history, each partition's offsets in the order given and its
    times never going back (so time order and each partition's offset order agree); its
    retractions made under ``retracted_under`` (the key in force, unless a key rotation
    is being tested)."""
    next_offset = [0, 0, 0]
    latest = [0, 0, 0]
    records = []
    for index, (op, partition, at) in enumerate(history):
        offset = next_offset[partition]
        next_offset[partition] += 1
        latest[partition] = max(latest[partition], at)
        key, value, headers = _record(op, index, retracted_under)
        records.append(
            SinkRecord(key, value, headers, partition, offset, BASE_MS + latest[partition])
        )
    return records


def _record(
    op: Op, index: int, retracted_under: Fingerprinter
) -> tuple[bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...]]:
    if isinstance(op, Forwarded):
        event = {
            "event_id": f"evt-{index}",
            "subject_id": op.subject,
            "occurred_at": "2025-11-30T00:00:00Z",
            "identifiers": [
                {"type": i.kind, "value": i.value, "purposes": list(i.purposes)}
                for i in op.identifiers
            ],
        }
        action = b"redacted" if index % 2 else b"passed"
        return op.subject.encode(), orjson.dumps(event), (("enforcer.action", action),)
    if isinstance(op, Retracted):
        body: dict[str, str] = {
            "subject_id": op.subject,
            "identifier_type": op.kind,
            "fingerprint": retracted_under(op.kind, op.value),
            "key_id": retracted_under.key_id,
            "reason": "purpose-withdrawn",
        }
        if op.plan_id is not None:
            body = {**body, "reason": "remediated", "plan_id": op.plan_id}
        headers = (("enforcer.action", b"retracted"), ("enforcer.policy", b"v1"))
        return op.subject.encode(), orjson.dumps({"retraction": body}), headers
    if isinstance(op, Foreign):
        event = {
            "event_id": "x",
            "subject_id": op.subject,
            "occurred_at": "2025-11-30T00:00:00Z",
            "identifiers": [{"type": "email", "value": "a@x.org", "purposes": ["analytics"]}],
        }
        return op.subject.encode(), orjson.dumps(event), ()
    return None, b"{not json", (("enforcer.action", b"passed"),)


Identity = tuple[str, str, str]


def reference(records: list[SinkRecord], history: History) -> dict[Identity, str | None]:
    """Exposed at the end, each with the rule the policy stops it by (``None``:
    allowed), worked out by walking the history in time order (then partition,
    offset) with plain dictionaries."""
    ops_by_place = {
        (r.partition, r.offset): op for r, (op, _, _) in zip(records, history, strict=True)
    }
    exposed: dict[Identity, str | None] = {}
    for record in sorted(records, key=lambda r: (r.timestamp_ms, r.partition, r.offset)):
        op = ops_by_place[(record.partition, record.offset)]
        if isinstance(op, Forwarded):
            for i in op.identifiers:
                exposed[(op.subject, i.kind, FP(i.kind, i.value))] = rule_of(i.kind, i.purposes)
        elif isinstance(op, Retracted):
            exposed.pop((op.subject, op.kind, FP(op.kind, op.value)), None)
    return exposed
