"""How fast ``enforcer run`` restores a purpose ledger, and what the state costs in RSS.

``python -m bench.pipeline.restore --bootstrap HOST:PORT`` (or ``bash
bench/run_restore.sh``, which starts a fresh broker first). For each size (identifiers,
default 2x10^5 and 10^6; 0, an empty ledger, always runs first as the RSS baseline):

1. create a compacted ledger topic and an empty source, both with ``--partitions``
   partitions, and write the ledger: one record per subject (keyed by subject id, as
   the ledger's writers key it), three identifiers each: an email, a phone number
   (a distinct, valid +1 number per subject, so each one is normalized afresh) and a
   device id, with purposes drawn from :mod:`enforcer.demo.sample`'s realistic sets;
2. start ``enforcer run`` with ``ENFORCER_LEDGER_TOPIC``; wait for its ``ledger
   restored`` line of every partition (no fixed sleep);
3. read the log and ``/metrics``: records and identifiers restored, the restore's wall
   time (from the ``assigned partitions`` line to the last ``ledger restored`` line,
   log timestamps; every partition restores from the same assignment, in one consumer),
   the summed per-partition seconds (``enforcer_ledger_restore_seconds_total``), the
   worker's CPU seconds, and its RSS (``process_resident_memory_bytes``) and peak RSS
   (``VmHWM``) once restored;
4. stop the worker, delete the topics.

Each size is measured for every variant asked for, on the same ledger topic (written
once), one after the other in the same run: ``--stores memory,disk`` (the worker's
``ENFORCER_LEDGER_STORE``) and ``--baseline DIR``, another source tree of the enforcer
(for example a ``git worktree`` of the commit before a change) that the worker then
imports instead of this one (``PYTHONPATH``), so a change and its baseline are
compared under the same load. CPU-µs per identifier subtract the same variant's
empty-ledger CPU (start-up).

The restore is one pass over the ledger records: its time is linear in the records
(and the identifiers they hold); the table shows the rate at each size, so that the
extrapolation to 10^7 identifiers rests on a measured constant rate, not a guess.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from enforcer.core.fingerprint import generate_key
from enforcer.demo.sample import CONSENTED_PURPOSES, OTHER_PURPOSES, SECURITY_ONLY_PURPOSES
from enforcer.testing.kafka_broker import DEFAULT_KAFKA_VERSION
from enforcer.testing.topics import create_topics, delete_topics, unique_topic_name
from enforcer.testing.worker import FAST_GROUP_ENV, Deployment, EnforcerTopics, EnforcerWorker

from .ledger import LEDGER_TOPIC_CONFIG, restored_partitions
from .machine import cpu_seconds, describe, load_average
from .processes import REPO_ROOT
from .workload import Record, produce_backlog

MiB = 1024 * 1024
IDENTIFIERS_PER_SUBJECT = 3
UPDATED_AT = "2019-09-01T00:00:00Z"
_SERVING = re.compile(r"serving \S.* on [\d.]+:(\d+)")
_STAMP = re.compile(r"^(\S+Z) ")
_ASSIGNED = "assigned partitions"
_METRICS = (
    "process_resident_memory_bytes",
    "enforcer_ledger_identifiers",
    "enforcer_ledger_restored_records_total",
    "enforcer_ledger_restore_seconds_total",
)


def ledger(identifiers: int, *, seed: int = 11) -> list[Record]:
    """``identifiers`` / 3 (rounded up) subjects, each an email, a phone and a device id."""
    rng = random.Random(seed)
    out = []
    for s in range(-(-identifiers // IDENTIFIERS_PER_SUBJECT)):
        subject = f"acct-{s:09d}"
        roll = rng.random()
        phone = (
            rng.choice(SECURITY_ONLY_PURPOSES)
            if roll < 0.2
            else rng.choice(OTHER_PURPOSES)
            if roll < 0.45
            else rng.choice(CONSENTED_PURPOSES)
        )
        items = [
            ("email", f"user{s}@example.com", rng.choice(CONSENTED_PURPOSES)),
            # Distinct valid NANP numbers: area 201-999 (no N11), exchange 200-999.
            ("phone", _phone(s), phone),
            ("device_id", f"{rng.getrandbits(128):032x}", ["analytics.reporting"]),
        ]
        value = {
            "subject_id": subject,
            "updated_at": UPDATED_AT,
            "identifiers": [
                {"type": kind, "value": text, "purposes": list(purposes)}
                for kind, text, purposes in items
            ],
        }
        out.append(Record(subject.encode(), orjson.dumps(value)))
    return out


def _phone(number: int) -> str:
    line, rest = number % 10_000, number // 10_000
    exchange, area = 200 + rest % 800, 201 + rest // 800 % 700
    if area % 100 == 11:  # N11 codes are not area codes
        area += 1
    return f"+1 ({area:03d}) {exchange:03d}-{line:04d}"


@dataclass(frozen=True)
class Variant:
    """One way of running the worker: which source tree, which ledger store."""

    code: str
    """``this tree`` or ``baseline``."""
    store: str
    env: dict[str, str]


def variants(baseline: Path | None, stores: Sequence[str]) -> list[Variant]:
    """Baseline and this tree (when a baseline is given), for each store."""
    out = []
    for store in stores:
        # PYTHONSAFEPATH: `python -m` would put the working directory (this tree) first
        # on the path, ahead of PYTHONPATH.
        env = {"ENFORCER_LEDGER_STORE": store, "PYTHONSAFEPATH": "1"}
        if baseline is not None:
            out.append(Variant("baseline", store, {**env, "PYTHONPATH": str(baseline)}))
        out.append(Variant("this tree", store, {**env, "PYTHONPATH": str(REPO_ROOT)}))
    return out


def check_variant(variant: Variant) -> None:
    """Fail unless a worker started with the variant's settings imports its tree."""
    tree = variant.env["PYTHONPATH"]
    found = subprocess.run(
        [sys.executable, "-c", "import enforcer; print(enforcer.__file__)"],
        env={**os.environ, **variant.env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not found.startswith(tree):
        raise RuntimeError(f"{variant.code}: the worker would import {found}, not {tree}")


async def measure(
    bootstrap: str,
    identifiers: int,
    partitions: int,
    work_dir: Path,
    timeout_s: float,
    runs: Sequence[Variant],
) -> list[dict[str, Any]]:
    """Write a ledger of ``identifiers``; for each variant, start a worker on it and
    measure its restore."""
    records = ledger(identifiers) if identifiers else []
    ledger_topic = unique_topic_name(f"restore-{identifiers}-ledger")
    await create_topics(bootstrap, [ledger_topic], partitions, configs=LEDGER_TOPIC_CONFIG)
    try:
        print(f"restore: writing {len(records):,} ledger records ...", end=" ", flush=True)
        written_s = await produce_backlog(bootstrap, ledger_topic, records)
        print(f"{written_s:.1f} s", flush=True)
        rows = []
        for variant in runs:
            row = await _restore(
                bootstrap, ledger_topic, variant, identifiers, partitions, work_dir, timeout_s
            )
            row.update(
                code=variant.code,
                store=variant.store,
                records_written=len(records),
                write_s=round(written_s, 2),
            )
            print(
                f"restore:   {variant.code}, {variant.store}: "
                f"{row['restored_identifiers']:,} identifiers in {row['restore_wall_s']} s "
                f"({row['identifiers_per_s']} identifiers/s), CPU {row['worker_cpu_s']} s, "
                f"RSS {row['rss_mib']} MiB",
                flush=True,
            )
            rows.append(row)
        return rows
    finally:
        await delete_topics(bootstrap, [ledger_topic])


async def _restore(
    bootstrap: str,
    ledger_topic: str,
    variant: Variant,
    identifiers: int,
    partitions: int,
    work_dir: Path,
    timeout_s: float,
) -> dict[str, Any]:
    label = f"restore-{identifiers}-{variant.store}-{variant.code.replace(' ', '-')}"
    topics = EnforcerTopics.unique(label)
    await create_topics(bootstrap, topics.all(), partitions)
    try:
        deployment = Deployment(
            bootstrap,
            topics,
            unique_topic_name(label),
            fingerprint_key=generate_key(),
            work_dir=work_dir,
            extra_env={**FAST_GROUP_ENV, "ENFORCER_LEDGER_TOPIC": ledger_topic, **variant.env},
        )
        with deployment:
            worker = deployment.worker(label)
            started = time.monotonic()
            worker.start()
            await _wait_restored(worker, partitions, timeout_s)
            restored_s = time.monotonic() - started
            pid = worker.pid
            assert pid is not None
            row = _row(worker, pid, identifiers, restored_s)
            worker.stop()
        return row
    finally:
        await delete_topics(bootstrap, topics.all())


async def _wait_restored(worker: EnforcerWorker, partitions: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(restored_partitions(worker.log_path)) < partitions:
        if not worker.running:
            raise RuntimeError(f"the worker exited during its restore\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no restore in {timeout_s:.0f}s\n{worker.log_tail()}")
        await asyncio.sleep(0.05)


def _row(
    worker: EnforcerWorker, pid: int, identifiers: int, restored_after_start_s: float
) -> dict[str, Any]:
    assert worker.log_path is not None
    log = worker.log_path.read_text(errors="replace")
    parts = restored_partitions(worker.log_path)
    metrics = _scrape(log)
    wall = _stamp_of(log, "ledger restored", last=True) - _stamp_of(log, _ASSIGNED, last=False)
    restored_records = sum(p.records for p in parts)
    restored_identifiers = sum(p.identifiers for p in parts)
    return {
        "identifiers": identifiers,
        "restored_records": restored_records,
        "restored_identifiers": restored_identifiers,
        "restore_wall_s": round(wall, 3),
        "restore_seconds_total": round(metrics["enforcer_ledger_restore_seconds_total"], 3),
        "partition_seconds": [p.seconds for p in parts],
        "restored_after_start_s": round(restored_after_start_s, 2),
        "identifiers_per_s": round(restored_identifiers / wall) if wall > 0 else None,
        "records_per_s": round(restored_records / wall) if wall > 0 else None,
        "worker_cpu_s": cpu_seconds(pid),
        "rss_mib": round(metrics["process_resident_memory_bytes"] / MiB, 1),
        "peak_rss_mib": round(_vm_hwm_kib(pid) / 1024, 1),
        "metrics_identifiers": int(metrics["enforcer_ledger_identifiers"]),
        "metrics_restored_records": int(metrics["enforcer_ledger_restored_records_total"]),
    }


def _scrape(log: str) -> dict[str, float]:
    """The worker's ``/metrics`` values of :data:`_METRICS` (its port from its log)."""
    port = _SERVING.search(log)
    if port is None:
        raise RuntimeError("the worker logged no HTTP port")
    url = f"http://127.0.0.1:{port.group(1)}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in _METRICS:
            found[name] = float(value)
    missing = set(_METRICS) - set(found)
    if missing:
        raise RuntimeError(f"/metrics has no {sorted(missing)}")
    return found


def _stamp_of(log: str, needle: str, *, last: bool) -> float:
    """The timestamp (epoch s) of the first or last log line containing ``needle``."""
    lines = [line for line in log.splitlines() if needle in line]
    if not lines:
        raise RuntimeError(f"no {needle!r} line in the worker's log")
    stamp = _STAMP.match(lines[-1] if last else lines[0])
    assert stamp is not None
    return datetime.fromisoformat(stamp.group(1)).timestamp()


def _vm_hwm_kib(pid: int) -> int:
    """The process's peak resident set (kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _key(row: dict[str, Any]) -> tuple[str, str]:
    return row.get("code", "this tree"), row.get("store", "memory")


def markdown(results: dict[str, Any]) -> str:
    """The table (every variant, sizes in order) and the extrapolation to 10^7."""
    machine = results["machine"]
    rows = results["runs"]
    empty = {_key(r): r for r in rows if r["identifiers"] == 0}
    lines = [
        f"Run of {results['started_at']}: {machine['cpu_model']}, {machine['cores']} cores, "
        f"Python {machine['python']}, Kafka {machine['kafka']} (one local broker), "
        f"{results['partitions']} partitions; load average (1 min) "
        f"{machine['load_average_start'][0]:.2f} at the start, "
        f"{machine['load_average_end'][0]:.2f} at the end.",
        "",
        "| code | store | identifiers | records | restore (s, wall) | identifiers/s "
        "| worker CPU (s) | CPU-µs per identifier | RSS after restore (MiB) "
        "| minus empty ledger (MiB) | peak RSS (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda r: (r["identifiers"], r["store"], r["code"])):
        base = empty[_key(row)]
        lines.append(
            f"| {row['code']} | {row['store']} | {row['restored_identifiers']:,} "
            f"| {row['restored_records']:,} | {row['restore_wall_s']:.2f} "
            f"| {_n(row['identifiers_per_s'])} | {_n(row['worker_cpu_s'], 1)} "
            f"| {_n(_cpu_us(row, base), 1)} "
            f"| {row['rss_mib']:,.0f} | {row['rss_mib'] - base['rss_mib']:,.0f} "
            f"| {row['peak_rss_mib']:,.0f} |"
        )
    for key, base in empty.items():
        lines += ["", *_extrapolation([r for r in rows if _key(r) == key], base, key)]
    return "\n".join(lines)


def _cpu_us(row: dict[str, Any], base: dict[str, Any]) -> float | None:
    """The worker's CPU per restored identifier, start-up (the empty ledger's) aside."""
    if not row["restored_identifiers"] or row["worker_cpu_s"] is None:
        return None
    spent: float = row["worker_cpu_s"] - base["worker_cpu_s"]
    identifiers: int = row["restored_identifiers"]
    return spent * 1e6 / identifiers


def _extrapolation(
    rows: Sequence[dict[str, Any]], base: dict[str, Any], key: tuple[str, str]
) -> Iterator[str]:
    sized = [r for r in rows if r["identifiers"] > 0 and r["identifiers_per_s"]]
    if not sized:
        return
    largest = max(sized, key=lambda r: r["identifiers"])
    per_million_mib = (
        (largest["rss_mib"] - base["rss_mib"]) * 1_000_000 / largest["restored_identifiers"]
    )
    rates = ", ".join(f"{r['identifiers_per_s']:,}/s at {r['identifiers']:,}" for r in sized)
    slowest = min(r["identifiers_per_s"] for r in sized)
    yield (
        f"{key[0]}, {key[1]} store: extrapolation to 10^7 identifiers (3.3x10^6 records): "
        f"the restore is one pass over the records (parse, fingerprint, apply; one core), "
        f"so its time grows linearly with them as long as the rate per record holds. "
        f"Measured: {rates}; at the slowest, {slowest:,}/s, 10^7 takes about "
        f"{10_000_000 / slowest / 60:.1f} min (an estimate, not measured). The wall time "
        f"includes about {base['restore_wall_s']:.1f} s that even an empty ledger takes "
        f"(reaching the end of each partition). RSS after the restore grows by about "
        f"{per_million_mib:,.0f} MiB per 10^6 identifiers here (peak "
        f"{largest['peak_rss_mib'] - base['peak_rss_mib']:,.0f} MiB above the empty "
        f"ledger's at {largest['restored_identifiers']:,}), i.e. about "
        f"{per_million_mib * 10 / 1024:.1f} GiB for 10^7 by linear extrapolation."
    )


def _n(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline.restore", description="Ledger restore rate and RSS."
    )
    parser.add_argument("--bootstrap", required=True, help="a running broker, host:port")
    parser.add_argument(
        "--identifiers",
        default="200000,1000000",
        help="ledger sizes in identifiers, comma-separated (an empty ledger always runs first)",
    )
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--stores",
        default="memory",
        help="ledger stores to measure, comma-separated: memory, disk (ENFORCER_LEDGER_STORE)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another source tree of the enforcer (e.g. a git worktree of the commit before "
        "a change), measured beside this one in the same run",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="per restore, s")
    parser.add_argument("--kafka-version", default=DEFAULT_KAFKA_VERSION)
    parser.add_argument("--java", default="java")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    parser.add_argument("--work-dir", type=Path, default=None, help="worker logs")
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    sizes = [0, *(int(n) for n in args.identifiers.split(",") if n.strip() and int(n) > 0)]
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(args.java, args.kafka_version),
        "partitions": args.partitions,
        "identifiers_per_subject": IDENTIFIERS_PER_SUBJECT,
        "runs": [],
    }
    results["machine"]["load_average_start"] = load_average()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    runs = variants(args.baseline.resolve() if args.baseline else None, stores)
    for variant in runs:
        check_variant(variant)
    results["baseline"] = str(args.baseline) if args.baseline else None
    for size in sizes:
        print(f"restore: {size:,} identifiers", flush=True)
        results["runs"] += await measure(
            args.bootstrap, size, args.partitions, work_dir, args.timeout, runs
        )
    results["machine"]["load_average_end"] = load_average()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Measure; write ``ledger_restore.json`` and ``ledger_restore.md`` to ``--out``."""
    args = parse_args(argv)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-restore-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    print(f"restore: logs in {work_dir}", flush=True)
    results = asyncio.run(_run(args, work_dir))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ledger_restore.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.out / "ledger_restore.md").write_text(table + "\n")
    print()
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
