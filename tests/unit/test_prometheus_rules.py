"""deploy/prometheus: the alert and recording rules, checked and unit-tested by promtool.

The rules are run against a real Prometheus scraping real workers in
tests/integration/test_prometheus_rules.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from enforcer.outputs.metrics import LAG_EXPORTER_METRICS, METRICS

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"
OPERATIONS = ROOT / "docs" / "operations.md"
RULES = RULES_DIR / "enforcer.rules.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (scripts/setup.sh installs Debian's prometheus package as root)",
)

WANTED_ALERTS = {
    "EnforcerWorkerDown",
    "EnforcerAllWorkersDown",
    "EnforcerLagNotShrinking",
    "EnforcerLagExporterDown",
    "EnforcerDeadLetterRatioHigh",
    "EnforcerDeadLetterGuardTripped",
    "EnforcerViolationSpike",
    "EnforcerPolicyVersionDrift",
    "EnforcerAuditModeInProduction",
    "EnforcerPolicySecurityOverride",
    "EnforcerPolicyFileRefused",
}


def _rules() -> list[dict[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_rules_cover_every_alert_the_operators_need() -> None:
    """Worker down, broker-side lag, dead-letter ratio, violation spike, policy drift,
    audit mode in production, a policy with a security override; each alert with a
    severity, a summary and a description."""
    alerts = {rule["alert"]: rule for rule in _rules() if "alert" in rule}
    assert set(alerts) == WANTED_ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name  # type: ignore[index]
        assert {"summary", "description"} <= set(rule["annotations"]), name
    # The lag alert reads the broker-side lag, never the workers' own.
    lag = alerts["EnforcerLagNotShrinking"]["expr"]
    assert "enforcer:group_lag:sum" in lag and "enforcer_consumer_lag" not in lag


def test_the_rules_use_only_metrics_that_exist() -> None:
    """Every enforcer_* name in an expression is exposed by a worker or the exporter,
    and every recording rule used is defined."""
    exposed = {m.name for m in (*METRICS, *LAG_EXPORTER_METRICS)}
    rules = _rules()
    recorded = {rule["record"] for rule in rules if "record" in rule}
    for rule in rules:
        for name in re.findall(r"\benforcer_[a-z_]+", rule["expr"]):
            assert name in exposed, (name, rule)
        for name in re.findall(r"\benforcer:[a-z_:0-9]+", rule["expr"]):
            assert name in recorded, (name, rule)


def _heading_anchors(markdown: str) -> set[str]:
    """The anchors a Markdown renderer (GitHub's rules) gives the headings."""
    anchors = set()
    for line in markdown.splitlines():
        if match := re.match(r"#{1,6} (.+)", line):
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_every_alert_has_a_runbook_in_the_operations_guide() -> None:
    """Each alert's runbook_url points at docs/operations.md, at a section that exists and
    is that alert's runbook: what it means, what to check, what to do."""
    text = OPERATIONS.read_text()
    anchors = _heading_anchors(text)
    sections = re.split(r"\n(?=#{1,6} )", text)
    for rule in _rules():
        if "alert" not in rule:
            continue
        url = rule["annotations"].get("runbook_url", "")  # type: ignore[attr-defined]
        assert url.startswith("docs/operations.md#"), (rule["alert"], url)
        anchor = url.split("#", 1)[1]
        assert anchor in anchors, (rule["alert"], anchor)
        [section] = [s for s in sections if s.startswith("#") and rule["alert"] in s.split("\n")[0]]
        for part in ("**Means:**", "**Check:**", "**Do:**"):
            assert part in section, (rule["alert"], part)


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    """`promtool check rules`: the file parses and every expression is valid PromQL."""
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


@needs_promtool
def test_promtool_unit_tests_of_the_rules_pass() -> None:
    """`promtool test rules`: each alert fires on its scenario and stays silent on its
    near miss (a rolling deployment, a backlog being worked off, one of two workers
    down); with every worker down the broker-side lag alert fires."""
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "enforcer.rules.test.yml"],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_prometheus_config_scrapes_workers_and_the_lag_exporter() -> None:
    """The example configuration loads the rules and scrapes both jobs the rules name."""
    config = yaml.safe_load((RULES_DIR.parent / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules/enforcer.rules.yml"]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"purpose-enforcer", "purpose-enforcer-lag"}
