"""quixstreams (exactly-once) running the enforcer's own ``Step`` on each record: the
stream library a Python user would pick instead of writing a loop.

    python -m bench.pipeline.quix_step --bootstrap HOST:PORT --source IN --sink OUT \
        --group G --guarantee exactly_once --commit-interval 1

Each record goes through :class:`enforcer.core.step.Step`; what it forwards goes to the sink
(the violations and dead letters are decided but not written, which only flatters
this row). quixstreams handles SIGTERM itself: it commits and exits.
"""

from __future__ import annotations

import argparse
import logging

from quixstreams import Application
from quixstreams.context import message_context

from enforcer.core.clock import SystemClock
from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, Source, Step

from .options import passthrough_parser


def run(args: argparse.Namespace) -> None:
    """Build the app and run it until SIGTERM."""
    step = Step(load_policy(None), Fingerprinter(key_from_text(generate_key())), SystemClock())
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
    sink = app.topic(args.sink, value_serializer="bytes", key_serializer="bytes")

    def decide(value: bytes, key: bytes | None, _: int, headers: object) -> bytes | None:
        context = message_context()
        where = Source(context.topic, context.partition, context.offset)
        return step(InputRecord(key, value, (), where)).forward_value

    frame = app.dataframe(source)
    frame = frame.apply(decide, metadata=True).filter(lambda value: value is not None)
    frame.to_topic(sink)
    app.run()


def main(argv: list[str] | None = None) -> None:
    """Run until SIGTERM."""
    run(passthrough_parser(__doc__.splitlines()[0]).parse_args(argv))


if __name__ == "__main__":
    main()
