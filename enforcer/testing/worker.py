"""Drive real ``enforcer run`` workers and check, end to end, what they wrote.

The exactly-once tests (docs/contract.md: guarantees) need the enforcer as operators run it: a
separate process that can be stopped, killed with SIGKILL, frozen with SIGSTOP and started again.

- :class:`Deployment`: one enforcer deployment (topics, consumer group, key) and the
  :class:`EnforcerWorker` processes started for it; closing it kills what still runs.
- :func:`mixed_values` and :func:`produce`: input records in which every outcome kind
  occurs, keyed by subject, and where each one landed (:func:`read_inputs` reads them
  back when the producer itself may have met an outage).
- :func:`wait_for_commits`: the group's committed offsets, polled until a target.
- :func:`check_outcomes`: reads sink, violations and dead letters as a
  ``read_committed`` consumer and compares them, record by record, with what the
  decision step says each input must produce: exactly one outcome, no duplicates,
  nothing lost, nothing security-only forwarded, order kept per input partition.
- :func:`aborted_records`: how much output was aborted, i.e. work in flight at a crash.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from enforcer.core.clock import SystemClock
from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, Outcome, OutcomeKind, Source, Step
from enforcer.demo.sample import sample_values, subject_key
from enforcer.ledger.retract import is_retraction
from enforcer.live.engine import ASSIGNED_LOG
from enforcer.testing.consume import ReadRecord, end_offsets, read_committed, read_topic
from enforcer.testing.topics import create_topics, delete_topics, unique_topic_name

# The default policy's security namespaces (docs/contract.md: default policy), spelled out again on
# purpose: the leak check must not trust the policy code it is checking.
SECURITY_NAMESPACES = (
    "security",
    "essential.service.security",
    "essential.service.authentication",
    "essential.fraud_detection",
)

# A worker killed with SIGKILL stays in the group until its session times out: tests
# use the broker's minimum (6 s, ENFORCER_SESSION_TIMEOUT) so that a crash test with
# several kills fits in CI.
FAST_GROUP_ENV = {"ENFORCER_SESSION_TIMEOUT": "6"}

ASSIGNED = ASSIGNED_LOG
COMPACT = {"cleanup.policy": "compact"}
"""The configuration of a compacted topic (a ledger, exposure)."""
"""A worker writes a line with this at every assignment (eager: after each rebalance)."""
ABORTED = "transaction aborted"
"""A worker writes a line with this when Kafka refused a commit and it reads again."""


class WorkerError(RuntimeError):
    """A worker exited when it should not have, or did not exit when told to."""


@dataclass(frozen=True)
class EnforcerTopics:
    """The topic names of one enforcer deployment."""

    source: str
    sink: str
    violations: str
    deadletter: str
    metrics: str

    @classmethod
    def unique(cls, prefix: str) -> EnforcerTopics:
        """Names no other test uses."""
        return cls(*(unique_topic_name(f"{prefix}-{role}") for role in cls.__dataclass_fields__))

    def all(self) -> list[str]:
        """Every topic, source first."""
        return [self.source, self.sink, self.violations, self.deadletter, self.metrics]


class EnforcerWorker:
    """One ``python -m enforcer.cli run`` process; :meth:`start` may be called again
    after it has exited. Its stdout and stderr go to ``<log_dir>/<name>-<run>.log``."""

    def __init__(self, name: str, env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self._env = dict(env)
        self._log_dir = log_dir
        self._process: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.log_path: Path | None = None

    @property
    def pid(self) -> int | None:
        """The running process's id, if one was started."""
        return self._process.pid if self._process else None

    def start(self) -> None:
        """Start the worker process (it must not be running)."""
        if self.running:
            raise WorkerError(f"worker {self.name} is running already")
        self.runs += 1
        self.log_path = self._log_dir / f"{self.name}-{self.runs}.log"
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "enforcer.cli", "run"],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status of the last run, ``None`` while running or never started."""
        return None if self._process is None else self._process.poll()

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM, as an orchestrator would; wait for the exit and return its status.

        A worker that does not stop within ``timeout_s`` is killed and reported.
        """
        process = self._require_process()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise WorkerError(
                f"worker {self.name} ignored SIGTERM for {timeout_s:.0f}s\n{self.log_tail()}"
            ) from None

    def wait_exit(self, timeout_s: float) -> int:
        """Wait for the worker to exit by itself; return its status."""
        try:
            return self._require_process().wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise WorkerError(
                f"worker {self.name} still running after {timeout_s:.0f}s\n{self.log_tail()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean-up of any kind in the worker."""
        process = self._require_process()
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)

    def freeze(self) -> None:
        """SIGSTOP: the process stops dead (a long GC pause, a stalled VM) but lives on."""
        self._require_process().send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`freeze`."""
        self._require_process().send_signal(signal.SIGCONT)

    async def wait_for_new_assignment(self, seen: int, *, timeout_s: float = 60.0) -> int:
        """Wait for an assignment after the first ``seen`` ones of the current run;
        return how many there are now. Take ``seen`` before causing the rebalance."""
        await self.wait_for_log(ASSIGNED, at_least=seen + 1, timeout_s=timeout_s)
        return self.log_count(ASSIGNED, all_runs=False)

    def assigned_now(self) -> int:
        """How many partitions the current run's last assignment gave this worker."""
        if self.log_path is None or not self.log_path.exists():
            return 0
        lines = [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if ASSIGNED in line
        ]
        return lines[-1].count("[") if lines else 0

    def assignments(self) -> int:
        """Assignments of the current run so far."""
        return self.log_count(ASSIGNED, all_runs=False)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the current run's log, for failure messages."""
        if self.log_path is None or not self.log_path.exists():
            return f"[{self.name}: no log]"
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.log_path.name} (last {len(text)} lines)\n" + "\n".join(text)

    async def wait_for_log(
        self, needle: str, *, at_least: int = 1, timeout_s: float = 60.0
    ) -> None:
        """Wait until the current run's log has ``at_least`` lines containing ``needle``;
        raise :class:`WorkerError` if the worker exits first."""
        deadline = time.monotonic() + timeout_s
        while self._count_in(self.log_path, needle) < at_least:
            if not self.running:
                raise WorkerError(
                    f"worker {self.name} exited with status {self.returncode} while waiting "
                    f"for {needle!r}\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"worker {self.name}: no {needle!r} in {timeout_s:.0f}s\n{self.log_tail()}"
                )
            await asyncio.sleep(0.1)

    def log_count(self, needle: str, *, all_runs: bool = True) -> int:
        """How many lines of the logs (of every run, or the current one) contain ``needle``."""
        if not all_runs:
            return self._count_in(self.log_path, needle)
        return sum(
            self._count_in(self._log_dir / f"{self.name}-{run}.log", needle)
            for run in range(1, self.runs + 1)
        )

    @staticmethod
    def _count_in(path: Path | None, needle: str) -> int:
        if path is None or not path.exists():
            return 0
        return sum(needle in line for line in path.read_text(errors="replace").splitlines())

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise WorkerError(f"worker {self.name} was never started")
        return self._process


@dataclass
class Deployment:
    """An enforcer deployment under test: its topics, group, key and workers.

    Use as a context manager (``with Deployment(...) as deployment``) so that every
    worker still running at the end is killed, whatever happened.
    """

    bootstrap: str
    topics: EnforcerTopics
    group_id: str
    fingerprint_key: str
    work_dir: Path
    commit_interval: float = 0.5
    extra_env: Mapping[str, str] = field(default_factory=lambda: dict(FAST_GROUP_ENV))
    workers: list[EnforcerWorker] = field(default_factory=list)

    def worker(self, name: str, env: Mapping[str, str] | None = None) -> EnforcerWorker:
        """A new (not yet started) worker of this deployment (``env``: settings of this
        worker only)."""
        data_dir = self.work_dir / f"{name}-data"
        data_dir.mkdir(parents=True, exist_ok=True)
        # Nothing from the developer's own ENFORCER_* settings may leak into a test.
        settings = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
        settings.update(
            PYTHONUNBUFFERED="1",
            ENFORCER_BOOTSTRAP_SERVERS=self.bootstrap,
            ENFORCER_SOURCE_TOPIC=self.topics.source,
            ENFORCER_SINK_TOPIC=self.topics.sink,
            ENFORCER_VIOLATIONS_TOPIC=self.topics.violations,
            ENFORCER_DEADLETTER_TOPIC=self.topics.deadletter,
            ENFORCER_METRICS_TOPIC=self.topics.metrics,
            ENFORCER_GROUP_ID=self.group_id,
            ENFORCER_INSTANCE_ID=f"{self.group_id}-{name}",
            ENFORCER_FINGERPRINT_KEY=self.fingerprint_key,
            ENFORCER_DATA_DIR=str(data_dir),
            ENFORCER_COMMIT_INTERVAL=str(self.commit_interval),
            # Several workers share this machine: no fixed port for their HTTP side.
            ENFORCER_HTTP_PORT="0",
            ENFORCER_LOG_LEVEL="info",
        )
        settings.update(self.extra_env)  # a test's own settings win
        settings.update(env or {})  # and this worker's, last
        worker = EnforcerWorker(name, settings, self.work_dir)
        self.workers.append(worker)
        return worker

    async def create_topics(self, partitions: int) -> None:
        """Create every topic of the deployment with ``partitions`` partitions."""
        await create_topics(self.bootstrap, self.topics.all(), partitions)

    async def create_topics_named(self, names: Sequence[str], partitions: int) -> None:
        """Create some of the deployment's topics again (after a test deleted them)."""
        await create_topics(self.bootstrap, names, partitions)

    async def delete_topics(self) -> None:
        """Delete the deployment's topics."""
        await delete_topics(self.bootstrap, self.topics.all())

    def close(self) -> None:
        """Kill every worker that still runs."""
        for worker in self.workers:
            if worker.running:
                worker.kill()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@asynccontextmanager
async def co_partitioned_deployment(
    bootstrap: str,
    work_dir: Path,
    prefix: str,
    partitions: int,
    topics: Mapping[str, str],
    *,
    compacted: bool = False,
) -> AsyncIterator[Deployment]:
    """A deployment whose topics are created with ``partitions`` partitions, and beside
    them one topic per setting of ``topics`` (``{"ENFORCER_LEDGER_TOPIC": "purposes"}``:
    a unique name starting with ``{prefix}-purposes``, set for every worker), with the
    same count: a ledger or exposure co-partitioned with the source. An exposure topic
    is compacted (a worker requires it), the others with ``compacted`` only (a ledger
    test may write an unkeyed value, which a compacted topic refuses). Every worker is
    killed and every topic deleted at the end."""
    created = EnforcerTopics.unique(prefix)
    names = {setting: unique_topic_name(f"{prefix}-{kind}") for setting, kind in topics.items()}
    with Deployment(
        bootstrap,
        created,
        f"group-{created.source}",
        generate_key(),
        work_dir,
        extra_env={"ENFORCER_SESSION_TIMEOUT": "6", **names},
    ) as deployment:
        await deployment.create_topics(partitions=partitions)
        for setting, name in names.items():
            compact = compacted or setting == "ENFORCER_EXPOSURE_TOPIC"
            await create_topics(bootstrap, [name], partitions, configs=COMPACT if compact else None)
        try:
            yield deployment
        finally:
            deployment.close()
            await deployment.delete_topics()
            await delete_topics(bootstrap, list(names.values()))


class Progress:
    """Waits for the group's committed offsets to move on by a random step, so each
    change to the group meets work in flight."""

    def __init__(self, deployment: Deployment, rng: random.Random) -> None:
        self._deployment = deployment
        self._rng = rng
        self.committed = 0

    async def more(self, *alive: EnforcerWorker, low: int = 300, high: int = 900) -> int:
        """Wait until ``low``..``high`` more records are committed by the workers in
        ``alive`` (any of them exiting fails), then a random fraction of a second."""
        deployment = self._deployment
        self.committed = await wait_for_commits(
            deployment.bootstrap,
            deployment.group_id,
            deployment.topics.source,
            at_least=self.committed + self._rng.randint(low, high),
            timeout_s=60,
            alive=alive,
        )
        await asyncio.sleep(self._rng.uniform(0, 0.5))
        return self.committed


# --- input ------------------------------------------------------------------------


def mixed_values(count: int, *, seed: int) -> list[bytes]:
    """``count`` sample values in which every outcome kind occurs.

    :func:`enforcer.demo.sample.sample_values` yields passed, redacted and malformed
    (dead-lettered) records but never a dropped one; here every 25th valid record has
    all its identifiers given for security only (dropped), and every 40th one has no
    identifiers at all (passed unchanged). Event ids stay unique.
    """
    values = []
    for index, sample in enumerate(sample_values(count, seed=seed, invalid_share=0.02)):
        value = sample
        if sample.startswith(b'{"event_id":"evt-') and index % 25 == 0:
            event = orjson.loads(sample)
            for identifier in event["identifiers"]:
                identifier["purposes"] = ["security.account_recovery"]
            value = orjson.dumps(event)
        elif sample.startswith(b'{"event_id":"evt-') and index % 40 == 1:
            event = orjson.loads(sample)
            event["identifiers"] = []
            value = orjson.dumps(event)
        values.append(value)
    return values


async def produce(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes],
    *,
    per_second: float | None = None,
    ahead_of: str | None = None,
    window: int = 1_000,
) -> list[InputRecord]:
    """Send ``values`` keyed by subject id (malformed ones unkeyed) and return each
    one as the enforcer will read it, with its partition and offset.

    With ``per_second`` the values trickle in at about that rate, as live traffic
    would, so that workers joining or leaving meet a stream that is still flowing.
    With ``ahead_of`` (a consumer group) they also never run more than about ``window``
    records ahead of what that group has committed: the stream waits for its consumer,
    so a worker that takes long to come back (a killed member's session running out)
    still finds the stream flowing, not a backlog of all of it.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        sent = []
        started = time.monotonic()
        for count, value in enumerate(values):
            if per_second and count % 100 == 0:
                await asyncio.sleep(max(0.0, started + count / per_second - time.monotonic()))
            if ahead_of is not None and count % 100 == 0 and count > window:
                await wait_for_commits(
                    bootstrap, ahead_of, topic, at_least=count - window, timeout_s=300
                )
            key = subject_key(value)
            sent.append((key, value, await producer.send(topic, value=value, key=key)))
        records = []
        for key, value, delivery in sent:
            meta = await delivery
            records.append(InputRecord(key, value, (), Source(topic, meta.partition, meta.offset)))
        return records
    finally:
        await producer.stop()


async def read_inputs(bootstrap: str, topic: str) -> list[InputRecord]:
    """Every record of a (non-transactional) source topic, as the enforcer reads it.

    For tests whose producer may have met an outage: what counts is what landed.
    """
    count = sum((await end_offsets(bootstrap, topic)).values())
    records = await read_topic(
        bootstrap, topic, expected=count, settle_s=0.5, isolation_level="read_uncommitted"
    )
    return [
        InputRecord(r.key, r.value, r.headers, Source(r.topic, r.partition, r.offset))
        for r in records
    ]


def end_offsets_of(records: Iterable[InputRecord]) -> dict[int, int]:
    """Per partition, the offset after the last of ``records``."""
    ends: dict[int, int] = {}
    for record in records:
        partition, offset = record.source.partition, record.source.offset
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    return ends


# --- progress -----------------------------------------------------------------------


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset of each partition of ``topic`` that has one."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()  # inside: a broker being restarted refuses the connection
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {
        tp.partition: meta.offset
        for tp, meta in offsets.items()
        if isinstance(tp, TopicPartition) and tp.topic == topic and meta.offset >= 0
    }


async def wait_for_commits(
    bootstrap: str,
    group: str,
    topic: str,
    *,
    at_least: int | None = None,
    until: Mapping[int, int] | None = None,
    timeout_s: float,
    alive: Sequence[EnforcerWorker] = (),
    poll_s: float = 0.2,
) -> int:
    """Poll the group's committed offsets until their sum reaches ``at_least`` or each
    partition reaches its offset in ``until``; return the sum.

    Raises :class:`WorkerError` as soon as a worker in ``alive`` has exited, and
    :class:`TimeoutError` when the target is not reached in time.
    """
    deadline = time.monotonic() + timeout_s
    offsets: dict[int, int] = {}
    while True:
        for worker in alive:
            if not worker.running:
                raise WorkerError(
                    f"worker {worker.name} exited with status {worker.returncode} while "
                    f"processing\n{worker.log_tail()}"
                )
        try:
            offsets = await committed_offsets(bootstrap, group, topic)
        except Exception:  # a broker being restarted answers nothing for a while
            offsets = offsets or {}
        total = sum(offsets.values())
        if at_least is not None and total >= at_least:
            return total
        if until is not None and all(offsets.get(p, 0) >= o for p, o in until.items()):
            return total
        if time.monotonic() > deadline:
            tails = "\n".join(worker.log_tail() for worker in alive)
            raise TimeoutError(
                f"group {group} committed {offsets} (sum {total}), wanted "
                f"{at_least if until is None else dict(until)} within {timeout_s:.0f}s\n{tails}"
            )
        await asyncio.sleep(poll_s)


# --- the check ----------------------------------------------------------------------


@dataclass
class OutcomeCheck:
    """What the output topics say happened to each input record, against what the
    decision step says must have happened."""

    records: int
    expected: Counter[str] = field(default_factory=Counter)
    observed: Counter[str] = field(default_factory=Counter)
    sink_records: int = 0
    violation_records: int = 0
    deadletter_records: int = 0
    duplicate_event_ids: int = 0
    duplicate_violation_ids: int = 0
    duplicate_deadletters: int = 0
    duplicate_examples: list[str] = field(default_factory=list)
    missing: list[Source] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    out_of_order: int = 0
    retractions: list[ReadRecord] = field(default_factory=list)
    """Retraction records found in the sink (docs/ledger.md)."""

    @property
    def duplicates(self) -> int:
        """Extra copies of an outcome, over all three topics."""
        return self.duplicate_event_ids + self.duplicate_violation_ids + self.duplicate_deadletters

    def problems(self) -> list[str]:
        """Every broken guarantee, one line each (first examples only); empty is good."""
        found = []
        if self.duplicates:
            found.append(
                f"duplicates: {self.duplicate_event_ids} sink event ids, "
                f"{self.duplicate_violation_ids} violation ids, "
                f"{self.duplicate_deadletters} dead-letter sources"
                + f", e.g. {self.duplicate_examples[:3]}"
            )
        if self.missing:
            found.append(f"{len(self.missing)} inputs without outcome, e.g. {self.missing[:3]}")
        for name, items in (
            ("unexpected outputs", self.unexpected),
            ("outcomes differing from the decision step", self.mismatched),
            ("security-only or unpurposed identifiers in the sink", self.leaks),
        ):
            if items:
                found.append(f"{len(items)} {name}, e.g. {items[:3]}")
        if self.out_of_order:
            found.append(f"{self.out_of_order} sink records out of input order")
        if self.observed != self.expected:
            found.append(f"outcome counts {dict(self.observed)} != expected {dict(self.expected)}")
        return found

    def summary(self) -> str:
        """The figures, for the test log."""
        kinds = ", ".join(f"{kind} {self.observed[kind]}" for kind in OutcomeKind)
        return (
            f"records {self.records}; outcomes: {kinds}; output records: sink "
            f"{self.sink_records}, violations {self.violation_records}, dead letters "
            f"{self.deadletter_records}; duplicates {self.duplicates}; missing "
            f"{len(self.missing)}; mismatched {len(self.mismatched)}; unexpected "
            f"{len(self.unexpected)}; leaks {len(self.leaks)}; out of order {self.out_of_order}"
        )


async def check_outcomes(
    bootstrap: str,
    topics: EnforcerTopics,
    inputs: Sequence[InputRecord],
    *,
    fingerprint_key: str,
    timeout_s: float = 60.0,
    step: Step | None = None,
    retractions: int = 0,
    event_id_of: Callable[[bytes | None], object] | None = None,
) -> OutcomeCheck:
    """Read the outputs as a ``read_committed`` consumer and check every input's
    outcome against :class:`enforcer.core.step.Step` (default: the default policy, no
    ledger). ``retractions``: how many retraction records the sink also holds (they
    are collected in :attr:`OutcomeCheck.retractions`, not matched to inputs).
    ``event_id_of`` reads a value's event id, by which sink records are matched to their
    inputs (default: the JSON object's ``event_id``; framed records need their reader)."""
    if step is None:
        fingerprinter = Fingerprinter(key_from_text(fingerprint_key))
        step = Step(load_policy(None), fingerprinter, SystemClock())
    wanted = {record.source: step(record) for record in inputs}
    check = OutcomeCheck(len(inputs))
    check.expected.update(outcome.kind.value for outcome in wanted.values())

    sink, violations, dead = await asyncio.gather(
        *(
            read_committed(bootstrap, topic, expected=expected, timeout_s=timeout_s, settle_s=2.0)
            for topic, expected in (
                (
                    topics.sink,
                    sum(o.forward_value is not None for o in wanted.values()) + retractions,
                ),
                (topics.violations, sum(o.violation is not None for o in wanted.values())),
                (
                    topics.deadletter,
                    sum(o.kind is OutcomeKind.DEADLETTERED for o in wanted.values()),
                ),
            )
        )
    )
    check.sink_records, check.violation_records = len(sink), len(violations)
    check.deadletter_records = len(dead)
    found = _match(check, wanted, sink, violations, dead, event_id_of or _json_event_id)
    check.duplicate_examples = _duplicate_examples(found)
    for source, outcome in wanted.items():
        _compare(check, source, outcome, found.get(source, _Found()))
    check.out_of_order = _out_of_order(sink, found)
    check.leaks = [leak for record in sink for leak in _leaks(record)]
    return check


async def aborted_records(bootstrap: str, topic: str, committed: int) -> int:
    """How many records of ``topic`` belong to aborted (or still open) transactions:
    the work a killed or fenced worker had in flight, and that was done again.

    ``committed`` is the number a ``read_committed`` consumer sees.
    """
    everything = await read_topic(
        bootstrap,
        topic,
        expected=committed + 1,
        timeout_s=5.0,
        settle_s=1.0,
        isolation_level="read_uncommitted",
    )
    return len(everything) - committed


@dataclass
class _Found:
    sink: list[ReadRecord] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    dead: list[ReadRecord] = field(default_factory=list)


def _match(
    check: OutcomeCheck,
    wanted: Mapping[Source, Outcome],
    sink: Sequence[ReadRecord],
    violations: Sequence[ReadRecord],
    dead: Sequence[ReadRecord],
    event_id_of: Callable[[bytes | None], object],
) -> dict[Source, _Found]:
    """Map every output record back to the input it came from."""
    by_event_id = {}
    for source, outcome in wanted.items():
        event_id = event_id_of(outcome.record.value)
        if isinstance(event_id, str) and outcome.kind is not OutcomeKind.DEADLETTERED:
            by_event_id[event_id] = source
    found: defaultdict[Source, _Found] = defaultdict(_Found)
    event_ids: Counter[str] = Counter()
    check.retractions = [r for r in sink if is_retraction(r.headers)]
    for record in (r for r in sink if not is_retraction(r.headers)):
        event_id = event_id_of(record.value)
        event_ids[str(event_id)] += 1
        if event_id in by_event_id:
            found[by_event_id[event_id]].sink.append(record)
        else:
            check.unexpected.append(f"sink {record.partition}@{record.offset}: event {event_id}")
    violation_ids: Counter[str] = Counter()
    for record in violations:
        event = _json(record.value)
        violation_ids[str(event.get("violation_id"))] += 1
        where = event.get("source") or {}
        source = Source(
            str(where.get("topic")), where.get("partition", -1), where.get("offset", -1)
        )
        if source in wanted:
            found[source].violations.append(event)
        else:
            check.unexpected.append(f"violation {record.partition}@{record.offset}: {source}")
    coordinates: Counter[Source] = Counter()
    for record in dead:
        headers = {name: value.decode() for name, value in record.headers}
        try:
            source = Source(
                headers["enforcer.source.topic"],
                int(headers["enforcer.source.partition"]),
                int(headers["enforcer.source.offset"]),
            )
        except (KeyError, ValueError):
            check.unexpected.append(f"dead letter {record.partition}@{record.offset}: no source")
            continue
        coordinates[source] += 1
        if source in wanted:
            found[source].dead.append(record)
        else:
            check.unexpected.append(f"dead letter {record.partition}@{record.offset}: {source}")
    check.duplicate_event_ids = sum(n - 1 for n in event_ids.values())
    check.duplicate_violation_ids = sum(n - 1 for n in violation_ids.values())
    check.duplicate_deadletters = sum(n - 1 for n in coordinates.values())
    return dict(found)


def _json_event_id(value: bytes | None) -> object:
    return _json(value).get("event_id")


def _duplicate_examples(found: Mapping[Source, _Found]) -> list[str]:
    """Inputs with more than one copy of an output, and where each copy is."""
    examples = []
    for source, got in sorted(found.items()):
        if len(got.sink) > 1 or len(got.dead) > 1 or len(got.violations) > 1:
            copies = [f"sink {r.partition}@{r.offset}" for r in got.sink]
            copies += [f"dead letter {r.partition}@{r.offset}" for r in got.dead]
            copies += [f"violation {v.get('violation_id')}" for v in got.violations]
            examples.append(f"input {source.partition}@{source.offset}: {', '.join(copies)}")
    return examples


def _compare(check: OutcomeCheck, source: Source, want: Outcome, got: _Found) -> None:
    """Record the observed kind of ``source``'s outcome and any difference from ``want``
    (extra copies of the same output are counted as duplicates, not here)."""
    if not (got.sink or got.violations or got.dead):
        check.missing.append(source)
        return
    if got.dead:
        kind = OutcomeKind.DEADLETTERED.value
    elif got.sink:
        kind = dict(got.sink[0].headers).get("enforcer.action", b"?").decode()
    else:
        kind = str(got.violations[0].get("action"))
    check.observed[kind] += 1
    record = want.record
    outputs: dict[str, tuple[set[Any], set[Any]]] = {
        "sink record": (
            set()
            if want.forward_value is None
            else {(record.key, want.forward_value, want.forward_headers)},
            {(r.key, r.value, r.headers) for r in got.sink},
        ),
        "violation": (
            set() if want.violation is None else {_comparable(want.violation)},
            {_comparable(v) for v in got.violations},
        ),
        "dead letter": (
            set()
            if want.kind is not OutcomeKind.DEADLETTERED
            else {(record.key, record.value, want.dead_letter_headers())},
            {(r.key, r.value, r.headers) for r in got.dead},
        ),
    }
    for name, (wanted, seen) in outputs.items():
        if wanted != seen:
            problem = "missing" if not seen else "unexpected" if not wanted else "differs"
            check.mismatched.append(
                f"{source.partition}@{source.offset}: {name} {problem} (want {want.kind})"
            )


def _out_of_order(sink: Sequence[ReadRecord], found: Mapping[Source, _Found]) -> int:
    """Sink records whose input came before the previous one of its input partition in the same sink
    partition (docs/contract.md: forwarded record; order is kept per input partition)."""
    source_of = {(r.partition, r.offset): source for source, got in found.items() for r in got.sink}
    last: dict[tuple[int, int], int] = {}
    wrong = 0
    for record in sorted(sink, key=lambda r: (r.partition, r.offset)):
        source = source_of.get((record.partition, record.offset))
        if source is None:
            continue
        lane = (record.partition, source.partition)
        if source.offset <= last.get(lane, -1):
            wrong += 1
        last[lane] = source.offset
    return wrong


def _leaks(record: ReadRecord) -> list[str]:
    """Identifiers in a forwarded record that the default policy must never let through."""
    leaks = []
    for index, identifier in enumerate(_json(record.value).get("identifiers") or []):
        purposes = [str(p).strip().lower() for p in identifier.get("purposes") or []]
        security_only = all(
            any(p == ns or p.startswith(ns + ".") for ns in SECURITY_NAMESPACES) for p in purposes
        )
        if not purposes or security_only:
            leaks.append(f"sink {record.partition}@{record.offset} identifier {index}: {purposes}")
    return leaks


def _comparable(violation: Mapping[str, Any]) -> bytes:
    """A violation event without its detection time, in a form sets can hold."""
    rest = {k: v for k, v in violation.items() if k != "detected_at"}
    return orjson.dumps(rest, option=orjson.OPT_SORT_KEYS)


def _json(value: bytes | None) -> dict[str, Any]:
    try:
        document = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}


def random_thresholds(
    rng: random.Random, total: int, count: int, *, low: float, high: float
) -> list[int]:
    """``count`` increasing offsets between ``low`` and ``high`` shares of ``total``."""
    return sorted(rng.randint(int(total * low), int(total * high)) for _ in range(count))


async def kill_at_random_commits(
    deployment: Deployment,
    worker: EnforcerWorker,
    rng: random.Random,
    *,
    records: int,
    kills: int,
    gap: tuple[int, int],
) -> list[int]:
    """Start ``worker`` (again) and kill it with SIGKILL ``kills`` times, each once the
    group has committed past a random share (10% to 50%) of ``records`` source records
    and at least ``gap`` (a random count in that range) past the last kill, a random
    moment (under 0.6 s) later; returns the committed offsets reached before each kill.

    The source must be produced :func:`produce` ``ahead_of`` the group (a window of
    about a second of it), so that no commit jumps far past a threshold: three kills'
    thresholds and gaps then stay below the last record."""
    kill_points: list[int] = []
    for threshold in random_thresholds(rng, records, kills, low=0.1, high=0.5):
        if not worker.running:
            worker.start()
        since_restart = (kill_points or [0])[-1] + rng.randint(*gap)
        reached = await wait_for_commits(
            deployment.bootstrap,
            deployment.group_id,
            deployment.topics.source,
            at_least=max(threshold, since_restart),
            timeout_s=90,
            alive=[worker],
        )
        await asyncio.sleep(rng.uniform(0, 0.6))
        assert worker.running, worker.log_tail()
        worker.kill()
        kill_points.append(reached)
    return kill_points


async def finish_after_kills(
    deployment: Deployment,
    worker: EnforcerWorker,
    inputs: Sequence[InputRecord],
    *,
    ledger: str,
    ledger_records: int,
) -> None:
    """Start ``worker`` once more (unless it runs already) and stop it cleanly once the
    group has committed every one of ``inputs`` and at least ``ledger_records`` of the
    ledger topic."""
    if not worker.running:
        worker.start()
    # Up before it is stopped (the last run may find everything committed).
    await worker.wait_for_log(ASSIGNED)
    await wait_for_commits(
        deployment.bootstrap,
        deployment.group_id,
        deployment.topics.source,
        until=end_offsets_of(inputs),
        timeout_s=120,
        alive=[worker],
    )
    await wait_for_commits(
        deployment.bootstrap,
        deployment.group_id,
        ledger,
        at_least=ledger_records,
        timeout_s=60,
        alive=[worker],
    )
    assert worker.stop() == 0, worker.log_tail()


async def decided(
    deployment: Deployment,
    worker: EnforcerWorker,
    values: Sequence[bytes],
    before: Sequence[InputRecord] = (),
) -> list[InputRecord]:
    """Produce ``values`` to the deployment's source and wait until the group (``worker``
    running) has committed them and ``before``; returns ``before`` and the new inputs."""
    inputs = [*before, *await produce(deployment.bootstrap, deployment.topics.source, values)]
    await wait_for_commits(
        deployment.bootstrap,
        deployment.group_id,
        deployment.topics.source,
        until=end_offsets_of(inputs),
        timeout_s=90,
        alive=[worker],
    )
    return inputs
