"""The engine switches to a reloaded policy only at a transaction boundary: no
transaction holds records decided under two policies, and every record after the
switch carries the new ``enforcer.policy`` (docs/rollout.md)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerMode
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.load import parse_policy, policy_version
from enforcer.core.step import HEADER_POLICY
from enforcer.live import engine as engine_module
from enforcer.live.policy_reload import PolicyReload, PolicyWatch, StepParts, reload_loader
from enforcer.live.positions import TopicPartitionKey
from enforcer.outputs.metrics import PolicyReloadStats

from ..conftest import KEY, NOW
from .test_engine import Clock, FakeConsumer, FakeOutput, _engine

ROOT = Path(__file__).resolve().parents[3]
OLD = (ROOT / "policies" / "security-only.yaml").read_bytes()
NEW = (ROOT / "policies" / "default.yaml").read_bytes()
PATH = Path("/config/policy.yaml")


class TransactionsOutput(FakeOutput):
    """Also keeps where each committed transaction ends in ``sent``."""

    def __init__(self) -> None:
        super().__init__()
        self.ends: list[int] = []

    def commit(self, offsets: Mapping[TopicPartitionKey, int], consumer: Any) -> None:
        was_open = self.open
        super().commit(offsets, consumer)
        if was_open:
            self.ends.append(len(self.sent))


def _policy_of(headers: Any) -> bytes:
    value: bytes = next(value for key, value in headers if key == HEADER_POLICY)
    return value


def test_a_reloaded_policy_applies_from_the_next_transaction(monkeypatch: Any) -> None:
    file = [OLD]
    changes: list[tuple[str, str]] = []
    monkeypatch.setattr(
        engine_module,
        "on_policy_change",
        lambda old, new: changes.append((old.version, new.version)),
    )
    output = TransactionsOutput()
    clock = Clock()
    batches = [0]

    def before_consume() -> None:
        clock.now += 1.0  # a commit after every second batch
        batches[0] += 1
        if batches[0] == 3:
            file[0] = NEW  # edited while a transaction is open
            watch.check()
            watch.check()  # read the same twice: judged

    consumer = FakeConsumer(per_partition=40, batch=8, before_consume=before_consume)
    engine, _ = _engine(consumer, output, clock, commit_interval_s=1.5)
    old: Policy = parse_policy(OLD, origin=str(PATH))
    parts = StepParts(Fingerprinter(KEY), FixedClock(NOW), None, lambda _: None)
    load = reload_loader(PATH, "audience-building", None, LedgerMode.OFF, False, parts)
    watch = PolicyWatch(PATH, old, load, clock, 5.0, PolicyReloadStats(), read=lambda _: file[0])
    engine.policy_reload = PolicyReload(watch)
    engine._step = parts.step(old)
    engine.run()

    assert watch.stats.reloads == 1
    assert changes == [(policy_version(OLD), policy_version(NEW))]
    forwarded = [r for r in output.sent if r.topic == "engine-test.sink"]
    assert forwarded
    start = 0
    versions_by_transaction = []
    for end in output.ends:
        versions = {
            _policy_of(r.headers) for r in output.sent[start:end] if r.topic == "engine-test.sink"
        }
        assert len(versions) <= 1  # never two policies in one transaction
        versions_by_transaction.append(versions)
        start = end
    flat = [v.pop() for v in versions_by_transaction if v]
    switched = flat.index(policy_version(NEW).encode())
    assert switched > 0
    assert set(flat[:switched]) == {policy_version(OLD).encode()}
    assert set(flat[switched:]) == {policy_version(NEW).encode()}
