"""The schema tag convention (docs/formats.md: "Schema tags")."""

from __future__ import annotations

from enforcer.core.policy.spec import TagConventionSpec
from enforcer.formats.tags import TagConvention


def test_the_default_convention() -> None:
    """PII_PHONE, PII_EMAIL, PII_DEVICE_ID name types in any case; purpose: tags name purposes."""
    tags = TagConvention.of(None)
    assert tags.identifier_type(("PII", "PII_PHONE")) == "phone"
    assert tags.identifier_type(("pii_email",)) == "email"
    assert tags.identifier_type(("PII_DEVICE_ID",)) == "device_id"
    assert tags.identifier_type(("PII",)) is None
    assert tags.purposes(("PII_PHONE", "purpose:security.mfa", "Purpose:Marketing")) == [
        "security.mfa",
        "Marketing",
    ]
    assert tags.purposes(("PII_PHONE",)) == []


def test_a_policy_names_its_own_tags() -> None:
    """Its types replace the default; its prefix is compared without regard to case."""
    tags = TagConvention.of(
        TagConventionSpec(types={"Sensitive_Phone": "phone"}, purpose_prefix="use=")
    )
    assert tags.identifier_type(("SENSITIVE_PHONE",)) == "phone"
    assert tags.identifier_type(("PII_PHONE",)) is None
    assert tags.purposes(("USE=security.mfa", "purpose:x")) == ["security.mfa"]


def test_the_first_type_tag_decides() -> None:
    """A field tagged with two types is read as the first."""
    assert TagConvention.of(None).identifier_type(("PII_EMAIL", "PII_PHONE")) == "email"
