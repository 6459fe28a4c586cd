"""The plan's summary and page: the counts, fingerprints only, and nothing a subject id
could inject into the page."""

from __future__ import annotations

from enforcer.remediate.page import plan_page
from enforcer.remediate.plan import HistoryCounts, Plan, PlannedExposure, PlannedRetraction
from enforcer.remediate.summary import summary_lines

KEY_ID = "0123456789abcdef"


def _plan() -> Plan:
    phones = [
        PlannedRetraction(f"acct-{i}", "phone", "hmac-sha256:" + f"{i:064x}", KEY_ID, "no-phones")
        for i in range(3)
    ]
    odd = PlannedRetraction("<script>x</script>", "email", "hmac-sha256:" + "f" * 64, KEY_ID, "r")
    retractions = (*phones, odd)
    return Plan(
        "audience.building", "v2", KEY_ID, "off", "2026-11-01T00:00:00Z", None, (),
        HistoryCounts(12, 10, 1, 1, 0), 9, {"no-phones": 3, "r": 1}, {"phone": 3, "email": 1},
        {f"2026-11-{d:02d}": 1 for d in range(1, 5)}, 4, retractions,
    ).with_id()  # fmt: skip


def test_the_summary_gives_the_counts() -> None:
    lines = summary_lines(_plan())
    text = "\n".join(lines)
    assert len(lines) <= 8
    assert _plan().plan_id in lines[0]
    assert "9 identifiers still exposed; 4 to retract (4 subjects), 5 allowed" in text
    assert "by rule: no-phones 3, r 1" in text
    assert "by day last forwarded: 2026-11-01 1, 2026-11-02 1" in text
    assert "hmac-sha256:" not in text


def test_a_long_table_is_cut_to_the_largest_rows() -> None:
    plan = _plan()
    many = Plan(**{**plan.__dict__, "by_rule": {f"rule-{i:02d}": i + 1 for i in range(12)}})
    [line] = [line for line in summary_lines(many) if "by rule" in line]
    assert line.startswith("  by rule: rule-11 12, rule-10 11")
    assert line.endswith("4 more 10")


def test_the_page_escapes_what_it_shows() -> None:
    page = plan_page(_plan())
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "hmac-sha256:" + "0" * 64 in page
    assert "<script" not in page.replace("&lt;script", "")


def test_a_plan_made_to_seed_exposure_says_so_and_how_to_apply_it() -> None:
    """A plan made with --with-exposure is applied only with an exposure topic: its
    summary and page say what it seeds, so the reviewer of the plan knows which it is;
    a plan without exposure says nothing of it."""
    plan = _plan()
    assert not any("exposure" in line for line in summary_lines(plan))
    assert "exposure" not in plan_page(plan)
    entries = tuple(
        PlannedExposure(
            f"acct-{i // 2}", "email", "hmac-sha256:" + f"{i + 100:064x}", KEY_ID,
            ("marketing.advertising",), False, "v2", "2026-11-01T00:00:00Z",
            "2026-11-01T00:00:00Z",
        )
        for i in range(5)
    )  # fmt: skip
    seeding = Plan(**{**plan.__dict__, "exposed": 9 + 5, "exposure": entries})
    needle = "exposure to seed: 5 identifiers of 3 subjects (apply with --exposure-topic)"
    assert f"  {needle}" in summary_lines(seeding)
    assert "to seed: 5 identifiers of 3 subjects" in plan_page(seeding)
    one = Plan(**{**plan.__dict__, "exposed": 9 + 1, "exposure": entries[:1]})
    assert "  exposure to seed: 1 identifier of 1 subject (apply with --exposure-topic)" in (
        summary_lines(one)
    )
