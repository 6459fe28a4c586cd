"""The decision: one validated identity event in, what happens to each identifier out.

Pure: no I/O, no clock, no secrets. The live agent, replay and ``explain`` all reach
it through :mod:`enforcer.step`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from enforcer.models import Action, Event
from enforcer.policy.compiled import Policy, Rule
from enforcer.purposes import normalize_tag


class Verdict(StrEnum):
    """What enforce mode does with a record."""

    PASSED = "passed"
    REDACTED = "redacted"
    DROPPED = "dropped"


class Judgement(NamedTuple):
    """One identifier: lower-cased type, normalized purposes, and the rule that stops
    it (``None`` when it may flow)."""

    type: str
    purposes: tuple[str, ...]
    rule: Rule | None


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

    def findings(self) -> list[tuple[int, Judgement]]:
        """``(index, judgement)`` of each identifier a rule matched."""
        return [(i, j) for i, j in enumerate(self.identifiers) if j.rule is not None]


# A judgement depends only on the raw type and raw purpose tags, and real streams
# repeat a small set of those, so it is memoized per policy.
_MEMO_LIMIT = 65536


def judge(policy: Policy, raw_type: str, raw_purposes: list[str] | None) -> Judgement | Rejection:
    """Judge one identifier. A rejection's path is relative to the identifier."""
    memo = policy.memo
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    key = (raw_type, tuple(raw_purposes) if raw_purposes is not None else None)
    found = memo.get(key)
    if found is None:
        found = memo[key] = _judge(policy, raw_type, raw_purposes or ())
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


def decide(policy: Policy, event: Event) -> Decision | Rejection:
    """Judge every identifier of ``event`` under ``policy``."""
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
