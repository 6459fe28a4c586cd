"""One ``enforcer run`` draining a backlog: its peak memory, CPU per record and the
garbage collector's work (docs/benchmarks.md: memory).

    python -m bench.memory --bootstrap 127.0.0.1:9092 --records 300000
    bash bench/with-broker.sh memory bench.memory --records 300000   # a fresh broker

Writes a backlog of identity events (``enforcer.demo.sample``, ~600 bytes, keyed by
account) to a new source topic, starts ``python -m enforcer run`` on it with
``ENFORCER_*`` settings, and samples the worker every 50 ms until the group has
committed the whole backlog:

- ``peak_rss_mib``: ``VmHWM`` of ``/proc/<pid>/status``, the most resident memory the
  process ever had (start-up included), read just before it is stopped;
- ``cpu_us_per_record``: the worker's CPU time (``/proc/<pid>/stat``, every thread)
  from its first output to the commit of the last record, per record;
- ``gc_*``: the collector's figures scraped from ``/metrics`` at the end:
  ``enforcer_gc_collections_total`` and ``enforcer_gc_pause_seconds_total`` where the
  worker has them, ``python_gc_collections_total`` (prometheus-client) in any version.

``--code DIR`` runs the enforcer from another checkout (a baseline worktree, on
``PYTHONPATH``) with this interpreter, so two versions are measured in one run;
``--setting NAME=VALUE`` adds an ``ENFORCER_*`` variable. One JSON object per run is
printed (and appended to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from enforcer.core.fingerprint import generate_key
from enforcer.demo.sample import sample_values, subject_key
from enforcer.testing.topics import create_topics_sync, delete_topics_sync

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_EVERY_S = 0.05
BACKLOG_SEED = 2019


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="a running broker, host:port")
    parser.add_argument("--kafka-version", default=None, help="ignored (with-broker.sh)")
    parser.add_argument("--records", type=int, default=300_000, help="backlog size")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--commit-interval", type=float, default=1.0)
    parser.add_argument(
        "--guarantee", choices=["exactly_once", "at_least_once"], default="exactly_once"
    )
    parser.add_argument(
        "--code",
        type=Path,
        action="append",
        default=None,
        help="checkout(s) to run the enforcer from, each measured in turn on its own "
        "copy of the backlog (default: this one)",
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an ENFORCER_* variable for the worker (e.g. ENFORCER_CONSUMER_QUEUE_KBYTES=8192)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per checkout")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per drain")
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Topics:
    """The topics of one run, all new."""

    source: str
    sink: str
    violations: str
    deadletter: str
    metrics: str

    @classmethod
    def new(cls) -> Topics:
        """Names no earlier run used."""
        tag = uuid.uuid4().hex[:10]
        return cls(*(f"bench-memory-{tag}.{role}" for role in ("src", "sink", "vio", "dlq", "met")))

    def all(self) -> list[str]:
        """Every topic of the run."""
        return [self.source, self.sink, self.violations, self.deadletter, self.metrics]


def produce_backlog(bootstrap: str, topic: str, values: Sequence[bytes]) -> None:
    """Write ``values`` keyed by account and wait until every one is acknowledged."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all", "batch.size": 262144}
    )
    for value in values:
        while True:
            try:
                producer.produce(topic, value=value, key=subject_key(value))
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(60):
        raise RuntimeError("the backlog was not acknowledged within 60 s")


def committed_total(consumer: Consumer, topic: str, partitions: int) -> int:
    """Offsets the group has committed on ``topic``, summed (0 where none)."""
    found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    return sum(max(tp.offset, 0) for tp in found)


def sink_written(consumer: Consumer, topic: str, partitions: int) -> int:
    """The sink's end offsets, summed (records written, committed or not)."""
    return sum(
        consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in range(partitions)
    )


CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of every thread of ``pid``; ``None`` once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name (field 2) may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S  # utime, stime


def peak_rss_mib(pid: int) -> float | None:
    """``VmHWM`` of ``pid`` in MiB, ``None`` once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) / 1024 if found else None


def scrape(port: int) -> dict[str, float]:
    """The worker's ``/metrics`` as ``name{labels}`` → value (garbage collector ones)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("enforcer_gc_", "python_gc_collections_total")):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def worker_env(
    args: argparse.Namespace, topics: Topics, group: str, port: int, code: Path
) -> dict[str, str]:
    """The environment of ``enforcer run`` for one run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")])),
        ENFORCER_BOOTSTRAP_SERVERS=args.bootstrap,
        ENFORCER_SOURCE_TOPIC=topics.source,
        ENFORCER_SINK_TOPIC=topics.sink,
        ENFORCER_VIOLATIONS_TOPIC=topics.violations,
        ENFORCER_DEADLETTER_TOPIC=topics.deadletter,
        ENFORCER_METRICS_TOPIC=topics.metrics,
        ENFORCER_GROUP_ID=group,
        ENFORCER_INSTANCE_ID=f"{group}-0",
        ENFORCER_FINGERPRINT_KEY=generate_key(),
        ENFORCER_COMMIT_INTERVAL=str(args.commit_interval),
        ENFORCER_PROCESSING_GUARANTEE=args.guarantee,
        ENFORCER_HTTP_PORT=str(port),
        ENFORCER_SESSION_TIMEOUT="6",
        ENFORCER_LOG_LEVEL="warning",
    )
    for setting in args.setting:
        name, _, value = setting.partition("=")
        env[name] = value
    return env


def drain(args: argparse.Namespace, code: Path, values: Sequence[bytes]) -> dict[str, Any]:
    """One run: a new backlog, one worker from ``code`` draining it; what was measured."""
    topics = Topics.new()
    create_topics_sync(args.bootstrap, topics.all(), partitions=args.partitions)
    group = f"bench-memory-{uuid.uuid4().hex[:10]}"
    try:
        produce_backlog(args.bootstrap, topics.source, values)
        port = free_port()
        env = worker_env(args, topics, group, port, code)
        # The watcher's client is connected before the worker starts, so that its
        # first samples come before the worker's first output (a fast worker can drain
        # a small backlog in less time than a new client takes to fetch metadata).
        reader = Consumer({"bootstrap.servers": args.bootstrap, "group.id": group})
        sink_written(reader, topics.sink, args.partitions)
        with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "enforcer", "run"],
                env=env,
                stdout=log,
                stderr=log,
                cwd=code,  # ``-m`` puts the working directory first on the path
            )
        try:
            result = _watch(args, worker, reader, topics, port, len(values))
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
        result["exit_status"] = worker.returncode
        result["log"] = log.name
    finally:
        delete_topics_sync(args.bootstrap, topics.all())
    return {"code": str(code), "records": len(values), **result}


def _watch(
    args: argparse.Namespace,
    worker: subprocess.Popen[bytes],
    reader: Consumer,
    topics: Topics,
    port: int,
    records: int,
) -> dict[str, Any]:
    try:
        started = time.monotonic()
        # The window starts at the last sample that saw no output yet (or, failing
        # one, at the first that saw some): a backlog drained between two samples
        # still has a window, its CPU counted from before the first output.
        quiet: tuple[float, float] | None = None
        first_output: tuple[float, float] | None = None
        while True:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with status {worker.returncode}")
            if time.monotonic() - started > args.timeout:
                raise RuntimeError(f"not drained within {args.timeout:.0f} s")
            cpu = cpu_seconds(worker.pid)
            now = time.monotonic()
            if first_output is None and cpu is not None:
                if sink_written(reader, topics.sink, args.partitions) > 0:
                    first_output = quiet or (now, cpu)
                else:
                    quiet = (now, cpu)
            if first_output is not None and (
                committed_total(reader, topics.source, args.partitions) >= records
            ):
                break
            time.sleep(SAMPLE_EVERY_S)
        assert cpu is not None
        gc = scrape(port)
        peak = peak_rss_mib(worker.pid)
    finally:
        reader.close()
    window_s, window_cpu = now - first_output[0], cpu - first_output[1]
    return {
        "peak_rss_mib": round(peak, 1) if peak is not None else None,
        # A backlog drained between two samples has no window to measure: None.
        "cpu_us_per_record": round(window_cpu / records * 1e6, 1) if window_cpu else None,
        "records_per_cpu_s": round(records / window_cpu) if window_cpu else None,
        "drain_s": round(window_s, 2),
        "cpu_share": round(window_cpu / window_s, 2) if window_s else None,
        "gc": gc,
    }


def summary(result: Mapping[str, Any]) -> str:
    """One line for a person."""
    gc = result["gc"]
    full = gc.get('enforcer_gc_collections_total{generation="2"}')
    pause = gc.get("enforcer_gc_pause_seconds_total")
    python_gc = [gc.get(f'python_gc_collections_total{{generation="{g}"}}') for g in range(3)]
    return (
        f"{result['code']}: {result['records']} records, peak RSS {result['peak_rss_mib']} MiB, "
        f"{result['cpu_us_per_record']} CPU-us/record, drained in {result['drain_s']} s "
        f"(busy {result['cpu_share']}); "
        f"gc collections {python_gc} (full {full}), pause {pause} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Measure each checkout in turn; print one JSON object per run."""
    args = parse_args(argv)
    values = list(
        sample_values(args.records, seed=BACKLOG_SEED, security_only_share=0.2, invalid_share=0.0)
    )
    codes = args.code or [REPO_ROOT]
    for _ in range(args.repeat):
        for code in codes:
            result = drain(args, code.resolve(), values)
            result["settings"] = args.setting
            line = json.dumps(result, sort_keys=True)
            print(line, flush=True)
            print(summary(result), file=sys.stderr, flush=True)
            if args.out is not None:
                with args.out.open("a") as out:
                    out.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
