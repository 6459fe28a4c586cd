"""Kafka's own perf tools, from the broker jars: the limit of this machine.

- ``org.apache.kafka.tools.ProducerPerformance``: the generated event values (a
  payload file, one value a line) as fast as the Java producer sends them with
  ``acks=all``; again with transactions committed every commit interval.
- ``org.apache.kafka.tools.ConsumerPerformance``: reads what the producer wrote.
- ``org.apache.kafka.tools.EndToEndLatency``: one record at a time, producer to
  consumer, the round trip of the broker alone (records of the same size, random bytes).

CPU is the whole JVM's (user + system time of the finished child process, from
``getrusage``), so it includes start-up and JIT compilation: an upper bound.
"""

from __future__ import annotations

import re
import resource
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PRODUCER_SUMMARY = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th"
)
_E2E_AVG = re.compile(r"Avg latency: ([\d.]+) ms")
_E2E_PERCENTILES = re.compile(r"Percentiles: 50th = (\d+), 99th = (\d+), 99.9th = (\d+)")

_LOG4J1 = """log4j.rootLogger=WARN, err
log4j.appender.err=org.apache.log4j.ConsoleAppender
log4j.appender.err.Target=System.err
log4j.appender.err.layout=org.apache.log4j.PatternLayout
log4j.appender.err.layout.ConversionPattern=[%d] %p %m (%c)%n
"""
_LOG4J2 = """status = warn
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = err
"""


class KafkaToolError(RuntimeError):
    """A tool failed or printed nothing this module understands."""


@dataclass(frozen=True)
class KafkaTools:
    """Runs the tool classes with ``java -cp <lib_dir>/*``."""

    java: str
    lib_dir: Path
    work_dir: Path
    timeout_s: float = 300.0

    def producer(
        self,
        bootstrap: str,
        topic: str,
        records: int,
        payload_file: Path,
        *,
        transaction_ms: int | None = None,
    ) -> dict[str, Any]:
        """ProducerPerformance at full speed with ``acks=all``; with ``transaction_ms``,
        in transactions committed that often."""
        args = [
            f"--topic={topic}",
            f"--num-records={records}",
            f"--payload-file={payload_file}",
            "--throughput=-1",
            "--producer-props",
            f"bootstrap.servers={bootstrap}",
            "acks=all",
        ]
        if transaction_ms is not None:
            args += [
                f"--transactional-id=bench-producer-{transaction_ms}ms",
                f"--transaction-duration-ms={transaction_ms}",
            ]
        output, cpu_s = self._run("org.apache.kafka.tools.ProducerPerformance", args)
        matches = _PRODUCER_SUMMARY.findall(output)
        if not matches:
            raise KafkaToolError(f"ProducerPerformance printed no summary:\n{output[-2000:]}")
        sent, rate, mb_s, _avg, _max, p50, _p95, p99, _p999 = matches[-1]
        return {
            "records": int(sent),
            "records_per_s": float(rate),
            "mb_per_s": float(mb_s),
            "cpu_us_per_record": cpu_s * 1e6 / int(sent),
            "send_latency_p50_ms": float(p50),
            "send_latency_p99_ms": float(p99),
        }

    def consumer(self, bootstrap: str, topic: str, records: int) -> dict[str, Any]:
        """ConsumerPerformance reading ``records`` of ``topic`` (rate without the group join)."""
        output, cpu_s = self._run(
            "org.apache.kafka.tools.ConsumerPerformance",
            [
                f"--bootstrap-server={bootstrap}",
                f"--topic={topic}",
                f"--messages={records}",
                "--timeout=60000",
            ],
        )
        lines = [line for line in output.splitlines() if line.count(",") >= 9]
        header = next((i for i, line in enumerate(lines) if "nMsg.sec" in line), None)
        if header is None or header + 1 >= len(lines):
            raise KafkaToolError(f"ConsumerPerformance printed no result:\n{output[-2000:]}")
        row = dict(
            zip(
                (name.strip() for name in lines[header].split(",")),
                (value.strip() for value in lines[header + 1].split(",")),
                strict=False,
            )
        )
        consumed = int(row["data.consumed.in.nMsg"])
        return {
            "records": consumed,
            "records_per_s": float(row["fetch.nMsg.sec"]),
            "mb_per_s": float(row["fetch.MB.sec"]),
            "cpu_us_per_record": cpu_s * 1e6 / max(consumed, 1),
        }

    def end_to_end_latency(
        self, bootstrap: str, topic: str, records: int, size: int
    ) -> dict[str, Any]:
        """EndToEndLatency: ``records`` sent one at a time with ``acks=all``."""
        output, _ = self._run(
            "org.apache.kafka.tools.EndToEndLatency",
            [bootstrap, topic, str(records), "all", str(size)],
        )
        average = _E2E_AVG.search(output)
        percentiles = _E2E_PERCENTILES.search(output)
        if average is None or percentiles is None:
            raise KafkaToolError(f"EndToEndLatency printed no result:\n{output[-2000:]}")
        return {
            "records": records,
            "latency_avg_ms": float(average.group(1)),
            "latency_p50_ms": float(percentiles.group(1)),
            "latency_p99_ms": float(percentiles.group(2)),
        }

    def _run(self, main_class: str, args: Sequence[str]) -> tuple[str, float]:
        """Run a tool; return its output and the CPU seconds it used."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log4j1 = self.work_dir / "tools-log4j.properties"
        log4j2 = self.work_dir / "tools-log4j2.properties"
        log4j1.write_text(_LOG4J1)
        log4j2.write_text(_LOG4J2)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            result = subprocess.run(
                [
                    self.java,
                    "-Xmx512m",
                    f"-Dlog4j.configuration=file:{log4j1}",
                    f"-Dlog4j2.configurationFile={log4j2}",
                    "-cp",
                    f"{self.lib_dir}/*",
                    main_class,
                    *args,
                ],
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise KafkaToolError(f"{main_class} did not finish in {self.timeout_s:.0f}s") from exc
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise KafkaToolError(f"{main_class} exited {result.returncode}:\n{output[-2000:]}")
        cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return output, cpu_s
