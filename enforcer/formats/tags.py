"""The schema tag convention (docs/formats.md: "Schema tags"): which of a field's tags
make it an identifier of a type, and which name its purposes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from enforcer.core.policy.spec import DEFAULT_PURPOSE_PREFIX, DEFAULT_TYPE_TAGS, TagConventionSpec


@dataclass(frozen=True, slots=True)
class TagConvention:
    """Type tags (compared without regard to case) and the purpose tags' prefix."""

    types: Mapping[str, str]
    """Upper-cased tag → identifier type."""
    purpose_prefix: str
    """Lower-cased; a tag that starts with it, in any case, names a purpose."""

    @classmethod
    def of(cls, spec: TagConventionSpec | None) -> TagConvention:
        """The policy's convention, or the default one."""
        if spec is None:
            return cls({k.upper(): v for k, v in DEFAULT_TYPE_TAGS.items()}, DEFAULT_PURPOSE_PREFIX)
        return cls(
            {tag.upper(): kind for tag, kind in spec.types.items()}, spec.purpose_prefix.lower()
        )

    def identifier_type(self, tags: tuple[str, ...]) -> str | None:
        """The identifier type the first type tag among ``tags`` names, or ``None``."""
        types = self.types
        for tag in tags:
            kind = types.get(tag.upper())
            if kind is not None:
                return kind
        return None

    def purposes(self, tags: tuple[str, ...]) -> list[str]:
        """The purposes ``tags`` name, as written after the prefix (the decision
        normalizes and checks them as it does an event's tags)."""
        size = len(self.purpose_prefix)
        return [tag[size:] for tag in tags if tag[:size].lower() == self.purpose_prefix]
