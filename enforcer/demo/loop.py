"""The demo's way into asyncio: ``asyncio.run``, except that Ctrl-C is never lost.

On Ctrl-C asyncio cancels the running coroutine and raises KeyboardInterrupt once it
has ended cancelled. A library that swallows the cancellation (one of the Kafka
clients the demo drives does, now and then) lets the coroutine end normally, and
``asyncio.run`` then returns as if nothing happened: the demo went on to the end and
exited 0. Here the interrupt is counted, and raised all the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end as ``asyncio.run`` does; raise KeyboardInterrupt if
    Ctrl-C came meanwhile, even when the coroutine swallowed its cancellation."""
    with asyncio.Runner() as runner:
        result = runner.run(coroutine)
        # Runner counts the SIGINTs it turned into a cancellation (CPython 3.11 to 3.13).
        if getattr(runner, "_interrupt_count", 0):
            raise KeyboardInterrupt
        return result
