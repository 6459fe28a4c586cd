"""deploy/helm/purpose-enforcer: the chart lints, renders valid manifests and agrees with the code.

helm is built from its Go module by deploy/helm/build-helm.sh (scripts/setup.sh runs it);
without it these tests are skipped, saying so. Renders are checked against the Kubernetes
schemas strictly by kubernetes-validate, like the plain manifests in tests/unit/test_deploy.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from enforcer.cli import build_parser
from enforcer.core.policy.load import parse_policy
from tests.unit.test_deploy import SETTINGS_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "purpose-enforcer"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "enforcer.rules.yml"
KUBERNETES_VERSION = "1.30"
# The jobs the alert rules select on (deploy/prometheus/rules/enforcer.rules.yml).
WORKER_JOB = "purpose-enforcer"
LAG_JOB = "purpose-enforcer-lag"


def _helm_binary() -> str | None:
    """$HELM, else the one build-helm.sh caches, else helm on PATH."""
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    built = sorted((ROOT / "deploy" / "helm").glob("bin-v*/helm"))
    if built and os.access(built[-1], os.X_OK):
        return str(built[-1])
    return shutil.which("helm")


HELM = _helm_binary()
pytestmark = pytest.mark.skipif(
    HELM is None,
    reason="helm not built (scripts/setup.sh runs deploy/helm/build-helm.sh, which needs Go)",
)


def _set(*assignments: str) -> tuple[str, ...]:
    """`--set` arguments for helm, one per ``key=value``."""
    return tuple(arg for assignment in assignments for arg in ("--set", assignment))


# Value sets the chart is rendered with: the defaults and a few an operator would use.
VARIATIONS: dict[str, tuple[str, ...]] = {
    "defaults": (),
    "monitoring": _set(
        "monitoring.enabled=true",
        "monitoring.serviceMonitor.labels.release=kube-prometheus-stack",
        "monitoring.prometheusRule.runbookBase=https://git.example.com/enforcer/blob/main/",
        "networkPolicy.enabled=true",
    ),
    "sasl-persistent-audit": _set(
        "worker.mode=audit",
        "worker.replicas=6",
        "worker.persistence.enabled=true",
        "worker.persistence.storageClass=fast",
        "worker.env.ENFORCER_SECURITY_PROTOCOL=SASL_SSL",
        "worker.env.ENFORCER_SASL_MECHANISM=SCRAM-SHA-512",
        "worker.env.ENFORCER_SASL_USERNAME=enforcer",
        "worker.extraEnv[0].name=ENFORCER_SASL_PASSWORD",
        "worker.extraEnv[0].valueFrom.secretKeyRef.name=kafka-credentials",
        "worker.extraEnv[0].valueFrom.secretKeyRef.key=password",
        "lagExporter.env.ENFORCER_SECURITY_PROTOCOL=SASL_SSL",
        "imagePullSecrets[0].name=regcred",
        "image.tag=0.2.0",
    ),
    "own-policy-no-lag-exporter": (
        "--set-file",
        f"policy.content={ROOT / 'policies' / 'advertising-allow-list.yaml'}",
        *_set(
            "lagExporter.enabled=false",
            "fingerprintKey.existingSecret=my-key",
            "fingerprintKey.secretKey=key",
        ),
    ),
    "existing-configmap": _set("policy.existingConfigMap=my-policy"),
    "roll-on-policy-change": _set("policy.rollOnChange=true"),
}
OPERATOR_API = "monitoring.coreos.com/"


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run(
        [HELM, *args], capture_output=True, text=True, check=False, cwd=ROOT, timeout=120
    )


@cache
def _render(variation: str) -> tuple[dict[str, Any], ...]:
    result = _helm(
        "template", "prod", str(CHART), "--namespace", "enforcer", *VARIATIONS[variation]
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def _of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def _pod_specs(docs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [doc["spec"]["template"] for doc in docs if doc["kind"] in {"StatefulSet", "Deployment"}]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _worker(docs: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The workers' StatefulSet and its enforcer container."""
    [statefulset] = _of_kind(docs, "StatefulSet")
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    return statefulset, container


ALL = pytest.mark.parametrize("variation", sorted(VARIATIONS))


@ALL
def test_helm_lint_passes(variation: str) -> None:
    """`helm lint --strict` finds nothing to complain about, with each value set."""
    result = _helm("lint", "--strict", str(CHART), *VARIATIONS[variation])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@ALL
def test_rendered_manifests_pass_kubernetes_validate_strict(variation: str) -> None:
    """`helm template | kubernetes-validate --strict`: every object but the Prometheus
    Operator's (CRDs it has no schema for) is valid, and unknown fields would fail."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = _render(variation)
    checked = 0
    for doc in docs:
        if doc["apiVersion"].startswith(OPERATOR_API):
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 4  # StatefulSet, PodDisruptionBudget, Service, ConfigMap at least
    statefulset, _ = _worker(docs)
    broken = {**statefulset, "spec": {**statefulset["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_helm_template_piped_into_kubernetes_validate_cli() -> None:
    """The command line an operator would run: `helm template | kubernetes-validate
    --strict -` exits 0 on the chart, and non-zero once an object has an unknown field."""
    cli = Path(sys.executable).with_name("kubernetes-validate")
    if not cli.exists():
        pytest.skip("kubernetes-validate not installed (a dev dependency: scripts/setup.sh)")
    rendered = _helm("template", "prod", str(CHART))
    assert rendered.returncode == 0, rendered.stderr
    command = [str(cli), "--strict", "-k", KUBERNETES_VERSION, "-"]
    checked = subprocess.run(
        command, input=rendered.stdout, capture_output=True, text=True, check=False, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "passed for resource statefulset/prod-purpose-enforcer" in checked.stdout
    broken = rendered.stdout.replace("podManagementPolicy: Parallel", "podManagement: Parallel")
    assert broken != rendered.stdout
    refused = subprocess.run(
        command, input=broken, capture_output=True, text=True, check=False, timeout=120
    )
    assert refused.returncode != 0, refused.stdout


@ALL
def test_env_variables_are_settings_and_args_parse(variation: str) -> None:
    """Every ENFORCER_* variable the chart sets is a real setting, none twice, and each
    container's arguments parse with the enforcer's own CLI parser."""
    docs = _render(variation)
    containers = [c for t in _pod_specs(docs) for c in t["spec"]["containers"]]
    assert containers
    commands = set()
    for container in containers:
        names = [e["name"] for e in container["env"]]
        assert set(names) <= SETTINGS_VARIABLES, set(names) - SETTINGS_VARIABLES
        assert len(names) == len(set(names)), names
        commands.add(build_parser().parse_args(container["args"]).command)
    expected = {"run"} if variation == "own-policy-no-lag-exporter" else {"run", "lag-exporter"}
    assert commands == expected


@pytest.mark.parametrize(
    ("assignment", "refusal"),
    [
        ("worker.env.ENFORCR_MODE=audit", "env: ENFORCR_MODE is not an enforcer setting"),
        ("lagExporter.env.PATH=/tmp", "env: PATH is not an enforcer setting"),
        ("worker.env.ENFORCER_GROUP_ID=other", "env: ENFORCER_GROUP_ID is set by the chart"),
        ("worker.env.ENFORCER_FINGERPRINT_KEY=k", "would put the key in values"),
    ],
)
def test_env_takes_only_settings_the_chart_does_not_set(assignment: str, refusal: str) -> None:
    """worker.env / lagExporter.env: a typo, a non-setting, a variable the chart already
    sets (Kubernetes would silently keep the last) or the key itself fails the render with
    one line naming it."""
    result = _helm("template", "prod", str(CHART), "--set", assignment)
    assert result.returncode != 0
    assert refusal in result.stderr


@ALL
def test_workers_are_a_statefulset_named_by_their_pods(variation: str) -> None:
    """Stable instance ids: ENFORCER_INSTANCE_ID is the pod name (downward API), the pods
    of a StatefulSet whose governing Service is the workers' headless Service."""
    docs = _render(variation)
    statefulset, container = _worker(docs)
    [instance_id] = [e for e in container["env"] if e["name"] == "ENFORCER_INSTANCE_ID"]
    assert instance_id["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    services = {s["metadata"]["name"]: s for s in _of_kind(docs, "Service")}
    governing = services[statefulset["spec"]["serviceName"]]
    assert governing["spec"]["clusterIP"] == "None"
    assert _matches(
        governing["spec"]["selector"], statefulset["spec"]["template"]["metadata"]["labels"]
    )
    assert not _of_kind(docs, "Deployment") or all(
        d["metadata"]["labels"]["app.kubernetes.io/component"] == "lag-exporter"
        for d in _of_kind(docs, "Deployment")
    )


@ALL
def test_pods_meet_the_restricted_pod_security_standard(variation: str) -> None:
    """Non-root, RuntimeDefault seccomp, no service account token; every container drops
    all capabilities, cannot escalate, and has a read-only root and resource limits."""
    templates = _pod_specs(_render(variation))
    assert templates
    for template in templates:
        pod = template["spec"]
        assert pod["automountServiceAccountToken"] is False
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            own = container["securityContext"]
            assert own["capabilities"]["drop"] == ["ALL"], container["name"]
            assert own["allowPrivilegeEscalation"] is False, container["name"]
            assert own["readOnlyRootFilesystem"] is True, container["name"]
            assert container["resources"]["limits"], container["name"]


@ALL
def test_probes_hit_routes_the_processes_serve(variation: str) -> None:
    """Workers: liveness /healthz, readiness /readyz on the HTTP port, both served by
    enforcer/live/http.py; the lag exporter's probes are routes of enforcer/cli/lag.py."""
    docs = _render(variation)
    _, container = _worker(docs)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["ports"] == [{"name": "http", "containerPort": int(env["ENFORCER_HTTP_PORT"])}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    worker_routes = (ROOT / "enforcer" / "live" / "http.py").read_text()
    assert '"/healthz"' in worker_routes and '"/readyz"' in worker_routes
    lag_routes = (ROOT / "enforcer" / "cli" / "lag.py").read_text()
    for deployment in _of_kind(docs, "Deployment"):
        [lag] = deployment["spec"]["template"]["spec"]["containers"]
        for probe in ("livenessProbe", "readinessProbe"):
            assert f'"{lag[probe]["httpGet"]["path"]}"' in lag_routes


@ALL
def test_the_policy_is_mounted_valid_and_reloaded_or_rolled(variation: str) -> None:
    """The ConfigMap's policy loads and is the file the worker reads, mounted as a
    directory (a ``subPath`` mount never sees a ConfigMap change, so the worker could not
    reload it). By default nothing rolls the pods when it changes (the workers reload
    it); with ``policy.rollOnChange`` its SHA-256 is on the pod template so a change rolls
    them. By default it is the project's default policy, byte for byte."""
    docs = _render(variation)
    statefulset, container = _worker(docs)
    template = statefulset["spec"]["template"]
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    source = volumes["policy"]["configMap"]
    assert "subPath" not in mounts["policy"]
    path = f"{mounts['policy']['mountPath']}/{source['items'][0]['path']}"
    assert env["ENFORCER_POLICY_FILE"] == path
    annotations = template["metadata"].get("annotations") or {}
    configmaps = {c["metadata"]["name"]: c for c in _of_kind(docs, "ConfigMap")}
    if variation == "existing-configmap":
        assert source["name"] == "my-policy" and not configmaps
        assert "checksum/policy" not in annotations
        return
    text = configmaps[source["name"]]["data"][source["items"][0]["key"]]
    assert parse_policy(text.encode(), origin="policy.yaml").rules
    digest = hashlib.sha256(text.encode()).hexdigest()
    if variation == "roll-on-policy-change":
        assert annotations["checksum/policy"] == digest
    else:
        assert "checksum/policy" not in annotations
    shipped = {"own-policy-no-lag-exporter": ROOT / "policies" / "advertising-allow-list.yaml"}.get(
        variation, ROOT / "policies" / "default.yaml"
    )
    assert text == shipped.read_text()


@ALL
def test_the_fingerprint_key_comes_from_an_existing_secret(variation: str) -> None:
    """The chart references a Secret and never makes one: no key in values or manifests."""
    docs = _render(variation)
    assert not _of_kind(docs, "Secret")
    _, container = _worker(docs)
    statefulset, _ = _worker(docs)
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    secret = volumes["fingerprint-key"]["secret"]
    [item] = secret["items"]
    assert env["ENFORCER_FINGERPRINT_KEY_FILE"] == f"{mounts['fingerprint-key']}/{item['path']}"
    assert "ENFORCER_FINGERPRINT_KEY" not in env
    # Read through the pod's fsGroup, nothing for others: what the worker accepts.
    assert secret["defaultMode"] == 0o440
    assert statefulset["spec"]["template"]["spec"]["securityContext"]["fsGroup"]
    if variation == "own-policy-no-lag-exporter":
        assert (secret["secretName"], item["key"]) == ("my-key", "key")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["fingerprintKey"] == {
        "existingSecret": "enforcer-fingerprint-key",
        "secretKey": "fingerprint.key",
        "previousSecretKey": "",
    }
    assert "ENFORCER_PREVIOUS_FINGERPRINT_KEY_FILE" not in env


def test_a_rotation_mounts_the_previous_key_from_the_same_secret() -> None:
    """fingerprintKey.previousSecretKey: the old key beside the new one in the Secret,
    mounted as its own file and named by ENFORCER_PREVIOUS_FINGERPRINT_KEY_FILE."""
    result = _helm(
        "template",
        "prod",
        str(CHART),
        *_set("fingerprintKey.previousSecretKey=old.key", "worker.env.ENFORCER_EXPOSURE_TOPIC=x"),
    )
    assert result.returncode == 0, result.stderr
    docs = tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)
    statefulset, container = _worker(docs)
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["fingerprint-key"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    paths = {item["key"]: item["path"] for item in volumes["fingerprint-key"]["secret"]["items"]}
    assert paths == {"fingerprint.key": "fingerprint.key", "old.key": "previous-fingerprint.key"}
    assert env["ENFORCER_PREVIOUS_FINGERPRINT_KEY_FILE"] == f"{mount}/previous-fingerprint.key"
    assert env["ENFORCER_FINGERPRINT_KEY_FILE"] == f"{mount}/fingerprint.key"
    refused = _helm(
        "template",
        "prod",
        str(CHART),
        "--set",
        "worker.env.ENFORCER_PREVIOUS_FINGERPRINT_KEY_FILE=x",
    )
    assert refused.returncode != 0
    assert "set by the chart" in refused.stderr


def test_no_fingerprint_secret_named_is_refused() -> None:
    result = _helm("template", "prod", str(CHART), "--set", "fingerprintKey.existingSecret=")
    assert result.returncode != 0
    assert "fingerprintKey.existingSecret" in result.stderr


def test_prometheus_operator_objects_only_when_asked() -> None:
    """monitoring.enabled is off by default: the chart installs where the CRDs are absent."""
    assert not [d for d in _render("defaults") if d["apiVersion"].startswith(OPERATOR_API)]
    kinds = {d["kind"] for d in _render("monitoring") if d["apiVersion"].startswith(OPERATOR_API)}
    assert kinds == {"ServiceMonitor", "PrometheusRule"}


def _rule_jobs(groups: list[dict[str, Any]]) -> set[str]:
    return {
        job
        for group in groups
        for rule in group["rules"]
        for job in re.findall(r'job="([^"]+)"', rule["expr"])
    }


def test_the_service_monitor_gives_the_jobs_the_alerts_select() -> None:
    """The Operator takes the job label from each Service's app.kubernetes.io/name
    (jobLabel): the workers' Service yields purpose-enforcer, the lag exporter's
    purpose-enforcer-lag, exactly the jobs the shipped rules select on."""
    docs = _render("monitoring")
    [monitor] = _of_kind(docs, "ServiceMonitor")
    spec = monitor["spec"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    [endpoint] = spec["endpoints"]
    assert endpoint["path"] == "/metrics"
    scraped = [
        s
        for s in _of_kind(docs, "Service")
        if _matches(spec["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    jobs = {s["metadata"]["labels"][spec["jobLabel"]] for s in scraped}
    assert jobs == {WORKER_JOB, LAG_JOB}
    assert _rule_jobs(yaml.safe_load(RULES.read_text())["groups"]) <= jobs
    for service in scraped:
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
        pods = [
            t
            for t in _pod_specs(docs)
            if _matches(service["spec"]["selector"], t["metadata"]["labels"])
        ]
        assert len(pods) == 1, service["metadata"]["name"]


def test_the_prometheus_rule_is_the_rule_file() -> None:
    """The PrometheusRule holds deploy/prometheus/rules/enforcer.rules.yml's groups, with
    runbook links made absolute by monitoring.prometheusRule.runbookBase."""
    [rule] = _of_kind(_render("monitoring"), "PrometheusRule")
    expected = yaml.safe_load(RULES.read_text())["groups"]
    for group in expected:
        for item in group["rules"]:
            annotations = item.get("annotations", {})
            if "runbook_url" in annotations:
                annotations["runbook_url"] = (
                    "https://git.example.com/enforcer/blob/main/" + annotations["runbook_url"]
                )
    assert rule["spec"]["groups"] == expected
    assert (CHART / "files" / "enforcer.rules.yml").resolve() == RULES.resolve()


def test_the_network_policy_when_enabled_covers_every_pod() -> None:
    """Off by default (its selectors are cluster-specific); when on, it selects every pod
    the chart runs and allows in only the HTTP port, out only Kafka and DNS."""
    assert not _of_kind(_render("defaults"), "NetworkPolicy")
    docs = _render("monitoring")
    [policy] = _of_kind(docs, "NetworkPolicy")
    spec = policy["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    templates = _pod_specs(docs)
    assert len(templates) == 2
    for template in templates:
        assert _matches(spec["podSelector"]["matchLabels"], template["metadata"]["labels"])
    [ingress] = spec["ingress"]
    [worker_port] = _worker(docs)[1]["ports"]
    assert [p["port"] for p in ingress["ports"]] == [worker_port["containerPort"]]
    assert {p["port"] for rule in spec["egress"] for p in rule["ports"]} == {9092, 9093, 53}
