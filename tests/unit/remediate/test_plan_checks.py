"""A plan read back is held to what ``remediate plan`` can write (docs/remediate.md, "The
plan file"): its id has no key, so a plan edited on purpose with its id computed again
matches it, and must still be refused when it holds anything a plan could not. Every
plan the planner makes is accepted; each refusal is one line naming the field and the
entry, never the value."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings

from enforcer.cli import main
from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import generate_key
from enforcer.core.policy.load import parse_policy
from enforcer.remediate.history import SinkRecord
from enforcer.remediate.judge import Judge
from enforcer.remediate.plan import (
    HistoryCounts,
    PartitionSpan,
    Plan,
    PlanError,
    PlannedExposure,
    PlannedRetraction,
    parse_plan,
    plan_bytes,
    plan_id_of,
)
from enforcer.remediate.planner import Planner

from ..conftest import NOW
from .histories import ADS, BASE_MS, FP, POLICY, SINK, History, histories, records_of

KEY_ID = "0123456789abcdef"
VERSION = "sha256:" + "7" * 64
PHONE = "+14155550123"


def _fp(n: int) -> str:
    return "hmac-sha256:" + f"{n:064x}"


def _plan() -> Plan:
    """Two subjects, three retractions by two rules and types, two entries to seed."""
    retractions = (
        PlannedRetraction("acct-1", "email", _fp(1), KEY_ID, "purpose-not-allowed"),
        PlannedRetraction("acct-1", "phone", _fp(2), KEY_ID, "purpose-not-allowed"),
        PlannedRetraction("acct-2", "phone", _fp(3), KEY_ID, "missing-purpose"),
    )
    exposure = (
        PlannedExposure(
            "acct-1", "email", _fp(4), KEY_ID, ("marketing.advertising",), True, VERSION,
            "2026-11-30T10:00:00Z", "2026-12-01T10:00:00Z",
        ),
        PlannedExposure(
            "acct-3", "device_id", _fp(5), KEY_ID, (), False, "unknown",
            "2026-11-30T10:00:00Z", "2026-11-30T10:00:00Z",
        ),
    )  # fmt: skip
    return Plan(
        sink_topic="audience.building",
        policy_version=VERSION,
        key_id=KEY_ID,
        ledger="fallback",
        since="2026-11-01T00:00:00Z",
        until="2026-12-02T00:00:00+01:00",
        offsets=(PartitionSpan(0, 0, 10), PartitionSpan(1, 4, 4)),
        history=HistoryCounts(records=10, forwarded=8, retractions=1, other=1, unreadable=1),
        exposed=5,
        by_rule={"purpose-not-allowed": 2, "missing-purpose": 1},
        by_type={"email": 1, "phone": 2},
        by_day={"2026-11-30": 2, "2026-12-01": 1},
        affected_subjects=2,
        retractions=retractions,
        exposure=exposure,
    ).with_id()


def _resigned(edit: Callable[[dict[str, Any]], None]) -> bytes:
    """The plan file edited, its id computed again as whoever edited it would."""
    document = orjson.loads(plan_bytes(_plan()))
    edit(document)
    del document["plan_id"]
    return orjson.dumps({"plan_id": plan_id_of(document), **document})


def _set(*path: Any, to: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        target = document
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = to

    return edit


def _duplicate_the_first_retraction(document: dict[str, Any]) -> None:
    first = document["retractions"][0]
    document["retractions"].insert(1, dict(first))
    document["counts"]["by_rule"]["purpose-not-allowed"] += 1
    document["counts"]["by_type"]["email"] += 1
    document["counts"]["by_day"]["2026-11-30"] += 1
    document["exposed"] += 1


def _swap_retractions(document: dict[str, Any]) -> None:
    r = document["retractions"]
    r[0], r[1] = r[1], r[0]


def _retract_a_seeded_one(document: dict[str, Any]) -> None:
    document["exposure"][0]["fingerprint"] = _fp(1)


def test_a_plan_as_planned_reads_back() -> None:
    plan = _plan()
    assert parse_plan(plan_bytes(plan)) == plan


def test_an_open_identifier_type_is_a_plan_s_own() -> None:
    """Identifier types are open (docs/contract.md): a plan may retract any lower-cased
    type, its counts agreeing."""

    def ssn(document: dict[str, Any]) -> None:
        document["retractions"][1]["identifier_type"] = "ssn"
        document["counts"]["by_type"] = {"email": 1, "ssn": 1, "phone": 1}

    assert parse_plan(_resigned(ssn)).retractions[1].identifier_type == "ssn"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # What a hand-edited plan was seen to write: a raw phone number as a
        # fingerprint, a key id and policy version of no key or policy, wrong counts,
        # one retraction twice.
        (_set("retractions", 0, "fingerprint", to=PHONE), "retractions[0].fingerprint: not an"),
        (_set("retractions", 0, "fingerprint", to=_fp(1).upper()), "retractions[0].fingerprint"),
        (_set("retractions", 0, "fingerprint", to=_fp(1) + "00"), "retractions[0].fingerprint"),
        (_set("key_id", to="zz"), "key_id: not a key id"),
        (_set("retractions", 2, "key_id", to="fedcba9876543210"), "retractions[2].key_id: not"),
        (_set("policy_version", to="nope"), "policy_version: not a policy version"),
        (_set("affected_subjects", to=3), "affected_subjects: not the retractions' distinct"),
        (_duplicate_the_first_retraction, "retractions[1]: the same identifier as retractions[0]"),
        (_set("retractions", 1, "identifier_type", to="ssn"), "counts.by_type: not the"),
        (_set("retractions", 0, "identifier_type", to="Email"), "retractions[0].identifier_type"),
        (
            _set("retractions", 0, "identifier_type", to="+14155550100"),
            "retractions[0].identifier_type: not a lower-cased identifier type name",
        ),
        (
            _set("exposure", 0, "identifier_type", to="victim@example.com"),
            "exposure[0].identifier_type: not a lower-cased identifier type name",
        ),
        (_set("retractions", 0, "rule", to=PHONE), "retractions[0].rule: not a rule name"),
        (_set("counts", "by_rule", "purpose-not-allowed", to=3), "counts.by_rule: not the"),
        (_set("counts", "by_day", "2026-11-30", to=3), "counts.by_day: does not add up"),
        (_set("counts", "by_day", to={PHONE: 3}), "counts.by_day: a key that is not a date"),
        (_set("counts", "by_day", to={"2026-02-30": 3}), "counts.by_day: a key that is not"),
        (_set("counts", "by_day", to={"2026-11-30": 3, "2026-12-01": 0}), "a day with no"),
        (_swap_retractions, "retractions[1]: retractions not sorted"),
        (_set("sink_topic", to="two words"), "sink_topic: not a Kafka topic name"),
        (_set("ledger", to="sometimes"), "ledger: not one of"),
        (_set("since", to="1969-12-31T23:59:59Z"), "since: before 1970"),
        (_set("until", to="yesterday"), "until: not an RFC 3339 time"),
        (_set("since", to="2026-12-03T00:00:00Z"), "since: after until"),
        (_set("offsets", 1, "partition", to=0), "offsets[1]: partitions not sorted"),
        (_set("offsets", 0, "start", to=11), "offsets[0]: start after end"),
        (_set("history", "records", to=11), "history: records is not"),
        (_set("history", "unreadable", to=9), "history: more unreadable"),
        (_set("exposed", to=4), "exposed: not the number"),
        (_set("exposure", 1, "fingerprint", to=PHONE), "exposure[1].fingerprint: not an"),
        (_set("exposure", 1, "key_id", to="fedcba9876543210"), "exposure[1].key_id: not"),
        (_set("exposure", 1, "identifier_type", to=" x"), "exposure[1].identifier_type"),
        (_set("exposure", 1, "purposes", to=[PHONE]), "exposure[1].purposes[0]"),
        (_set("exposure", 1, "policy_version", to=PHONE), "exposure[1].policy_version: not"),
        (_set("exposure", 0, "last_forwarded_at", to="2026-11-29T00:00:00Z"), "before first"),
        (_set("exposure", 1, "first_forwarded_at", to="2026-11-30T11:00:00+01:00"), "UTC"),
        (_set("ledger", to="off"), "exposure[0].by_ledger: true in a plan judged without"),
        (_retract_a_seeded_one, "exposure[0]: an identifier the plan retracts"),
    ],
)
def test_a_plan_edited_with_its_id_computed_again_is_refused(
    edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan(_resigned(edit), "p.json")
    text = str(caught.value)
    assert text.startswith("p.json: ") and message in text, text
    assert "\n" not in text and "415" not in text


def test_the_planner_s_plans_are_accepted_whatever_the_history() -> None:
    """A fixed history naming policy versions that are not the enforcer's: the plan
    seeds them as ``unknown`` (they are written to exposure), and it reads back."""
    sink_records = [
        SinkRecord(
            b"acct-1",
            orjson.dumps(
                {
                    "event_id": f"e{n}",
                    "subject_id": "acct-1",
                    "occurred_at": "2025-11-30T00:00:00Z",
                    "identifiers": [{"type": "email", "value": f"{n}@x.org", "purposes": [ADS]}],
                }
            ),
            (("enforcer.action", b"passed"), ("enforcer.policy", header)),
            0,
            n,
            BASE_MS + n,
        )
        for n, header in enumerate([PHONE.encode(), VERSION.encode(), b"\xff"])
    ]
    plan = _planned(sink_records)
    assert plan.exposure is not None
    assert [e.policy_version for e in plan.exposure] == ["unknown", VERSION, "unknown"]
    assert parse_plan(plan_bytes(plan)) == plan


def _planned(records: list[SinkRecord]) -> Plan:
    policy = parse_policy(POLICY.encode(), origin="test.yaml")
    planner = Planner(
        Judge(policy, FP, FixedClock(NOW)), SINK, "identity.events", with_exposure=True
    )
    planner.add_all(records)
    return planner.plan()


@settings(max_examples=200, deadline=None)
@given(histories)
def test_every_plan_the_planner_makes_is_accepted(history: History) -> None:
    plan = _planned(records_of(history))
    assert parse_plan(plan_bytes(plan)) == plan
    without = Plan(**{**plan.__dict__, "exposure": None}).with_id()
    assert parse_plan(plan_bytes(without)) == without


@pytest.fixture
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("ENFORCER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", generate_key())
    # Nothing listens there: an apply that got as far as Kafka would say so.
    monkeypatch.setenv("ENFORCER_BOOTSTRAP_SERVERS", "127.0.0.1:9")


@pytest.mark.usefixtures("_env")
def test_apply_refuses_such_a_plan_before_any_kafka_client(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(_resigned(_set("retractions", 1, "fingerprint", to=PHONE)))
    assert main(["remediate", "apply", str(path)]) == 2
    captured = capfd.readouterr()
    assert captured.err == (
        f"enforcer: error: {path}: retractions[1].fingerprint: not an hmac-sha256 fingerprint\n"
    )
    assert captured.out == ""
