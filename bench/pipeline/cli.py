"""``python -m bench.pipeline``: the whole benchmark against a running broker.

``bash bench/run_pipeline.sh`` starts a fresh broker and calls this; see
docs/benchmarks.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from enforcer.testing.kafka_broker import DEFAULT_KAFKA_VERSION
from enforcer.testing.schema_registry import LocalSchemaRegistry
from enforcer.testing.topics import create_topics, delete_topics, unique_topic_name

from .formats import Variant, registry_dir
from .formats import variants as formats_variants
from .kafka_tools import KafkaTools
from .ledger import forwarded_with_ledger, ledger_identifiers, ledger_records
from .machine import describe, load_average
from .memory import measure_memory
from .processes import (
    DIAGNOSTIC_PIPELINES,
    ENFORCER_AVRO,
    ENFORCER_CONTACTS,
    ENFORCER_LEDGER,
    FORMAT_PIPELINES,
    GUARANTEES,
    PIPELINES,
    REPO_ROOT,
    STEADY_PIPELINES,
    Batching,
    PipelineConfig,
)
from .report import markdown, targets, update_docs, versus
from .run import Stage, best_of, run_config
from .steady import steady_variant
from .workload import (
    MEMORY_SEED,
    PACED_SEED,
    forwarded_by_enforcer,
    generate,
    mean_value_bytes,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description="End-to-end pipeline benchmark."
    )
    parser.add_argument("--bootstrap", required=True, help="a running broker, host:port")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--targets-only",
        action="store_true",
        help="only what the targets need: exactly-once at 1 s, no Kafka tools",
    )
    modes.add_argument(
        "--quick",
        action="store_true",
        help="--targets-only on 20,000 records, one drain each, a 2 s latency phase",
    )
    parser.add_argument("--records", type=int, default=None, help="backlog per configuration")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--pipelines",
        type=_names(PIPELINES + DIAGNOSTIC_PIPELINES),
        default=None,
        help=f"comma-separated, of {', '.join(PIPELINES + DIAGNOSTIC_PIPELINES)}",
    )
    parser.add_argument(
        "--guarantees", type=_names(GUARANTEES), default=None, help="comma-separated"
    )
    parser.add_argument(
        "--intervals", type=_floats, default=None, help="commit intervals in s, comma-separated"
    )
    parser.add_argument("--batch-max", type=int, default=500)
    parser.add_argument("--batch-within", type=float, default=0.1)
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="drains per configuration; the fastest counts (latency: first only)",
    )
    parser.add_argument("--latency-per-s", type=float, default=1000.0)
    parser.add_argument("--latency-seconds", type=float, default=None)
    parser.add_argument(
        "--kafka-tools-records",
        type=int,
        default=None,
        help="records for the Java perf tools (0 skips them)",
    )
    parser.add_argument(
        "--memory-records",
        type=int,
        default=300_000,
        help="backlog one enforcer worker drains for its peak RSS (0 skips it)",
    )
    parser.add_argument("--kafka-version", default=DEFAULT_KAFKA_VERSION)
    parser.add_argument("--java", default=os.environ.get("JAVA", "java"))
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    parser.add_argument(
        "--docs",
        type=Path,
        default=REPO_ROOT / "docs" / "benchmarks.md",
        help="markdown file whose results section is replaced ('-' for none)",
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="logs and payload files")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="record each pipeline's drain with py-spy into DIR (py-spy must be installed)",
    )
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "targets-only" if args.targets_only else "full"
    for name, value in MODES[mode].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.mode = mode
    return args


MODES: dict[str, dict[str, Any]] = {
    "full": {
        "records": 80_000,
        "pipelines": list(PIPELINES),
        "guarantees": list(GUARANTEES),
        "intervals": [0.1, 1.0],
        "repeat": 2,
        "latency_seconds": 5.0,
        "kafka_tools_records": 200_000,
    },
    "targets-only": {
        "records": 80_000,
        "pipelines": list(PIPELINES),
        "guarantees": ["exactly_once"],
        "intervals": [1.0],
        "repeat": 2,
        "latency_seconds": 5.0,
        "kafka_tools_records": 0,
    },
    "quick": {
        "records": 20_000,
        "pipelines": list(PIPELINES),
        "guarantees": ["exactly_once"],
        "intervals": [1.0],
        "repeat": 1,
        "latency_seconds": 2.0,
        "kafka_tools_records": 0,
    },
}
"""What each mode runs, for the options not given on the command line."""


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run's configurations."""
    parts = ["bash bench/run_pipeline.sh"]
    if args.mode != "full":
        parts.append(f"--{args.mode}")
    defaults = MODES[args.mode]
    for name in ("records", "repeat", "latency_seconds", "kafka_tools_records"):
        if getattr(args, name) != defaults[name]:
            parts.append(f"--{name.replace('_', '-')} {getattr(args, name)}")
    for name in ("pipelines", "guarantees", "intervals"):
        if getattr(args, name) != defaults[name]:
            parts.append(f"--{name} {','.join(str(v) for v in getattr(args, name))}")
    if args.memory_records != 300_000:
        parts.append(f"--memory-records {args.memory_records}")
    return " ".join(parts)


def _names(allowed: Sequence[str]) -> Any:
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {list(allowed)}")
        return names

    return parse


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; write the JSON, the markdown table and the docs section."""
    args = parse_args(argv)
    # aiokafka warns of every retried request (a partition leader not known yet right
    # after topic creation); retries are its business, failures still raise.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    print(f"bench: logs in {work_dir}", flush=True)
    results = asyncio.run(_run(args, work_dir))
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "pipeline.json"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.out / "pipeline.md").write_text(table + "\n")
    if str(args.docs) != "-":
        update_docs(args.docs, table)
    print()
    print(table)
    print()
    for target in results["targets"]:
        verdict = "met" if target["met"] else "MISSED"
        print(
            f"target {target['target']}: {target['measured']}, ratio {target['ratio']} "
            f"(needed {target['needed']}) {verdict}"
        )
    broken = [r for r in results["runs"] if r["outcomes"]["missing"] or r["outcomes"]["duplicates"]]
    for run in broken:
        print(f"check {run['pipeline']} {run['guarantee']}: {run['outcomes']}")
    print(f"\nbench: wrote {json_path} in {results['duration_s']:.0f} s", flush=True)
    return 0


async def _run(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    started, clock = datetime.now(UTC), time.monotonic()
    load_start = load_average()
    backlog = generate(args.records)
    paced = generate(round(args.latency_per_s * args.latency_seconds), seed=PACED_SEED)
    results: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "mode": args.mode,
        "command": _command(args),
        "machine": describe(args.java, args.kafka_version),
        "workload": {
            "records": args.records,
            "partitions": args.partitions,
            "mean_value_bytes": round(mean_value_bytes(backlog), 1),
            "identifiers_per_event": 3,
            "security_only_share": 0.2,
            "keyed_by": "subject_id (account)",
            "latency_records": len(paced),
            "latency_per_s": args.latency_per_s,
            "batch_max": args.batch_max,
            "batch_within_s": args.batch_within,
            "repeat": args.repeat,
        },
    }
    ledger = ledger_records([*backlog, *paced]) if ENFORCER_LEDGER in args.pipelines else []
    if ledger:
        results["workload"]["ledger"] = {
            "records": len(ledger),
            "identifiers": ledger_identifiers(ledger),
            "derived_from": "the backlog and latency records: every identifier of a "
            "subject with the purposes it was first given",
        }
    results["machine"]["load_average_start"] = load_start
    if args.kafka_tools_records > 0:
        results["kafka_tools"] = await _kafka_tools(args, work_dir, backlog)
    with contextlib.ExitStack() as resources:
        variants: dict[str, Variant] = {}
        if any(name in STEADY_PIPELINES for name in args.pipelines):
            steady = steady_variant(backlog, paced)
            variants.update(dict.fromkeys(STEADY_PIPELINES, steady))
            results["workload"]["steady"] = {
                "records": len(steady.backlog),
                "mean_value_bytes": round(mean_value_bytes(steady.backlog), 1),
                "subjects": len({record.key for record in [*steady.backlog, *steady.paced]}),
                "identifiers": "each account's events carry the identifiers of its first "
                "event (values and purposes); exposure seeded with the backlog and latency "
                "records forwarded once, under the worker's key, sink and policy",
            }
        if any(name in FORMAT_PIPELINES for name in args.pipelines):
            registry = resources.enter_context(LocalSchemaRegistry(registry_dir(work_dir)))
            print(f"bench: schema registry {registry.url}", flush=True)
            variants.update(formats_variants(registry.url, args.records, len(paced)))
            results["workload"]["formats"] = {
                "records": args.records,
                "identity_bytes": round(mean_value_bytes(variants[ENFORCER_CONTACTS].backlog), 1),
                "avro_bytes": round(mean_value_bytes(variants[ENFORCER_AVRO].backlog), 1),
            }
        return await _stages(args, work_dir, results, clock, (backlog, paced, ledger), variants)


async def _stages(
    args: argparse.Namespace,
    work_dir: Path,
    results: dict[str, Any],
    clock: float,
    workloads: tuple[Sequence[Any], Sequence[Any], Sequence[Any]],
    variants: dict[str, Variant],
) -> dict[str, Any]:
    """Every configuration, the memory backlog, the targets (``workloads``: the backlog,
    the latency phase's records and the ledger)."""
    backlog, paced, ledger = workloads
    stage = Stage(
        bootstrap=args.bootstrap,
        partitions=args.partitions,
        backlog=backlog,
        paced=paced,
        paced_per_s=args.latency_per_s,
        paced_forwarded_by_enforcer=forwarded_by_enforcer(paced),
        work_dir=work_dir,
        batching=Batching(args.batch_max, args.batch_within),
        profile_dir=args.profile,
        ledger=ledger,
        paced_forwarded_with_ledger=forwarded_with_ledger(paced, ledger) if ledger else 0,
        variants=variants,
    )
    attempts: dict[PipelineConfig, list[dict[str, Any]]] = {}
    # Pipelines back to back per guarantee and interval, and repetitions in rounds: the
    # ratios compare numbers taken a minute apart at most, under the same background load.
    for attempt in range(args.repeat):
        for guarantee, interval in itertools.product(args.guarantees, args.intervals):
            for pipeline in args.pipelines:
                config = PipelineConfig(pipeline, guarantee, interval)
                print(f"bench: {config.slug} ({attempt + 1}/{args.repeat}) ...", flush=True)
                run = await run_config(config, stage, latency=attempt == 0)
                attempts.setdefault(config, []).append(run)
                print(
                    f"bench:   {run['records_per_s']} records/s, "
                    f"{run['cpu_us_per_record']} CPU-µs/record, p50 {run['latency_p50_ms']} ms, "
                    f"p99 {run['latency_p99_ms']} ms (window {run['window_s']} s, "
                    f"load {run['load_average_1m']})",
                    flush=True,
                )
                check = run["outcomes"]
                print(
                    f"bench:   check: {check['inputs']:,} inputs, {check['missing']} missing, "
                    f"{check['duplicates']} duplicates, {check['unexpected']} unexpected "
                    f"(read in {check['read_s']} s)",
                    flush=True,
                )
                if "gc" in run:
                    gc = run["gc"]
                    print(
                        f"bench:   GC: {gc['collections']} collections, pause "
                        f"{gc['pause_s']} s ({gc['metric']})",
                        flush=True,
                    )
                if "exposure" in run:
                    facts = run["exposure"]
                    seeded = (
                        f"seeded with {facts['seeded_records']:,} records, restored "
                        f"{facts['restored_records']:,} in {facts['restore_s']} s; "
                        if "seeded_records" in facts
                        else ""
                    )
                    print(
                        f"bench:   exposure: {seeded}{facts['writes_drain']} records written "
                        f"by the drain, {facts['writes']} in all",
                        flush=True,
                    )
                if "ledger" in run:
                    facts = run["ledger"]
                    print(
                        f"bench:   ledger: {facts['records']:,} records, "
                        f"{facts['identifiers']:,} identifiers restored in "
                        f"{facts['restore_s']} s; clock started "
                        f"{facts['restored_after_start_s']} s after the start, with "
                        f"{facts['output_before_clock'] or 0:.1%} of the output already written",
                        flush=True,
                    )
    runs = [best_of(rows) for rows in attempts.values()]
    results["runs"] = runs
    if args.memory_records > 0:
        print(f"bench: memory, {args.memory_records:,} records ...", flush=True)
        memory = await measure_memory(
            args.bootstrap,
            args.partitions,
            generate(args.memory_records, seed=MEMORY_SEED),
            work_dir,
            Batching(args.batch_max, args.batch_within),
        )
        print(
            f"bench:   peak RSS {memory['peak_rss_mib']} MiB (drained in {memory['drain_s']} s)",
            flush=True,
        )
        results["memory"] = memory
    results["targets"] = targets(runs, results.get("memory"))
    results["versus"] = versus(runs)
    results["machine"]["load_average_end"] = load_average()
    results["duration_s"] = round(time.monotonic() - clock, 1)
    return results


async def _kafka_tools(
    args: argparse.Namespace, work_dir: Path, backlog: Sequence[Any]
) -> dict[str, Any]:
    tools = KafkaTools(
        args.java, REPO_ROOT / "deploy" / "kafka" / f"lib-{args.kafka_version}", work_dir
    )
    payload = work_dir / "payload.txt"
    payload.write_bytes(b"".join(record.value + b"\n" for record in backlog))
    size = round(mean_value_bytes(backlog))
    found: dict[str, Any] = {}
    for key, transaction_ms in (
        ("producer", None),
        ("producer_transactions_100ms", 100),
        ("producer_transactions_1s", 1000),
    ):
        topic = unique_topic_name(f"bench-tools-{key}")
        await create_topics(args.bootstrap, [topic], args.partitions)
        try:
            print(f"bench: kafka tools, {key} ...", end=" ", flush=True)
            found[key] = await asyncio.to_thread(
                tools.producer,
                args.bootstrap,
                topic,
                args.kafka_tools_records,
                payload,
                transaction_ms=transaction_ms,
            )
            print(f"{found[key]['records_per_s']:.0f} records/s", flush=True)
            if key == "producer":
                print("bench: kafka tools, consumer ...", end=" ", flush=True)
                found["consumer"] = await asyncio.to_thread(
                    tools.consumer, args.bootstrap, topic, args.kafka_tools_records
                )
                print(f"{found['consumer']['records_per_s']:.0f} records/s", flush=True)
        finally:
            await delete_topics(args.bootstrap, [topic])
    topic = unique_topic_name("bench-tools-e2e")
    await create_topics(args.bootstrap, [topic], 1)
    try:
        print("bench: kafka tools, end-to-end latency ...", end=" ", flush=True)
        found["end_to_end_latency"] = await asyncio.to_thread(
            tools.end_to_end_latency, args.bootstrap, topic, 2000, size
        )
        print(f"p50 {found['end_to_end_latency']['latency_p50_ms']} ms", flush=True)
    finally:
        await delete_topics(args.bootstrap, [topic])
    return found


if __name__ == "__main__":
    sys.exit(main())
