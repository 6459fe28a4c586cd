"""The pipelines under test, each a process of its own.

Own processes so that ``/proc/<pid>/stat`` counts the pipeline's CPU alone. The
enforcer runs as operators run it, ``python -m enforcer.cli run``, through
:class:`enforcer.testing.worker.Deployment`; the other pipelines are modules of this
package, started the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from enforcer.core.fingerprint import generate_key
from enforcer.testing.worker import FAST_GROUP_ENV, Deployment, EnforcerTopics

REPO_ROOT = Path(__file__).resolve().parents[2]
PEERS_PYTHON = REPO_ROOT / ".venv-peers" / "bin" / "python"
"""quixstreams and bytewax pin their own Kafka client: they run from
bench/setup-peers.sh's venv."""

CONFLUENT = "raw-confluent"
RAW = "raw-aiokafka"
CONFLUENT_STEP = "confluent-step"
QUIX_STEP = "quix-step"
BYTEWAX_STEP = "bytewax-step"
"""bytewax with its Kafka connector: no delivery guarantee (see :mod:`.bytewax_step`)."""
ENFORCER = "enforcer"
ENFORCER_LEDGER = "enforcer-ledger"
"""The enforcer with a purpose ledger topic (``ENFORCER_LEDGER_TOPIC``): the ledger
decides every identifier (authoritative), each one looked up."""
ENFORCER_EXPOSURE = "enforcer-exposure"
"""The enforcer keeping exposure (``ENFORCER_EXPOSURE_TOPIC``): every forwarded
identifier recorded, a subject's value written when it changes."""
ENFORCER_STEADY = "enforcer-steady"
"""The enforcer without exposure on the steady-state stream: each account's identifiers
stable (:mod:`.steady`), the baseline of the next row."""
ENFORCER_EXPOSURE_STEADY = "enforcer-exposure-steady"
"""The enforcer keeping exposure on the steady-state stream, its exposure topic already
holding what the stream's subjects were forwarded before (:mod:`.steady`)."""
EXPOSURE_PIPELINES = (ENFORCER_EXPOSURE, ENFORCER_EXPOSURE_STEADY)
"""The rows with an exposure topic."""
STEADY_PIPELINES = (ENFORCER_STEADY, ENFORCER_EXPOSURE_STEADY)
"""The rows that drain the steady-state stream."""
ENFORCER_CONTACTS = "enforcer-contacts"
"""The enforcer with ``policies/formats.yaml`` and a schema registry, on the account
events of ``enforcer sample --format`` written as identity events (:mod:`.formats`)."""
ENFORCER_AVRO = "enforcer-avro"
"""The same, on the same account events framed in Avro (the Confluent wire format)."""
FORMAT_PIPELINES = (ENFORCER_CONTACTS, ENFORCER_AVRO)
PIPELINES = (
    CONFLUENT,
    RAW,
    CONFLUENT_STEP,
    QUIX_STEP,
    BYTEWAX_STEP,
    ENFORCER,
    ENFORCER_LEDGER,
    ENFORCER_EXPOSURE,
    *STEADY_PIPELINES,
    *FORMAT_PIPELINES,
)
DIAGNOSTIC_PIPELINES: tuple[str, ...] = ()
DECIDING_PIPELINES = (
    CONFLUENT_STEP,
    QUIX_STEP,
    BYTEWAX_STEP,
    ENFORCER,
    ENFORCER_LEDGER,
    ENFORCER_EXPOSURE,
    *STEADY_PIPELINES,
    *FORMAT_PIPELINES,
)
"""These run the decision, so the records it drops never reach the sink."""
NO_GUARANTEE = (BYTEWAX_STEP,)
"""These run the same way whatever guarantee is asked for."""
ENFORCERS = (
    ENFORCER,
    ENFORCER_LEDGER,
    ENFORCER_EXPOSURE,
    *STEADY_PIPELINES,
    *FORMAT_PIPELINES,
)
"""``enforcer run`` itself."""
GUARANTEES = ("at_least_once", "exactly_once")


@dataclass(frozen=True)
class PipelineConfig:
    """One measured configuration: which pipeline, which guarantee, how often it commits."""

    pipeline: str
    guarantee: str
    commit_interval: float

    @property
    def slug(self) -> str:
        """A short name for topics, groups and log files."""
        short = "eos" if self.guarantee == "exactly_once" else "alo"
        return f"{self.pipeline}-{short}-{round(self.commit_interval * 1000)}ms"


@dataclass(frozen=True)
class Batching:
    """``take_events`` / ``getmany`` batch size and wait, the same for every pipeline."""

    max_records: int = 500
    within_s: float = 0.1


class Pipeline(Protocol):
    """A started pipeline process (:class:`PipelineProcess` or an ``EnforcerWorker``)."""

    @property
    def pid(self) -> int | None:
        """The process id."""

    @property
    def running(self) -> bool:
        """Whether it has not exited."""

    @property
    def log_path(self) -> Path | None:
        """Its log file (once started)."""

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM; wait; return the exit status."""

    def kill(self) -> None:
        """SIGKILL."""

    def log_tail(self, lines: int = 30) -> str:
        """The end of its log."""


class PipelineProcess:
    """``python -m <module> <args>`` with its output in ``log_path``."""

    def __init__(
        self,
        module: str,
        args: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        python: str = sys.executable,
    ) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [python, "-m", module, *args],
                cwd=REPO_ROOT,
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int | None:
        """The process id."""
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether it has not exited."""
        return self._process.poll() is None

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM; wait up to ``timeout_s`` (then SIGKILL); return the exit status."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        try:
            return self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(
                f"{self.log_path.stem} ignored SIGTERM for {timeout_s:.0f}s"
            ) from None

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(timeout=30)

    def log_tail(self, lines: int = 30) -> str:
        """The end of its log, for failure messages."""
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.log_path.name}\n" + "\n".join(text)


def start_pipeline(
    config: PipelineConfig,
    *,
    bootstrap: str,
    topics: EnforcerTopics,
    group: str,
    work_dir: Path,
    batching: Batching,
    ledger_topic: str | None = None,
    enforcer_env: Mapping[str, str] | None = None,
    exposure_topic: str | None = None,
    fingerprint_key: str | None = None,
) -> Pipeline:
    """Start ``config``'s pipeline from ``topics.source`` to ``topics.sink`` (the
    enforcer reading the purpose ledger ``ledger_topic`` when given, keeping exposure in
    ``exposure_topic`` when given, with ``fingerprint_key`` (default: a new one), with
    the settings ``enforcer_env`` added)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    if config.pipeline in ENFORCERS:
        if (config.pipeline == ENFORCER_LEDGER) != (ledger_topic is not None):
            raise ValueError(f"{config.pipeline} with ledger topic {ledger_topic!r}")
        if (config.pipeline in EXPOSURE_PIPELINES) != (exposure_topic is not None):
            raise ValueError(f"{config.pipeline} with exposure topic {exposure_topic!r}")
        deployment = Deployment(
            bootstrap,
            topics,
            group,
            fingerprint_key=fingerprint_key or generate_key(),
            work_dir=work_dir,
            commit_interval=config.commit_interval,
            extra_env={
                **FAST_GROUP_ENV,
                "ENFORCER_PROCESSING_GUARANTEE": config.guarantee,
                "ENFORCER_BATCH_MAX": str(batching.max_records),
                "ENFORCER_BATCH_WITHIN": str(batching.within_s),
                **({"ENFORCER_LEDGER_TOPIC": ledger_topic} if ledger_topic else {}),
                **({"ENFORCER_EXPOSURE_TOPIC": exposure_topic} if exposure_topic else {}),
                **(enforcer_env or {}),
            },
        )
        worker = deployment.worker(config.slug)
        worker.start()
        return worker
    python = sys.executable
    args = [
        f"--bootstrap={bootstrap}",
        f"--source={topics.source}",
        f"--sink={topics.sink}",
        f"--group={group}",
        f"--guarantee={config.guarantee}",
        f"--commit-interval={config.commit_interval}",
        f"--batch-max={batching.max_records}",
        f"--batch-within={batching.within_s}",
    ]
    if config.pipeline == RAW:
        module = "bench.pipeline.raw_passthrough"
    elif config.pipeline in (CONFLUENT, CONFLUENT_STEP):
        module = "bench.pipeline.confluent_passthrough"
        if config.pipeline == CONFLUENT_STEP:
            args.append("--step")
    elif config.pipeline == QUIX_STEP:
        module = "bench.pipeline.quix_step"
        python = str(PEERS_PYTHON)
    elif config.pipeline == BYTEWAX_STEP:
        module = "bench.pipeline.bytewax_step"
        python = str(PEERS_PYTHON)
    else:
        raise ValueError(f"unknown pipeline {config.pipeline!r}; known: {', '.join(PIPELINES)}")
    if config.pipeline in DECIDING_PIPELINES:
        args += [f"--violations={topics.violations}", f"--deadletter={topics.deadletter}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    env.update(FAST_GROUP_ENV, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return PipelineProcess(module, args, env, work_dir / f"{config.slug}.log", python)
