"""bytewax (its Kafka connector) running the enforcer's own ``Step`` on each record,
writing what the enforcer writes: the forwarded record to the sink, violations and dead
letters to their topics.

    python -m bench.pipeline.bytewax_step --bootstrap HOST:PORT --source IN --sink OUT \
        --violations V --deadletter D --group G --commit-interval 1

No delivery guarantee: bytewax's ``KafkaSource`` keeps its offsets in bytewax's own
recovery store (none is configured here) and its ``KafkaSink`` is not transactional.
So the benchmark can see the drain end like for every other pipeline, the source's
consumers commit the offsets they have read to ``--group`` every
``--commit-interval`` (librdkafka's auto-commit), whether or not the outputs are
written yet; ``--guarantee`` is accepted and ignored. Runs from bench/setup-peers.sh's
venv. SIGTERM ends the process at once: bytewax has no graceful stop (an exception
raised into the dataflow fails it), and its sink flushes after every batch, so nothing
it has handed to Kafka is lost.
"""

from __future__ import annotations

import argparse
import os
import signal
from types import FrameType

from bytewax import operators as op
from bytewax._bytewax import cli_main
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource, KafkaSourceMessage
from bytewax.dataflow import Dataflow

from enforcer.core.step import Source
from enforcer.outputs.records import OutputTopics

from .options import passthrough_parser
from .peer_step import PeerStep


def flow(args: argparse.Namespace) -> Dataflow:
    """Source → ``Step`` → the three output topics."""
    step = PeerStep(OutputTopics(args.sink, args.violations, args.deadletter))

    def decide(
        message: KafkaSourceMessage[bytes | None, bytes | None],
    ) -> list[KafkaSinkMessage[bytes | None, bytes | None]]:
        where = Source(message.topic or "", message.partition or 0, message.offset or 0)
        return [
            KafkaSinkMessage(out.key, out.value, topic=out.topic, headers=list(out.headers))
            for out in step(message.key, message.value, message.headers, where)
        ]

    dataflow = Dataflow("enforcer-step")
    source = KafkaSource(
        [args.bootstrap],
        [args.source],
        tail=True,
        batch_size=args.batch_max,
        add_config={
            "group.id": args.group,
            "enable.auto.commit": "true",
            "auto.commit.interval.ms": str(round(args.commit_interval * 1000)),
        },
    )
    records = op.input("source", dataflow, source)
    outputs = op.flat_map("step", records, decide)
    # topic None: each message names its own (sink, violations or dead letters).
    op.output("outputs", outputs, KafkaSink([args.bootstrap], None, add_config={"linger.ms": "5"}))
    return dataflow


def main(argv: list[str] | None = None) -> None:
    """Run until SIGTERM."""
    parser = passthrough_parser(__doc__.splitlines()[0])
    parser.add_argument("--violations", required=True)
    parser.add_argument("--deadletter", required=True)
    args = parser.parse_args(argv)

    def on_signal(_: int, __: FrameType | None) -> None:
        os._exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    cli_main(flow(args), workers_per_process=1)


if __name__ == "__main__":
    main()
