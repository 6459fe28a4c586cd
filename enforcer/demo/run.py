"""The README's main job: the enforcer on a local broker with sample traffic.

Writes a purpose ledger (what each sample account's identifiers were collected for),
produces sample identity events shaped like the 2019 case (and phone numbers given for
SMS notifications, device ids for analytics), some of which wrongly claim advertising
for a number collected for two-factor authentication only, and, halfway through, a
batch of consent withdrawals and erasures. The worker keeps exposure (what it forwarded)
and starts with a mistaken policy that lets phone numbers given for SMS notifications
reach audience building; halfway the mistake is found and the policy file fixed, the
worker reloads it and retracts exactly the numbers it had forwarded under the mistake.
It runs ``enforcer run`` as a real worker
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
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from enforcer.core.fingerprint import Fingerprinter, key_from_text
from enforcer.core.ledger_view import PURPOSE_NOT_GRANTED as NOT_GRANTED
from enforcer.core.ledger_view import PURPOSE_NOT_GRANTED_MEANING as NOT_GRANTED_MEANING
from enforcer.core.policy.load import default_policy_bytes
from enforcer.demo.deployment import (
    OUTPUT_TOPICS,
    fresh_topics,
    made_key,
    state_dir,
    worker_environment,
)
from enforcer.demo.ledger import DemoLedger, demo_ledger
from enforcer.demo.loop import run as run_loop
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
from enforcer.testing.consume import ReadRecord
from enforcer.testing.kafka_broker import free_port
from enforcer.testing.ledger import produce_ledger
from enforcer.testing.policies import phones_never_for_advertising
from enforcer.testing.worker import EnforcerWorker, WorkerError, produce, wait_for_commits

TOPICS = {"source": "identity.events", **OUTPUT_TOPICS}
LEDGER_TOPIC = "identity.purposes"
EXPOSURE_TOPIC = "enforcer.exposure"
MISTAKE = b"    allow: [marketing.advertising]\n"
"""The default policy's allow-list, which the mistaken policy widens."""
MISTAKEN = b"    allow: [marketing.advertising, essential.service.notifications]\n"


def mistaken_policy() -> bytes:
    """The default policy with SMS-notification numbers allowed for advertising: the
    demo's policy mistake, found and fixed halfway."""
    text = default_policy_bytes()
    if MISTAKE not in text:
        raise RuntimeError("the default policy's allow-list moved: update the demo")
    return text.replace(MISTAKE, MISTAKEN, 1)


def summarize(bootstrap: str, produced: int, demo: DemoLedger, key: str) -> str:
    """Read every output topic (read_committed) and describe what happened."""
    read = read_back(bootstrap, TOPICS, produced)
    exact = retractions_forwarded_before(read.sink, Fingerprinter(key_from_text(key)))
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
        f"  each names an identifier the enforcer had forwarded (exposure): {exact:,} of "
        f"{sum(retracted.values()):,}; policy-changed: the mistake fixed halfway",
    ]
    return "\n".join(lines)


def retractions_forwarded_before(sink: Sequence[ReadRecord], fingerprinter: Fingerprinter) -> int:
    """How many retractions name an identifier forwarded earlier in their partition (a
    subject's records share one) and not retracted since: all of them, when exposure
    makes retractions exact."""
    exposed: set[tuple[str, str, str]] = set()
    exact = 0
    for record in sorted(sink, key=lambda r: (r.partition, r.offset)):
        value = orjson.loads(record.value or b"{}")
        if is_retraction(record.headers):
            body = value["retraction"]
            identity = (body["subject_id"], body["identifier_type"], body["fingerprint"])
            exact += identity in exposed
            exposed.discard(identity)
            continue
        for item in value.get("identifiers", []):
            kind = item["type"]
            exposed.add((value["subject_id"], kind, fingerprinter(kind, item["value"])))
    return exact


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
        run_loop(produce_forever(args.bootstrap, TOPICS["source"], args.produce_only))
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
    state = state_dir()
    policy = state / "demo-policy.yaml"
    policy.write_bytes(mistaken_policy())
    env.update(
        ENFORCER_LEDGER_TOPIC=LEDGER_TOPIC,
        ENFORCER_EXPOSURE_TOPIC=EXPOSURE_TOPIC,
        ENFORCER_POLICY_FILE=str(policy),
        ENFORCER_POLICY_CHECK_INTERVAL="0.5",
    )
    run_loop(
        fresh_topics(
            args.bootstrap,
            list(TOPICS.values()),
            partitions=3,
            compacted=[LEDGER_TOPIC, EXPOSURE_TOPIC],
        )
    )
    print(
        f"writing the purpose ledger ({len(demo.ledger):,} accounts) to {LEDGER_TOPIC} ...",
        flush=True,
    )
    run_loop(produce_ledger(args.bootstrap, LEDGER_TOPIC, demo.ledger))
    worker = EnforcerWorker("enforcer-demo", env, state)
    worker.start()
    print(
        f"started the enforcer (group {group}) on {args.bootstrap}; its log: {worker.log_path}",
        flush=True,
    )
    try:
        _feed(args, demo, worker, group, http_port, policy)
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
    print(summarize(args.bootstrap, len(values), demo, env["ENFORCER_FINGERPRINT_KEY"]), flush=True)
    try:
        print("\n".join(remediate(args.bootstrap, env, state / "out")), flush=True)
    except RemediationError as exc:
        print(f"the remediation did not finish: {exc}", file=sys.stderr)
        return 1
    return _leave_next_steps(state / "out", demo, sent, env)


class RemediationError(RuntimeError):
    """A remediate command of the demo failed; the message is its last line."""


def remediate(bootstrap: str, env: Mapping[str, str], out: Path) -> list[str]:
    """The demo's last act, with the worker stopped: the privacy team decides phone
    numbers may not build audiences at all, plans the retractions over the sink's
    history (``enforcer remediate plan``, judged against the ledger as it stands) and
    applies them (``enforcer remediate apply``), twice: the second writes nothing.
    Returns the lines to print (counts only: no plan id, no fingerprint)."""
    out.mkdir(parents=True, exist_ok=True)
    policy, plan = out / "phones-never-for-ads.yaml", out / "remediation-plan.json"
    policy.write_bytes(phones_never_for_advertising())
    kafka = ["--bootstrap-servers", bootstrap]
    planned = _enforcer(
        env,
        "remediate", "plan", *kafka, "--sink-topic", TOPICS["sink"],
        "--ledger-topic", LEDGER_TOPIC, "--policy", str(policy), "--out", str(plan),
    )  # fmt: skip
    counts = [
        line.strip()
        for line in planned.splitlines()
        if "still exposed" in line or line.strip().startswith(("by rule:", "by type:"))
    ]
    first = _enforcer(env, "remediate", "apply", str(plan), *kafka)
    again = _enforcer(env, "remediate", "apply", str(plan), *kafka)
    wrote = re.search(r"wrote ([\d,]+) retractions", first)
    return [
        "\nremediation: the privacy team then decides phone numbers may not build audiences "
        "at all (enforcer remediate, the worker stopped)",
        *(f"  plan: {line}" for line in counts),
        f"  applied: {wrote.group(1) if wrote else '?'} retractions written to "
        f"{TOPICS['sink']} (reason remediated); applied again: "
        f"{'nothing to write' if 'nothing to write' in again else again.strip()}",
        f"  the plan: {shown(plan)}",
    ]


def _enforcer(env: Mapping[str, str], *command: str) -> str:
    """Run ``enforcer COMMAND`` as a user would; its stdout. Raises
    :class:`RemediationError` with its last line when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "enforcer", *command],
        env={k: v for k, v in env.items() if k != "ENFORCER_POLICY_FILE"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RemediationError(f"enforcer {' '.join(command[:2])}: {last}")
    return done.stdout


def _feed(
    args: argparse.Namespace,
    demo: DemoLedger,
    worker: EnforcerWorker,
    group: str,
    port: int,
    policy: Path,
) -> None:
    """Produce the first half, wait until it is committed, send the withdrawals and wait
    until the worker has applied them, fix the policy and wait until the worker has
    reloaded it, then the second half; wait for its commit.

    Waiting for the withdrawals to be applied before the second half is sent keeps the
    numbers the same from run to run: otherwise an event of a withdrawn account could
    be decided before or after its withdrawal, as the worker happened to read them.
    """
    values = demo.events
    print(f"producing {len(values):,} sample identity events to {TOPICS['source']} ...", flush=True)
    half = len(values) // 2
    run_loop(produce(args.bootstrap, TOPICS["source"], values[:half]))
    # The withdrawals come once the first half is decided (and some of it
    # forwarded under the consent then given): that is what must be retracted.
    run_loop(
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
    run_loop(produce_ledger(args.bootstrap, LEDGER_TOPIC, demo.withdrawals))
    wait_for_metric(port, _APPLIED, len(demo.withdrawals), args.timeout, worker)
    print(
        "halfway: the policy is found to let phone numbers given for SMS notifications reach "
        f"audience building; fixing {policy.name} (the worker reloads it and retracts them) ...",
        flush=True,
    )
    staged = policy.with_name(policy.name + ".new")
    staged.write_bytes(default_policy_bytes())
    staged.replace(policy)
    # Re-judged before any event is decided under the fixed policy: the second half can go.
    wait_for_metric(port, _RELOADED, 1, args.timeout, worker)
    run_loop(produce(args.bootstrap, TOPICS["source"], values[half:]))
    run_loop(
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
"""Ledger records committed after the restore."""
_RELOADED = re.compile(r"^enforcer_policy_reloads_total(?:\{[^}]*\})? ([0-9.e+]+)$", re.M)
"""Policy changes the worker switched to."""


def wait_for_metric(
    port: int, metric: re.Pattern[str], at_least: int, timeout_s: float, worker: EnforcerWorker
) -> None:
    """Poll the worker's ``/metrics`` until ``metric`` (its first group the value) is
    ``at_least``."""
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
        found = metric.search(text)
        if found and float(found.group(1)) >= at_least:
            return
        time.sleep(0.2)
    raise TimeoutError(
        f"the worker's metric {metric.pattern} did not reach {at_least} in {timeout_s:.0f} s"
    )


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
