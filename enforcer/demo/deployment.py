"""What every variant of the demo sets up the same way: its output topics (made anew
each run), where its state lives, and the environment of its ``enforcer run`` worker."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from enforcer.core.fingerprint import generate_key
from enforcer.testing.topics import create_topics, delete_topics

OUTPUT_TOPICS = {
    "sink": "audience.building",
    "violations": "enforcer.violations",
    "deadletter": "enforcer.deadletter",
    "metrics": "enforcer.metrics",
}
"""The enforcer's default output topics (docs/contract.md), which the demo reads back."""


async def fresh_topics(
    bootstrap: str, topics: Sequence[str], partitions: int, compacted: Sequence[str] = ()
) -> None:
    """Delete ``topics`` and ``compacted`` if a previous run left them, and create them
    anew (``compacted`` with ``cleanup.policy=compact``)."""
    names = [*topics, *compacted]
    await delete_topics(bootstrap, names)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:  # deletion finishes in the background; a topic cannot be made again before
        for _ in range(100):
            if not set(names) & set(await admin.list_topics()):
                break
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    await create_topics(bootstrap, list(topics), partitions)
    if compacted:
        await create_topics(
            bootstrap, list(compacted), partitions, configs={"cleanup.policy": "compact"}
        )


def state_dir() -> Path:
    """Where the demo keeps the worker's log and its files: ``KAFKA_STATE_DIR`` (set by
    ``scripts/demo.sh`` to the broker's own), else ``.kafka``; created when missing."""
    where = Path(os.environ.get("KAFKA_STATE_DIR", ".kafka"))
    where.mkdir(parents=True, exist_ok=True)
    return where


def worker_environment(bootstrap: str, group: str, http_port: int) -> dict[str, str]:
    """The environment of the demo's ``enforcer run``: the user's own, with the broker,
    the group, a fingerprint key (the user's, or a new one), the info log level (unless
    the user set one) and the HTTP port."""
    return {
        **os.environ,
        "ENFORCER_BOOTSTRAP_SERVERS": bootstrap,
        "ENFORCER_GROUP_ID": group,
        "ENFORCER_FINGERPRINT_KEY": os.environ.get("ENFORCER_FINGERPRINT_KEY", generate_key()),
        "ENFORCER_DATA_DIR": str(Path(".kafka") / "demo-data"),
        "ENFORCER_LOG_LEVEL": os.environ.get("ENFORCER_LOG_LEVEL", "info"),
        "ENFORCER_HTTP_PORT": str(http_port),
    }


def made_key(env: Mapping[str, str]) -> str | None:
    """The fingerprint key the demo made for its worker, or ``None`` when the user gave
    one (``ENFORCER_FINGERPRINT_KEY``): a made key is written to a file for the next
    commands, the user's own never is."""
    return None if "ENFORCER_FINGERPRINT_KEY" in os.environ else env["ENFORCER_FINGERPRINT_KEY"]
