"""A faust agent that copies records: the enforcer's plumbing without the decision.

    python -m bench.pipeline.faust_passthrough --bootstrap HOST:PORT --source IN \
        --sink OUT --group G --guarantee exactly_once --commit-interval 1 --data-dir DIR

Built like :func:`enforcer.agent.build_app` so the comparison is fair: the same app
settings (commit interval, ``acks=-1``, raw bytes, memory store, no web server), the
same ``stream.take_events`` batches, and for ``exactly_once`` every copy goes through
the source partition's transactional producer, as the enforcer sends its outputs; then
wait for delivery and acknowledge the batch. What it leaves out is the enforcer's own
work: the decision, the violation records, the metrics and the commit gate.

``--gate`` adds the enforcer's commit gate (:class:`enforcer.agent.EnforcerApp` and its
:class:`~enforcer.agent.TransactionGate`: a batch and a commit never overlap), to tell
the gate's cost from the decision's (the ``faust-gated`` pipeline of the benchmark).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

import faust
from faust.types.enums import ProcessingGuarantee

from enforcer.agent import EnforcerApp, TransactionGate

from .raw_passthrough import passthrough_parser


def build_app(args: argparse.Namespace) -> faust.App:
    """The pass-through app for these arguments."""
    app = (EnforcerApp if args.gate else faust.App)(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        processing_guarantee=args.guarantee,
        datadir=str(args.data_dir),
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=args.commit_interval,
        stream_wait_empty=True,
        producer_acks=-1,
        loghandlers=[],
    )
    source = app.topic(
        args.source,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        allow_empty=True,
    )
    gate = TransactionGate()
    if isinstance(app, EnforcerApp):
        app.gate = gate
    guarantee: object = app.conf.processing_guarantee
    transactional = guarantee == ProcessingGuarantee.EXACTLY_ONCE

    def transactional_id(topic: str, partition: int) -> str | None:
        if not transactional:
            return None
        return f"{app.conf.id}-{app.assignor.group_for_topic(topic)}-{partition}"

    async def copy(stream: faust.StreamT[Any]) -> None:
        batches = stream.take_events(args.batch_max, args.batch_within)  # type: ignore[attr-defined]
        async for events in batches:
            async with gate.batch():  # uncontended unless --gate wraps the commits too
                pending = []
                for event in events:
                    message = event.message
                    pending.append(
                        await app.producer.send(
                            args.sink,
                            message.key,
                            message.value,
                            None,
                            None,
                            list(message.headers or ()),
                            transactional_id=transactional_id(message.topic, message.partition),
                        )
                    )
                await asyncio.gather(*pending)
                for event in events:
                    await stream.ack(event)

    app.agent(source, name="bench.copy")(copy)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = passthrough_parser(__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--gate", action="store_true", help="commit through the enforcer's gate")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the worker until SIGTERM; return its exit status."""
    app = build_app(parse_args(argv))
    # faust's banner and spinner write terminal escape codes to stdout: not for logs.
    with Path(os.devnull).open("w") as quiet_stdout:
        worker = faust.Worker(
            app, loglevel="WARNING", quiet=True, redirect_stdouts=False, stdout=quiet_stdout
        )
        worker.spinner = None
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            return int(exit_.code or 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
