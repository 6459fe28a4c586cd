"""Metrics (docs/contract.md: metrics): the recorder, the snapshot, latency, lag and the HTTP
endpoints."""

from __future__ import annotations

import json
import logging
import platform
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from enforcer import __version__
from enforcer.core.clock import FixedClock
from enforcer.core.models import Mode
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, Outcome, Source, Step
from enforcer.live.guard import DeadLetterGuard
from enforcer.live.health import Health, Status
from enforcer.live.http import HttpEndpoints, MetricsHttpServer, prometheus_text
from enforcer.outputs.metrics import (
    GROUP_LAG,
    METRICS,
    BatchCounts,
    ExposureStats,
    LatencyWindow,
    MetricsRecorder,
    MetricsSnapshot,
    PartitionLag,
    consumer_lag,
)
from enforcer.outputs.report.aggregate import ReportBuilder
from enforcer.outputs.report.model import ReplaySource

from ...conftest import load_compiled_core
from ..conftest import NOW, event, ident, make_step

SECRETS = ("+1 555 0100", "a@x.io", "dev-42", "b@y.io")


class FakeMonotonic:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _recorder(step: Step, monotonic: FakeMonotonic | None = None) -> MetricsRecorder:
    return MetricsRecorder(
        "worker-1",
        step.policy.version,
        step.policy.mode,
        FixedClock(NOW),
        monotonic or FakeMonotonic(),
    )


def _outcomes(step: Step) -> list[Outcome]:
    """One of each kind, several findings, two partitions."""
    values = [
        event(ident("email", "a@x.io", ["marketing.advertising"]), subject_id="s1"),
        event(
            ident("phone", "+1 555 0100", ["security.mfa"]),
            ident("device_id", "dev-42"),
            ident("email", "b@y.io", ["marketing.advertising"]),
            subject_id="s2",
        ),
        event(ident("phone", "+1 555 0100", ["security"]), subject_id="s3"),
        b"{not json",
        event(subject_id="s4"),
    ]
    records = [
        InputRecord(
            None,
            v if isinstance(v, bytes) else orjson.dumps(v),
            (),
            Source("identity.events", i % 2, 10 + i),
        )
        for i, v in enumerate(values)
    ]
    return [step(r) for r in records]


def test_recorder_counts_agree_with_the_replay_report() -> None:
    """The live counters and report.json count the same outcomes the same way."""
    step = make_step()
    outcomes = _outcomes(step)
    recorder = _recorder(step)
    recorder(BatchCounts.of(outcomes[:2], 999.0))
    recorder(BatchCounts.of(outcomes[2:], 999.0))
    builder = ReportBuilder(step.policy, ReplaySource(kind="file", name="x"), step.key_id)
    for outcome in outcomes:
        builder.add(outcome)
    report = builder.build(FixedClock(NOW))

    snapshot = recorder.snapshot([])
    assert snapshot.records == report.records
    assert snapshot.records.model_dump(by_alias=True) == {
        "in": 5,
        "passed": 2,
        "redacted": 1,
        "dropped": 1,
        "deadlettered": 1,
    }
    assert snapshot.violations == report.violations == 2
    assert snapshot.violations_by_rule == report.violations_by_rule
    assert snapshot.violations_by_rule == {"missing-purpose": 1, "security-only-purpose": 2}
    assert snapshot.identifiers_redacted_by_type == {"device_id": 1, "phone": 2}
    assert snapshot.identifiers_redacted_by_type == report.identifiers_redacted_by_type


def test_snapshot_carries_identity_and_no_identifier_values() -> None:
    """Instance, time, policy version, mode; JSON with "in"; never a raw value."""
    step = make_step()
    recorder = _recorder(step)
    recorder(BatchCounts.of(_outcomes(step), 999.0))
    data = recorder.snapshot([]).model_dump_json(by_alias=True)
    parsed = orjson.loads(data)
    assert parsed["instance_id"] == "worker-1"
    assert parsed["time"] == "2026-11-30T12:00:00.000Z"
    assert parsed["policy_version"] == step.policy.version
    assert parsed["mode"] == "enforce"
    assert parsed["records"]["in"] == 5
    assert MetricsSnapshot.model_validate_json(data).records.in_ == 5
    for secret in (*SECRETS, "s1", "s2"):
        assert secret not in data


def test_a_worker_keeping_exposure_has_its_figures_in_the_snapshot() -> None:
    """The snapshot's ``exposure`` part reads the exposure side's figures as they stand
    (none without exposure), retractions by reason in name order."""
    step = make_step()
    recorder = _recorder(step)
    assert recorder.snapshot([]).exposure is None
    stats = ExposureStats(identifiers=7, subjects=3, restoring=1, restores=2)
    stats.restored_records, stats.malformed, stats.writes, stats.unrecorded = 40, 1, 12, 2
    stats.retractions.update({"policy-changed": 4, "ledger-withdrawn": 1})
    recorder.exposure = stats
    parsed = orjson.loads(recorder.snapshot([]).model_dump_json(by_alias=True))
    assert parsed["exposure"] == {
        "identifiers": 7,
        "subjects": 3,
        "restoring_partitions": 1,
        "restores": 2,
        "restored_records": 40,
        "malformed_records": 1,
        "writes": 12,
        "unrecorded": 2,
        "retractions_by_reason": {"ledger-withdrawn": 1, "policy-changed": 4},
    }
    stats.writes += 1
    assert (
        parsed["exposure"]["writes"] + 1
        == orjson.loads(recorder.snapshot([]).model_dump_json())["exposure"]["writes"]
    )


def test_latency_quantiles_are_per_record_and_reset_each_interval() -> None:
    """A batch's latency counts once per record; p50/p99 by nearest rank; max exact."""
    step = make_step()
    clock = FakeMonotonic()
    recorder = _recorder(step, clock)
    outcome = _outcomes(step)[0]
    clock.now = 1000.010
    recorder(BatchCounts.of([outcome] * 98, 1000.0))  # 98 records took 10 ms
    clock.now = 1000.5
    recorder(BatchCounts.of([outcome], 1000.0))  # one took 500 ms
    clock.now = 1002.0
    recorder(BatchCounts.of([outcome], 1000.0))  # one took 2 s
    latency = recorder.snapshot([]).latency
    assert latency.records == 100
    assert latency.p50_seconds == pytest.approx(0.010)
    assert latency.p99_seconds == pytest.approx(0.5)
    assert latency.max_seconds == pytest.approx(2.0)
    empty = recorder.snapshot([]).latency
    assert (empty.records, empty.p50_seconds, empty.max_seconds) == (0, None, None)
    assert recorder.snapshot([]).records.in_ == 100  # counts stay cumulative


def test_latency_window_with_a_single_record() -> None:
    """One sample is every quantile."""
    window = LatencyWindow()
    window.add(0.25, 1)
    window.add(9.0, 0)  # no records: ignored
    summary = window.take()
    assert (summary.p50_seconds, summary.p99_seconds, summary.max_seconds) == (0.25, 0.25, 0.25)


def test_consumer_lag_per_partition() -> None:
    """end - next, never negative; partitions without a known next offset are left out."""
    lags = consumer_lag(
        {("t", 1): 50, ("t", 0): 100, ("t", 2): 7},
        {("t", 0): 90, ("t", 1): 60},
    )
    assert [(lag.partition, lag.lag) for lag in lags] == [(0, 10), (1, 0)]


def test_recorder_tracks_next_offsets_and_forgets_revoked_partitions() -> None:
    """The next offset is the highest processed + 1, per partition."""
    step = make_step()
    recorder = _recorder(step)
    outcomes = _outcomes(step)
    recorder(BatchCounts.of(reversed(outcomes), 999.0))
    assert recorder.next_offsets() == {("identity.events", 0): 15, ("identity.events", 1): 14}
    recorder.forget_partitions([("identity.events", 1)])
    assert recorder.next_offsets() == {("identity.events", 1): 14}


def test_every_metric_is_listed_once_with_a_description() -> None:
    """Names are unique, prefixed and described."""
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))
    for metric in METRICS:
        assert metric.name.startswith("enforcer_")
        assert len(metric.description) > 20, metric.name


def _families(text: bytes) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample values by sample name and labels."""
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def test_prometheus_text_exposes_the_same_counters() -> None:
    """Every listed metric appears, with the recorder's values."""
    step = make_step()
    recorder = _recorder(step)
    recorder(BatchCounts.of(_outcomes(step), 999.0))
    lag = [PartitionLag(topic="identity.events", partition=3, end_offset=9, next_offset=4, lag=5)]
    health = Health(FakeMonotonic(), stalled_after_s=30)
    health.on_assigned([("identity.events", 0), ("identity.events", 3)])
    health.on_commit()
    health.on_commit()
    health.on_abort()
    guard = DeadLetterGuard(0.5, 2, stops=False)
    guard.check([True, True])
    text = prometheus_text(recorder, lag, health, guard)
    samples = _families(text)
    exposed = {
        name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum") for name in samples
    }
    assert exposed == {m.name for m in METRICS}
    assert samples["enforcer_deadletters_total"][(("reason", "invalid-json"),)] == 1
    assert samples["enforcer_deadletters_total"][(("reason", "schema"),)] == 0
    assert samples["enforcer_transactions_total"][(("result", "committed"),)] == 2
    assert samples["enforcer_transactions_total"][(("result", "aborted"),)] == 1
    assert samples["enforcer_rebalances_total"][()] == 1
    assert samples["enforcer_assigned_partitions"][()] == 2
    assert samples["enforcer_deadletter_guard_trips_total"][()] == 1
    assert samples["enforcer_records_in_total"][()] == 5
    assert samples["enforcer_records_total"][(("outcome", "dropped"),)] == 1
    assert samples["enforcer_records_total"][(("outcome", "deadlettered"),)] == 1
    assert samples["enforcer_violations_total"][()] == 2
    assert samples["enforcer_rule_violations_total"][(("rule", "security-only-purpose"),)] == 2
    assert samples["enforcer_identifiers_redacted_total"][(("identifier_type", "phone"),)] == 2
    assert samples["enforcer_processing_latency_seconds_count"][()] == 5
    assert samples["enforcer_consumer_lag"][(("partition", "3"), ("topic", "identity.events"))] == 5
    [info] = samples["enforcer_info"]
    assert dict(info)["policy_version"] == step.policy.version
    [build] = samples["enforcer_build_info"]
    assert dict(build) == {
        "version": __version__,
        "python": platform.python_version(),
        "core": "plain" if load_compiled_core().plain_requested() else "compiled",
    }
    assert samples["enforcer_build_info"][build] == 1
    for secret in SECRETS:
        assert secret.encode() not in text


class _Switch:
    def __init__(self) -> None:
        self.ready = False

    def __call__(self) -> Status:
        return Status(self.ready, {"assigned_partitions": int(self.ready)})


@pytest.fixture
def recorder() -> Iterator[MetricsRecorder]:
    step = make_step()
    recorder = _recorder(step)
    recorder(BatchCounts.of(_outcomes(step), 999.0))
    yield recorder


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_http_endpoints(recorder: MetricsRecorder) -> None:
    """/metrics in Prometheus text; /healthz 200; /readyz 503 until ready, then 200."""
    ready = _Switch()
    server = MetricsHttpServer(
        "127.0.0.1", 0, recorder, list, lambda: Status(True, {"fatal": None}), ready
    )
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        status, kind, body = _get(f"{base}/metrics")
        assert status == 200
        assert kind.startswith("text/plain; version=0.0.4")
        families = _families(body)
        assert families["enforcer_records_in_total"][()] == 5
        # prometheus-client's own collectors: the process and the platform.
        assert families["process_resident_memory_bytes"][()] > 0
        assert families["process_start_time_seconds"][()] > 0
        assert "python_info" in families
        status, _, body = _get(f"{base}/healthz")
        assert (status, orjson.loads(body)["status"]) == (200, "ok")
        status, kind, body = _get(f"{base}/readyz")
        assert status == 503
        assert kind == "application/json"
        assert orjson.loads(body) == {"status": "unavailable", "assigned_partitions": 0}
        ready.ready = True
        assert _get(f"{base}/readyz")[0] == 200
        assert _get(f"{base}/nope")[0] == 404
    finally:
        server.stop()


def test_audit_mode_is_reported() -> None:
    """The snapshot says which mode the policy runs in; in audit mode every record
    passes, and the would-be dead letter is counted by reason."""
    step = make_step(make_step().policy.with_mode(Mode.AUDIT))
    recorder = _recorder(step)
    recorder(BatchCounts.of(_outcomes(step), 999.0))
    snapshot = recorder.snapshot([])
    assert snapshot.mode is Mode.AUDIT
    assert snapshot.records.passed == 5 and snapshot.records.redacted == 0
    assert snapshot.records.deadlettered == 0
    assert snapshot.deadletters_by_reason == {"invalid-json": 1}
    assert snapshot.violations_by_rule == {"missing-purpose": 1, "security-only-purpose": 2}


def test_grafana_dashboard_uses_exactly_the_exposed_metrics() -> None:
    """Every query names a metric we expose, and every metric is on the dashboard."""
    root = Path(__file__).resolve().parents[3]
    dashboard = json.loads((root / "deploy" / "grafana" / "purpose-enforcer.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for expr in exprs
        for name in re.findall(r"\benforcer_[a-z_]+", expr)
    }
    assert used - {m.name for m in METRICS} == {GROUP_LAG.name}  # from enforcer lag-exporter
    assert used >= {m.name for m in METRICS}


def test_grafana_rule_panel_names_the_default_policy_rules() -> None:
    """The violations-by-rule panel labels each rule of the built-in default, no other."""
    root = Path(__file__).resolve().parents[3]
    dashboard = json.loads((root / "deploy" / "grafana" / "purpose-enforcer.json").read_text())
    panel = next(p for p in dashboard["panels"] if p["title"] == "Violations by rule / s")
    named = [o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"]]
    rules = [rule.name for rule in load_policy(None).rules]
    assert sorted(named) == sorted(rules)
    assert all(rule in panel["description"] for rule in rules)


def test_operations_doc_describes_every_metric() -> None:
    """docs/operations.md names each metric."""
    root = Path(__file__).resolve().parents[3]
    doc = (root / "docs" / "operations.md").read_text()
    missing = [m.name for m in METRICS if f"`{m.name}`" not in doc]
    assert not missing


def test_run_refuses_a_metrics_port_in_use(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A taken --http-port is a one-line error and exit 2, before Kafka is contacted."""
    from enforcer.cli import main

    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", "0123456789abcdef0123456789abcdef")
    monkeypatch.setenv("ENFORCER_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["run", "--http-port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"enforcer: error: cannot serve /metrics on 127.0.0.1:{port}")
    assert err.count("\n") == 1


def test_a_route_that_fails_answers_500_in_one_line(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A scrape whose collection raises (a collector's bug, an answer the lag exporter
    did not foresee) gets a 500 and one log line naming the error's type: no dropped
    connection, no traceback on stderr (docs/operations.md: one line per event)."""

    def failing() -> tuple[int, str, bytes]:
        raise RuntimeError("dictionary changed size during iteration")

    server = HttpEndpoints("127.0.0.1", 0, {"/metrics": failing})
    server.start()
    try:
        with caplog.at_level(logging.WARNING, logger="enforcer.http"):
            status, _, body = _get(f"http://127.0.0.1:{server.port}/metrics")
        assert status == 500 and body == b"internal error\n"
        assert _get(f"http://127.0.0.1:{server.port}/nope")[0] == 404  # still serving
    finally:
        server.stop()
    assert "Traceback" not in capfd.readouterr().err
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["answering /metrics failed (RuntimeError)"]
