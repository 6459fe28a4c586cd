"""The deployment files agree with the code: variables, commands, ports, probes, keys."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from enforcer.cli import build_parser
from enforcer.config.settings import EnforcerSettings
from enforcer.core.policy.load import parse_policy

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_VARIABLES = {f"ENFORCER_{name.upper()}" for name in EnforcerSettings.model_fields}
HTTP_PORT = EnforcerSettings.model_fields["http_port"].default
PROBE_PATHS = {"/healthz", "/readyz"}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


K8S = ROOT / "deploy" / "k8s"


def _k8s(pattern: str = "*.yaml") -> list[dict[str, Any]]:
    """The manifests ``kubectl apply -f deploy/k8s/`` applies (or those ``pattern`` finds)."""
    return [doc for path in sorted(K8S.glob(pattern)) for doc in _documents(path)]


WORKLOADS = {"Deployment", "StatefulSet"}


def _enforcer_containers() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    found = []
    for doc in _k8s():
        if doc["kind"] not in WORKLOADS:
            continue
        pod = doc["spec"]["template"]["spec"]
        found += [(pod, c) for c in pod["containers"] if c["name"] == "enforcer"]
    return found


def test_compose_enforcer_uses_real_settings_and_commands() -> None:
    """Every ENFORCER_* variable in docker-compose.yml is a setting; commands parse."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name, service in services.items():
        for variable in service.get("environment", {}):
            if variable.startswith("ENFORCER_"):
                assert variable in SETTINGS_VARIABLES, (name, variable)
    enforcer = services["enforcer"]
    build_parser().parse_args(enforcer["command"])  # raises on an unknown command
    assert f"{HTTP_PORT}:{HTTP_PORT}" in enforcer["ports"]
    keygen = services["keygen"]["command"][0]
    assert "enforcer keygen" in keygen
    # The key must be readable by the enforcer's user only: the worker refuses others.
    assert "umask 077" in keygen and "chown 10001" in keygen
    producer = services["producer"]
    assert producer["entrypoint"][-1] == "enforcer.demo"
    assert "--produce-only" in producer["command"]
    policy_mount = next(
        v for v in enforcer["volumes"] if v.endswith("/etc/enforcer/policy.yaml:ro")
    )
    assert (ROOT / policy_mount.split(":")[0]).exists()
    for mount in services["grafana"]["volumes"]:
        assert (ROOT / mount.split(":")[0]).exists(), mount
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == [
        f"enforcer:{HTTP_PORT}"
    ]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_file_is_valid() -> None:
    """Debian's docker-compose accepts the file (no engine needed for `config`)."""
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_dockerfile_runs_the_cli_with_health_check() -> None:
    """Non-root, the enforcer's entry point, liveness on the configured port."""
    text = (ROOT / "Dockerfile").read_text()
    assert "USER 10001" in text
    assert 'ENTRYPOINT ["enforcer"]' in text
    # Liveness on the port the container is configured for (ENFORCER_HTTP_PORT, default
    # the settings' own); tests/unit/test_image.py runs the check against a real server.
    assert f"ENFORCER_HTTP_PORT={HTTP_PORT}" in text
    [healthcheck] = [line for line in text.splitlines() if "/healthz" in line]
    assert "ENFORCER_HTTP_PORT" in healthcheck and "/healthz" in healthcheck
    assert f":{HTTP_PORT}/" not in healthcheck
    for line in text.splitlines():
        for word in line.replace("=", " ").split():
            if word.startswith("ENFORCER_"):
                assert word in SETTINGS_VARIABLES, word


def test_k8s_enforcer_containers_match_the_code() -> None:
    """Variables are settings, probes hit real paths on the HTTP port, mounts resolve."""
    containers = _enforcer_containers()
    assert len(containers) == 2  # the sidecar and the StatefulSet
    configmaps = {d["metadata"]["name"]: d for d in _k8s() if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d for d in _k8s("**/*.yaml") if d["kind"] == "Secret"}
    for pod, container in containers:
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert set(env) <= SETTINGS_VARIABLES, set(env) - SETTINGS_VARIABLES
        assert container["ports"][0]["containerPort"] == int(env["ENFORCER_HTTP_PORT"])
        assert {
            container["livenessProbe"]["httpGet"]["path"],
            container["readinessProbe"]["httpGet"]["path"],
        } == PROBE_PATHS
        build_parser().parse_args(container["args"])
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        policy = volumes["policy"]["configMap"]
        assert policy["items"][0]["key"] in configmaps[policy["name"]]["data"]
        assert env["ENFORCER_POLICY_FILE"] == f"{mounts['policy']}/{policy['items'][0]['path']}"
        key = volumes["fingerprint-key"]["secret"]
        assert key["items"][0]["key"] in secrets[key["secretName"]]["stringData"]
        # Owned by root, read through the pod's fsGroup: group read, nothing for others
        # (what the worker accepts of a key file, docs/security.md).
        assert key["defaultMode"] == 0o440
        assert pod["securityContext"]["fsGroup"]  # the group the key is read through
        assert env["ENFORCER_FINGERPRINT_KEY_FILE"] == (
            f"{mounts['fingerprint-key']}/{key['items'][0]['path']}"
        )
        assert container["resources"]["limits"]


def test_k8s_policy_configmap_is_a_valid_policy() -> None:
    """The policy shipped in the ConfigMap loads."""
    for doc in _k8s():
        if doc["kind"] == "ConfigMap":
            for name, text in doc["data"].items():
                assert parse_policy(text.encode(), origin=name).rules


def test_http_server_serves_the_probe_paths() -> None:
    """The probe paths in the manifests are routes of the HTTP server."""
    source = (ROOT / "enforcer" / "live" / "http.py").read_text()
    for path in PROBE_PATHS | {"/metrics"}:
        assert f'"{path}"' in source


def test_every_workload_has_a_disruption_budget() -> None:
    """Each Deployment's and StatefulSet's pods are covered by a PodDisruptionBudget."""
    docs = _k8s()
    budgets = [
        d["spec"]["selector"]["matchLabels"] for d in docs if d["kind"] == "PodDisruptionBudget"
    ]
    for doc in docs:
        if doc["kind"] in WORKLOADS:
            assert doc["spec"]["selector"]["matchLabels"] in budgets


def _pods() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(pod template, pod spec)`` of every Deployment and StatefulSet."""
    return [
        (doc["spec"]["template"], doc["spec"]["template"]["spec"])
        for doc in _k8s()
        if doc["kind"] in WORKLOADS
    ]


def test_pods_run_locked_down() -> None:
    """Non-root, RuntimeDefault seccomp, no service account token; every container drops
    all capabilities and cannot escalate; the enforcer's root file system is read-only."""
    assert len(_pods()) == 3  # sidecar, StatefulSet, lag exporter
    for _, pod in _pods():
        assert pod["automountServiceAccountToken"] is False
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            own = container["securityContext"]
            assert own["capabilities"]["drop"] == ["ALL"], container["name"]
            assert own["allowPrivilegeEscalation"] is False, container["name"]
    for _, container in _enforcer_containers():
        own = container["securityContext"]
        assert own["readOnlyRootFilesystem"] is True and own["runAsNonRoot"] is True


def test_no_secret_is_applied_with_the_folder() -> None:
    """`kubectl apply -f deploy/k8s/` must never overwrite a real key with the placeholder."""
    assert not [d for d in _k8s() if d["kind"] == "Secret"]
    assert [d for d in _k8s("examples/*.yaml") if d["kind"] == "Secret"]


def test_pods_roll_when_the_policy_changes() -> None:
    """Each workload's pod template carries the SHA-256 of the policy it mounts."""
    configmaps = {d["metadata"]["name"]: d for d in _k8s() if d["kind"] == "ConfigMap"}
    for template, pod in _pods():
        if not any(v["name"] == "policy" for v in pod.get("volumes", [])):
            continue  # the lag exporter decides nothing: no policy
        volume = next(v for v in pod["volumes"] if v["name"] == "policy")["configMap"]
        text = configmaps[volume["name"]]["data"][volume["items"][0]["key"]]
        expected = hashlib.sha256(text.encode()).hexdigest()
        assert template["metadata"]["annotations"]["checksum/policy"] == expected


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_a_network_policy_covers_every_enforcer_pod() -> None:
    """Ingress only to the HTTP port; egress only to Kafka and DNS."""
    [policy] = [d for d in _k8s() if d["kind"] == "NetworkPolicy"]
    spec = policy["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    for template, _ in _pods():
        assert _matches(spec["podSelector"]["matchLabels"], template["metadata"]["labels"])
    [ingress] = spec["ingress"]
    assert [p["port"] for p in ingress["ports"]] == [HTTP_PORT]
    egress_ports = {p["port"] for rule in spec["egress"] for p in rule["ports"]}
    assert egress_ports == {9092, 9093, 53}


def test_the_lag_exporter_manifest_matches_the_command() -> None:
    """Its arguments parse, its variables are settings, its probe is a route it serves."""
    (deployment,) = [
        d for d in _k8s() if d["kind"] == "Deployment" and "lag" in d["metadata"]["name"]
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert build_parser().parse_args(container["args"]).command == "lag-exporter"
    assert {e["name"] for e in container["env"]} <= SETTINGS_VARIABLES
    source = (ROOT / "enforcer" / "cli" / "lag.py").read_text()
    assert f'"{container["livenessProbe"]["httpGet"]["path"]}"' in source


def _services() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _k8s() if d["kind"] == "Service"}


def test_the_default_workload_is_a_stateful_set_with_stable_instance_ids() -> None:
    """The standalone workers are a StatefulSet whose instance id is the pod name (stable
    across restarts, so a restart fences the crashed worker's transaction at once), under a
    headless governing Service that selects its pods."""
    [workers] = [d for d in _k8s() if d["kind"] == "StatefulSet"]
    assert workers["metadata"]["name"] == "purpose-enforcer"
    assert not [
        d
        for d in _k8s()
        if d["kind"] == "Deployment"
        and d is not workers
        and d["metadata"]["name"] == "purpose-enforcer"
    ]
    [container] = workers["spec"]["template"]["spec"]["containers"]
    [instance_id] = [e for e in container["env"] if e["name"] == "ENFORCER_INSTANCE_ID"]
    assert instance_id["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    governing = _services()[workers["spec"]["serviceName"]]
    assert governing["spec"]["clusterIP"] == "None"
    assert _matches(
        governing["spec"]["selector"], workers["spec"]["template"]["metadata"]["labels"]
    )
    assert workers["spec"]["podManagementPolicy"] == "Parallel"


def test_the_service_monitor_scrapes_every_pod_on_the_http_port() -> None:
    """The ServiceMonitor selects both Services; each serves /metrics on the HTTP port and
    together they select every pod template (the jobs they give: test_prometheus_operator)."""
    [monitor] = _k8s("monitoring/servicemonitor.yaml")
    assert monitor["kind"] == "ServiceMonitor"
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    services = [
        s
        for s in _services().values()
        if _matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    assert len(services) == 2
    for service in services:
        port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
        assert port["port"] == HTTP_PORT
    for template, _ in _pods():
        labels = template["metadata"]["labels"]
        assert any(_matches(s["spec"]["selector"], labels) for s in services), labels


def test_compose_restarts_the_enforcer() -> None:
    """A worker that exits on an error is started again."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["enforcer"]["restart"] == "unless-stopped"


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    """kubernetes-validate (PyPI; schemas bundled, offline), strict: unknown fields fail.
    The ServiceMonitor and the PrometheusRule are CRDs it has no schema for (their fields
    are checked in tests/unit/test_prometheus_operator.py)."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = _k8s("**/*.yaml")
    checked: dict[str, int] = {}
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue
        kubernetes_validate.validate(doc, "1.30", strict=True)
        checked[doc["kind"]] = checked.get(doc["kind"], 0) + 1
    assert sum(checked.values()) >= 11
    assert checked["StatefulSet"] == 1 and checked["Service"] == 2
    for kind in WORKLOADS:
        broken = next(d for d in docs if d["kind"] == kind)
        broken = {**broken, "spec": {**broken["spec"], "replica": 2}}
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, "1.30", strict=True)
    # In 1.30 a StatefulSet must name its governing Service.
    workers = next(d for d in docs if d["kind"] == "StatefulSet")
    unnamed = {**workers, "spec": {k: v for k, v in workers["spec"].items() if k != "serviceName"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unnamed, "1.30", strict=True)
