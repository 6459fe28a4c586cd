"""Hot reload of the policy file (docs/rollout.md: changing the policy of a running worker).

Two parts:

- :class:`PolicyWatch`, pure (the file reader, the loader and the clock are passed in):
  every ``interval_s`` it reads the policy file again and compares its *content* (the
  SHA-256 that is also the policy version) with the last content it judged. A
  Kubernetes ConfigMap mount changes a file by swapping the ``..data`` symlink, so the
  modification time of the path says nothing and an open handle would keep the old
  file: the path is opened anew at every check, and only the bytes count. A content
  seen for the first time is loaded through the same loader as at start (validation,
  the security guardrail, ``--mode``, the destination); a valid one's step waits in
  :attr:`PolicyWatch.pending`, an invalid one is refused in one log line and counted,
  once each time the content changes (not again at every check), and the last good
  policy stays in force.
- :class:`PolicyReload`, what the engine asks at a transaction boundary: the pending
  policy, and a new :class:`enforcer.core.step.Step` built for it with everything else
  the old one had (fingerprinter, ledger lookup, clock; the record reader rebuilt for
  the new policy's ``formats``); the ledger's retractions, the guard, the metrics and
  ``/readyz`` follow the new version.

The engine switches only when no transaction is open (after a commit, before the next
batch is decided), so the records of one transaction are never decided under two
policies, and every output after the switch carries the new ``enforcer.policy``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from enforcer.core.clock import Clock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerLookup, LedgerMode
from enforcer.core.models import Mode
from enforcer.core.policy.compiled import Policy, PolicyConfigError
from enforcer.core.policy.load import PolicyLoadError, parse_policy, policy_version
from enforcer.core.record_format import RecordReader
from enforcer.core.step import Step
from enforcer.outputs.metrics import PolicyReloadStats

log = logging.getLogger("enforcer.policy")

RELOADED_LOG = "policy reloaded"
"""The start of the line written when a new policy is in force (tests wait for it)."""
REFUSED_LOG = "policy change refused"
"""The start of the line written when a changed policy file is refused."""


class PolicyWatch:
    """Watches the policy file's content; judges each new content once, when it has read
    the same at two checks in a row: a file written in place, not swapped, passes
    through every prefix of its new content, and a prefix can be a valid policy that
    lets more through (the rules before a destination's allow-list, say)."""

    def __init__(
        self,
        path: Path,
        in_force: Policy,
        load: Callable[[bytes], Step],
        monotonic: Callable[[], float],
        interval_s: float,
        stats: PolicyReloadStats,
        read: Callable[[Path], bytes] = Path.read_bytes,
    ) -> None:
        self._path = path
        self._load = load
        self._read = read
        self._monotonic = monotonic
        self._interval_s = interval_s
        self._next_check = monotonic() + interval_s
        self.in_force = in_force
        """The policy the engine decides under now."""
        self._seen = in_force.version
        """The last content judged: its version, or the read error it gave."""
        self._settling: str | None = None
        """A new content read once, not judged yet: its version."""
        self.pending: Step | None = None
        """The step for a valid new policy, waiting for the next transaction boundary."""
        self.stats = stats

    def tick(self) -> None:
        """Check the file when the interval has passed (called from the loop)."""
        now = self._monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self._interval_s
        self.check()

    def check(self) -> None:
        """Read the file now; judge its content if it is new and the previous check
        read the same."""
        try:
            data = self._read(self._path)
        except OSError as exc:
            self._judge_unreadable(f"{self._path}: cannot read policy file: {_why(exc)}")
            return
        version = policy_version(data)
        if version == self._seen:
            self._settling = None
            return
        if version != self._settling:
            self._settling = version  # judged if the next check reads it again
            return
        self._settling = None
        self._seen = version
        if version == self.in_force.version:
            # Back to the content in force (a bad edit undone): nothing to apply.
            self.pending = None
            self.stats.refused_now = False
            return
        try:
            step = self._load(data)
        except (PolicyLoadError, PolicyConfigError) as exc:
            self._refuse(str(exc))
            return
        except Exception as exc:  # a policy file must never end the worker
            # Raised from the loop's tick, an error the loader did not foresee would
            # stop a worker that runs a good policy: the content is refused instead,
            # the last good policy stays in force (the type only: the text may quote it).
            self._refuse(f"{self._path}: cannot load the policy ({type(exc).__name__})")
            return
        self.pending = step
        self.stats.refused_now = False

    def applied(self, policy: Policy) -> None:
        """``policy`` is in force now (the engine switched to it)."""
        self.in_force = policy
        self.pending = None
        self.stats.reloads += 1

    def _judge_unreadable(self, problem: str) -> None:
        if self._seen == problem:
            return
        self._seen = problem
        self._refuse(problem)

    def _refuse(self, problem: str) -> None:
        # A file replaced by a bad one must not leave an earlier good change waiting.
        self.pending = None
        self.stats.failures += 1
        self.stats.refused_now = True
        log.error("%s: %s; policy %s stays in force", REFUSED_LOG, problem, self.in_force.version)


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


@dataclass
class StepParts:
    """What a :class:`Step` is built from besides its policy: the same for every policy
    a worker runs."""

    fingerprinter: Fingerprinter
    clock: Clock
    ledger: LedgerLookup | None
    reader: Callable[[Policy], RecordReader | None]
    """The record reader for a policy (its ``formats`` section)."""
    exposure: bool = False
    """Whether forwarded outcomes list their identifiers (the worker keeps exposure)."""
    previous_fingerprinter: Fingerprinter | None = None
    """During a key rotation (with exposure): the key in force before it."""

    def step(self, policy: Policy) -> Step:
        """A step deciding under ``policy``."""
        return Step(
            policy,
            self.fingerprinter,
            self.clock,
            self.ledger,
            reader=self.reader(policy),
            exposure=self.exposure,
            previous_fingerprinter=self.previous_fingerprinter,
        )


def reload_loader(
    origin: Path,
    destination: str,
    mode: Mode | None,
    ledger_in_force: LedgerMode,
    ledger_configured: bool,
    parts: StepParts,
) -> Callable[[bytes], Step]:
    """Policy bytes -> the step deciding under them, judged as at start
    (:func:`enforcer.core.policy.load.parse_policy`: the file format, the security
    guardrail, the destination; ``mode`` overrides the file's as ``--mode`` does).
    Refused besides: a change of the ledger setting in effect, which decides whether the
    ledger topic is read at all and how an unknown identifier counts (a restart applies
    it). Raises :class:`PolicyLoadError`."""

    def load(data: bytes) -> Step:
        policy = parse_policy(data, origin=str(origin), destination=destination)
        if mode is not None:
            policy = policy.with_mode(mode)
        ledger = policy.ledger_mode(ledger_configured)
        if ledger is not ledger_in_force:
            raise PolicyLoadError(
                f"{origin}: at ledger: the worker runs with 'ledger: {ledger_in_force.value}' "
                f"and this policy asks for '{ledger.value}', which only a restart can apply"
            )
        return parts.step(policy)

    return load


PolicyFollower = Callable[[Policy], None]
"""Told when a new policy is in force (the ledger's retractions, the guard, metrics,
``/readyz``)."""


class PolicyReload:
    """The engine's side of a reload: the step of the pending policy, and who follows."""

    def __init__(self, watch: PolicyWatch) -> None:
        self.watch = watch
        self.followers: list[PolicyFollower] = []

    @property
    def pending(self) -> Step | None:
        """The step of a valid new policy waiting for a transaction boundary."""
        return self.watch.pending

    def switch(self, old: Step) -> Step:
        """The pending step, everything that follows the policy told; called by the
        engine with no transaction open."""
        step = self.watch.pending
        assert step is not None
        new = step.policy
        for follow in self.followers:
            follow(new)
        self.watch.applied(new)
        log.info(
            "%s: %s -> %s (%s), mode %s",
            RELOADED_LOG,
            old.policy.version,
            new.version,
            new.origin,
            new.mode.value,
        )
        for warning in new.warnings():
            log.warning("policy %s: %s", new.origin, warning)
        return step


def on_policy_change(old: Policy, new: Policy) -> None:
    """Log the switch from ``old`` to ``new`` at the transaction boundary where the
    engine makes it: no transaction is open, nothing has been decided under ``new``.
    Exposure is re-judged under ``new`` right after (:meth:`enforcer.live.engine.Engine.
    _switch_policy` makes it due), before the next event is decided."""
    log.debug("switching policy %s -> %s", old.version, new.version)
