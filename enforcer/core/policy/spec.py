"""The policy file format: what a YAML policy may say, validated strictly.

These models are the published schema (``enforcer policy schema`` prints it as
JSON Schema for editors). They describe the file; :mod:`enforcer.core.policy.compiled`
holds what the evaluator runs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from enforcer.core.ledger_view import LedgerMode
from enforcer.core.models import Action, Mode
from enforcer.core.policy.vocabulary import VocabularyName
from enforcer.core.purposes import normalize_namespace

Namespace = Annotated[str, AfterValidator(normalize_namespace)]
RuleName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]
IdentifierTypeName = Annotated[
    str, AfterValidator(lambda t: t.strip().lower()), Field(min_length=1)
]

UNKNOWN_PURPOSE_RULE = "unknown-purpose"

_FILE = ConfigDict(extra="forbid", frozen=True)


class Condition(StrEnum):
    """When a rule matches an identifier, judged on its normalized purposes."""

    NO_PURPOSE = "no-purpose"
    """No purpose declared (missing, null or empty)."""
    ALL_WITHIN = "all-within"
    """At least one purpose, and every purpose lies within the rule's namespaces."""
    ANY_WITHIN = "any-within"
    """At least one purpose lies within the rule's namespaces."""
    NONE_WITHIN = "none-within"
    """No purpose lies within the rule's namespaces (also true with no purpose)."""
    ANY_OUTSIDE = "any-outside"
    """At least one purpose lies outside the rule's namespaces."""


class RuleSpec(BaseModel):
    """One rule. Rules are tried in order; the first that matches decides."""

    model_config = _FILE

    name: RuleName
    description: str = ""
    when: Condition
    within: str | list[Namespace] | None = Field(
        default=None,
        description="A namespace set name from `namespace_sets`, or a list of namespaces.",
    )
    types: list[IdentifierTypeName] | None = Field(
        default=None, description="Only identifiers of these types (default: all types)."
    )
    action: Action = Action.REDACT

    @model_validator(mode="after")
    def _within_matches_condition(self) -> RuleSpec:
        if self.when is Condition.NO_PURPOSE and self.within is not None:
            raise ValueError("a 'no-purpose' rule takes no 'within'")
        if self.when is not Condition.NO_PURPOSE and not self.within:
            raise ValueError(f"a '{self.when.value}' rule needs 'within'")
        return self


class DestinationSpec(BaseModel):
    """Allow-list mode for one destination: a purpose must lie within ``allow``."""

    model_config = _FILE

    allow: list[Namespace] = Field(min_length=1)
    action: Action = Action.REDACT
    rule: RuleName = "purpose-not-allowed"
    description: str = Field(
        default="",
        description="What the rule means, for explain and reports (default: generated).",
    )


class TaxonomySpec(BaseModel):
    """The declared purpose vocabulary and what to do with a tag outside it."""

    model_config = _FILE

    include: list[VocabularyName] = Field(
        default_factory=list,
        description=(
            "Built-in vocabularies, taken key by key: 'fides' is every data use of the "
            "Fides taxonomy. A tag is in such a vocabulary only when it is one of its keys."
        ),
    )
    purposes: list[Namespace] = Field(
        default_factory=list,
        description="Namespaces of your own: a tag within one of them is in the taxonomy.",
    )
    unknown: Literal["ignore", "redact", "drop", "reject"] = Field(
        default="reject",
        description=(
            "ignore: judge the tag like any other; redact/drop: a finding of rule "
            "'unknown-purpose' with that action; reject: dead-letter the record."
        ),
    )

    @model_validator(mode="after")
    def _declares_something(self) -> TaxonomySpec:
        if not self.include and not self.purposes:
            raise ValueError("a taxonomy needs 'include', 'purposes' or both")
        return self


class SecurityOverrideSpec(BaseModel):
    """The explicit statement that security-only identifiers may reach the destination."""

    model_config = _FILE

    reason: str = Field(
        min_length=1,
        description=(
            "Why identifiers given only to secure an account may reach the destination "
            "under this policy: shown by `policy check` and in `/readyz`."
        )
    )

    @field_validator("reason", mode="after")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a security override needs a reason that is not blank")
        return value.strip()


class PolicyFile(BaseModel):
    """A whole policy file."""

    model_config = _FILE

    format: Literal[1] = 1
    mode: Mode = Mode.ENFORCE
    namespace_sets: dict[RuleName, list[Namespace]] = Field(default_factory=dict)
    rules: list[RuleSpec] = Field(min_length=1)
    destinations: dict[str, DestinationSpec] = Field(default_factory=dict)
    taxonomy: TaxonomySpec | None = None
    ledger: LedgerMode | None = Field(
        default=None,
        description=(
            "What decides an identifier's purposes: 'off' (the event's tags), 'fallback' "
            "(the purpose ledger when it knows the identifier, else the event's tags) or "
            "'authoritative' (the ledger; an identifier it does not know has no purpose). "
            "Default: 'authoritative' when a ledger is configured, else 'off'."
        ),
    )

    security_override: SecurityOverrideSpec | None = Field(
        default=None,
        description=(
            "Accept a policy under which an identifier whose purposes all lie within "
            "security namespaces can reach the destination. Without it such a policy is "
            "refused; with it the policy runs flagged (metric "
            "enforcer_policy_security_override, /readyz, every violation)."
        ),
    )

    @field_validator("ledger", mode="before")
    @classmethod
    def _unquoted_off(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted `off` as false; it can only mean `ledger: off`.
        return "off" if value is False else value

    @model_validator(mode="after")
    def _references_resolve(self) -> PolicyFile:
        names = [rule.name for rule in self.rules]
        names += [dest.rule for dest in self.destinations.values()]
        if self.taxonomy is not None and self.taxonomy.unknown in ("redact", "drop"):
            names.append(UNKNOWN_PURPOSE_RULE)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(duplicates)}")
        for rule in self.rules:
            if isinstance(rule.within, str) and rule.within not in self.namespace_sets:
                raise ValueError(
                    f"rule '{rule.name}' refers to namespace set '{rule.within}', "
                    "which `namespace_sets` does not define"
                )
        return self
