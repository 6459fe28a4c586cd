"""The plan file (docs/remediate.md, "The plan file"): its id is the hash of its content,
it reads back equal, and a file that is not a plan, or was edited, is refused in one
line that quotes nothing of it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from enforcer.exposure.retract import retraction_value
from enforcer.ledger.store import RetractionReason
from enforcer.remediate.plan import (
    HistoryCounts,
    PartitionSpan,
    Plan,
    PlanError,
    PlannedRetraction,
    parse_plan,
    plan_bytes,
    read_plan,
)

FINGERPRINT = "hmac-sha256:" + "ab" * 32
VERSION = "sha256:" + "2" * 64


def _plan(**changes: object) -> Plan:
    fields: dict[str, object] = {
        "sink_topic": "audience.building",
        "policy_version": VERSION,
        "key_id": "0123456789abcdef",
        "ledger": "off",
        "since": "2026-11-01T00:00:00Z",
        "until": None,
        "offsets": (PartitionSpan(0, 0, 10),),
        "history": HistoryCounts(10, 8, 1, 1, 0),
        "exposed": 3,
        "by_rule": {"purpose-not-allowed": 1},
        "by_type": {"email": 1},
        "by_day": {"2026-11-02": 1},
        "affected_subjects": 1,
        "retractions": (
            PlannedRetraction(
                "acct-1", "email", FINGERPRINT, "0123456789abcdef", "purpose-not-allowed"
            ),
        ),
    }
    fields.update(changes)
    return Plan(**fields).with_id()  # type: ignore[arg-type]


def test_the_id_is_the_hash_of_the_content() -> None:
    plan = _plan()
    assert plan.plan_id.startswith("sha256:") and len(plan.plan_id) == 7 + 64
    assert _plan().plan_id == plan.plan_id
    assert _plan(policy_version="sha256:" + "3" * 64).plan_id != plan.plan_id
    assert _plan(retractions=()).plan_id != plan.plan_id
    assert parse_plan(plan_bytes(plan)) == plan


def test_each_retraction_is_written_with_every_field_it_has() -> None:
    plan = _plan()
    written = orjson.loads(plan_bytes(plan))["retractions"]
    assert written == [r._asdict() for r in plan.retractions]
    assert list(written[0]) == list(PlannedRetraction._fields)


def test_the_retraction_records_are_remediated_with_the_plan_id() -> None:
    plan = _plan()
    [retraction] = plan.exposure_retractions()
    assert retraction.reason is RetractionReason.REMEDIATED
    assert retraction.sink_topic == "audience.building"
    body = orjson.loads(retraction_value(retraction))["retraction"]
    assert body == {
        "subject_id": "acct-1",
        "identifier_type": "email",
        "fingerprint": FINGERPRINT,
        "key_id": "0123456789abcdef",
        "reason": "remediated",
        "policy_version": VERSION,
        "plan_id": plan.plan_id,
    }


def _edited(change: dict[str, object]) -> bytes:
    document = orjson.loads(plan_bytes(_plan()))
    document.update(change)
    return orjson.dumps(document)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not a JSON plan file"),
        (b"[1]", "not a JSON object"),
        (b"{}", "missing field affected_subjects"),
        (_edited({"exposed": 4}), "plan_id does not match"),
        (_edited({"format": 2}), "plan format 1 only"),
        (_edited({"extra": "secret@x.org"}), "an unknown field"),
        (_edited({"retractions": [{"subject_id": "a"}]}), "retractions: an entry"),
        (_edited({"exposed": -1}), "exposed: not a count"),
        (_edited({"sink_topic": ""}), "sink_topic: not a non-empty string"),
        # A table's key may be anything an editor put there: named by its table only.
        (
            _edited({"counts": {"by_rule": {"secret@x.org": -1}, "by_type": {}, "by_day": {}}}),
            "counts.by_rule: a value that is not a count",
        ),
        (_edited({"offsets": [{"partition": 0}]}), "missing field start"),
    ],
)
def test_a_file_that_is_not_a_usable_plan_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(PlanError, match=message) as caught:
        parse_plan(data, "p.json")
    assert "secret" not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="No such file"):
        read_plan(tmp_path / "absent.json")
