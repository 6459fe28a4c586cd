"""quixstreams (exactly-once) running the enforcer's own ``Step`` on each record: the
stream library a Python user would pick instead of writing a loop.

    python -m bench.pipeline.quix_step --bootstrap HOST:PORT --source IN --sink OUT \
        --violations V --deadletter D --group G --guarantee exactly_once --commit-interval 1

Each record goes through :class:`enforcer.core.step.Step`; every record its outcome
produces is written as the enforcer writes it (the forwarded record to the sink,
violations and dead letters to their topics, each with its own key and headers), in
the same transaction with exactly-once. quixstreams handles SIGTERM itself: it commits
and exits.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from quixstreams import Application
from quixstreams.context import message_context
from quixstreams.models.serializers import SerializationContext, Serializer

from enforcer.core.step import Source
from enforcer.outputs.records import OutputRecord, OutputTopics

from .options import passthrough_parser
from .peer_step import PeerStep


class OutputValue(Serializer):  # type: ignore[misc]  # quixstreams is untyped here
    """Writes an :class:`OutputRecord`'s value bytes: each row of the dataframe is one
    output record, so its topic, key and headers can be taken from it too."""

    def __call__(self, value: OutputRecord, ctx: SerializationContext) -> bytes | None:
        return value.value


def run(args: argparse.Namespace) -> None:
    """Build the app and run it until SIGTERM."""
    names = OutputTopics(args.sink, args.violations, args.deadletter)
    step = PeerStep(names)
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval,
        processing_guarantee="exactly-once"
        if args.guarantee == "exactly_once"
        else "at-least-once",
        consumer_poll_timeout=args.batch_within,
        auto_create_topics=False,
        loglevel=logging.WARNING,
    )
    source = app.topic(args.source, value_deserializer="bytes", key_deserializer="bytes")
    outputs = {
        name: app.topic(name, value_serializer=OutputValue(), key_serializer="bytes")
        for name in (names.sink, names.violations, names.deadletter)
    }

    def decide(value: bytes, key: bytes | None, _: int, headers: Any) -> list[OutputRecord]:
        context = message_context()
        where = Source(context.topic, context.partition, context.offset)
        return step(key, value, headers, where)

    frame = app.dataframe(source)
    frame = frame.apply(decide, metadata=True, expand=True)
    frame = frame.set_headers(lambda out, _key, _at, _headers: list(out.headers))
    frame.to_topic(lambda out, _key, _at, _headers: outputs[out.topic], key=lambda out: out.key)
    app.run()


def main(argv: list[str] | None = None) -> None:
    """Run until SIGTERM."""
    parser = passthrough_parser(__doc__.splitlines()[0])
    parser.add_argument("--violations", required=True)
    parser.add_argument("--deadletter", required=True)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
