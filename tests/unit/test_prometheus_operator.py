"""The alert rules on the Prometheus Operator path: series labelled as the Operator labels
what the shipped ServiceMonitor scrapes, and the PrometheusRule generated from the rules.

Scraped through a ServiceMonitor, a target's job is the Service's name unless the
ServiceMonitor's ``jobLabel`` names a Service label to take it from. The rules select
``job="purpose-enforcer"`` and ``job="purpose-enforcer-lag"``; when the two disagree,
``EnforcerAllWorkersDown`` fires with every worker up (as it did with the single
``purpose-enforcer-metrics`` Service).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"
OPERATOR_TEST = RULES_DIR / "enforcer.rules.operator.test.yml"
PROMTOOL = shutil.which("promtool")
# The target labels the Operator adds to every series of a ServiceMonitor's endpoint.
OPERATOR_LABELS = {"job", "namespace", "service", "endpoint", "pod", "container", "instance"}


def _documents(pattern: str) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(K8S.glob(pattern))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _monitor() -> dict[str, Any]:
    [monitor] = _documents("monitoring/servicemonitor.yaml")
    assert monitor["kind"] == "ServiceMonitor"
    return monitor


def _scraped_services() -> dict[str, dict[str, Any]]:
    """The Services the ServiceMonitor selects, by name."""
    selector = _monitor()["spec"]["selector"]["matchLabels"]
    return {
        doc["metadata"]["name"]: doc
        for doc in _documents("*.yaml")
        if doc["kind"] == "Service" and _matches(selector, doc["metadata"].get("labels", {}))
    }


def _workloads() -> list[dict[str, Any]]:
    return [d for d in _documents("*.yaml") if d["kind"] in {"Deployment", "StatefulSet"}]


def operator_job(service: dict[str, Any]) -> str:
    """The job label the Operator gives this Service's targets: the value of the Service
    label named by the ServiceMonitor's ``jobLabel`` when it has one, else its name."""
    label = _monitor()["spec"].get("jobLabel")
    labels = service["metadata"].get("labels", {})
    return str(labels[label]) if label and labels.get(label) else service["metadata"]["name"]


def _jobs_by_component() -> dict[str, set[str]]:
    jobs: dict[str, set[str]] = {}
    for service in _scraped_services().values():
        for workload in _workloads():
            labels = workload["spec"]["template"]["metadata"]["labels"]
            if _matches(service["spec"]["selector"], labels):
                jobs.setdefault(labels["app.kubernetes.io/component"], set()).add(
                    operator_job(service)
                )
    return jobs


def _rule_jobs() -> set[str]:
    text = (RULES_DIR / "enforcer.rules.yml").read_text()
    return set(re.findall(r'job="([^"]+)"', text))


def test_the_service_monitor_gives_the_jobs_the_rules_select() -> None:
    """Workers (the StatefulSet's and the sidecar's) are job purpose-enforcer, the lag
    exporter job purpose-enforcer-lag: exactly the jobs the rules name."""
    assert _jobs_by_component() == {
        "worker": {"purpose-enforcer"},
        "lag-exporter": {"purpose-enforcer-lag"},
    }
    assert _rule_jobs() == {"purpose-enforcer", "purpose-enforcer-lag"}
    # The job must not hang on the Services' names alone (a kustomize namePrefix would
    # rename them): it comes from their app.kubernetes.io/name label.
    assert _monitor()["spec"]["jobLabel"] == "app.kubernetes.io/name"


def _series_labels(series: str) -> dict[str, str]:
    body = series[series.index("{") + 1 : series.rindex("}")]
    return dict(re.findall(r'(\w+)="([^"]*)"', body))


def _operator_series() -> list[dict[str, str]]:
    tests = yaml.safe_load(OPERATOR_TEST.read_text())["tests"]
    return [_series_labels(s["series"]) for t in tests for s in t["input_series"]]


def test_the_operator_test_series_are_labelled_as_the_operator_labels_them() -> None:
    """Every input series of enforcer.rules.operator.test.yml carries the Operator's
    target labels, with the job, service, endpoint, container and pod name the shipped
    manifests produce."""
    services = _scraped_services()
    [endpoint] = _monitor()["spec"]["endpoints"]
    seen_jobs = set()
    series = _operator_series()
    assert len(series) >= 10
    for labels in series:
        assert set(labels) >= OPERATOR_LABELS, labels
        service = services[labels["service"]]
        assert labels["job"] == operator_job(service), labels
        assert labels["endpoint"] == endpoint["port"]
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
        [workload] = [
            w
            for w in _workloads()
            if _matches(service["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
            and labels["pod"].startswith(w["metadata"]["name"] + "-")
        ]
        containers = {c["name"] for c in workload["spec"]["template"]["spec"]["containers"]}
        assert labels["container"] in containers, labels
        if workload["kind"] == "StatefulSet":  # stable names: <name>-<ordinal>
            assert re.fullmatch(rf"{workload['metadata']['name']}-\d+", labels["pod"])
        seen_jobs.add(labels["job"])
    assert seen_jobs == _rule_jobs()


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (scripts/setup.sh)")
def test_the_alerts_work_on_operator_labelled_series() -> None:
    """promtool: with every worker up nothing fires (EnforcerAllWorkersDown fired here
    before the fix); one pod down alerts with its pod; all down and the broker-side lag
    alert fire; ratios and drift are per job."""
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "test", "rules", OPERATOR_TEST.name],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_prometheus_rule_holds_the_rule_file() -> None:
    """deploy/k8s/monitoring/prometheusrule.yaml carries the rule file's groups unchanged,
    and is what scripts/prometheus_rule.py writes from it today."""
    [rule] = _documents("monitoring/prometheusrule.yaml")
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    rules = yaml.safe_load((RULES_DIR / "enforcer.rules.yml").read_text())
    assert rule["spec"]["groups"] == rules["groups"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "prometheus_rule.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_generator_adds_labels_and_absolute_runbook_links(tmp_path: Path) -> None:
    """--label for the Operator's ruleSelector, --runbook-base for published docs; a
    missing rule file is one line and exit 2."""
    script = str(ROOT / "scripts" / "prometheus_rule.py")
    result = subprocess.run(
        [
            sys.executable,
            script,
            "--output",
            "-",
            "--label",
            "release=kps",
            "--runbook-base",
            "https://docs.example/enforcer/",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    [rule] = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert rule["metadata"]["labels"]["release"] == "kps"
    links = [
        r["annotations"]["runbook_url"]
        for g in rule["spec"]["groups"]
        for r in g["rules"]
        if "alert" in r
    ]
    assert links and all(
        link.startswith("https://docs.example/enforcer/docs/operations.md#runbook-")
        for link in links
    )
    missing = subprocess.run(
        [sys.executable, script, "--rules", str(tmp_path / "none.yml"), "--output", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "cannot read" in missing.stderr
