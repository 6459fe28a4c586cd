"""Purpose tags: normalization and namespace matching (docs/contract.md: default policy)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.purposes import normalize_tag, within

segment = st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True)
tags = st.lists(segment, min_size=1, max_size=4).map(".".join)


def test_tags_are_trimmed_and_lower_cased() -> None:
    """Whitespace around a tag and upper case do not matter."""
    assert normalize_tag("  Security.MFA \t") == "security.mfa"


def test_malformed_tags_are_refused() -> None:
    """Empty segments, double dots, spaces inside and other characters are invalid."""
    for raw in [
        "",
        " ",
        "security..mfa",
        ".security",
        "security.",
        "security mfa",
        "sécurité",
        "a/b",
    ]:
        assert normalize_tag(raw) is None, raw


def test_namespace_matching_is_by_whole_segments() -> None:
    """security.mfa is within security; securityx and security_team are not."""
    assert within("security", "security")
    assert within("security.mfa", "security")
    assert within("security.mfa.totp", "security.mfa")
    assert not within("securityx", "security")
    assert not within("security_team", "security")
    assert not within("security", "security.mfa")


@given(tags, tags)
def test_within_means_equal_or_dotted_prefix(tag: str, namespace: str) -> None:
    """A tag lies within a namespace exactly when its segments start with the namespace's."""
    expected = tag.split(".")[: len(namespace.split("."))] == namespace.split(".")
    assert within(tag, namespace) is expected


@given(tags)
def test_normalizing_is_idempotent(tag: str) -> None:
    """A normalized tag normalizes to itself, also when written in upper case."""
    assert normalize_tag(tag) == tag
    assert normalize_tag(f" {tag.upper()} ") == tag
