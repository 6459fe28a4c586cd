"""deploy/grafana/purpose-enforcer.json: every panel follows the dashboard's job variable.

The variable lists the workers' jobs (label_values(enforcer_info, job)); the broker-side
lag comes from the lag exporter, whose job is the workers' job with "-lag" appended
(purpose-enforcer-lag beside purpose-enforcer: prometheus.yml, the ServiceMonitor's
jobLabel). Before, the lag panels summed every group's lag in Prometheus whatever was
selected.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "purpose-enforcer.json"
# A series selector of ours: a metric name, then its label matchers if any.
# (A matcher's value may hold a ${variable}, whose braces do not close the matchers.)
SELECTOR = re.compile(r"\b((?:enforcer|process)_[a-z_]+)(\{(?:[^{}]|\$\{\w+\})*\})?")
WORKER_JOB = 'job=~"$job"'
LAG_JOB = 'job=~"${job}-lag"'
LAG_EXPORTER_METRICS = {"enforcer_group_lag", "enforcer_group_lag_up"}


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_the_job_variable_lists_the_workers_jobs() -> None:
    [job] = [v for v in _dashboard()["templating"]["list"] if v["name"] == "job"]
    assert job["query"]["query"] == "label_values(enforcer_info, job)"
    assert job["multi"] is True and job["includeAll"] is True


def test_every_panel_expression_selects_by_the_job_variable() -> None:
    """Each metric in each panel's expressions carries the job matcher: the workers' job,
    or for the lag exporter's metrics the same job with -lag."""
    checked = 0
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            selectors = SELECTOR.findall(target["expr"])
            assert selectors, (panel["title"], target["expr"])
            for metric, matchers in selectors:
                wanted = LAG_JOB if metric in LAG_EXPORTER_METRICS else WORKER_JOB
                assert wanted in matchers, (panel["title"], metric, target["expr"])
                checked += 1
    assert checked >= 30
