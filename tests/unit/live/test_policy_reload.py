"""The policy file's watch as a state machine (docs/rollout.md: changing the policy of a
running worker): content, not modification time, decides; a ConfigMap's symlink swap
is followed; a bad content is refused once; a good one after it is applied; the ledger
setting in effect is refused to change; the switch happens only between transactions."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerMode
from enforcer.core.models import Mode
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.load import load_policy, parse_policy, policy_version
from enforcer.core.step import Step
from enforcer.live.policy_reload import (
    REFUSED_LOG,
    RELOADED_LOG,
    PolicyReload,
    PolicyWatch,
    StepParts,
    reload_loader,
)
from enforcer.outputs.metrics import PolicyReloadStats

from ..conftest import KEY, NOW

ROOT = Path(__file__).resolve().parents[3]
SECURITY_ONLY = (ROOT / "policies" / "security-only.yaml").read_bytes()
DEFAULT = (ROOT / "policies" / "default.yaml").read_bytes()
INVALID = b"rules: [{name: x, when: no-such-condition}]\n"
LEAKS = b"rules: [{name: missing-purpose, when: no-purpose}]\n"
"""Valid YAML and schema, refused by the security guardrail."""
NESTED = b"rules: " + b"[" * 5000
"""Nested deeper than the YAML parser's recursion goes (a bad edit, or a file cut off)."""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _parts() -> StepParts:
    return StepParts(Fingerprinter(KEY), FixedClock(NOW), None, lambda _: None)


def _watch(
    path: Path, clock: Clock, *, mode: Mode | None = None, ledger: LedgerMode = LedgerMode.OFF
) -> tuple[PolicyWatch, PolicyReload]:
    in_force = load_policy(path)
    if mode is not None:
        in_force = in_force.with_mode(mode)
    load = reload_loader(path, "audience-building", mode, ledger, False, _parts())
    watch = PolicyWatch(path, in_force, load, clock, 5.0, PolicyReloadStats())
    return watch, PolicyReload(watch)


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _settle(watch: PolicyWatch) -> None:
    """Two checks: a new content is judged when the same was read at the check before."""
    watch.check()
    watch.check()


def test_a_changed_content_is_pending_until_the_engine_switches(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, SECURITY_ONLY)
    clock = Clock()
    watch, reload = _watch(path, clock)
    _write(path, DEFAULT)
    watch.tick()
    assert watch.pending is None  # not due yet: every interval, not every loop
    clock.now = 5.0
    watch.tick()
    assert watch.pending is None  # read once: judged if the next check reads the same
    clock.now = 10.0
    watch.tick()
    assert watch.pending is not None
    assert watch.pending.policy.version == policy_version(DEFAULT)
    old = Step(watch.in_force, Fingerprinter(KEY), FixedClock(NOW))
    followed: list[Policy] = []
    reload.followers.append(followed.append)
    new = reload.switch(old)
    assert new.policy.version == policy_version(DEFAULT)
    assert watch.in_force is new.policy and watch.pending is None
    assert followed == [new.policy]
    assert watch.stats.reloads == 1 and watch.stats.failures == 0
    clock.now = 15.0
    watch.tick()
    assert watch.pending is None  # the same content again: nothing new


def test_content_not_mtime_decides(tmp_path: Path) -> None:
    """A file rewritten with the same bytes (a new mtime) changes nothing."""
    path = tmp_path / "policy.yaml"
    _write(path, SECURITY_ONLY)
    watch, _ = _watch(path, Clock())
    os.utime(path, (1, 1))
    _write(path, SECURITY_ONLY)
    _settle(watch)
    assert watch.pending is None and watch.stats.failures == 0


def test_a_configmap_symlink_swap_is_followed(tmp_path: Path) -> None:
    """Kubernetes mounts ``policy.yaml -> ..data/policy.yaml`` and swaps ``..data`` to a
    new directory: the path is resolved anew at every check."""
    old_dir, new_dir = tmp_path / "..2026_01", tmp_path / "..2026_02"
    old_dir.mkdir()
    new_dir.mkdir()
    (old_dir / "policy.yaml").write_bytes(SECURITY_ONLY)
    (new_dir / "policy.yaml").write_bytes(DEFAULT)
    data = tmp_path / "..data"
    data.symlink_to(old_dir.name)
    path = tmp_path / "policy.yaml"
    path.symlink_to("..data/policy.yaml")
    watch, _ = _watch(path, Clock())
    swap = tmp_path / "..data_tmp"
    swap.symlink_to(new_dir.name)
    swap.replace(data)  # the atomic rename kubelet does
    _settle(watch)
    assert watch.pending is not None
    assert watch.pending.policy.version == policy_version(DEFAULT)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (INVALID, "at rules[0].when"),
        (LEAKS, "identifiers given only to secure an account"),
        (NESTED, "nested too deeply"),
    ],
)
def test_bad_content_is_refused_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, problem: str
) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, SECURITY_ONLY)
    watch, _ = _watch(path, Clock())
    _write(path, content)
    with caplog.at_level(logging.ERROR, logger="enforcer.policy"):
        for _ in range(3):
            _settle(watch)
    lines = [r.getMessage() for r in caplog.records if REFUSED_LOG in r.getMessage()]
    assert len(lines) == 1
    assert str(path) in lines[0] and problem in lines[0]
    assert policy_version(SECURITY_ONLY) in lines[0]  # what stays in force
    assert watch.pending is None and watch.stats.failures == 1
    assert watch.in_force.version == policy_version(SECURITY_ONLY)
    assert watch.stats.refused_now  # enforcer_policy_file_refused 1


def test_good_after_bad_is_applied_and_a_new_bad_is_refused_again(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, SECURITY_ONLY)
    watch, _ = _watch(path, Clock())
    _write(path, INVALID)
    _settle(watch)
    assert watch.stats.refused_now
    _write(path, DEFAULT)
    _settle(watch)
    assert watch.pending is not None and not watch.stats.refused_now
    _write(path, LEAKS)  # replaced again before a boundary: the good one is not applied
    _settle(watch)
    assert watch.pending is None
    assert watch.stats.failures == 2 and watch.stats.refused_now


def test_a_bad_edit_undone_leaves_nothing_pending(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, SECURITY_ONLY)
    watch, _ = _watch(path, Clock())
    _write(path, INVALID)
    _settle(watch)
    _write(path, SECURITY_ONLY)
    _settle(watch)
    assert watch.pending is None and watch.stats.failures == 1
    assert not watch.stats.refused_now  # the file says what runs again


def test_an_unreadable_file_is_refused_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, SECURITY_ONLY)
    watch, _ = _watch(path, Clock())
    path.unlink()
    with caplog.at_level(logging.ERROR, logger="enforcer.policy"):
        _settle(watch)
        _settle(watch)
    assert [r.getMessage() for r in caplog.records].count(
        f"{REFUSED_LOG}: {path}: cannot read policy file: No such file or directory; "
        f"policy {policy_version(SECURITY_ONLY)} stays in force"
    ) == 1
    _write(path, DEFAULT)
    _settle(watch)
    assert watch.pending is not None


def test_the_mode_override_applies_to_a_reloaded_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, SECURITY_ONLY)
    watch, _ = _watch(path, Clock(), mode=Mode.AUDIT)
    _write(path, DEFAULT)
    _settle(watch)
    assert watch.pending is not None and watch.pending.policy.mode is Mode.AUDIT


def test_a_change_of_the_ledger_setting_needs_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, SECURITY_ONLY)
    watch, _ = _watch(path, Clock())
    _write(path, SECURITY_ONLY + b"ledger: fallback\n")
    with caplog.at_level(logging.ERROR, logger="enforcer.policy"):
        _settle(watch)
    assert watch.pending is None and watch.stats.failures == 1
    assert "ledger" in caplog.text


def test_the_switch_logs_old_and_new_versions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, SECURITY_ONLY)
    watch, reload = _watch(path, Clock())
    _write(path, DEFAULT)
    _settle(watch)
    with caplog.at_level(logging.INFO, logger="enforcer.policy"):
        reload.switch(Step(watch.in_force, Fingerprinter(KEY), FixedClock(NOW)))
    lines = [r.getMessage() for r in caplog.records if RELOADED_LOG in r.getMessage()]
    assert len(lines) == 1
    assert f"{policy_version(SECURITY_ONLY)} -> {policy_version(DEFAULT)}" in lines[0]


def test_the_worker_follows_a_switch_in_metrics_readyz_guard_and_ledger(tmp_path: Path) -> None:
    """What follows the policy in force once the engine switches: ``enforcer_info``'s
    version and mode, the reload counters, ``/readyz``'s ``policy_version``, the
    dead-letter guard (audit never stops) and the ledger's retractions' version."""
    from enforcer.config.settings import EnforcerSettings
    from enforcer.ledger.retract import passes_under
    from enforcer.live.guard import DeadLetterGuard
    from enforcer.live.health import Health
    from enforcer.live.http import prometheus_text
    from enforcer.live.ledger import LiveLedger
    from enforcer.live.worker import _follow_policy_file
    from enforcer.outputs.metrics import MetricsRecorder

    from .test_engine import Clock as EngineClock
    from .test_engine import FakeConsumer, FakeOutput, _engine

    path = tmp_path / "policy.yaml"
    _write(path, SECURITY_ONLY)
    old = load_policy(path)
    settings = EnforcerSettings(policy_file=path, policy_check_interval=1.0, ledger_topic="l")
    clock = EngineClock()
    engine, _ = _engine(FakeConsumer(0, 2, lambda: None), FakeOutput(), clock, 1.0)
    ledger = LiveLedger(
        "l", "s", "k", Fingerprinter(KEY), passes_under(old), old.version, clock, retract=True
    )
    parts = StepParts(Fingerprinter(KEY), FixedClock(NOW), ledger, lambda _: None)
    recorder = MetricsRecorder("w1", old.version, old.mode, FixedClock(NOW), clock)
    health = Health(clock, 30.0)
    guard = DeadLetterGuard(0.5, 100, stops=True)
    _follow_policy_file(engine, settings, old, parts, recorder, health, guard)
    assert health.ready().detail["policy_version"] == old.version
    reload = engine.policy_reload
    assert reload is not None
    audit = DEFAULT.replace(b"mode: enforce", b"mode: audit")
    assert audit != DEFAULT
    _write(path, audit)
    _settle(reload.watch)
    assert reload.pending is not None
    engine._step = reload.switch(engine._step)
    new = policy_version(audit)
    assert health.ready().detail["policy_version"] == new
    assert guard.stops is False
    assert recorder.policy_version == new and recorder.mode is Mode.AUDIT
    text = prometheus_text(recorder, []).decode()
    assert f'policy_version="{new}"' in text
    assert "enforcer_policy_reloads_total 1.0" in text
    assert "enforcer_policy_reload_failures_total 0.0" in text
    assert "enforcer_policy_file_refused 0.0" in text
    assert recorder.snapshot([]).policy_version == new
    assert dict(ledger._headers)["enforcer.policy"] == new.encode()
    assert ledger._retract is False  # audit: retractions counted, not written


def test_a_file_caught_half_written_is_never_judged(tmp_path: Path) -> None:
    """A policy written in place passes through every prefix of its new content, and a
    prefix can be a valid policy that lets more through (here, the default policy cut
    before its destinations' allow-list). A content is judged only when two checks in
    a row read it: a prefix seen once and then completed is never applied, nor refused."""
    path = tmp_path / "policy.yaml"
    _write(path, SECURITY_ONLY)
    watch, _ = _watch(path, Clock())
    cut = DEFAULT[: DEFAULT.index(b"destinations:")]
    parse_policy(cut, origin="prefix.yaml")  # a valid policy on its own
    _write(path, cut)
    watch.check()
    assert watch.pending is None
    _write(path, DEFAULT)
    watch.check()
    assert watch.pending is None and watch.stats.failures == 0
    watch.check()
    assert watch.pending is not None
    assert watch.pending.policy.version == policy_version(DEFAULT)


def test_a_loader_failing_unexpectedly_refuses_the_content_and_keeps_the_worker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An error the loader did not foresee must not end a running worker (it raised out
    of the loop's tick): the content is refused like an invalid one, naming only the
    error's type, and the last good policy stays in force."""
    path = tmp_path / "policy.yaml"
    _write(path, SECURITY_ONLY)
    in_force = load_policy(path)

    def load(_: bytes) -> Step:
        raise KeyError("not a policy problem")

    watch = PolicyWatch(path, in_force, load, Clock(), 5.0, PolicyReloadStats())
    _write(path, DEFAULT)
    with caplog.at_level(logging.ERROR, logger="enforcer.policy"):
        _settle(watch)
        _settle(watch)
    lines = [r.getMessage() for r in caplog.records if REFUSED_LOG in r.getMessage()]
    assert len(lines) == 1 and "KeyError" in lines[0] and "not a policy problem" not in lines[0]
    assert watch.pending is None and watch.stats.failures == 1 and watch.stats.refused_now
    assert watch.in_force is in_force
