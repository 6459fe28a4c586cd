"""A policy compiled once at start: frozen, and evaluated per identifier with no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from enforcer.models import Action, Mode
from enforcer.policy.spec import UNKNOWN_PURPOSE_RULE, Condition, PolicyFile
from enforcer.purposes import within_any

DEFAULT_DESTINATION = "audience-building"


class PolicyConfigError(ValueError):
    """A policy that cannot be used as configured (the message says why)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule: the first one that matches an identifier decides."""

    name: str
    condition: Condition
    namespaces: tuple[str, ...]
    types: frozenset[str] | None
    action: Action
    description: str = ""

    def matches(self, identifier_type: str, purposes: tuple[str, ...]) -> bool:
        """True when this rule applies to an identifier of that type and purposes."""
        if self.types is not None and identifier_type not in self.types:
            return False
        condition = self.condition
        if condition is Condition.NO_PURPOSE:
            return not purposes
        if condition is Condition.ALL_WITHIN:
            return bool(purposes) and all(within_any(p, self.namespaces) for p in purposes)
        if condition is Condition.ANY_WITHIN:
            return any(within_any(p, self.namespaces) for p in purposes)
        if condition is Condition.ANY_OUTSIDE:
            return not all(within_any(p, self.namespaces) for p in purposes)
        return not any(within_any(p, self.namespaces) for p in purposes)


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """The declared vocabulary; ``unknown`` says what a tag outside it causes."""

    purposes: tuple[str, ...]
    unknown: str

    def first_unknown(self, purposes: tuple[str, ...]) -> int | None:
        """Index of the first tag outside the taxonomy, or ``None``."""
        for index, tag in enumerate(purposes):
            if not within_any(tag, self.purposes):
                return index
        return None


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated, compiled policy for one destination."""

    version: str
    origin: str
    mode: Mode
    destination: str
    rules: tuple[Rule, ...]
    taxonomy: Taxonomy | None
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """Scratch space for the evaluator's memo of judgements; not part of the policy."""

    def with_mode(self, mode: Mode) -> Policy:
        """The same policy run in another mode (a setting overrides the file)."""
        return Policy(self.version, self.origin, mode, self.destination, self.rules, self.taxonomy)

    def rule_for(self, identifier_type: str, purposes: tuple[str, ...]) -> Rule | None:
        """The rule that stops this identifier, or ``None`` when it may flow.

        ``identifier_type`` is lower-cased and ``purposes`` normalized; an unknown tag
        under a ``reject`` taxonomy is the caller's to handle (it dead-letters).
        """
        return next((r for r in self.rules if r.matches(identifier_type, purposes)), None)


def compile_policy(
    spec: PolicyFile, *, version: str, origin: str, destination: str = DEFAULT_DESTINATION
) -> Policy:
    """Compile a validated policy file for one destination."""
    rules: list[Rule] = []
    taxonomy = None
    if spec.taxonomy is not None:
        taxonomy = Taxonomy(tuple(spec.taxonomy.purposes), spec.taxonomy.unknown)
        if spec.taxonomy.unknown in ("redact", "drop"):
            rules.append(
                Rule(
                    UNKNOWN_PURPOSE_RULE,
                    Condition.ANY_OUTSIDE,
                    taxonomy.purposes,
                    None,
                    Action(spec.taxonomy.unknown),
                    "a purpose outside the declared taxonomy",
                )
            )
    for rule in spec.rules:
        within = rule.within
        namespaces = spec.namespace_sets[within] if isinstance(within, str) else within or []
        rules.append(
            Rule(
                rule.name,
                rule.when,
                tuple(namespaces),
                frozenset(rule.types) if rule.types is not None else None,
                rule.action,
                rule.description,
            )
        )
    if spec.destinations:
        dest = spec.destinations.get(destination)
        if dest is None:
            known = ", ".join(sorted(spec.destinations))
            raise PolicyConfigError(
                f"destination '{destination}' is not declared in the policy (it declares: {known})"
            )
        rules.append(
            Rule(
                dest.rule,
                Condition.NONE_WITHIN,
                tuple(dest.allow),
                None,
                dest.action,
                f"no purpose allowed for destination '{destination}'",
            )
        )
    return Policy(version, origin, spec.mode, destination, tuple(rules), taxonomy)
