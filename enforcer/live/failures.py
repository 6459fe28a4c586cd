"""What a Kafka error means for the loop: retry the call, abort the transaction and
decide the records again, or stop the worker. Pure: it reads the error's flags only.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol


class KafkaErrorLike(Protocol):
    """The part of ``confluent_kafka.KafkaError`` this module reads."""

    def fatal(self) -> bool: ...
    def retriable(self) -> bool: ...
    def txn_requires_abort(self) -> bool: ...
    def name(self) -> str: ...


class Remedy(Enum):
    """What to do after a failed client call."""

    RETRY = "retry"
    """The same call may succeed if made again (a timeout, a coordinator moving)."""
    ABORT = "abort"
    """The transaction cannot commit: abort it and decide its records again. This is
    how a zombie finds out (KIP-447: its group generation is stale)."""
    STOP = "stop"
    """The client cannot go on (fenced by a newer instance of the same id, or a fatal
    error): stop the worker, so that it is restarted with a new client."""


class WorkerStopError(RuntimeError):
    """The worker cannot go on; the message names the cause and holds no record data."""


def remedy_for(error: KafkaErrorLike) -> Remedy:
    """The remedy for ``error``; a fatal error wins over every other flag."""
    if error.fatal():
        return Remedy.STOP
    if error.txn_requires_abort():
        return Remedy.ABORT
    if error.retriable():
        return Remedy.RETRY
    return Remedy.STOP
