"""The demo's asyncio entry: Ctrl-C ends the demo even when the coroutine it came
during swallowed its cancellation (a library may)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from enforcer.demo.loop import run


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """asyncio takes SIGINT over only from Python's default handler."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def _interrupted(swallow: bool) -> str:
    # The SIGINT is sent once the loop runs, so that asyncio's handler takes it.
    os.kill(os.getpid(), signal.SIGINT)
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        if not swallow:
            raise
    return "ended normally"


@pytest.mark.parametrize("swallow", [True, False])
@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_is_raised_whether_or_not_the_coroutine_swallowed_it(swallow: bool) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(_interrupted(swallow))


async def _answer() -> int:
    await asyncio.sleep(0)
    return 42


@pytest.mark.usefixtures("default_sigint")
def test_without_ctrl_c_it_returns_what_the_coroutine_returns() -> None:
    assert run(_answer()) == 42
