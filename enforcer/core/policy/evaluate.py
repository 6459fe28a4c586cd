"""The decision: one validated identity event in, what happens to each identifier out.

Pure: no I/O, no clock, no secrets. The live agent, replay and ``explain`` all reach
it through :mod:`enforcer.core.step`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

from enforcer.core.ledger_view import PURPOSE_NOT_GRANTED, LedgerMode, purposes_to_judge
from enforcer.core.memo import remember, small_enough
from enforcer.core.models import Action, Event
from enforcer.core.policy.compiled import Policy, Rule
from enforcer.core.purposes import normalize_tag


class Verdict(StrEnum):
    """What enforce mode does with a record."""

    PASSED = "passed"
    REDACTED = "redacted"
    DROPPED = "dropped"


class Judgement(NamedTuple):
    """One identifier: lower-cased type, normalized purposes, and the rule that stops
    it (``None`` when it may flow).

    With a purpose ledger (docs/ledger.md), ``purposes`` are what the identifier is judged
    by (the ledger's when it knows the identifier) and ``claimed`` the event's own
    normalized tags; ``not_granted`` names the finding ``purpose-not-granted``.
    """

    type: str
    purposes: tuple[str, ...]
    rule: Rule | None
    claimed: tuple[str, ...] | None = None
    """The event's tags, when the ledger setting is not ``off``; else ``None``."""
    from_ledger: bool = False
    """Judged by the ledger's purposes (the ledger knows the identifier)."""
    not_granted: bool = False

    @property
    def rule_name(self) -> str | None:
        """The finding's rule: ``purpose-not-granted`` replaces the matching rule when
        the event claimed what the ledger does not grant."""
        if self.rule is None:
            return None
        return PURPOSE_NOT_GRANTED if self.not_granted else self.rule.name


class Rejection(NamedTuple):
    """A record the policy cannot judge: it is dead-lettered as a schema problem."""

    path: str
    problem: str


class Decision(NamedTuple):
    """The policy's answer for one record, as enforce mode would act on it.

    ``identifiers[i]`` judges ``event.identifiers[i]``.
    """

    identifiers: tuple[Judgement, ...]
    verdict: Verdict


# A judgement depends only on the raw type and raw purpose tags, and real streams
# repeat a small set of those, so it is memoized per policy.
_MEMO_LIMIT = 65536
_V = TypeVar("_V")


def _remember(memo: dict[Any, _V], key: object, value: _V) -> _V:
    """Store a computed ``value`` in the policy's memo (emptied when full); return it."""
    return remember(memo, key, value, _MEMO_LIMIT)


def judge(policy: Policy, raw_type: str, raw_purposes: list[str] | None) -> Judgement | Rejection:
    """Judge one identifier. A rejection's path is relative to the identifier."""
    memo = policy.memo
    key = (raw_type, tuple(raw_purposes) if raw_purposes is not None else None)
    found: Judgement | Rejection | None = memo.get(key)
    if found is None:
        found = _judge(policy, raw_type, raw_purposes or ())
        if small_enough(raw_purposes or ()):
            _remember(memo, key, found)
    return found


def _judge(
    policy: Policy, raw_type: str, raw_purposes: list[str] | tuple[()]
) -> Judgement | Rejection:
    normalized = []
    for position, raw in enumerate(raw_purposes):
        tag = normalize_tag(raw)
        if tag is None:
            return Rejection(
                f"purposes[{position}]", "not a purpose tag (dot-separated segments of [a-z0-9_-])"
            )
        normalized.append(tag)
    purposes = tuple(normalized)
    taxonomy = policy.taxonomy
    if taxonomy is not None and taxonomy.unknown == "reject":
        unknown = taxonomy.first_unknown(purposes)
        if unknown is not None:
            return Rejection(f"purposes[{unknown}]", "purpose is not in the policy's taxonomy")
    kind = raw_type.lower()
    return Judgement(kind, purposes, policy.rule_for(kind, purposes))


LedgerPurposes = Callable[[int, str], "tuple[str, ...] | None"]
"""``(identifier index, lower-cased type)`` → the ledger's purposes for that identifier
of the event, or ``None`` when the ledger does not know it."""


def judge_by_ledger(
    policy: Policy,
    mode: LedgerMode,
    claimed: Judgement,
    granted: tuple[str, ...] | None,
) -> Judgement:
    """Re-judge an identifier already judged by its event's tags (``claimed``) under
    the ledger setting, given what the ledger grants it (docs/ledger.md). Memoized: it
    depends only on the type, the claimed tags and the grant, and streams repeat few."""
    memo = policy.memo
    key = ("by-ledger", mode, claimed.type, claimed.purposes, granted)
    found: Judgement | None = memo.get(key)
    if found is None:
        found = _judge_by_ledger(policy, mode, claimed, granted)
        if small_enough(claimed.purposes) and small_enough(granted or ()):
            _remember(memo, key, found)
    return found


def _judge_by_ledger(
    policy: Policy,
    mode: LedgerMode,
    claimed: Judgement,
    granted: tuple[str, ...] | None,
) -> Judgement:
    kind = claimed.type

    def passes(purposes: tuple[str, ...]) -> bool:
        return judge_ledger_purposes(policy, kind, purposes) is None

    view = purposes_to_judge(mode, granted, list(claimed.purposes), passes)
    if not view.from_ledger and view.purposes is not None:  # fallback: the event's tags
        return claimed._replace(claimed=claimed.purposes)
    purposes = tuple(view.purposes or ())
    return Judgement(
        kind,
        purposes,
        judge_ledger_purposes(policy, kind, purposes),
        claimed=claimed.purposes,
        from_ledger=view.from_ledger,
        not_granted=view.not_granted,
    )


def judge_ledger_purposes(policy: Policy, kind: str, purposes: tuple[str, ...]) -> Rule | None:
    """The rule for normalized purposes, memoized. A ledger's tag outside a ``reject``
    taxonomy is judged like any other: the ledger is not the event, and rejecting the
    event for it would dead-letter records for what a collection system wrote."""
    memo = policy.memo
    key = ("ledger", kind, purposes)
    if key in memo:
        found: Rule | None = memo[key]
        return found
    rule: Rule | None = policy.rule_for(kind, purposes)
    if small_enough(purposes):
        _remember(memo, key, rule)
    return rule


def decide(
    policy: Policy,
    event: Event,
    ledger_mode: LedgerMode = LedgerMode.OFF,
    ledger: LedgerPurposes | None = None,
) -> Decision | Rejection:
    """Judge every identifier of ``event`` under ``policy``; with a ledger setting
    other than ``off``, ``ledger`` says what the purpose ledger grants each identifier.

    The event's tags are validated whatever the setting: a malformed record is
    dead-lettered even when the ledger knows all its identifiers."""
    by_ledger = ledger is not None and ledger_mode is not LedgerMode.OFF
    memo = policy.memo
    judgements = []
    stopped = 0
    drop = False
    for index, identifier in enumerate(event.identifiers):
        raw = identifier.purposes
        # judge() inlined for the memo hit, the common case on the hot path
        result = memo.get((identifier.type, tuple(raw) if raw is not None else None))
        if result is None:
            result = judge(policy, identifier.type, raw)
        if isinstance(result, Rejection):
            return Rejection(f"identifiers[{index}].{result.path}", result.problem)
        if by_ledger:
            assert ledger is not None
            result = judge_by_ledger(policy, ledger_mode, result, ledger(index, result.type))
        rule = result.rule
        if rule is not None:
            stopped += 1
            drop = drop or rule.action is Action.DROP
        judgements.append(result)
    if not stopped:
        return Decision(tuple(judgements), Verdict.PASSED)
    if drop or stopped == len(judgements):
        return Decision(tuple(judgements), Verdict.DROPPED)
    return Decision(tuple(judgements), Verdict.REDACTED)
