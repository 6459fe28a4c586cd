"""Run a faust app inside the test's own event loop, as a faust worker would run it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import faust
from faust.types.enums import ProcessingGuarantee


@asynccontextmanager
async def running_app(app: faust.App, *, ready_timeout_s: float = 60.0) -> AsyncIterator[faust.App]:
    """Start ``app`` in the running event loop, wait until its consumer has partitions,
    yield it, and stop it on the way out, whatever happened.

    faust only uses transactions for ``processing_guarantee="exactly_once"`` when the app
    runs inside a :class:`faust.Worker` (``App.in_transaction`` checks ``App.in_worker``);
    a bare ``await app.start()`` would silently produce without them. This sets the flag
    the worker sets, without the worker's signal handlers, logging setup and loop control,
    which do not belong in a test process.
    """
    app.in_worker = True
    # faust types this setting as the enum class, not a member; compare as an object.
    guarantee: object = app.conf.processing_guarantee
    if guarantee == ProcessingGuarantee.EXACTLY_ONCE and not app.in_transaction:
        raise RuntimeError(f"faust app {app.conf.id} would run without transactions")
    await app.start()
    try:
        await _wait_until_assigned(app, ready_timeout_s)
        yield app
    finally:
        await app.stop()


async def _wait_until_assigned(app: faust.App, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not app.consumer.assignment():
        if app.should_stop or app.crashed:
            raise RuntimeError(f"faust app {app.conf.id} stopped while starting")
        if time.monotonic() > deadline:
            raise TimeoutError(f"faust app {app.conf.id} got no partitions in {timeout_s}s")
        await asyncio.sleep(0.1)
