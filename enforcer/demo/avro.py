"""``python -m enforcer.demo --format avro``: the demo on a topic in a team's own shape.

The same 2019 story as the default run, told the way most identity topics carry it:
account events in Avro, framed by a schema registry (the Confluent wire format), with
fields of their own instead of an ``identifiers[]`` list, the identifier fields tagged
in the schema (:mod:`enforcer.demo.formats_sample`). The demo starts a local schema
registry (Apicurio Registry, through :class:`enforcer.testing.schema_registry.LocalSchemaRegistry`
in the demo's state dir; fetched from Maven Central the first time), or uses the one
``--schema-registry-url`` names; registers the sample schema as
``identity.accounts-value``; produces the framed events (and a few a producer got
wrong: a schema id the registry does not hold, a body cut short), keyed by account;
runs ``enforcer run`` as a worker with ``policies/formats.yaml`` and the registry; waits
until every record is committed; and prints what happened to each, whether a number
given for two-factor authentication reached audience building, and whether what was
forwarded still reads as Avro under its schema id. The report is ``enforcer replay``
over the same topic with the same registry. The registry it started is stopped at the
end, whatever happens. The next commands need neither broker nor registry: they work on
the same events written as plain JSON, which the policy's plain-JSON mapping reads.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import random
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import fastavro
import orjson
from aiokafka import AIOKafkaProducer

from enforcer.demo.deployment import (
    OUTPUT_TOPICS,
    fresh_topics,
    made_key,
    state_dir,
    worker_environment,
)
from enforcer.demo.formats_sample import FramedSample, sample_contacts
from enforcer.demo.loop import run as run_loop
from enforcer.demo.next_steps import (
    enforcer_program,
    key_flag,
    policies_dir,
    run_replay,
    shown,
    write_key,
)
from enforcer.demo.summary import ReadBack, outcome_lines, read_back, rule_meanings
from enforcer.formats.framing import frame, schema_id_of
from enforcer.formats.registry import RegistrySettings, RegistryUnavailableError, SchemaRegistry
from enforcer.testing.kafka_broker import free_port
from enforcer.testing.schema_registry import LocalSchemaRegistry, SchemaRegistryError
from enforcer.testing.worker import EnforcerWorker, WorkerError, wait_for_commits

SOURCE_TOPIC = "identity.accounts"
"""The source topic: the one ``policies/formats.yaml``'s plain-JSON mapping names too."""
TOPICS = {"source": SOURCE_TOPIC, **OUTPUT_TOPICS}
SUBJECT = f"{SOURCE_TOPIC}-value"
"""The subject the sample schema is registered under (the topic-name strategy)."""
POLICY = Path(__file__).resolve().parents[2] / "policies" / "formats.yaml"
UNREGISTERED_SCHEMA_ID = 987_653
"""The schema id of the records whose producer framed them with a schema the registry
does not hold (nobody registers this many schemas in a demo)."""
BROKEN_SHARE = 0.01
"""About this share of the records a producer got wrong: half with a schema id the
registry does not have, half with a body cut short."""
SECURITY_FIELDS = {
    "two_factor_phone": "two-factor phone numbers",
    "recovery_email": "recovery emails",
}
"""The fields the sample's schema tags as given only to secure the account."""
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class AvroRecords:
    """What the demo produces, in the order sent."""

    values: list[tuple[bytes, bytes]]
    """(key, value) pairs: the account id, the framed value."""
    events: list[dict[str, Any]]
    """The sample events framed as produced, as plain values (the broken ones left out)."""
    broken: dict[str, int]
    """How many records were framed wrong, by the dead-letter reason they earn."""


def avro_records(
    contacts: Sequence[dict[str, Any]], encode: Callable[[dict[str, Any]], bytes], seed: int
) -> AvroRecords:
    """Frame each contact with ``encode``; about :data:`BROKEN_SHARE` of them are framed
    wrong instead (deterministic for ``seed``): under a schema id nobody registered
    (``unknown-schema``), or with the body cut in half (``undecodable``: every field of
    the sample's schema takes at least one byte, so half a body always ends too soon)."""
    rng = random.Random(f"broken-{seed}")  # noqa: S311 - sample data, not secrets
    values: list[tuple[bytes, bytes]] = []
    events: list[dict[str, Any]] = []
    broken = {"unknown-schema": 0, "undecodable": 0}
    for contact in contacts:
        value, draw = encode(contact), rng.random()
        if draw < BROKEN_SHARE / 2:
            value = frame(UNREGISTERED_SCHEMA_ID, value[5:])
            broken["unknown-schema"] += 1
        elif draw < BROKEN_SHARE:
            value = value[: 5 + (len(value) - 5) // 2]
            broken["undecodable"] += 1
        else:
            events.append(contact)
        values.append((contact["account_id"].encode(), value))
    return AvroRecords(values, events, broken)


class ReadAsAvro:
    """Forwarded values read as any Avro consumer reads them: the writer's schema fetched
    from the registry by the frame's schema id, the body decoded by fastavro (not by the
    enforcer's own codec)."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self._registry = registry
        self._schemas: dict[int, Any] = {}

    def __call__(self, value: bytes | None) -> dict[str, Any] | None:
        """The record, or ``None`` when the value is not framed or does not decode."""
        schema_id = schema_id_of(value)
        if value is None or schema_id is None:
            return None
        if schema_id not in self._schemas:
            registered = self._registry.schema_by_id(schema_id)
            if registered is None:
                return None
            self._schemas[schema_id] = fastavro.parse_schema(json.loads(registered.text))
        try:
            record = fastavro.schemaless_reader(
                io.BytesIO(value[5:]), self._schemas[schema_id], None
            )
        except (EOFError, ValueError, IndexError, UnicodeDecodeError):
            return None
        return record if isinstance(record, dict) else None


def story_lines(
    read: ReadBack,
    records: AvroRecords,
    forwarded: Sequence[dict[str, Any] | None],
    schema_ids: set[int | None],
) -> list[str]:
    """The 2019 case in this topic's fields: how many numbers and emails given only to
    secure an account came in, how many the rules stopped and how many reached audience
    building; what was dead-lettered for a producer's framing; whether the forwarded
    records are framed as they came and read as Avro."""
    lines = [
        f"the 2019 case, in the topic's own fields ({SOURCE_TOPIC}: Avro, identifiers "
        "tagged in the schema):"
    ]
    for field, what in SECURITY_FIELDS.items():
        given = sum(1 for event in records.events if event[field] is not None)
        reached = sum(1 for record in forwarded if record is not None and record.get(field))
        lines.append(
            f"  {what} ({field}): {given:,} given for security only, "
            f"{reached:,} reached audience building"
        )
    readable = sum(1 for record in forwarded if record is not None)
    ids = ", ".join(str(i) for i in sorted(i for i in schema_ids if i is not None)) or "none"
    framed = "every one" if None not in schema_ids else "not every one"
    lines += [
        f"  wrongly framed by their producer: {sum(records.broken.values()):,}   "
        f"{dict(sorted(records.broken.items()))}: dead letters, never forwarded",
        f"forwarded:        {len(forwarded):>7,}   {framed} framed with the schema id it came "
        f"with ({ids}); {readable:,} read back as Avro with the registry's schema for "
        "that id, as any Avro consumer reads them",
    ]
    return lines


@dataclass(frozen=True)
class AvroFiles:
    """What the Avro variant leaves for the next commands."""

    events: Path
    """The same events as plain JSON, one a line, in a file named after the source topic:
    ``replay`` and ``explain`` take a file's name for its records' topic, so the policy's
    plain-JSON mapping (``topics: [identity.accounts]``) reads them."""
    report_dir: Path
    """Where ``enforcer replay`` over the source topic wrote ``report.html``."""
    key: Path | None
    """The demo's fingerprint key, when the demo made it."""
    explain_line: int
    """The line of the first event with a number given for two-factor authentication."""

    @property
    def report(self) -> Path:
        return self.report_dir / "report.html"


def write_events(out: Path, records: AvroRecords, key: str | None) -> AvroFiles:
    """Write the events as plain JSON and, when given, the key under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    line = first_security_only_line(records)
    files = AvroFiles(out / SOURCE_TOPIC, out / "report", write_key(out, key), line)
    files.events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in records.events))
    return files


def first_security_only_line(records: AvroRecords) -> int:
    """The line of the first event with a number given for two-factor authentication
    beside a contact email given for advertising (the record is redacted: the number
    goes, the email stays), else of the first with such a number at all."""
    with_phone = [n for n, e in enumerate(records.events) if e["two_factor_phone"] is not None]
    for line in with_phone:
        purposes = records.events[line]["contact_email_purposes"]
        if any(p.startswith("marketing.advertising") for p in purposes):
            return line
    return with_phone[0] if with_phone else 0


def avro_next_commands(files: AvroFiles) -> list[str]:
    """Three commands that carry on without a broker or a registry: the same events as
    plain JSON, read by the policy's mapping for them."""
    enforcer, events = enforcer_program(), shown(files.events)
    policy = f"{policies_dir()}/formats.yaml"
    key = " ".join(key_flag(files.key))
    return [
        f"{enforcer} explain {events} --line {files.explain_line} --policy {policy}",
        f"{enforcer} replay --from-file {events} --policy {policy} "
        f"--out {shown(files.report_dir.with_name('report-json'))}" + (f" {key}" if key else ""),
        f"{enforcer} policy check {policy}",
    ]


class DemoFailedError(Exception):
    """The demo could not go on: the message is one line for the user; ``status`` the
    exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class RegistryProcess(Protocol):
    """What the demo asks of the registry it starts (:class:`LocalSchemaRegistry`)."""

    @property
    def log_path(self) -> Path: ...

    def start(self) -> str: ...

    def stop(self) -> None: ...


@contextmanager
def schema_registry(
    url: str | None,
    where: Path,
    make: Callable[[Path], RegistryProcess] = LocalSchemaRegistry,
) -> Iterator[str]:
    """The registry's URL: ``url`` when the user gave one, else that of a local registry
    (``make(where)``) started for the block and stopped when it ends, whatever ends it."""
    if url is not None:
        yield url
        return
    registry = make(where)
    print(
        "starting a local schema registry (Apicurio Registry; the first time it is fetched "
        "from Maven Central, about 160 MB) ...",
        flush=True,
    )
    try:
        try:
            started = registry.start()
        except SchemaRegistryError as exc:
            first = str(exc).splitlines()[0]
            raise DemoFailedError(
                f"the schema registry did not start: {first}; its log: {registry.log_path}"
            ) from None
        print(f"schema registry at {started} (log: {registry.log_path})", flush=True)
        yield started
    finally:
        try:
            registry.stop()
        except SchemaRegistryError as exc:
            print(f"the schema registry did not stop: {str(exc).splitlines()[0]}", file=sys.stderr)
        else:
            print("stopped the schema registry", flush=True)


def interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the run as Ctrl-C does: the interrupt unwinds the with-blocks, which
    stop the worker and the registry."""
    # Inside asyncio.run the SIGINT handler is asyncio's, which cancels its task
    # cleanly (an exception raised in the middle of the loop would leave its tasks
    # half-done); elsewhere it is Python's, which raises KeyboardInterrupt.
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt


def run_avro(args: argparse.Namespace) -> int:
    """Run the Avro variant; return its exit status."""
    if not POLICY.is_file():
        print(
            f"{POLICY} not found: the Avro demo runs from the project's checkout", file=sys.stderr
        )
        return EXIT_USAGE
    previous = signal.signal(signal.SIGTERM, interrupt)
    state = state_dir()
    try:
        with schema_registry(args.schema_registry_url, state / "registry") as url:
            files = _run_with_registry(args, url, state)
    except DemoFailedError as exc:
        print(exc, file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("the demo was interrupted; what it started is stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(
        f"\nreport: {shown(files.report)}\n  enforcer replay over {SOURCE_TOPIC} with the same "
        "policy and registry, which decides every record as the live run did"
    )
    print(
        f"events: {shown(files.events)} (the same events as plain JSON, in a file named "
        "after the topic: the policy's plain-JSON mapping reads them)"
    )
    print("\nnext, try:")
    for command in avro_next_commands(files):
        print(f"  {command}")
    return 0


def _run_with_registry(args: argparse.Namespace, url: str, state: Path) -> AvroFiles:
    """Register, produce, run the worker, summarize and write the report; raises
    :class:`DemoFailedError` when something stops it."""
    given = args.schema_registry_url is not None
    try:
        registry = SchemaRegistry(RegistrySettings(url))
        sample = FramedSample("avro", registry, SUBJECT)
    except (ValueError, RegistryUnavailableError) as exc:
        raise DemoFailedError(str(exc), EXIT_USAGE if given else 1) from None
    print(f"registered the sample's Avro schema as {SUBJECT} (schema id {sample.schema_id})")
    records = avro_records(
        list(sample_contacts(args.records, seed=args.seed)), sample.encode, args.seed
    )
    group = f"enforcer-demo-avro-{os.getpid()}"
    env = worker_environment(args.bootstrap, group, free_port())
    env["ENFORCER_POLICY_FILE"] = str(POLICY)
    env["ENFORCER_SCHEMA_REGISTRY_URL"] = url
    env["ENFORCER_SOURCE_TOPIC"] = SOURCE_TOPIC
    run_loop(fresh_topics(args.bootstrap, list(TOPICS.values()), partitions=3))
    worker = EnforcerWorker("enforcer-demo-avro", env, state)
    worker.start()
    print(
        f"started the enforcer (group {group}, policy {shown(POLICY)}) on {args.bootstrap}; "
        f"its log: {worker.log_path}",
        flush=True,
    )
    try:
        print(
            f"producing {len(records.values):,} Avro account events to {SOURCE_TOPIC} ...",
            flush=True,
        )
        run_loop(produce_keyed(args.bootstrap, SOURCE_TOPIC, records.values))
        run_loop(
            wait_for_commits(
                args.bootstrap,
                group,
                SOURCE_TOPIC,
                at_least=len(records.values),
                timeout_s=args.timeout,
                alive=[worker],
            )
        )
    except (TimeoutError, WorkerError):
        raise DemoFailedError(
            f"the enforcer did not commit all {len(records.values):,} records in "
            f"{args.timeout:.0f} s; its log: {worker.log_path}"
        ) from None
    finally:
        if worker.running:
            worker.stop()
    print(f"the enforcer stopped (exit status {worker.returncode}); its log: {worker.log_path}")
    print("\nwhat the enforcer did (read back from the output topics, read_committed):")
    read = read_back(args.bootstrap, TOPICS, len(records.values))
    read_as_avro = ReadAsAvro(registry)
    forwarded = [read_as_avro(r.value) for r in read.sink]
    lines = outcome_lines(read, len(records.values), rule_meanings(POLICY))
    lines += story_lines(read, records, forwarded, {schema_id_of(r.value) for r in read.sink})
    print("\n".join(lines), flush=True)
    files = write_events(state / "out-avro", records, made_key(env))
    problem = run_replay(
        [
            "--topic",
            SOURCE_TOPIC,
            "--bootstrap-servers",
            args.bootstrap,
            "--schema-registry-url",
            url,
            "--policy",
            str(POLICY),
            "--out",
            str(files.report_dir),
        ],
        env,
        files.key,
    )
    if problem is not None:
        raise DemoFailedError(f"the report could not be written: {problem}")
    return files


async def produce_keyed(bootstrap: str, topic: str, values: Sequence[tuple[bytes, bytes]]) -> None:
    """Send each (key, value), idempotently, and wait until every one is written."""
    # Just-made topics may still be electing their leaders: aiokafka retries and says
    # so on stderr, which would read as a problem in the demo's output.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        sent = [await producer.send(topic, value=value, key=key) for key, value in values]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
