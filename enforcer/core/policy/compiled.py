"""A policy compiled once at start: frozen, and evaluated per identifier with no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from enforcer.core.ledger_view import LedgerMode
from enforcer.core.models import Action, Mode
from enforcer.core.policy.spec import (
    DEFAULT_TYPE_TAGS,
    UNKNOWN_PURPOSE_RULE,
    Condition,
    FormatsSpec,
    PolicyFile,
)
from enforcer.core.policy.vocabulary import FIDES, builtin_vocabulary
from enforcer.core.purposes import within, within_any

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
    keys: frozenset[str] = frozenset()
    """Tags matched exactly, besides ``namespaces`` (a built-in vocabulary's keys)."""

    def matches(self, identifier_type: str, purposes: tuple[str, ...]) -> bool:
        """True when this rule applies to an identifier of that type and purposes."""
        if self.types is not None and identifier_type not in self.types:
            return False
        condition = self.condition
        if condition is Condition.NO_PURPOSE:
            return not purposes
        if condition is Condition.ALL_WITHIN:
            return bool(purposes) and all(self._covers(p) for p in purposes)
        if condition is Condition.ANY_WITHIN:
            return any(self._covers(p) for p in purposes)
        if condition is Condition.ANY_OUTSIDE:
            return not all(self._covers(p) for p in purposes)
        return not any(self._covers(p) for p in purposes)

    def _covers(self, tag: str) -> bool:
        return tag in self.keys or within_any(tag, self.namespaces)


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """The declared vocabulary; ``unknown`` says what a tag outside it causes.

    A tag is in it when it is one of ``keys`` (built-in vocabularies, closed lists)
    or lies within one of ``namespaces`` (the policy's own ``purposes``).
    """

    keys: frozenset[str]
    namespaces: tuple[str, ...]
    unknown: str

    def known(self, tag: str) -> bool:
        """True when the normalized ``tag`` is in the taxonomy."""
        return tag in self.keys or within_any(tag, self.namespaces)

    def first_unknown(self, purposes: tuple[str, ...]) -> int | None:
        """Index of the first tag outside the taxonomy, or ``None``."""
        for index, tag in enumerate(purposes):
            if not self.known(tag):
                return index
        return None

    def names(self, namespace: str) -> bool:
        """True when a rule's ``namespace`` names something in the taxonomy: it is in
        it, or something in it lies within the namespace (``marketing`` for
        ``marketing.advertising``)."""
        return self.known(namespace) or any(
            within(entry, namespace) for entry in (*self.keys, *self.namespaces)
        )


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated, compiled policy for one destination."""

    version: str
    origin: str
    mode: Mode
    destination: str
    rules: tuple[Rule, ...]
    taxonomy: Taxonomy | None
    allowed: tuple[str, ...] = ()
    """The destination's allowed namespaces when the policy has an allow-list for it."""
    ledger: LedgerMode | None = None
    """The file's ``ledger`` setting (``None``: decided by whether a ledger is configured)."""
    security_set: tuple[str, ...] = ()
    """The file's namespace set ``security``: security namespaces of its own, checked by
    the guardrail besides the built-in ones (:mod:`enforcer.core.policy.guardrail`)."""
    security_override: str | None = None
    """The stated reason, when security-only identifiers may reach the destination
    under this policy and the file says so (``security_override``); such a policy is
    flagged in metrics, ``/readyz`` and every violation."""
    stated_override: str | None = field(default=None, compare=False, repr=False)
    """The file's ``security_override`` reason as written, before the guardrail decided
    whether the policy needs it."""
    formats: FormatsSpec | None = None
    """The file's ``formats`` section as validated: field mappings and the schema tag
    convention, compiled by :mod:`enforcer.formats` (docs/formats.md)."""
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """Scratch space for the evaluator's memo of judgements; not part of the policy."""

    def with_mode(self, mode: Mode) -> Policy:
        """The same policy run in another mode (a setting overrides the file)."""
        return replace(self, mode=mode, memo={})

    def rule_for(self, identifier_type: str, purposes: tuple[str, ...]) -> Rule | None:
        """The rule that stops this identifier, or ``None`` when it may flow.

        ``identifier_type`` is lower-cased and ``purposes`` normalized; an unknown tag
        under a ``reject`` taxonomy is the caller's to handle (it dead-letters).
        """
        return next((r for r in self.rules if r.matches(identifier_type, purposes)), None)

    def ledger_mode(self, ledger_configured: bool) -> LedgerMode:
        """The ledger setting in effect: the file's, else ``authoritative`` when a ledger
        is configured and ``off`` when not. Raises :class:`PolicyConfigError` when the
        file asks for a ledger and none is configured."""
        if self.ledger is None:
            return LedgerMode.AUTHORITATIVE if ledger_configured else LedgerMode.OFF
        if self.ledger is not LedgerMode.OFF and not ledger_configured:
            raise PolicyConfigError(
                f"{self.origin}: the policy sets 'ledger: {self.ledger.value}' but no ledger "
                "is configured (--ledger-topic for run, --ledger-file or --ledger-topic for "
                "replay, --ledger-file for explain)"
            )
        return self.ledger

    def is_allow_list(self, rule: Rule) -> bool:
        """True for the rule made from the destination's allow-list (always the last)."""
        return bool(self.allowed) and rule is self.rules[-1]

    def taxonomy_warnings(self) -> list[str]:
        """One line per namespace that names nothing in the taxonomy (usually a typo:
        ``marketing.advertizing`` would let nothing through). Without a declared
        taxonomy, the destination's allow-list is checked against the built-in one (the
        Fides data uses and ``security``)."""
        taxonomy = self.taxonomy
        if taxonomy is None:
            implicit = Taxonomy(builtin_vocabulary(FIDES).keys, ("security",), "ignore")
            return [
                f"destination '{self.destination}': allowed namespace '{namespace}' is not "
                "in the Fides taxonomy (the policy declares no taxonomy of its own)"
                for namespace in self.allowed
                if not implicit.names(namespace)
            ]
        return [
            f"rule '{rule.name}': '{namespace}' is not in the policy's taxonomy"
            for rule in self.rules
            if rule.name != UNKNOWN_PURPOSE_RULE
            for namespace in rule.namespaces
            if not taxonomy.names(namespace)
        ]

    def formats_warnings(self) -> list[str]:
        """Where the ``formats`` section stops reading fields that the default tag
        convention marks as identifiers (the security guardrail judges rules, not which
        fields are read): a convention without a default type tag, a mapping that reads
        no schema tags."""
        if self.formats is None:
            return []
        found = []
        kept = {tag.upper() for tag in self.formats.tags.types}
        dropped = [tag for tag in DEFAULT_TYPE_TAGS if tag not in kept]
        if dropped:
            found.append(
                "formats.tags.types leaves out the default type tag(s) "
                + ", ".join(dropped)
                + ": fields tagged so are not read as identifiers"
            )
        found.extend(
            f"formats mapping '{mapping.name}' reads no schema tags (schema_tags: false): "
            "a field the schema tags as an identifier is judged only if the mapping names it"
            for mapping in self.formats.mappings
            if not mapping.schema_tags
        )
        return found

    def warnings(self) -> list[str]:
        """Every warning about this policy: the taxonomy's, and a security override
        that the policy does not need (it would flag a policy for nothing)."""
        found = self.taxonomy_warnings() + self.formats_warnings()
        if self.stated_override is not None and self.security_override is None:
            found.append(
                "'security_override' has no effect: no identifier whose purposes all lie "
                f"within security namespaces can reach {self.destination} under this policy"
            )
        return found


def compile_policy(
    spec: PolicyFile, *, version: str, origin: str, destination: str = DEFAULT_DESTINATION
) -> Policy:
    """Compile a validated policy file for one destination."""
    rules: list[Rule] = []
    taxonomy = None
    if spec.taxonomy is not None:
        keys = frozenset(k for name in spec.taxonomy.include for k in builtin_vocabulary(name).keys)
        taxonomy = Taxonomy(keys, tuple(spec.taxonomy.purposes), spec.taxonomy.unknown)
        if spec.taxonomy.unknown in ("redact", "drop"):
            rules.append(
                Rule(
                    UNKNOWN_PURPOSE_RULE,
                    Condition.ANY_OUTSIDE,
                    taxonomy.namespaces,
                    None,
                    Action(spec.taxonomy.unknown),
                    "A purpose outside the declared taxonomy.",
                    taxonomy.keys,
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
    allowed: tuple[str, ...] = ()
    if spec.destinations:
        dest = spec.destinations.get(destination)
        if dest is None:
            known = ", ".join(sorted(spec.destinations))
            raise PolicyConfigError(
                f"destination '{destination}' is not declared in the policy (it declares: {known})"
            )
        allowed = tuple(dest.allow)
        rules.append(
            Rule(
                dest.rule,
                Condition.NONE_WITHIN,
                allowed,
                None,
                dest.action,
                dest.description
                or f"None of its purposes is one {destination} allows ({', '.join(allowed)}).",
            )
        )
    return Policy(
        version,
        origin,
        spec.mode,
        destination,
        tuple(rules),
        taxonomy,
        allowed,
        spec.ledger,
        tuple(spec.namespace_sets.get("security", ())),
        stated_override=spec.security_override.reason if spec.security_override else None,
        formats=spec.formats,
    )
