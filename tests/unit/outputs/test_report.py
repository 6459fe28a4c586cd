"""The impact report for an incident write-up: per rule and type, days, first/last seen."""

from __future__ import annotations

import re

import orjson

from enforcer.core.clock import FixedClock
from enforcer.core.models import Mode
from enforcer.core.step import Step
from enforcer.outputs.report.aggregate import ReportBuilder
from enforcer.outputs.report.charts import day_chart
from enforcer.outputs.report.html import render_html
from enforcer.outputs.report.model import OffsetRange, ReplaySource, Report

from ..conftest import NOW, event, ident, make_step, record

SECRETS = ("+1 555 0100", "+1 555 0199", "+1 555 0142", "x@y.io", "dev-7")


def _report(step: Step, source: ReplaySource | None = None) -> Report:
    values = [
        event(
            ident("phone", "+1 555 0100", ["security.mfa"]),
            ident("email", "x@y.io"),
            subject_id="s1",
            occurred_at="2019-10-01T08:00:00Z",
        ),
        event(
            ident("phone", "+1 555 0199", ["security"]),
            subject_id="s2",
            occurred_at="2019-10-04T09:30:00+02:00",
        ),
        event(
            ident("device_id", "dev-7", ["marketing.advertising"]),
            ident("phone", "+1 555 0142", ["essential.service.notifications.sms"]),
            subject_id="s3",
            occurred_at="2019-10-02T00:00:00Z",
        ),
        event(
            ident("phone", "+1 555 0100", ["security.mfa"]),
            ident("email", "x@y.io", ["marketing.advertising"]),
            subject_id="s1",
            occurred_at="2019-10-04T23:59:00Z",
        ),
    ]
    builder = ReportBuilder(
        step.policy, source or ReplaySource(kind="file", name="in.jsonl"), step.key_id
    )
    for offset, value in enumerate(values):
        builder.add(step(record(value, offset)))
    builder.add(step(record(b"{oops", 9)))
    return builder.build(FixedClock(NOW))


def test_rules_carry_accounts_by_type_and_their_own_window() -> None:
    """Every policy rule, in policy order, with its accounts per type and first/last seen."""
    report = _report(make_step())
    by_name = {rule.rule: rule for rule in report.rules}
    assert [rule.rule for rule in report.rules] == [
        "security-only-purpose",
        "missing-purpose",
        "purpose-not-allowed",
    ]
    security = by_name["security-only-purpose"]
    assert (security.findings, security.affected_subjects) == (3, 2)
    assert security.affected_subjects_by_type == {"phone": 2}
    assert (security.first_seen, security.last_seen) == (
        "2019-10-01T08:00:00Z",
        "2019-10-04T23:59:00Z",
    )
    assert security.action == "redact" and "advertising" in security.description
    missing = by_name["missing-purpose"]
    assert (missing.findings, missing.affected_subjects_by_type) == (1, {"email": 1})
    assert missing.first_seen == missing.last_seen == "2019-10-01T08:00:00Z"
    not_allowed = by_name["purpose-not-allowed"]
    assert (not_allowed.findings, not_allowed.affected_subjects_by_type) == (1, {"phone": 1})
    assert not_allowed.action == "redact"
    assert "not for advertising" in not_allowed.description
    types = {t.identifier_type: t for t in report.identifier_types}
    assert set(types) == {"email", "phone"}
    # 09:30 at +02:00 is 07:30 UTC: earlier on the 4th than 23:59Z.
    assert types["phone"].last_seen == "2019-10-04T23:59:00Z"
    assert types["phone"].affected_subjects == 3


def test_html_states_who_what_when_and_what_was_done() -> None:
    """The summary gives the window, accounts and action; tables name rules and types."""
    html = render_html(_report(make_step()))
    text = re.sub(r"<[^>]+>", "", html)
    assert "Between 2019-10-01 08:00:00 UTC and 2019-10-04 23:59:00 UTC, 3 accounts had 5" in text
    assert (
        "would have kept these identifiers out. Would have been forwarded with them removed "
        "(redacted): 2 records. Would have been withheld entirely (dropped): 2 records." in text
    )
    assert "What would have happened to the 5 records examined" in text
    assert "kept these identifiers out." not in text.replace("would have kept", "")
    assert re.search(r"\b(were|was) (redacted|dropped|forwarded|removed)", text) is None
    for rule in ("security-only-purpose", "missing-purpose", "purpose-not-allowed"):
        assert rule in text
    assert "but not for advertising, so not for building audiences" in text
    assert "Not valid identity events: 1 record." in text
    for secret in SECRETS:
        assert secret not in html
    assert "<script" not in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")


def test_audit_mode_says_nothing_was_removed() -> None:
    """An auditor must not read audit findings as redactions."""
    step = make_step(make_step().policy.with_mode(Mode.AUDIT))
    html = render_html(_report(step))
    assert "Audit mode: nothing would have been removed." in html
    assert "would pass with a violation (audit) 4" in html
    assert "kept these identifiers out" not in html
    report = _report(step)
    assert "would have been forwarded unchanged (audit mode)" in report.summary


def test_topic_scope_lists_the_offsets_read() -> None:
    """A topic replay names its range and the offsets each partition resolved to."""
    source = ReplaySource(
        kind="topic",
        name="identity.events",
        start="2019-10-01T00:00:00Z",
        end="latest",
        offsets=[
            OffsetRange(partition=0, start=5, end=1005),
            OffsetRange(partition=1, start=7, end=7),
        ],
    )
    html = render_html(_report(make_step(), source))
    assert "from 2019-10-01T00:00:00Z to latest" in html
    assert "partition 0: offsets 5 to 1,004; partition 1: none" in html
    assert "the offsets read identify the input" in html
    data = orjson.loads(_report(make_step(), source).model_dump_json())
    assert data["source"]["offsets"][0] == {"partition": 0, "start": 5, "end": 1005}


def test_day_chart_fills_gaps_and_marks_days_without_records() -> None:
    """Days between the first and last appear; a day with no records is shaded, not blank."""
    svg = day_chart([("2019-10-01", 10, 3, 4), ("2019-10-04", 5, 1, 1)])
    assert svg.count("<title>2019-10-0") == 3  # two bars and one shaded run
    assert "2019-10-02 to 2019-10-03: no records" in svg
    assert "grey: no records that day" in svg


def test_report_json_says_what_would_have_happened_and_under_which_key() -> None:
    """A replay changes nothing: the summary is conditional; key id and scope are named."""
    step = make_step()
    report = _report(step)
    assert report.summary == (
        "Replay of 5 records under this policy: 0 would have passed, 2 would have been "
        "redacted and 2 dropped; 1 would have been dead-lettered. Nothing was written to "
        "the live topics."
    )
    assert report.key_id == step.key_id and len(report.key_id) == 16
    html = render_html(report)
    assert step.key_id in html
    assert "<dt>input SHA-256</dt><dd>—</dd>" in html
