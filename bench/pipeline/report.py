"""The targets, the markdown tables, and the results section of docs/benchmarks.md.

The targets (docs/benchmarks.md), all at exactly-once with 1 s commits, in one run:

- ``enforcer run`` at most 20 CPU-µs per record (50,000 records/s on one core);
- ``enforcer run`` at least 1.5 x quixstreams running the same ``Step``, and at least
  0.9 x a bare confluent-kafka loop running it (records/s of the same run, so the
  machine's speed cancels out);
- ``enforcer run`` with a purpose ledger (every identifier looked up) at least 0.85 x
  without one;
- ``enforcer run`` keeping exposure at least 0.85 x without it, reported twice: on the
  common stream from an empty exposure topic (first sight, the worst case: every
  forwarded identifier new), and in the steady state (:mod:`.steady`: accounts seen
  again, exposure already holding their identifiers; both rows on that stream);
- one worker draining a 300,000-record backlog peaks at 120 MiB resident at most.

Below them, for information, the enforcer against every other row of the run, in
records/s and in CPU per record.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .processes import (
    BYTEWAX_STEP,
    CONFLUENT,
    CONFLUENT_STEP,
    DIAGNOSTIC_PIPELINES,
    ENFORCER,
    ENFORCER_AVRO,
    ENFORCER_CONTACTS,
    ENFORCER_EXPOSURE,
    ENFORCER_EXPOSURE_STEADY,
    ENFORCER_LEDGER,
    ENFORCER_STEADY,
    NO_GUARANTEE,
    PIPELINES,
    QUIX_STEP,
    RAW,
)

DOCS_START = "<!-- pipeline-results:start (written by bench/run_pipeline.sh) -->"
DOCS_END = "<!-- pipeline-results:end -->"

_LABELS = {
    CONFLUENT: "raw confluent-kafka loop (the client's ceiling)",
    RAW: "raw aiokafka loop",
    CONFLUENT_STEP: "bare confluent-kafka loop + Step",
    QUIX_STEP: "quixstreams + Step",
    BYTEWAX_STEP: "bytewax + Step",
    ENFORCER: "enforcer run",
    ENFORCER_LEDGER: "enforcer run, ledger on",
    ENFORCER_EXPOSURE: "enforcer run, exposure on, first sight (empty exposure)",
    ENFORCER_STEADY: "enforcer run, steady-state stream",
    ENFORCER_EXPOSURE_STEADY: "enforcer run, exposure on, steady state",
    ENFORCER_CONTACTS: "enforcer run, formats policy: account events as identity events",
    ENFORCER_AVRO: "enforcer run, formats policy: the same account events in Avro",
    "at_least_once": "at-least-once",
    "exactly_once": "exactly-once",
}

TARGET_CONFIG = ("exactly_once", 1.0)
"""The guarantee and commit interval every target is measured at."""
CPU_US_PER_RECORD = 20.0
"""``enforcer run``: at most this many CPU-µs per record (50,000 records/s per core)."""
VERSUS = ((QUIX_STEP, 1.5), (CONFLUENT_STEP, 0.9))
"""``enforcer run`` records/s at least this share of each peer's, same run."""
LEDGER_RATIO = 0.85
"""``enforcer run`` with a ledger, at least this share of without one."""
EXPOSURE_RATIO = 0.85
"""``enforcer run`` keeping exposure, at least this share of without it."""
AVRO_RATIO = 0.9
"""``enforcer run`` on Avro, at least this share of the same events as identity events."""
PEAK_RSS_MIB = 120.0
"""One worker draining the memory backlog: at most this peak resident set."""


def targets(
    runs: Sequence[Mapping[str, Any]], memory: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every target this run measured (a target whose rows were not run is left out)."""
    row = {(r["pipeline"], r["guarantee"], r["commit_interval_s"]): r for r in runs}
    enforcer = row.get((ENFORCER, *TARGET_CONFIG))
    found = []
    if enforcer is not None and enforcer["cpu_us_per_record"]:
        cpu = enforcer["cpu_us_per_record"]
        found.append(
            {
                "target": "enforcer run: CPU-µs/record (≥ 50k records/s on one core)",
                "measured": f"{cpu:.1f} CPU-µs/record ({_num(enforcer['records_per_s'], 0)} "
                "records/s)",
                "ratio": round(CPU_US_PER_RECORD / cpu, 3),
                "threshold": 1.0,
                "needed": f"≤ {CPU_US_PER_RECORD:g} CPU-µs/record",
                "met": cpu <= CPU_US_PER_RECORD,
            }
        )
    for peer, threshold in VERSUS:
        other = row.get((peer, *TARGET_CONFIG))
        if enforcer is not None and other is not None:
            found.append(_ratio(f"enforcer run / {_LABELS[peer]}", enforcer, other, threshold))
    ledger = row.get((ENFORCER_LEDGER, *TARGET_CONFIG))
    if enforcer is not None and ledger is not None:
        found.append(_ratio("enforcer run, ledger on / off", ledger, enforcer, LEDGER_RATIO))
    exposure = row.get((ENFORCER_EXPOSURE, *TARGET_CONFIG))
    if enforcer is not None and exposure is not None:
        found.append(
            _ratio(
                "enforcer run, exposure on / off, first sight (worst case)",
                exposure,
                enforcer,
                EXPOSURE_RATIO,
            )
        )
    steady = row.get((ENFORCER_EXPOSURE_STEADY, *TARGET_CONFIG))
    steady_off = row.get((ENFORCER_STEADY, *TARGET_CONFIG))
    if steady is not None and steady_off is not None:
        found.append(
            _ratio(
                "enforcer run, exposure on / off, steady state", steady, steady_off, EXPOSURE_RATIO
            )
        )
    avro = row.get((ENFORCER_AVRO, *TARGET_CONFIG))
    contacts = row.get((ENFORCER_CONTACTS, *TARGET_CONFIG))
    if avro is not None and contacts is not None:
        found.append(_ratio("enforcer run, Avro / identity events", avro, contacts, AVRO_RATIO))
    if memory:
        peak = memory["peak_rss_mib"]
        found.append(
            {
                "target": f"RSS of one worker draining a {memory['records']:,}-record backlog "
                "(peak, VmHWM)",
                "measured": f"{peak:.0f} MiB",
                "ratio": round(PEAK_RSS_MIB / peak, 3) if peak else None,
                "threshold": 1.0,
                "needed": f"≤ {PEAK_RSS_MIB:g} MiB",
                "met": 0 < peak <= PEAK_RSS_MIB,
            }
        )
    return found


def _ratio(
    name: str, value: Mapping[str, Any], baseline: Mapping[str, Any], threshold: float
) -> dict[str, Any]:
    """``value`` against ``baseline`` in records/s (their CPU per record beside, the
    steadier figure on a shared machine)."""
    on, off = value["records_per_s"], baseline["records_per_s"]
    ratio = round(on / off, 3) if on and off else None
    cpu = f"{_num(value['cpu_us_per_record'])} / {_num(baseline['cpu_us_per_record'])}"
    return {
        "target": name,
        "measured": f"{_num(on, 0)} / {_num(off, 0)} records/s ({cpu} CPU-µs/record)",
        "ratio": ratio,
        "threshold": threshold,
        "needed": f"≥ {threshold:g}",
        "met": ratio is not None and ratio >= threshold,
    }


def versus(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """For information: the enforcer against every other row of the same guarantee and
    commit interval, in records/s (higher is better for the enforcer) and in CPU per
    record (the other's over the enforcer's: higher is better for the enforcer)."""
    found = []
    for enforcer in (r for r in runs if r["pipeline"] == ENFORCER):
        for other in runs:
            same = (other["guarantee"], other["commit_interval_s"]) == (
                enforcer["guarantee"],
                enforcer["commit_interval_s"],
            )
            if not same or other["pipeline"] == ENFORCER:
                continue
            rate = _divide(enforcer["records_per_s"], other["records_per_s"])
            cpu = _divide(other["cpu_us_per_record"], enforcer["cpu_us_per_record"])
            if other["pipeline"] in (ENFORCER_LEDGER, ENFORCER_EXPOSURE):  # on against off
                rate = _divide(other["records_per_s"], enforcer["records_per_s"])
                cpu = _divide(enforcer["cpu_us_per_record"], other["cpu_us_per_record"])
            found.append(
                {
                    "pipeline": other["pipeline"],
                    "guarantee": enforcer["guarantee"],
                    "commit_interval_s": enforcer["commit_interval_s"],
                    "records_per_s_ratio": rate,
                    "cpu_ratio": cpu,
                }
            )
    return found


def _divide(top: float | None, bottom: float | None) -> float | None:
    return round(top / bottom, 3) if top and bottom else None


def markdown(results: Mapping[str, Any]) -> str:
    """The machine, the targets, the pipelines, the GC and memory, the ledger, the
    Kafka tools and the enforcer against every row, as markdown."""
    sections = [
        list(_machine_lines(results)),
        list(_targets_table(results["targets"])),
        list(_runs_table(results["runs"])),
        list(_gc_table(results["runs"])),
        list(_memory_lines(results.get("memory"))),
        list(_ledger_table(results["runs"], results["workload"].get("ledger"))),
        list(_exposure_table(results["runs"])),
        list(_tools_table(results.get("kafka_tools") or {})),
        list(_versus_table(results.get("versus") or [])),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines)


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
    if results.get("command"):
        yield ""
        yield f"Command: `{results['command']}`"
    yield ""
    yield (
        f"Stream: {workload['records']:,} identity events of {workload['mean_value_bytes']:.0f} "
        f"bytes on average, {workload['identifiers_per_event']} identifiers each, "
        f"{workload['security_only_share']:.0%} with a security-only identifier, keyed by "
        f"account, {workload['partitions']} partitions. records/s and CPU: "
        + (
            "one drain per configuration"
            if workload["repeat"] == 1
            else f"the fastest of {workload['repeat']} drains per configuration"
        )
        + f". Latency: {workload['latency_records']:,} more records at "
        f"{workload['latency_per_s']:.0f}/s. After every drain, the check: each input must "
        "read back as exactly one outcome (forwarded, dropped or dead-lettered) from the "
        "outputs, read_committed (inputs, missing and duplicates added up over the drains "
        "of a configuration)."
    )
    formats = workload.get("formats")
    if formats:
        yield ""
        yield (
            f"The formats rows drain {formats['records']:,} account events of "
            "`enforcer sample --format` instead, under `policies/formats.yaml` with a "
            f"schema registry (Apicurio on loopback): as identity events of "
            f"{formats['identity_bytes']:.0f} bytes on average, and the same events framed "
            f'in Avro, {formats["avro_bytes"]:.0f} bytes (docs/benchmarks.md, "Formats").'
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
        "e2e p50 (ms) | e2e p99 (ms) | inputs | missing | duplicates (+ untraced) |"
    )
    yield "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for run in _ordered(runs):
        check = run.get("outcomes") or {}
        guarantee = "none" if run["pipeline"] in NO_GUARANTEE else _LABELS[run["guarantee"]]
        yield (
            f"| {_LABELS[run['pipeline']]} | {guarantee} "
            f"| {_interval(run['commit_interval_s'])} | {_num(run['records_per_s'], 0)} "
            f"| {_num(run['cpu_us_per_record'])} | {_num(run['latency_p50_ms'])} "
            f"| {_num(run['latency_p99_ms'])} | {_num(check.get('inputs'), 0)} "
            f"| {_num(check.get('missing'), 0)} "
            f"| {_num(_extra(check), 0)} |"
        )


def _extra(check: Mapping[str, Any]) -> int | None:
    """Duplicates and outputs traced to no input: both break exactly one outcome."""
    if not check:
        return None
    return int(check["duplicates"]) + int(check["unexpected"])


def _ordered(runs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    order = {name: index for index, name in enumerate(PIPELINES + DIAGNOSTIC_PIPELINES)}
    return sorted(
        runs, key=lambda r: (r["guarantee"], r["commit_interval_s"], order[r["pipeline"]])
    )


def _gc_table(runs: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    measured = [r for r in _ordered(runs) if r.get("gc")]
    if not measured:
        return
    yield (
        "| GC of `enforcer run` (start to drained) | guarantee | commit "
        "| collections gen 0 / 1 / 2 | all | pause (s) | metric |"
    )
    yield "|---|---|---:|---:|---:|---:|---|"
    for run in measured:
        gc = run["gc"]
        generations = " / ".join(_num(gc["collections"].get(g), 0) for g in ("0", "1", "2"))
        yield (
            f"| {_LABELS[run['pipeline']]} | {_LABELS[run['guarantee']]} "
            f"| {_interval(run['commit_interval_s'])} | {generations} "
            f"| {_num(gc['collections_total'], 0)} | {_num(gc['pause_s'], 3)} "
            f"| `{gc['metric']}` |"
        )


def _memory_lines(memory: Mapping[str, Any] | None) -> Iterator[str]:
    if not memory:
        return
    yield (
        "| memory of one `enforcer run` worker | backlog | peak RSS (VmHWM) "
        "| largest sampled RSS | RSS once drained | drain (s) |"
    )
    yield "|---|---:|---:|---:|---:|---:|"
    yield (
        f"| {_LABELS[memory['guarantee']]}, commit {_interval(memory['commit_interval_s'])}, "
        f"default settings | {memory['records']:,} | {memory['peak_rss_mib']:.0f} MiB "
        f"| {memory['sampled_max_rss_mib']:.0f} MiB | {memory['final_rss_mib']:.0f} MiB "
        f"| {_num(memory['drain_s'])} |"
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


EXPOSURE_BASELINES = {ENFORCER_EXPOSURE: ENFORCER, ENFORCER_EXPOSURE_STEADY: ENFORCER_STEADY}
"""Each exposure row and the row without exposure on the same stream."""


def _exposure_table(runs: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    by = {(r["pipeline"], r["guarantee"], r["commit_interval_s"]): r for r in runs}
    measured = [r for r in _ordered(runs) if r["pipeline"] in EXPOSURE_BASELINES]
    if not measured:
        return
    yield (
        "| exposure | guarantee | commit | off records/s | on records/s | ratio "
        "| CPU-µs/record off / on | exposure at start | exposure records written (drain / in all) |"
    )
    yield "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    for run in measured:
        base = by.get(
            (EXPOSURE_BASELINES[run["pipeline"]], run["guarantee"], run["commit_interval_s"]), {}
        )
        on, off = run["records_per_s"], base.get("records_per_s")
        facts = run.get("exposure") or {}
        start = (
            f"{facts['restored_records']:,} subjects, {facts['restored_identifiers']:,} identifiers"
            if "restored_records" in facts
            else "empty"
        )
        yield (
            f"| {_LABELS[run['pipeline']]} | {_LABELS[run['guarantee']]} "
            f"| {_interval(run['commit_interval_s'])} | {_num(off, 0)} | {_num(on, 0)} "
            f"| {_num(_divide(on, off), 2)} "
            f"| {_num(base.get('cpu_us_per_record'))} / {_num(run['cpu_us_per_record'])} "
            f"| {start} | {_num(facts.get('writes_drain'), 0)} / {_num(facts.get('writes'), 0)} |"
        )


def _targets_table(found: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    if not found:
        return
    yield "| target (exactly-once, commit 1 s) | measured | ratio | needed | met |"
    yield "|---|---:|---:|---:|---|"
    for target in found:
        ratio = target["ratio"]
        needed = target["needed"]
        if target["threshold"] == 1.0 and not needed.startswith("≥"):
            needed += " (ratio ≥ 1)"
        yield (
            f"| {target['target']} | {target['measured']} "
            f"| {'n/a' if ratio is None else f'{ratio:.2f}'} | {needed} "
            f"| {'yes' if target['met'] else '**no**'} |"
        )


def _versus_table(found: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    if not found:
        return
    yield (
        "| for information: enforcer run against | guarantee | commit "
        "| records/s ratio | CPU ratio (theirs / ours) |"
    )
    yield "|---|---|---:|---:|---:|"
    for row in found:
        yield (
            f"| {_LABELS[row['pipeline']]} | {_LABELS[row['guarantee']]} "
            f"| {_interval(row['commit_interval_s'])} | {_num(row['records_per_s_ratio'], 2)} "
            f"| {_num(row['cpu_ratio'], 2)} |"
        )


def _interval(seconds: float) -> str:
    return f"{seconds:g} s" if seconds >= 1 else f"{seconds * 1000:g} ms"


def _load(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _num(value: float | None, digits: int = 1, missing: str = "n/a") -> str:
    if value is None:
        return missing
    return f"{value:,.{digits}f}"
