"""The operator's HTTP endpoints: ``/metrics``, ``/healthz`` and ``/readyz``.

``/metrics`` is the Prometheus text exposition (made with prometheus-client) of the
counters in :class:`enforcer.metrics.MetricsRecorder`, built at scrape time from the
recorder itself: the scrape and the snapshot on the metrics topic read the same
numbers. ``/healthz`` answers while the event loop runs and the app has not
crashed; ``/readyz`` answers 200 only when source partitions are assigned and the
producer is running, and 503 otherwise. Both answer with a small JSON object.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from enforcer.metrics import (
    CONSUMER_LAG,
    IDENTIFIERS_REDACTED,
    INFO,
    LATENCY,
    LATENCY_BUCKETS,
    RECORDS,
    RECORDS_IN,
    VIOLATIONS,
    VIOLATIONS_BY_RULE,
    MetricDef,
    MetricsRecorder,
    PartitionLag,
)
from enforcer.step import OutcomeKind

log = logging.getLogger("enforcer.http")


class Status(NamedTuple):
    """An answer of a health check: whether it passes, and why (JSON-able details)."""

    ok: bool
    detail: dict[str, Any]


def _counter(metric: MetricDef) -> CounterMetricFamily:
    return CounterMetricFamily(metric.name, metric.description, labels=metric.labels)


def metric_families(recorder: MetricsRecorder, lag: Sequence[PartitionLag]) -> list[Metric]:
    """Every metric of :data:`enforcer.metrics.METRICS`, from the recorder's counters."""
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
    return [records_in, records, violations, by_rule, by_type, latency, lag_gauge, info]


class _Families:
    """What ``generate_latest`` needs: something with ``collect()``."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def prometheus_text(recorder: MetricsRecorder, lag: Sequence[PartitionLag]) -> bytes:
    """The Prometheus text exposition of the recorder's counters and this lag."""
    return generate_latest(_Families(metric_families(recorder, lag)))


class MetricsHttpServer:
    """Serves the three endpoints on ``host:port`` inside the running event loop."""

    def __init__(
        self,
        host: str,
        port: int,
        recorder: MetricsRecorder,
        lag: Callable[[], Awaitable[list[PartitionLag]]],
        alive: Callable[[], Status],
        ready: Callable[[], Status],
    ) -> None:
        self._host = host
        self._port = port
        self._recorder = recorder
        self._lag = lag
        self._alive = alive
        self._ready = ready
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        """The port actually bound (``port`` 0 picks a free one)."""

    async def start(self) -> None:
        """Bind and serve; raises ``OSError`` when the port is taken."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server  # aiohttp keeps the bound sockets here, nowhere public
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        log.info("serving /metrics, /healthz and /readyz on %s:%s", self._host, self.port)

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _: web.Request) -> web.Response:
        body = prometheus_text(self._recorder, await self._lag())
        # The classic text format (0.0.4), which every Prometheus reads; our names need
        # none of the newer format's escaping.
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    async def _healthz(self, _: web.Request) -> web.Response:
        return _status_response(self._alive())

    async def _readyz(self, _: web.Request) -> web.Response:
        return _status_response(self._ready())


def _status_response(status: Status) -> web.Response:
    body = {"status": "ok" if status.ok else "unavailable", **status.detail}
    return web.json_response(body, status=200 if status.ok else 503)
