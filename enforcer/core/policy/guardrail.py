"""The security guardrail (docs/policy.md: the security guardrail).

A policy under which an identifier whose purposes all lie within security namespaces
could reach the destination is refused at load, unless the file states
``security_override`` with a reason. The check runs on the compiled policy: it probes
the policy's own rule evaluation (:meth:`Policy.rule_for`) with security-only purpose
lists, once per identifier type the rules tell apart.

Why a handful of probes is enough: a rule's verdict on a tag depends only on which of
the namespaces and keys the policy mentions contain the tag. For every mentioned entry
``A`` within a security namespace (and each security namespace itself), the tag ``A``
and one fresh child of ``A`` stand for every tag within security namespaces. Whether a
*list* of such tags passes needs more than single tags (two ``all-within`` rules over
different namespaces each stop one tag, not the pair), but not every subset: the
conditions ``any-within`` and ``any-outside`` hold for a list when they hold for one of
its tags, and the others fail for a list when they fail for one of its tags. So the
largest list of probe tags that no ``any-within`` / ``any-outside`` rule stops on its
own passes whenever any security-only list passes.

Taxonomy rejection is not counted as protection: purposes from a purpose ledger are
judged by the rules alone (docs/ledger.md), whatever the taxonomy says.
"""

from __future__ import annotations

from dataclasses import dataclass

from enforcer.core.policy.compiled import Policy, Rule
from enforcer.core.policy.spec import Condition
from enforcer.core.purposes import within, within_any

BUILTIN_SECURITY_NAMESPACES: tuple[str, ...] = (
    "security",
    "essential.service.security",
    "essential.service.authentication",
    "essential.fraud_detection",
)
"""The security namespaces every policy is checked against: ``security`` and the Fides
data-use keys for the same purposes (docs/contract.md: default policy)."""

SECURITY_SET = "security"
"""A policy's namespace set of this name adds its own security namespaces."""

ANY_OTHER_TYPE = ""
"""The probe type standing for every type no rule names (no rule's ``types`` holds it)."""

_CHILD = "probe"


@dataclass(frozen=True, slots=True)
class Leak:
    """A security-only identifier the policy lets through: its type and purposes."""

    type: str
    """Lower-cased; :data:`ANY_OTHER_TYPE` for a type no rule names."""
    purposes: tuple[str, ...]
    through_allow_list: bool
    """True when the destination's allow-list admits one of ``purposes``."""

    def describe(self, types_named: bool) -> str:
        """``a phone with purposes [security]``: the example in the refusal."""
        if self.type != ANY_OTHER_TYPE:
            kind = f"an identifier of type '{self.type}'"
        elif types_named:
            kind = "an identifier of a type no rule names"
        else:
            kind = "an identifier of any type"
        return f"{kind} with purposes [{', '.join(self.purposes)}]"


def security_namespaces(policy: Policy) -> tuple[str, ...]:
    """The built-in security namespaces and the policy's own ``security`` set."""
    extra = tuple(ns for ns in policy.security_set if ns not in BUILTIN_SECURITY_NAMESPACES)
    return BUILTIN_SECURITY_NAMESPACES + extra


def find_leak(policy: Policy) -> Leak | None:
    """A security-only identifier that no rule of ``policy`` stops, or ``None``."""
    secure = security_namespaces(policy)
    probes = _probe_tags(policy, secure)
    named = sorted({t for rule in policy.rules for t in rule.types or ()})
    for kind in (*named, ANY_OTHER_TYPE):
        leak = _leak_for(policy, kind, probes)
        if leak is not None:
            return leak
    return None


def _probe_tags(policy: Policy, secure: tuple[str, ...]) -> tuple[str, ...]:
    """Tags within security namespaces, one for each way the policy can tell them apart."""
    mentioned: set[str] = set(policy.allowed)
    for rule in policy.rules:
        mentioned.update(rule.namespaces)
        mentioned.update(rule.keys)
    if policy.taxonomy is not None:
        mentioned.update(policy.taxonomy.keys)
        mentioned.update(policy.taxonomy.namespaces)
    anchors = set(secure) | {m for m in mentioned if within_any(m, secure)}
    tags: list[str] = []
    for anchor in sorted(anchors):
        child = anchor + "." + _CHILD
        while child in mentioned:  # a child the policy does not name itself
            child += "-" + _CHILD
        tags += [anchor, child]
    return tuple(tags)


def _leak_for(policy: Policy, kind: str, probes: tuple[str, ...]) -> Leak | None:
    """The smallest security-only purpose list of type ``kind`` found to pass."""
    for tag in probes:  # one tag is the clearest example
        if policy.rule_for(kind, (tag,)) is None:
            return _leak(policy, kind, (tag,))
    # Tags that no "any" rule stops alone; the largest such list passes if any list does.
    pool = [tag for tag in probes if not any(_stops_any(rule, kind, tag) for rule in policy.rules)]
    if not pool or policy.rule_for(kind, tuple(pool)) is not None:
        return None
    for tag in list(pool):  # shrink the example while it still passes
        smaller = [t for t in pool if t != tag]
        if smaller and policy.rule_for(kind, tuple(smaller)) is None:
            pool = smaller
    return _leak(policy, kind, tuple(pool))


def _stops_any(rule: Rule, kind: str, tag: str) -> bool:
    """True for an ``any-within`` / ``any-outside`` rule that stops ``tag`` alone (and
    so every list holding it)."""
    if rule.condition not in (Condition.ANY_WITHIN, Condition.ANY_OUTSIDE):
        return False
    return rule.matches(kind, (tag,))


def _leak(policy: Policy, kind: str, purposes: tuple[str, ...]) -> Leak:
    admitted = any(within(tag, ns) for tag in purposes for ns in policy.allowed)
    return Leak(kind, purposes, admitted)
