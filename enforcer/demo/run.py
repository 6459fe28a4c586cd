"""The README's main job: the enforcer on a local broker with sample traffic.

Writes a purpose ledger (what each sample account's identifiers were collected for),
produces sample identity events shaped like the 2019 case (and phone numbers given for
SMS notifications, device ids for analytics), some of which wrongly claim advertising
for a number collected for two-factor authentication only, and, halfway through, a
batch of consent withdrawals and erasures. It runs ``enforcer run`` as a real worker
process until it has committed every input record, stops it with SIGTERM, then reads
the output topics as a ``read_committed`` consumer would and prints what happened to
every record, the claims the ledger did not grant, and the retractions. The worker
logs at info level to the file it names. It ends with an HTML report and the next
commands to try (:mod:`enforcer.demo.next_steps`). The sample, the ledger and who
withdraws come from ``--seed``, fixed by default, so two runs print the same numbers.

    python -m enforcer.demo --bootstrap 127.0.0.1:9092 [--records 5000] [--seed 2019]

``--format avro`` runs the same story on account events in Avro behind a schema
registry (:mod:`enforcer.demo.avro`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from enforcer.core.ledger_view import PURPOSE_NOT_GRANTED as NOT_GRANTED
from enforcer.core.ledger_view import PURPOSE_NOT_GRANTED_MEANING as NOT_GRANTED_MEANING
from enforcer.demo.deployment import (
    OUTPUT_TOPICS,
    fresh_topics,
    made_key,
    state_dir,
    worker_environment,
)
from enforcer.demo.ledger import DemoLedger, demo_ledger
from enforcer.demo.next_steps import (
    first_not_granted,
    next_commands,
    shown,
    write_files,
    write_report,
)
from enforcer.demo.sample import sample_values, subject_key
from enforcer.demo.summary import outcome_lines, read_back, rule_meanings
from enforcer.ledger.retract import is_retraction
from enforcer.testing.kafka_broker import free_port
from enforcer.testing.ledger import produce_ledger
from enforcer.testing.worker import EnforcerWorker, WorkerError, produce, wait_for_commits

TOPICS = {"source": "identity.events", **OUTPUT_TOPICS}
LEDGER_TOPIC = "identity.purposes"


def summarize(bootstrap: str, produced: int, demo: DemoLedger) -> str:
    """Read every output topic (read_committed) and describe what happened."""
    read = read_back(bootstrap, TOPICS, produced)
    retracted = Counter(
        orjson.loads(r.value or b"{}")["retraction"]["reason"]
        for r in read.sink
        if is_retraction(r.headers)
    )
    meaning = rule_meanings(None)
    meaning[NOT_GRANTED] = NOT_GRANTED_MEANING
    by_rule = read.by_rule
    not_granted = {
        v["subject_id"] for v in read.violations for f in v["findings"] if f["rule"] == NOT_GRANTED
    }
    erased = sum(1 for _, value in demo.withdrawals if value is None)
    lines = outcome_lines(read, produced, meaning)
    lines += [
        f"purpose ledger:   {len(demo.ledger):>7,} accounts recorded before the start; "
        f"{len(demo.withdrawals) - erased} withdrew consent to advertising and {erased} "
        "were erased halfway",
        f"  claims the ledger does not grant: {by_rule[NOT_GRANTED]:,} identifiers of "
        f"{len(not_granted):,} accounts ({demo.miss_claims:,} events claimed advertising "
        "for a number given for 2FA only)",
        f"  retractions sent to audience building: {sum(retracted.values()):,}   "
        f"{dict(sorted(retracted.items()))}",
    ]
    return "\n".join(lines)


async def produce_forever(bootstrap: str, topic: str, per_second: float) -> None:
    """Sample traffic at about ``per_second`` records a second until stopped."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=50)
    await producer.start()
    try:
        seed = 0
        while True:
            seed += 1
            for value in sample_values(max(1, int(per_second)), seed=seed):
                await producer.send(topic, key=subject_key(value), value=value)
            await asyncio.sleep(1.0)
    finally:
        await producer.stop()


DEFAULT_SEED = 2019
"""The sample's seed unless ``--seed`` says otherwise: two runs print the same numbers."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The demo's flags."""
    parser = argparse.ArgumentParser(
        prog="python -m enforcer.demo",
        description=__doc__.splitlines()[0],
        allow_abbrev=False,
    )
    parser.add_argument("--bootstrap", required=True, help="the local broker, host:port")
    parser.add_argument(
        "--records", type=int, default=5000, help="sample events to produce (default: 5000)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="seed of the sample events, the ledger, and who withdraws or is erased "
        f"(default: {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds the enforcer may take per half (default: 180)",
    )
    parser.add_argument(
        "--produce-only",
        type=float,
        metavar="PER_SECOND",
        help="only produce sample traffic to identity.events at this rate, until stopped",
    )
    parser.add_argument(
        "--format",
        choices=["json", "avro"],
        default="json",
        help="json: identity events and a purpose ledger (default); avro: account events "
        "in Avro behind a schema registry, identifiers in their own fields "
        "(docs/formats.md)",
    )
    parser.add_argument(
        "--schema-registry-url",
        metavar="URL",
        help="with --format avro: a running Confluent-compatible registry to use (Apicurio: "
        "http://HOST:PORT/apis/ccompat/v7); default: start a local one for the run",
    )
    args = parser.parse_args(argv)
    if args.format != "avro" and args.schema_registry_url is not None:
        parser.error("--schema-registry-url goes with --format avro")
    if args.format == "avro" and args.produce_only:
        parser.error("--produce-only produces the JSON sample only")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return its exit status (1 when the worker did not finish)."""
    args = parse_args(argv)
    if args.produce_only:
        asyncio.run(produce_forever(args.bootstrap, TOPICS["source"], args.produce_only))
        return 0
    if args.format == "avro":
        from enforcer.demo.avro import run_avro  # fastavro and the registry: only here

        return run_avro(args)

    sent = list(sample_values(args.records, seed=args.seed))
    demo = demo_ledger(sent, args.seed)
    values = demo.events
    group = f"enforcer-demo-{os.getpid()}"
    http_port = free_port()
    env = worker_environment(args.bootstrap, group, http_port)
    env["ENFORCER_LEDGER_TOPIC"] = LEDGER_TOPIC
    asyncio.run(
        fresh_topics(args.bootstrap, list(TOPICS.values()), partitions=3, compacted=[LEDGER_TOPIC])
    )
    print(
        f"writing the purpose ledger ({len(demo.ledger):,} accounts) to {LEDGER_TOPIC} ...",
        flush=True,
    )
    asyncio.run(produce_ledger(args.bootstrap, LEDGER_TOPIC, demo.ledger))
    state = state_dir()
    worker = EnforcerWorker("enforcer-demo", env, state)
    worker.start()
    print(
        f"started the enforcer (group {group}) on {args.bootstrap}; its log: {worker.log_path}",
        flush=True,
    )
    try:
        _feed(args, demo, worker, group, http_port)
    except (TimeoutError, WorkerError):
        print(
            f"the enforcer did not commit all {len(values):,} records in {args.timeout:.0f} s; "
            f"its log: {worker.log_path}",
            file=sys.stderr,
        )
        return 1
    finally:
        if worker.running:
            worker.stop()
    print(f"the enforcer stopped (exit status {worker.returncode}); its log: {worker.log_path}")
    print("\nwhat the enforcer did (read back from the output topics, read_committed):")
    print(summarize(args.bootstrap, len(values), demo), flush=True)
    return _leave_next_steps(state / "out", demo, sent, env)


def _feed(
    args: argparse.Namespace, demo: DemoLedger, worker: EnforcerWorker, group: str, port: int
) -> None:
    """Produce the first half, wait until it is committed, send the withdrawals and wait
    until the worker has applied them, then the second half; wait for its commit.

    Waiting for the withdrawals to be applied before the second half is sent keeps the
    numbers the same from run to run: otherwise an event of a withdrawn account could
    be decided before or after its withdrawal, as the worker happened to read them.
    """
    values = demo.events
    print(f"producing {len(values):,} sample identity events to {TOPICS['source']} ...", flush=True)
    half = len(values) // 2
    asyncio.run(produce(args.bootstrap, TOPICS["source"], values[:half]))
    # The withdrawals come once the first half is decided (and some of it
    # forwarded under the consent then given): that is what must be retracted.
    asyncio.run(
        wait_for_commits(
            args.bootstrap,
            group,
            TOPICS["source"],
            at_least=half,
            timeout_s=args.timeout,
            alive=[worker],
        )
    )
    print(
        f"halfway: {len(demo.withdrawals):,} consent withdrawals and erasures to "
        f"{LEDGER_TOPIC} ...",
        flush=True,
    )
    asyncio.run(produce_ledger(args.bootstrap, LEDGER_TOPIC, demo.withdrawals))
    wait_for_ledger_applied(port, len(demo.withdrawals), args.timeout, worker)
    asyncio.run(produce(args.bootstrap, TOPICS["source"], values[half:]))
    asyncio.run(
        wait_for_commits(
            args.bootstrap,
            group,
            TOPICS["source"],
            at_least=len(values),
            timeout_s=args.timeout,
            alive=[worker],
        )
    )


_APPLIED = re.compile(
    r'^enforcer_ledger_records_total\{[^}]*outcome="applied"[^}]*\} ([0-9.e+]+)$', re.M
)


def wait_for_ledger_applied(
    port: int, at_least: int, timeout_s: float, worker: EnforcerWorker
) -> None:
    """Poll the worker's ``/metrics`` until it has committed ``at_least`` ledger records
    read after its restore (``enforcer_ledger_records_total{outcome="applied"}``)."""
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{port}/metrics"
    while time.monotonic() < deadline:
        if not worker.running:
            raise WorkerError(f"worker {worker.name} exited")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
        except OSError:
            text = ""
        found = _APPLIED.search(text)
        if found and float(found.group(1)) >= at_least:
            return
        time.sleep(0.2)
    raise TimeoutError(f"the worker did not apply {at_least} ledger records in {timeout_s} s")


def _leave_next_steps(
    out: Path, demo: DemoLedger, sent: Sequence[bytes], env: Mapping[str, str]
) -> int:
    """Write the files, the report, and print the next three commands."""
    files = write_files(out, demo, made_key(env))
    problem = write_report(files, env)
    if problem is not None:
        print(f"the report could not be written: {problem}", file=sys.stderr)
        return 1
    print(
        f"\nreport: {shown(files.report)}\n  the same events replayed (enforcer replay) "
        "against the ledger as it stands at the end, withdrawals and erasures applied: "
        "what audience building keeps once it has applied the retractions"
    )
    print(f"events: {shown(files.events)}, ledger: {shown(files.ledger)}")
    print("\nnext, try:")
    for command in next_commands(files, first_not_granted(demo, sent)):
        print(f"  {command}")
    return 0
