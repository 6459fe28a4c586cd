"""A real Prometheus scrapes real ``enforcer run`` workers and ``enforcer lag-exporter``
and evaluates deploy/prometheus/rules (with every ``for`` cut to 0 s, so that the test
need not wait 15 minutes; the ``for`` durations themselves are covered by promtool).

One run checks, end to end:
- an enforcing worker and an auditing one under another policy: the policy drift and
  audit-mode alerts fire, and the dead-letter ratio alert fires on a stream with ~9%
  malformed records; the auditing worker is a true shadow (every record forwarded
  byte-identical, would-be dead letters on its violations topic, no dead letters) and
  its strict dead-letter guard trips without stopping it;
- with every worker stopped and more records produced, the workers' own lag metric is
  empty, while the broker-side lag is exact and the lag alert fires (the case it was made for);
- the workers log JSON, one object a line, no ERROR on a normal start, no identifier
  value; a traceparent header reaches the violation record.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from enforcer.core.fingerprint import generate_key
from enforcer.demo.sample import sample_values, subject_key
from enforcer.testing.consume import read_topic
from enforcer.testing.kafka_broker import free_port
from enforcer.testing.topics import TopicFactory

from .live.test_metrics_live import _identifier_values

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "enforcer.rules.yml"
PROMETHEUS = shutil.which("prometheus")
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="prometheus not installed (scripts/setup.sh installs Debian's package as root)",
)


def _values() -> list[bytes]:
    """Sample traffic plus 40 malformed records: about 9% would be dead-lettered."""
    malformed = [b"[1, 2]", b"{not json", b'{"event_id": ""}', b"null"] * 10
    values = list(sample_values(400, seed=13, invalid_share=0.0))
    for index, bad in enumerate(malformed):
        values.insert(index * 10 + 5, bad)
    return values


class Processes:
    """Child processes of the test; each one stopped (then killed) at the end."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        with (self._log_dir / f"{name}.log").open("wb") as log:
            self.running[name] = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self, name: str) -> int:
        process = self.running.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise

    def log(self, name: str) -> str:
        return (self._log_dir / f"{name}.log").read_text(errors="replace")

    def close(self) -> None:
        for name in list(self.running):
            self.stop(name)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.close()
        for log in sorted(tmp_path.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")


def _rules_without_waiting(target: Path) -> None:
    """The shipped rules with every alert's ``for`` set to 0 s."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = "0s"
    target.write_text(yaml.safe_dump(rules))


def _prometheus_config(path: Path, workers: list[int], exporter: int, rules: Path) -> None:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": "purpose-enforcer",
                "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in workers]}],
            },
            {
                "job_name": "purpose-enforcer-lag",
                "static_configs": [{"targets": [f"127.0.0.1:{exporter}"]}],
            },
        ],
    }
    path.write_text(yaml.safe_dump(config))


def _api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else f"{base}{path}"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        return json.load(response)["data"]


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = _api(base, "/api/v1/query", query=expr)["result"]
    return result


def _firing(base: str) -> dict[str, list[dict[str, str]]]:
    firing: dict[str, list[dict[str, str]]] = {}
    for alert in _api(base, "/api/v1/alerts")["alerts"]:
        if alert["state"] == "firing":
            firing.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
    return firing


async def _until(what: str, check: Any, timeout_s: float = 90.0) -> Any:
    """Poll ``check()`` until it returns something true; return it."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as exc:  # not listening yet
            last = exc
        if last and not isinstance(last, OSError):
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: not reached in {timeout_s:.0f}s (last: {last!r})")


async def _produce(bootstrap: str, topic: str, values: list[bytes], trace: bool) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        headers = [("traceparent", TRACE.encode())] if trace else None
        for value in values:
            await producer.send(topic, value=value, key=subject_key(value), headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.timeout(240)
async def test_real_prometheus_evaluates_the_rules(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path, processes: Processes
) -> None:
    """The alerts fire from real scrapes; the lag alert with every worker down."""
    source = await new_topic("prom-source", 2)
    topics = {
        role: {kind: await new_topic(f"prom-{role}-{kind}") for kind in ("sink", "viol", "dead")}
        for role in ("enforce", "audit")
    }
    metrics_topic = await new_topic("prom-metrics")
    values = _values()
    malformed = sum(1 for v in values if not v.startswith(b'{"event_id":"evt-'))
    group = f"prom-{os.getpid()}-{time.monotonic_ns()}"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    base_env.update(
        ENFORCER_BOOTSTRAP_SERVERS=kafka_bootstrap,
        ENFORCER_SOURCE_TOPIC=source,
        ENFORCER_METRICS_TOPIC=metrics_topic,
        ENFORCER_FINGERPRINT_KEY=generate_key(),
        ENFORCER_LOG_FORMAT="json",
        ENFORCER_COMMIT_INTERVAL="0.3",
    )
    ports = {"enforce": free_port(), "audit": free_port(), "lag": free_port()}
    for role, extra in (
        ("enforce", {}),
        (
            "audit",
            {
                "ENFORCER_MODE": "audit",
                "ENFORCER_POLICY_FILE": str(ROOT / "policies" / "security-only.yaml"),
                # A guard this strict trips on the stream: an auditing worker goes on.
                "ENFORCER_DEADLETTER_WINDOW": "20",
                "ENFORCER_DEADLETTER_MAX_RATIO": "0.05",
            },
        ),
    ):
        env = {
            **base_env,
            **extra,
            "ENFORCER_GROUP_ID": f"{group}-{role}",  # each sees the whole stream
            "ENFORCER_INSTANCE_ID": f"{group}-{role}",
            "ENFORCER_SINK_TOPIC": topics[role]["sink"],
            "ENFORCER_VIOLATIONS_TOPIC": topics[role]["viol"],
            "ENFORCER_DEADLETTER_TOPIC": topics[role]["dead"],
            "ENFORCER_HTTP_PORT": str(ports[role]),
            "ENFORCER_DATA_DIR": str(tmp_path / role),
        }
        processes.start(role, [sys.executable, "-m", "enforcer.cli", "run"], env)
    lag_env = {
        **base_env,
        "ENFORCER_GROUP_ID": f"{group}-enforce",
        "ENFORCER_HTTP_PORT": str(ports["lag"]),
    }
    processes.start("lag", [sys.executable, "-m", "enforcer.cli", "lag-exporter"], lag_env)

    rules = tmp_path / "rules.yml"
    _rules_without_waiting(rules)
    config = tmp_path / "prometheus.yml"
    _prometheus_config(config, [ports["enforce"], ports["audit"]], ports["lag"], rules)
    prom_port = free_port()
    assert PROMETHEUS is not None
    processes.start(
        "prometheus",
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
    )
    prom = f"http://127.0.0.1:{prom_port}"
    # Both workers up and scraped, with partitions, before anything is produced.
    await _until(
        "both workers hold both partitions",
        lambda: len(_query(prom, 'enforcer_assigned_partitions{job="purpose-enforcer"} == 2')) == 2,
    )
    await _produce(kafka_bootstrap, source, values, trace=True)

    # Every record decided by both; then the alerts of the first phase.
    total = 2 * len(values)
    await _until(
        "both workers counted every record",
        lambda: (
            _query(prom, "sum(enforcer_records_in_total)")
            and float(_query(prom, "sum(enforcer_records_in_total)")[0]["value"][1]) == total
        ),
    )
    wanted = {"EnforcerPolicyVersionDrift", "EnforcerAuditModeInProduction"}
    wanted |= {"EnforcerDeadLetterRatioHigh", "EnforcerDeadLetterGuardTripped"}
    firing = await _until(
        "drift, audit and dead-letter alerts",
        lambda: wanted <= set(_firing(prom)) and _firing(prom),
    )
    [audit_alert] = firing["EnforcerAuditModeInProduction"]
    assert audit_alert["instance_id"] == f"{group}-audit"
    ratio = _query(prom, "enforcer:deadletter_ratio:rate5m")
    assert 0.05 < float(ratio[0]["value"][1]) < 0.15, ratio
    # The audit worker's would-be dead letters count by reason too, and nothing flowed less.
    audit_dl = _query(
        prom, f'sum(enforcer_deadletters_total{{instance="127.0.0.1:{ports["audit"]}"}})'
    )
    assert float(audit_dl[0]["value"][1]) == malformed
    assert "EnforcerAllWorkersDown" not in firing and "EnforcerWorkerDown" not in firing
    [tripped] = firing["EnforcerDeadLetterGuardTripped"]
    assert tripped["instance"] == f"127.0.0.1:{ports['audit']}"  # the enforcing one did not
    assert processes.running["audit"].poll() is None  # would-be trips never stop it
    process_cpu = _query(prom, 'process_cpu_seconds_total{job="purpose-enforcer"}')
    assert len(process_cpu) == 2  # prometheus-client's process collector, per worker

    # Every worker down, then more input: the broker-side lag is exact, the workers'
    # own lag is gone, and the lag alert fires.
    assert processes.stop("enforce") == 0
    assert processes.stop("audit") == 0
    backlog = list(sample_values(1500, seed=14))
    await _produce(kafka_bootstrap, source, backlog, trace=False)
    down = {"EnforcerWorkerDown", "EnforcerAllWorkersDown", "EnforcerLagNotShrinking"}
    firing = await _until(
        "workers-down and lag alerts", lambda: down <= set(_firing(prom)) and _firing(prom)
    )
    assert len(firing["EnforcerWorkerDown"]) == 2
    # The workers' lag series are stale: only the exporter's lag is current.
    assert _query(prom, 'enforcer_consumer_lag{job="purpose-enforcer"}') == []
    # The alerts may fire on a scrape taken while the backlog was still being written:
    # wait for the exporter's next scrapes to count all of it, exactly.
    await _until(
        "the exporter's lag counts the whole backlog",
        lambda: [
            lag
            for lag in _query(prom, "enforcer:group_lag:sum")
            if float(lag["value"][1]) == len(backlog)
        ],
    )
    assert "EnforcerLagExporterDown" not in firing

    await _check_audit_was_a_shadow(kafka_bootstrap, topics["audit"], values, malformed)
    await _check_traceparent(kafka_bootstrap, topics["enforce"]["viol"])
    _check_json_logs(processes.log("enforce") + processes.log("audit"), values)


async def _check_audit_was_a_shadow(
    bootstrap: str, topics: dict[str, str], values: list[bytes], malformed: int
) -> None:
    """Every record forwarded byte-identical (per partition in order), would-be dead
    letters reported as such, the dead-letter topic empty."""
    sink = await read_topic(bootstrap, topics["sink"], expected=len(values), settle_s=0.5)
    assert sorted(r.value or b"" for r in sink) == sorted(values)
    reports = await read_topic(bootstrap, topics["viol"], expected=10**6, timeout_s=3, settle_s=0.5)
    events = [orjson.loads(r.value or b"") for r in reports]
    would_be = [e for e in events if e["action"] == "deadlettered"]
    assert len(would_be) == malformed
    assert {e["mode"] for e in events} == {"audit"}
    assert {e["deadletter"]["reason"] for e in would_be} >= {"invalid-json", "not-an-object"}
    dead = await read_topic(bootstrap, topics["dead"], expected=1, timeout_s=2, settle_s=0.2)
    assert dead == []


async def _check_traceparent(bootstrap: str, topic: str) -> None:
    violations = await read_topic(bootstrap, topic, expected=10**6, timeout_s=3, settle_s=0.5)
    assert violations
    for record in violations:
        assert dict(record.headers)["traceparent"] == TRACE.encode()
        assert orjson.loads(record.value or b"")["traceparent"] == TRACE


def _check_json_logs(text: str, values: list[bytes]) -> None:
    lines = text.splitlines()
    assert len(lines) > 5
    events = [json.loads(line) for line in lines]  # every line is one ECS object
    assert all({"@timestamp", "log.level", "message", "ecs.version"} <= set(e) for e in events)
    assert all(e["log"]["logger"].startswith("enforcer") for e in events)
    assert not [e for e in events if e["log.level"] in {"error", "critical"}]
    # The auditing worker's would-be guard trips name the dead letters' trace.
    trips = [e for e in events if "would have been dead-lettered" in e["message"]]
    assert trips
    assert {e["trace"]["id"] for e in trips} == {TRACE.split("-")[1]}
    secrets = {v.decode() for v in _identifier_values(values)}
    assert secrets
    assert not any(secret in text for secret in secrets)
