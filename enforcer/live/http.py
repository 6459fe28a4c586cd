"""The operator's HTTP endpoints: ``/metrics``, ``/healthz`` and ``/readyz``.

``/metrics`` is the Prometheus text exposition of a registry of prometheus-client
collectors: :class:`WorkerCollector`, which builds the enforcer's metrics at scrape time
from :class:`enforcer.metrics.MetricsRecorder` (so the scrape and the snapshot on the
metrics topic read the same numbers), the loop's health counters and the dead-letter
guard; and prometheus-client's own process, platform and GC collectors (``process_*``,
``python_*``). ``/healthz`` and ``/readyz`` answer what :class:`enforcer.live.health.Health`
says, 200 or 503, with a small JSON object.

The server runs in a thread of its own beside the loop, so it answers even while
the loop is stuck in a client call; that is what lets ``/healthz`` report a stall.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from enforcer.core.models import DeadLetterReason
from enforcer.core.step import OutcomeKind
from enforcer.ledger.state import RetractionReason
from enforcer.live.guard import DeadLetterGuard
from enforcer.live.health import Health, Status
from enforcer.outputs.build_info import build_labels
from enforcer.outputs.metrics import (
    ASSIGNED_PARTITIONS,
    BUILD_INFO,
    CONSUMER_LAG,
    DEADLETTERS,
    EXPOSURE_IDENTIFIERS,
    EXPOSURE_MALFORMED,
    EXPOSURE_RESTORING,
    EXPOSURE_SUBJECTS,
    EXPOSURE_WRITES,
    GC_COLLECTIONS,
    GC_PAUSE,
    GUARD_TRIPS,
    IDENTIFIERS_REDACTED,
    INFO,
    LATENCY,
    LATENCY_BUCKETS,
    LEDGER_IDENTIFIERS,
    LEDGER_LAST_RESTORE,
    LEDGER_RECORDS,
    LEDGER_RESTORE_SECONDS,
    LEDGER_RESTORED,
    LEDGER_RESTORING,
    LEDGER_SUBJECTS,
    POLICY_FILE_REFUSED,
    POLICY_RELOAD_FAILURES,
    POLICY_RELOADS,
    POLICY_SECURITY_OVERRIDE,
    REBALANCES,
    RECORDS,
    RECORDS_IN,
    RETRACTIONS,
    SCHEMA_REGISTRY_UP,
    TRANSACTIONS,
    VIOLATIONS,
    VIOLATIONS_BY_RULE,
    ExposureStats,
    GcStats,
    LedgerStats,
    MetricDef,
    MetricsRecorder,
    PartitionLag,
)

log = logging.getLogger("enforcer.http")


def _counter(metric: MetricDef) -> CounterMetricFamily:
    return CounterMetricFamily(metric.name, metric.description, labels=metric.labels)


def _gauge(metric: MetricDef) -> GaugeMetricFamily:
    return GaugeMetricFamily(metric.name, metric.description, labels=metric.labels)


def metric_families(
    recorder: MetricsRecorder,
    lag: Sequence[PartitionLag],
    health: Health | None = None,
    guard: DeadLetterGuard | None = None,
) -> list[Metric]:
    """Every metric of :data:`enforcer.outputs.metrics.METRICS`, from the recorder's counters,
    the loop's health counters and the guard (zero when not given)."""
    records_in = _counter(RECORDS_IN)
    records_in.add_metric([], recorder.counts().in_)
    records = _counter(RECORDS)
    for kind in OutcomeKind:
        records.add_metric([kind.value], recorder.outcomes[kind])
    violations = _counter(VIOLATIONS)
    violations.add_metric([], recorder.violations)
    by_rule = _counter(VIOLATIONS_BY_RULE)
    for rule, n in sorted(recorder.by_rule.items()):
        by_rule.add_metric([rule], n)
    by_type = _counter(IDENTIFIERS_REDACTED)
    for kind_name, n in sorted(recorder.by_type.items()):
        by_type.add_metric([kind_name], n)
    latency = HistogramMetricFamily(LATENCY.name, LATENCY.description)
    cumulative, buckets = 0, []
    for bound, count in zip(
        (*LATENCY_BUCKETS, float("inf")), recorder.latency_buckets, strict=True
    ):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    latency.add_metric([], buckets, recorder.latency_sum)
    lag_gauge = GaugeMetricFamily(
        CONSUMER_LAG.name, CONSUMER_LAG.description, labels=["topic", "partition"]
    )
    for item in lag:
        lag_gauge.add_metric([item.topic, str(item.partition)], item.lag)
    info = GaugeMetricFamily(INFO.name, INFO.description, labels=INFO.labels)
    info.add_metric([recorder.instance_id, recorder.policy_version, recorder.mode.value], 1)
    build = _gauge(BUILD_INFO)
    build.add_metric(list(build_labels()), 1)
    override = _gauge(POLICY_SECURITY_OVERRIDE)
    override.add_metric([], 1 if recorder.security_override else 0)
    reloads = _counter(POLICY_RELOADS)
    reloads.add_metric([], recorder.policy_reload.reloads)
    reload_failures = _counter(POLICY_RELOAD_FAILURES)
    reload_failures.add_metric([], recorder.policy_reload.failures)
    file_refused = _gauge(POLICY_FILE_REFUSED)
    file_refused.add_metric([], 1 if recorder.policy_reload.refused_now else 0)
    deadletters = _counter(DEADLETTERS)
    for reason in DeadLetterReason:  # every reason, so that rate() sees the first one
        deadletters.add_metric([reason.value], recorder.deadletters[reason.value])
    return [
        records_in,
        records,
        violations,
        by_rule,
        by_type,
        deadletters,
        latency,
        lag_gauge,
        info,
        build,
        override,
        reloads,
        reload_failures,
        file_refused,
        *_loop_families(health, guard),
        *_gc_families(recorder.gc or GcStats()),
        *_ledger_families(recorder.ledger or LedgerStats(), recorder.exposure or ExposureStats()),
        *_exposure_families(recorder.exposure or ExposureStats()),
    ]


def _gc_families(stats: GcStats) -> list[Metric]:
    """The garbage collector's work (zero when it is not watched)."""
    collections = _counter(GC_COLLECTIONS)
    for generation, n in enumerate(stats.collections):
        collections.add_metric([str(generation)], n)
    pause = _counter(GC_PAUSE)
    pause.add_metric([], stats.pause_seconds)
    return [collections, pause]


def _exposure_families(stats: ExposureStats) -> list[Metric]:
    """Exposure's metrics (zero for a worker without exposure)."""
    families: list[Metric] = []
    for metric, value in (
        (EXPOSURE_IDENTIFIERS, stats.identifiers),
        (EXPOSURE_SUBJECTS, stats.subjects),
        (EXPOSURE_RESTORING, stats.restoring),
    ):
        gauge = _gauge(metric)
        gauge.add_metric([], value)
        families.append(gauge)
    for metric, value in ((EXPOSURE_WRITES, stats.writes), (EXPOSURE_MALFORMED, stats.malformed)):
        counter = _counter(metric)
        counter.add_metric([], value)
        families.append(counter)
    return families


def _ledger_families(stats: LedgerStats, exposure: ExposureStats) -> list[Metric]:
    """The ledger's metrics (zero for a worker without a ledger); retractions count
    those made from exposure too."""
    gauges = (
        (LEDGER_IDENTIFIERS, stats.identifiers),
        (LEDGER_SUBJECTS, stats.subjects),
        (LEDGER_RESTORING, stats.restoring),
        (LEDGER_LAST_RESTORE, stats.last_restore_seconds),
    )
    counters = (
        (LEDGER_RESTORED, stats.restored_records),
        (LEDGER_RESTORE_SECONDS, stats.restore_seconds),
    )
    families: list[Metric] = []
    for metric, value in gauges:
        gauge = _gauge(metric)
        gauge.add_metric([], value)
        families.append(gauge)
    for metric, value in counters:
        counter = _counter(metric)
        counter.add_metric([], value)
        families.append(counter)
    records = _counter(LEDGER_RECORDS)
    for outcome in ("applied", "deadlettered"):
        records.add_metric([outcome], stats.records[outcome])
    retractions = _counter(RETRACTIONS)
    for reason in RetractionReason:  # every reason, so that rate() sees the first one
        retractions.add_metric(
            [reason.value], stats.retractions[reason.value] + exposure.retractions[reason.value]
        )
    return [*families, records, retractions]


def _loop_families(health: Health | None, guard: DeadLetterGuard | None) -> list[Metric]:
    trips = _counter(GUARD_TRIPS)
    trips.add_metric([], guard.trips if guard else 0)
    transactions = _counter(TRANSACTIONS)
    transactions.add_metric(["committed"], health.commits if health else 0)
    transactions.add_metric(["aborted"], health.aborts if health else 0)
    rebalances = _counter(REBALANCES)
    rebalances.add_metric([], health.rebalances if health else 0)
    assigned = _gauge(ASSIGNED_PARTITIONS)
    assigned.add_metric([], len(health.assigned) if health else 0)
    registry = _gauge(SCHEMA_REGISTRY_UP)
    registry.add_metric([], 0 if health and health.schema_registry_down else 1)
    return [trips, transactions, rebalances, assigned, registry]


class WorkerCollector(Collector):
    """The worker's metrics as a prometheus-client collector, read at each scrape."""

    def __init__(
        self,
        recorder: MetricsRecorder,
        lag: Callable[[], Sequence[PartitionLag]],
        health: Health | None = None,
        guard: DeadLetterGuard | None = None,
    ) -> None:
        self._recorder = recorder
        self._lag = lag
        self._health = health
        self._guard = guard

    def collect(self) -> Iterable[Metric]:
        """Every metric of :data:`enforcer.outputs.metrics.METRICS`, as of now."""
        with self._recorder.lock:
            return metric_families(self._recorder, self._lag(), self._health, self._guard)


def worker_registry(collector: Collector) -> CollectorRegistry:
    """A registry of ``collector`` plus prometheus-client's process, platform and GC
    collectors (their data is the process's own; registered here, not globally)."""
    registry = CollectorRegistry(auto_describe=False)
    for each in (collector, PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(each)
    return registry


def prometheus_text(
    recorder: MetricsRecorder,
    lag: Sequence[PartitionLag],
    health: Health | None = None,
    guard: DeadLetterGuard | None = None,
) -> bytes:
    """The Prometheus text exposition of the enforcer's metrics only (no process ones)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(recorder, lambda: lag, health, guard))
    return generate_latest(registry)


Route = Callable[[], tuple[int, str, bytes]]
"""An endpoint: returns status, content type and body."""


class HttpEndpoints:
    """Serves ``routes`` (path → answer) on ``host:port`` from a daemon thread."""

    def __init__(self, host: str, port: int, routes: dict[str, Route]) -> None:
        self._host = host
        self._port = port
        self._routes = routes
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        """The port actually bound (``port`` 0 picks a free one)."""

    def start(self) -> None:
        """Bind and serve; raises ``OSError`` when the port is taken."""
        routes = self._routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                route = routes.get(path)
                if route is None:
                    code, kind, body = 404, "text/plain", b"not found\n"
                else:
                    code, kind, body = _answer(path, route)
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Scrapes and probes are not worth a log line each."""

        server = ThreadingHTTPServer((self._host, self._port), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name="http"
        )
        self._thread.start()
        log.info("serving %s on %s:%s", ", ".join(routes), self._host, self.port)

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _answer(path: str, route: Route) -> tuple[int, str, bytes]:
    """The route's answer; a 500 and one log line when it fails. Left to the server, the
    error would drop the connection and print a traceback on stderr."""
    try:
        return route()
    except Exception as exc:
        # The type only, as everywhere: a message might quote what was being read.
        log.warning("answering %s failed (%s)", path, type(exc).__name__)
        return 500, "text/plain", b"internal error\n"


def metrics_route(registry: CollectorRegistry) -> Route:
    """``/metrics``: the registry in the Prometheus text format, collected per scrape."""
    return lambda: (200, CONTENT_TYPE_PLAIN_0_0_4, generate_latest(registry))


class MetricsHttpServer(HttpEndpoints):
    """A worker's ``/metrics``, ``/healthz`` and ``/readyz``."""

    def __init__(
        self,
        host: str,
        port: int,
        recorder: MetricsRecorder,
        lag: Callable[[], list[PartitionLag]],
        alive: Callable[[], Status],
        ready: Callable[[], Status],
        *,
        health: Health | None = None,
        guard: DeadLetterGuard | None = None,
    ) -> None:
        registry = worker_registry(WorkerCollector(recorder, lag, health, guard))
        super().__init__(
            host,
            port,
            {
                "/metrics": metrics_route(registry),
                "/healthz": lambda: _status_body(alive()),
                "/readyz": lambda: _status_body(ready()),
            },
        )


def _status_body(status: Status) -> tuple[int, str, bytes]:
    body = {"status": "ok" if status.ok else "unavailable", **status.detail}
    return (200 if status.ok else 503), "application/json", json.dumps(body).encode()
