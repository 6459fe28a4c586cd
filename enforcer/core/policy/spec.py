"""The policy file format: what a YAML policy may say, validated strictly.

These models are the published schema (``enforcer policy schema`` prints it as
JSON Schema for editors). They describe the file; :mod:`enforcer.core.policy.compiled`
holds what the evaluator runs.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from enforcer.core.identifier_types import checked_type_name
from enforcer.core.ledger_view import LedgerMode
from enforcer.core.models import Action, Mode
from enforcer.core.policy.vocabulary import VocabularyName
from enforcer.core.purposes import normalize_namespace

Namespace = Annotated[str, AfterValidator(normalize_namespace)]
RULE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
RULE_NAME_MAX = 64
RuleName = Annotated[str, Field(pattern=RULE_NAME_PATTERN, max_length=RULE_NAME_MAX)]
IdentifierTypeName = Annotated[
    str, AfterValidator(lambda t: checked_type_name(t).lower()), Field(min_length=1)
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
        ),
    )

    @field_validator("reason", mode="after")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a security override needs a reason that is not blank")
        return value.strip()


# A record path (docs/formats.md: "Field mappings"): names joined by dots, each name
# followed by any number of list indexes, `[*]` (every item) or `[n]` (the n-th). A name
# is any run of characters other than dots, brackets, white space and control characters.
# enforcer.formats.paths parses the same grammar (a property test holds the two equal).
RECORD_PATH_PATTERN = r"[^.\[\]\s\x00-\x1f\x7f]+(?:\[(?:\*|0|[1-9][0-9]{0,8})\])*"
RECORD_PATH = re.compile(rf"{RECORD_PATH_PATTERN}(?:\.{RECORD_PATH_PATTERN})*")


def check_record_path(text: str) -> str:
    """``text`` when it is a record path; raise with the rule it breaks."""
    if not RECORD_PATH.fullmatch(text):
        raise ValueError(
            "not a record path: names joined by '.', each optionally followed by "
            "'[*]' (every item of a list) or '[n]' (the n-th item), as in 'phones[*].number'"
        )
    return text


RecordPath = Annotated[str, AfterValidator(check_record_path)]
MappingName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]

DEFAULT_TYPE_TAGS = {"PII_PHONE": "phone", "PII_EMAIL": "email", "PII_DEVICE_ID": "device_id"}
"""The schema tags that mark a field as an identifier of a type, unless the policy
names its own (docs/formats.md: "Schema tags")."""
DEFAULT_PURPOSE_PREFIX = "purpose:"


def wildcards(path: str) -> int:
    """How many ``[*]`` a record path has."""
    return path.count("[*]")


class PurposesPathSpec(BaseModel):
    """Purposes read from the record: the tag list at ``path`` (its ``[*]`` take the
    identifier's list positions, in order)."""

    model_config = _FILE

    path: RecordPath


def _purposes_source(value: Any) -> str | None:
    if isinstance(value, dict | PurposesPathSpec):
        return "path"
    if isinstance(value, list):
        return "fixed"
    if isinstance(value, str):
        return "named"
    return None


Purposes = Annotated[
    Annotated[PurposesPathSpec, Tag("path")]
    | Annotated[list[Namespace], Tag("fixed")]
    | Annotated[Literal["schema-tags", "ledger"], Tag("named")],
    Discriminator(
        _purposes_source,
        custom_error_type="purposes_source",
        custom_error_message=(
            "must be {path: <record path>}, a list of purpose tags, 'schema-tags' or 'ledger'"
        ),
    ),
]


class IdentifierMappingSpec(BaseModel):
    """One identifier field of a mapped record."""

    model_config = _FILE

    path: RecordPath = Field(description="Where the identifier's value is (a string).")
    type: IdentifierTypeName
    purposes: Purposes = Field(
        description=(
            "Where its purposes come from: {path: ...} (a tag list in the same record), a "
            "fixed list of tags, 'schema-tags' (its field's purpose tags in the schema) or "
            "'ledger' (none from the record: the purpose ledger decides)."
        )
    )

    @model_validator(mode="after")
    def _purposes_bind_to_the_identifier(self) -> IdentifierMappingSpec:
        if isinstance(self.purposes, PurposesPathSpec) and wildcards(
            self.purposes.path
        ) > wildcards(self.path):
            raise ValueError(
                "the purposes path has more '[*]' than the identifier's path: each '[*]' "
                "of it takes the position of the identifier's '[*]' in the same order"
            )
        return self


class MappingSpec(BaseModel):
    """Where a topic's records keep the event's fields and their identifiers."""

    model_config = _FILE

    name: MappingName
    topics: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        min_length=1,
        description="The source topics it applies to (default: every topic).",
    )
    records: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        min_length=1,
        description=(
            "Only framed records whose schema's record name is one of these (an Avro full "
            "name, a Protobuf message's full name, a JSON Schema title)."
        ),
    )
    subject_id: RecordPath
    event_id: RecordPath | None = Field(
        default=None,
        description="Default: '<topic>/<partition>/<offset>' (the same record, the same id).",
    )
    occurred_at: RecordPath = Field(
        description="An RFC 3339 string, integer epoch milliseconds or a schema timestamp."
    )
    empty: Literal["null", "remove"] = Field(
        default="null",
        description="Plain JSON and JSON Schema: a removed identifier's field is set to "
        "null, or removed.",
    )
    schema_tags: bool = Field(
        default=True,
        description="Also judge every field its schema tags with an identifier type tag.",
    )
    identifiers: list[IdentifierMappingSpec] = Field(default_factory=list)

    @field_validator("empty", mode="before")
    @classmethod
    def _unquoted_null(cls, value: object) -> object:
        # YAML reads an unquoted `null` as no value; here it can only mean "null".
        return "null" if value is None else value

    @model_validator(mode="after")
    def _paths_once(self) -> MappingSpec:
        for name in ("subject_id", "event_id", "occurred_at"):
            path = getattr(self, name)
            if path is not None and wildcards(path):
                raise ValueError(f"'{name}' names one value: its path cannot have '[*]'")
        paths = [item.path for item in self.identifiers]
        repeated = sorted({p for p in paths if paths.count(p) > 1})
        if repeated:
            raise ValueError(f"identifier paths must be unique; repeated: {', '.join(repeated)}")
        return self


class TagConventionSpec(BaseModel):
    """How schema tags name identifier types and purposes."""

    model_config = _FILE

    types: dict[Annotated[str, Field(min_length=1)], IdentifierTypeName] = Field(
        default_factory=lambda: dict(DEFAULT_TYPE_TAGS),
        min_length=1,
        description="Tag → identifier type (compared without regard to case). Replaces the "
        "default: " + ", ".join(f"{k}: {v}" for k, v in DEFAULT_TYPE_TAGS.items()) + ".",
    )
    purpose_prefix: str = Field(
        default=DEFAULT_PURPOSE_PREFIX,
        min_length=1,
        description="A tag starting with it (any case) names a purpose of the field.",
    )


class FormatsSpec(BaseModel):
    """Records in other shapes than the identity event (docs/formats.md)."""

    model_config = _FILE

    tags: TagConventionSpec = Field(default_factory=TagConventionSpec)
    mappings: list[MappingSpec] = Field(
        default_factory=list,
        description="Tried in order; the first whose topics and records match a record reads it.",
    )

    @model_validator(mode="after")
    def _names_once(self) -> FormatsSpec:
        names = [mapping.name for mapping in self.mappings]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"mapping names must be unique; repeated: {', '.join(repeated)}")
        return self


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

    formats: FormatsSpec | None = Field(
        default=None,
        description=(
            "Records in other shapes than the identity event: where the identifiers are in "
            "a topic's own fields, and the schema tag convention (docs/formats.md)."
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
        # A worker serves one destination: its rule joins the others, so names must be
        # unique among the rules and each destination's own; two destinations may
        # share one (both keep the default name).
        names = [rule.name for rule in self.rules]
        if self.taxonomy is not None and self.taxonomy.unknown in ("redact", "drop"):
            names.append(UNKNOWN_PURPOSE_RULE)
        repeated = {n for n in names if names.count(n) > 1}
        repeated |= {dest.rule for dest in self.destinations.values() if dest.rule in names}
        duplicates = sorted(repeated)
        if duplicates:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(duplicates)}")
        for rule in self.rules:
            if isinstance(rule.within, str) and rule.within not in self.namespace_sets:
                raise ValueError(
                    f"rule '{rule.name}' refers to namespace set '{rule.within}', "
                    "which `namespace_sets` does not define"
                )
        return self
