"""A bare confluent-kafka (librdkafka) consume → produce loop: the client's ceiling.

    python -m bench.pipeline.confluent_passthrough --bootstrap HOST:PORT --source IN \
        --sink OUT --group G --guarantee exactly_once --commit-interval 1 [--step]

Without ``--step`` it copies each record (key, value, headers) to the sink; with
``--step`` it runs the enforcer's own :class:`enforcer.core.step.Step` on each record and
sends what the step says (sink, ``--violations``, ``--deadletter``), with none of the
engine's guards, health or metrics: the difference to the enforcer is what the engine
itself costs.

- ``at_least_once``: every commit interval flush the producer, then commit offsets.
- ``exactly_once``: one transactional producer; every commit interval send the
  positions with the group's metadata into the transaction (KIP-447) and commit.
SIGTERM commits what was sent and exits 0.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from enforcer.core.step import Source
from enforcer.outputs.records import OutputTopics

from .options import passthrough_parser
from .peer_step import PeerStep

Forward = Callable[[Producer, Message], None]


def _copy(sink: str) -> Forward:
    def forward(producer: Producer, message: Message) -> None:
        producer.produce(sink, message.value(), message.key(), headers=message.headers())

    return forward


def _decide(topics: OutputTopics) -> Forward:
    step = PeerStep(topics)

    def forward(producer: Producer, message: Message) -> None:
        source = Source(message.topic() or "", message.partition() or 0, message.offset() or 0)
        for out in step(message.key(), message.value(), message.headers(), source):
            producer.produce(out.topic, out.value, out.key, headers=list(out.headers))

    return forward


def run(args: argparse.Namespace, stop: threading.Event) -> None:
    """Consume, forward, commit every interval, until ``stop``."""
    exactly_once = args.guarantee == "exactly_once"
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed" if exactly_once else "read_uncommitted",
        }
    )
    config = {"bootstrap.servers": args.bootstrap, "enable.idempotence": True, "linger.ms": 5}
    if exactly_once:
        config["transactional.id"] = f"{args.group}-confluent"
    producer = Producer(config)
    topics = OutputTopics(args.sink, args.violations, args.deadletter)
    forward = _decide(topics) if args.step else _copy(args.sink)
    if exactly_once:
        producer.init_transactions(30)
    consumer.subscribe([args.source])
    positions: dict[tuple[str, int], int] = {}
    in_transaction = False
    last_commit = time.monotonic()

    def commit() -> None:
        nonlocal in_transaction
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
        if exactly_once:
            if in_transaction:
                if offsets:
                    producer.send_offsets_to_transaction(
                        offsets, consumer.consumer_group_metadata(), 30
                    )
                producer.commit_transaction(30)
                in_transaction = False
        else:
            producer.flush(30)
            if offsets:
                consumer.commit(offsets=offsets, asynchronous=False)
        positions.clear()

    while not stop.is_set():
        messages = consumer.consume(args.batch_max, args.batch_within)
        for message in messages:
            if message.error():
                continue
            if exactly_once and not in_transaction:
                producer.begin_transaction()
                in_transaction = True
            while True:
                try:
                    forward(producer, message)
                    break
                except BufferError:
                    producer.poll(0.05)
            positions[(message.topic() or "", message.partition() or 0)] = (
                message.offset() or 0
            ) + 1
        producer.poll(0)
        if time.monotonic() - last_commit >= args.commit_interval:
            commit()
            last_commit = time.monotonic()
    commit()
    consumer.close()
    producer.flush(30)


def main(argv: list[str] | None = None) -> None:
    """Run until SIGTERM."""
    parser = passthrough_parser(__doc__.splitlines()[0])
    parser.add_argument("--step", action="store_true", help="decide each record with Step")
    parser.add_argument("--violations", help="violations topic, with --step")
    parser.add_argument("--deadletter", help="dead-letter topic, with --step")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(_: int, __: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run(args, stop)


if __name__ == "__main__":
    main()
