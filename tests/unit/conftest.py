"""Fixtures for the pure core: a step under a fixed clock and a fixed key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerLookup
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.load import load_policy, parse_policy
from enforcer.core.step import InputRecord, Source, Step

KEY = b"unit-test-key-0123456789abcdef"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def event(*identifiers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An identity event with sensible required fields."""
    base: dict[str, Any] = {
        "event_id": "evt-1",
        "subject_id": "acct-1",
        "occurred_at": "2019-10-08T12:00:00Z",
        "identifiers": list(identifiers),
    }
    base.update(fields)
    return base


def ident(kind: str, value: str, purposes: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """An identifier; ``purposes=None`` leaves the field out."""
    item: dict[str, Any] = {"type": kind, "value": value, **extra}
    if purposes is not None:
        item["purposes"] = purposes
    return item


def record(value: dict[str, Any] | bytes, offset: int = 0, **kw: Any) -> InputRecord:
    """An input record from identity.events partition 0."""
    data = value if isinstance(value, bytes) else orjson.dumps(value)
    return InputRecord(
        kw.get("key", b"acct-1"), data, kw.get("headers", ()), Source("identity.events", 0, offset)
    )


def make_step(policy: Policy | None = None, ledger: LedgerLookup | None = None) -> Step:
    """A step with a fixed key and clock, and the purpose ledger when one is given."""
    return Step(policy or load_policy(None), Fingerprinter(KEY), FixedClock(NOW), ledger)


@pytest.fixture
def step() -> Step:
    """A step under the built-in default policy."""
    return make_step()


@pytest.fixture
def policy_from() -> Callable[[str], Policy]:
    """Compile a policy from YAML text."""

    def build(text: str, destination: str = "audience-building") -> Policy:
        return parse_policy(text.encode(), origin="test.yaml", destination=destination)

    return build
