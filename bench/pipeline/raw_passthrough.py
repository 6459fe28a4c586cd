"""A raw aiokafka consume → produce loop that copies records: the Python floor.

    python -m bench.pipeline.raw_passthrough --bootstrap HOST:PORT --source IN --sink OUT \
        --group G --guarantee exactly_once --commit-interval 1

- ``at_least_once``: send every record, and every commit interval wait until Kafka has
  all of them, then commit the consumed offsets (a crash re-sends, never loses).
- ``exactly_once``: one transactional producer for the process; every commit interval
  add the consumed offsets to the transaction (``send_offsets_to_transaction``) and
  commit it. The consumer reads ``read_committed``.

Key, value and headers are copied unchanged; the sink partition follows from the key,
as in the other pipelines and the enforcer. Batches are ``getmany`` calls of up to
``--batch-max`` records, waiting up to ``--batch-within`` seconds, like their
``take_events``. SIGTERM commits what was sent and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from collections.abc import Awaitable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from .options import passthrough_parser


class PassThrough:
    """The loop's state between commits."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self._exactly_once = args.guarantee == "exactly_once"
        self.consumer = AIOKafkaConsumer(
            args.source,
            bootstrap_servers=args.bootstrap,
            group_id=args.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed" if self._exactly_once else "read_uncommitted",
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=args.bootstrap,
            acks="all",
            enable_idempotence=True,
            transactional_id=f"{args.group}-raw" if self._exactly_once else None,
        )
        self._offsets: dict[TopicPartition, int] = {}
        self._pending: list[Awaitable[Any]] = []

    async def run(self, stop: asyncio.Event) -> None:
        """Copy until ``stop`` is set, then commit what was sent."""
        await self.producer.start()
        await self.consumer.start()
        try:
            if self._exactly_once:
                await self.producer.begin_transaction()
            last_commit = time.monotonic()
            while not stop.is_set():
                await self._copy_batch()
                if time.monotonic() - last_commit >= self._args.commit_interval:
                    await self._commit()
                    last_commit = time.monotonic()
            await self._commit(final=True)
        finally:
            await self.consumer.stop()
            await self.producer.stop()

    async def _copy_batch(self) -> None:
        batches = await self.consumer.getmany(
            timeout_ms=int(self._args.batch_within * 1000), max_records=self._args.batch_max
        )
        for tp, records in batches.items():
            for record in records:
                self._pending.append(
                    await self.producer.send(
                        self._args.sink,
                        value=record.value,
                        key=record.key,
                        headers=list(record.headers),
                    )
                )
            self._offsets[tp] = records[-1].offset + 1

    async def _commit(self, *, final: bool = False) -> None:
        await asyncio.gather(*self._pending)
        self._pending.clear()
        if self._exactly_once:
            if self._offsets:
                await self.producer.send_offsets_to_transaction(self._offsets, self._args.group)
            await self.producer.commit_transaction()
            if not final:
                await self.producer.begin_transaction()
        elif self._offsets:
            await self.consumer.commit(self._offsets)
        self._offsets = {}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    return passthrough_parser(__doc__.splitlines()[0]).parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await PassThrough(args).run(stop)


def main(argv: list[str] | None = None) -> None:
    """Run the pass-through until SIGTERM."""
    asyncio.run(_main(parse_args(argv)))


if __name__ == "__main__":
    main()
