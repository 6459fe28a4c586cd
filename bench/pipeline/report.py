"""Target ratios, the markdown table, and the results section of docs/benchmarks.md.

Targets are ratios of records/s within one run, so the machine's speed cancels out.
For the enforcer, same guarantee and commit interval:

- ≥ 1.5 x quixstreams running the same ``Step`` (the peer a Python user would pick);
- ≥ 0.8 x the raw aiokafka exactly-once loop (the previous Python floor);
- ≥ 0.7 x a bare confluent-kafka loop running the same ``Step`` (the engine's own cost);
- exactly-once at a 1 s commit interval ≥ 0.8 x at-least-once at 1 s, per pipeline;
- with a purpose ledger (every identifier looked up) ≥ 0.8 x without one;
- ≥ 5 x the faust-based enforcer it replaced, at exactly-once 1 s. That engine is gone,
  so this one ratio is against its number recorded on this machine by the last run
  that had it (:data:`PREVIOUS_ENFORCER_RECORDS_PER_S`), not measured in the same run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .processes import (
    CONFLUENT,
    CONFLUENT_STEP,
    DIAGNOSTIC_PIPELINES,
    ENFORCER,
    ENFORCER_LEDGER,
    PIPELINES,
    QUIX_STEP,
    RAW,
)

DOCS_START = "<!-- pipeline-results:start (written by bench/run_pipeline.sh) -->"
DOCS_END = "<!-- pipeline-results:end -->"

PREVIOUS_ENFORCER_RECORDS_PER_S = 7_620.0
"""The faust-based enforcer at exactly-once, 1 s commits: the best of this machine's
recorded runs (bench/results before the engine changed; other runs gave 4,200-5,200)."""

_LABELS = {
    RAW: "raw aiokafka loop",
    CONFLUENT: "raw confluent-kafka loop",
    CONFLUENT_STEP: "confluent-kafka loop + Step",
    QUIX_STEP: "quixstreams + Step",
    ENFORCER: "enforcer",
    ENFORCER_LEDGER: "enforcer + ledger",
    "at_least_once": "at-least-once",
    "exactly_once": "exactly-once",
}

_ENFORCER_VERSUS = ((QUIX_STEP, 1.5), (RAW, 0.8), (CONFLUENT_STEP, 0.7))
LEDGER_RATIO = 0.8
"""The enforcer with a ledger, against without, same guarantee and commit interval."""


def targets(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every target ratio that this run's configurations allow to compute."""
    rate = {
        (r["pipeline"], r["guarantee"], r["commit_interval_s"]): r["records_per_s"] for r in runs
    }
    found = []
    for (pipeline, guarantee, interval), value in sorted(rate.items()):
        if pipeline == ENFORCER:
            for baseline, threshold in _ENFORCER_VERSUS:
                other = rate.get((baseline, guarantee, interval))
                found.append(
                    _target(
                        f"enforcer / {_LABELS[baseline]}, {_LABELS[guarantee]}, "
                        f"commit {_interval(interval)}",
                        value,
                        other,
                        threshold,
                    )
                )
            if guarantee == "exactly_once" and interval == 1.0:
                found.append(
                    _target(
                        "enforcer / the faust-based enforcer (recorded), exactly-once, commit 1 s",
                        value,
                        PREVIOUS_ENFORCER_RECORDS_PER_S,
                        5.0,
                    )
                )
        if pipeline == ENFORCER_LEDGER:
            found.append(
                _target(
                    f"enforcer + ledger / enforcer, {_LABELS[guarantee]}, "
                    f"commit {_interval(interval)}",
                    value,
                    rate.get((ENFORCER, guarantee, interval)),
                    LEDGER_RATIO,
                )
            )
        if guarantee == "exactly_once" and interval == 1.0:
            other = rate.get((pipeline, "at_least_once", 1.0))
            found.append(
                _target(
                    f"{_LABELS[pipeline]}: exactly-once / at-least-once, commit 1 s",
                    value,
                    other,
                    0.8,
                )
            )
    return [t for t in found if t["ratio"] is not None]


def _target(
    name: str, value: float | None, baseline: float | None, threshold: float
) -> dict[str, Any]:
    ratio = None if value is None or not baseline else round(value / baseline, 3)
    return {
        "target": name,
        "ratio": ratio,
        "threshold": threshold,
        "met": ratio is not None and ratio >= threshold,
    }


def markdown(results: Mapping[str, Any]) -> str:
    """The machine, the Kafka tools, the pipelines and the targets, as markdown."""
    return "\n".join(
        [
            *_machine_lines(results),
            "",
            *_tools_table(results.get("kafka_tools") or {}),
            "",
            *_runs_table(results["runs"]),
            "",
            *_ledger_table(results["runs"], results["workload"].get("ledger")),
            *_targets_table(results["targets"]),
        ]
    )


def update_docs(path: Path, section: str) -> None:
    """Replace what lies between the markers in ``path`` with ``section``."""
    text = path.read_text()
    pattern = re.compile(re.escape(DOCS_START) + r".*?" + re.escape(DOCS_END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{path} has no {DOCS_START!r} ... {DOCS_END!r} markers")
    path.write_text(pattern.sub(lambda _: f"{DOCS_START}\n{section}\n{DOCS_END}", text))


def _machine_lines(results: Mapping[str, Any]) -> Iterator[str]:
    machine, workload = results["machine"], results["workload"]
    load_start, load_end = machine["load_average_start"], machine["load_average_end"]
    yield (
        f"Run of {results['started_at']} ({results['duration_s']:.0f} s): "
        f"{machine['cpu_model']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
        f"Linux {machine['kernel']}, Python {machine['python']}, {machine['java']}, "
        f"Kafka {machine['kafka']} (one local KRaft broker on 127.0.0.1). "
        f"Load average (1/5/15 min) {_load(load_start)} at the start, "
        f"{_load(load_end)} at the end."
    )
    yield ""
    yield (
        f"Stream: {workload['records']:,} identity events of {workload['mean_value_bytes']:.0f} "
        f"bytes on average, {workload['identifiers_per_event']} identifiers each, "
        f"{workload['security_only_share']:.0%} with a security-only identifier, keyed by "
        f"account, {workload['partitions']} partitions. records/s and CPU: the fastest of "
        f"{workload['repeat']} drains per configuration. Latency: "
        f"{workload['latency_records']:,} more records at {workload['latency_per_s']:.0f}/s."
    )


def _tools_table(tools: Mapping[str, Any]) -> Iterator[str]:
    if not tools:
        return
    yield (
        "| Kafka tool (Java) | records/s | MB/s | CPU-µs/record (whole JVM) "
        "| latency p50 / p99 (ms) |"
    )
    yield "|---|---:|---:|---:|---|"
    rows = [
        ("producer", "ProducerPerformance, acks=all", "send→ack"),
        (
            "producer_transactions_100ms",
            "ProducerPerformance, transactions every 100 ms",
            "send→ack",
        ),
        ("producer_transactions_1s", "ProducerPerformance, transactions every 1 s", "send→ack"),
        ("consumer", "ConsumerPerformance", ""),
        ("end_to_end_latency", "EndToEndLatency (one record at a time)", "produce→consume"),
    ]
    for key, label, kind in rows:
        tool = tools.get(key)
        if not tool:
            continue
        p50 = tool.get("latency_p50_ms", tool.get("send_latency_p50_ms"))
        p99 = tool.get("latency_p99_ms", tool.get("send_latency_p99_ms"))
        latency = f"{_num(p50)} / {_num(p99)} ({kind})" if p50 is not None else ""
        yield (
            f"| {label} | {_num(tool.get('records_per_s'), 0, '')} "
            f"| {_num(tool.get('mb_per_s'), 1, '')} "
            f"| {_num(tool.get('cpu_us_per_record'), 1, '')} | {latency} |"
        )


def _runs_table(runs: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    yield (
        "| pipeline | guarantee | commit | records/s | CPU-µs/record | "
        "e2e p50 (ms) | e2e p99 (ms) |"
    )
    yield "|---|---|---:|---:|---:|---:|---:|"
    order = {name: index for index, name in enumerate(PIPELINES + DIAGNOSTIC_PIPELINES)}
    for run in sorted(
        runs, key=lambda r: (order[r["pipeline"]], r["guarantee"], r["commit_interval_s"])
    ):
        yield (
            f"| {_LABELS[run['pipeline']]} | {_LABELS[run['guarantee']]} "
            f"| {_interval(run['commit_interval_s'])} | {_num(run['records_per_s'], 0)} "
            f"| {_num(run['cpu_us_per_record'], 0)} | {_num(run['latency_p50_ms'])} "
            f"| {_num(run['latency_p99_ms'])} |"
        )


def _ledger_table(
    runs: Sequence[Mapping[str, Any]], ledger: Mapping[str, Any] | None
) -> Iterator[str]:
    plain = {(r["guarantee"], r["commit_interval_s"]): r for r in runs if r["pipeline"] == ENFORCER}
    with_ledger = [r for r in runs if r["pipeline"] == ENFORCER_LEDGER]
    if not with_ledger:
        return
    if ledger:
        yield (
            f"Purpose ledger: {ledger['records']:,} subjects, {ledger['identifiers']:,} "
            "identifiers (every identifier of the stream, with the purposes it was first "
            "given), restored before the clock starts; the policy decides by the ledger "
            "(authoritative), one lookup per identifier."
        )
        yield ""
    yield (
        "| guarantee | commit | enforcer records/s | + ledger records/s | ratio "
        "| CPU-µs/record off / on | restore (s) | output before clock |"
    )
    yield "|---|---:|---:|---:|---:|---:|---:|---:|"
    for run in sorted(with_ledger, key=lambda r: (r["guarantee"], r["commit_interval_s"])):
        base = plain.get((run["guarantee"], run["commit_interval_s"]), {})
        on, off = run["records_per_s"], base.get("records_per_s")
        ratio = f"{on / off:.2f}" if on and off else "n/a"
        facts = run.get("ledger") or {}
        before = facts.get("output_before_clock")
        yield (
            f"| {_LABELS[run['guarantee']]} | {_interval(run['commit_interval_s'])} "
            f"| {_num(off, 0)} | {_num(on, 0)} | {ratio} "
            f"| {_num(base.get('cpu_us_per_record'), 0)} / {_num(run['cpu_us_per_record'], 0)} "
            f"| {_num(facts.get('restore_s'))} "
            f"| {'n/a' if before is None else f'{before:.0%}'} |"
        )
    yield ""


def _targets_table(found: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    if not found:
        return
    yield "| target | ratio | needed | met |"
    yield "|---|---:|---:|---|"
    for target in found:
        yield (
            f"| {target['target']} | {target['ratio']:.2f} | ≥ {target['threshold']} "
            f"| {'yes' if target['met'] else '**no**'} |"
        )


def _interval(seconds: float) -> str:
    return f"{seconds:g} s" if seconds >= 1 else f"{seconds * 1000:g} ms"


def _load(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _num(value: float | None, digits: int = 1, missing: str = "n/a") -> str:
    if value is None:
        return missing
    return f"{value:,.{digits}f}"
