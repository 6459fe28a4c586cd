"""What the step remembers between records stays small whatever the records hold
(docs/decisions.md): the judgements of purpose lists and the fingerprints of values
are remembered only for lists and values of ordinary size, so a stream of records each
with a new list of thousands of tags, or a new value of hundreds of kilobytes, cannot
make a worker run out of memory (no record may halt the pipeline: docs/contract.md)."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Iterator

import orjson
import pytest

from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.step import InputRecord, OutcomeKind, Source

from ..conftest import KEY, event, ident, make_step
from .test_one_pass import SETTINGS

RECORDS = 30


def _retained(decide: Callable[[int], object], count: int = RECORDS) -> int:
    """Bytes still allocated after ``decide`` ran for each of ``count`` records (the
    records themselves and what it returned freed)."""
    decide(-1)  # a first record loads what any record needs (modules, metadata)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(count):
            decide(number)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def _tags(number: int) -> list[str]:
    return [f"t{number}.tag{index}" for index in range(3000)]  # about 50 kB


@pytest.fixture(params=sorted(SETTINGS))
def setting(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def test_long_purpose_lists_are_not_remembered(setting: str) -> None:
    policy, ledger = SETTINGS[setting]
    step = make_step(policy, ledger)

    def decide(number: int) -> None:
        value = orjson.dumps(event(ident("email", "a@x.io", _tags(number))))
        outcome = step(InputRecord(None, value, (), Source("t", 0, number)))
        assert outcome.kind is not OutcomeKind.DEADLETTERED

    # Each record's tags take about 1 MB as Python strings: thirty kept would be 30 MB.
    assert _retained(decide) < 1_000_000


@pytest.mark.parametrize("kind", ["email", "phone", "device_id"])
def test_long_values_are_not_remembered(kind: str) -> None:
    step = make_step(*SETTINGS["fallback ledger"])  # the ledger is asked: all fingerprinted

    def decide(number: int) -> None:
        long_value = f"{number}" + "5" * 100_000 + ("@x.io" if kind == "email" else "")
        value = orjson.dumps(
            event(
                ident(kind, long_value, ["security.mfa"]),
                ident("email", "b@x.io", ["marketing.advertising"]),
            )
        )
        outcome = step(InputRecord(None, value, (), Source("t", 0, number)))
        assert outcome.kind is OutcomeKind.REDACTED

    # Each value takes 100 kB: thirty kept would be 3 MB.
    assert _retained(decide) < 500_000


def test_a_long_value_has_the_fingerprint_it_had() -> None:
    """Fingerprinted every time instead of remembered: the same fingerprint."""
    fingerprinter = Fingerprinter(KEY)
    for kind, value in [("email", "A" * 300 + "@x.io"), ("phone", "+1 415 555 0101" + " " * 300)]:
        assert fingerprinter.mac(kind, value) == fingerprinter.mac_once(kind, value)
        assert fingerprinter(kind, value) == fingerprinter(kind, value)


LEAK_CALLS = 20_000
"""Calls a leak test makes: a leak of one small object a call holds 1 MB or more."""


@pytest.mark.parametrize("kind", ["email", "phone", "device_id"])
def test_a_fingerprint_computed_leaves_nothing_behind(kind: str) -> None:
    """Compiled, ``bytes + bytes`` once leaked two objects a fingerprint (about 90
    bytes: 180 MB over two million identifiers a worker restores or meets)."""
    fingerprinter = Fingerprinter(KEY)
    value = "+1 415 555 {:04d}" if kind == "phone" else "user{}@example.com"
    held = _retained(lambda n: fingerprinter.mac_once(kind, value.format(n % 10_000)), LEAK_CALLS)
    assert held < 64_000


def test_deciding_the_same_record_again_and_again_leaves_nothing_behind(setting: str) -> None:
    """Every judgement and fingerprint remembered after the first: what a record's
    decision allocates is all freed, under every ledger and exposure setting."""
    step = make_step(*SETTINGS[setting])
    value = orjson.dumps(
        event(
            ident("email", "a@x.io", ["marketing.advertising"]),
            ident("phone", "+1 415 555 0100", ["security.mfa"]),
            ident("device_id", "d-1", ["analytics"]),
        )
    )
    records = [InputRecord(None, value, (), Source("t", 0, n)) for n in range(LEAK_CALLS)]
    assert _retained(lambda n: step(records[n]), LEAK_CALLS) < 64_000
