"""The policy's ``formats`` section (docs/formats.md: "Field mappings", "Schema tags"):
validated with the rest of the file, errors with file, line, place and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from enforcer.cli import main
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.load import PolicyLoadError, default_policy_bytes, parse_policy
from enforcer.core.policy.spec import DEFAULT_TYPE_TAGS, PurposesPathSpec


def load(formats: str) -> Policy:
    return parse_policy(default_policy_bytes() + formats.encode(), origin="p.yaml")


def error(formats: str) -> str:
    with pytest.raises(PolicyLoadError) as caught:
        load(formats)
    text = str(caught.value)
    assert "\n" not in text
    return text


GOOD = """
formats:
  tags:
    purpose_prefix: "use:"
  mappings:
    - name: accounts
      topics: [identity.accounts]
      records: [com.acme.Account]
      subject_id: user.id
      event_id: meta.id
      occurred_at: meta.at
      empty: null
      schema_tags: false
      identifiers:
        - {path: contact.email, type: Email, purposes: {path: contact.email_purposes}}
        - {path: two_factor_phone, type: phone, purposes: [Security.MFA]}
        - {path: "phones[*].number", type: phone, purposes: schema-tags}
        - {path: recovery_email, type: email, purposes: ledger}
"""


def test_the_compiled_policy_carries_the_section() -> None:
    """Types lower-cased, fixed tags normalized, unquoted null read as 'null'."""
    policy = load(GOOD)
    formats = policy.formats
    assert formats is not None
    assert formats.tags.types == DEFAULT_TYPE_TAGS
    assert formats.tags.purpose_prefix == "use:"
    (accounts,) = formats.mappings
    assert accounts.empty == "null" and accounts.schema_tags is False
    assert [i.type for i in accounts.identifiers] == ["email", "phone", "phone", "email"]
    assert accounts.identifiers[0].purposes == PurposesPathSpec(path="contact.email_purposes")
    assert accounts.identifiers[1].purposes == ["security.mfa"]
    assert accounts.identifiers[2].purposes == "schema-tags"
    assert load("").formats is None


@pytest.mark.parametrize(
    ("formats", "expected"),
    [
        (
            "formats:\n  mappings:\n    - {name: a, subject_id: 'user..id', occurred_at: at}\n",
            "at formats.mappings[0].subject_id: Value error, not a record path",
        ),
        (
            "formats:\n  mappings:\n    - {name: a, subject_id: 'users[*].id', occurred_at: at}\n",
            "'subject_id' names one value: its path cannot have '[*]'",
        ),
        (
            "formats:\n  mappings:\n    - {name: a, subject_id: u, occurred_at: at, colour: red}\n",
            "at formats.mappings[0].colour: Extra inputs are not permitted",
        ),
        (
            "formats:\n  mappings:\n    - {name: a, subject_id: u}\n",
            "at formats.mappings[0].occurred_at: Field required",
        ),
        (
            "formats:\n  mappings:\n    - {name: a, subject_id: u, occurred_at: t, empty: zero}\n",
            "at formats.mappings[0].empty: Input should be 'null' or 'remove'",
        ),
        (
            "formats:\n  mappings:\n    - {name: a, subject_id: u, occurred_at: t}\n"
            "    - {name: a, subject_id: u, occurred_at: t}\n",
            "mapping names must be unique; repeated: a",
        ),
        (
            "formats:\n  mappings:\n    - name: a\n      subject_id: u\n      occurred_at: t\n"
            "      identifiers:\n        - {path: p, type: phone, purposes: 3}\n",
            "p.yaml:"
            + str(default_policy_bytes().count(b"\n") + 7)
            + ": at formats.mappings[0].identifiers[0].purposes: must be {path: <record path>}, "
            "a list of purpose tags, 'schema-tags' or 'ledger'",
        ),
        (
            "formats:\n  mappings:\n    - name: a\n      subject_id: u\n      occurred_at: t\n"
            "      identifiers:\n        - {path: p, type: phone, purposes: [NOT A TAG]}\n",
            "at formats.mappings[0].identifiers[0].purposes.fixed[0]: Value error, must be "
            "dot-separated segments",
        ),
        (
            "formats:\n  mappings:\n    - name: a\n      subject_id: u\n      occurred_at: t\n"
            "      identifiers:\n        - {path: p, type: phone, purposes: {path: 'x[*]'}}\n",
            "the purposes path has more '[*]' than the identifier's path",
        ),
        (
            "formats:\n  mappings:\n    - name: a\n      subject_id: u\n      occurred_at: t\n"
            "      identifiers:\n        - {path: p, type: phone, purposes: ledger}\n"
            "        - {path: p, type: email, purposes: ledger}\n",
            "identifier paths must be unique; repeated: p",
        ),
        (
            "formats:\n  tags: {types: {}}\n",
            "at formats.tags.types: Dictionary should have at least 1 item",
        ),
    ],
)
def test_a_bad_section_is_a_policy_error_with_place_and_problem(
    formats: str, expected: str
) -> None:
    """One line naming the file and what is wrong where."""
    text = error(formats)
    assert text.startswith("p.yaml:")
    assert expected in text


def test_policy_check_prints_each_mapping_it_compiled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line per mapping; a bad path exits 2 with the place."""
    path = tmp_path / "mapped.yaml"
    path.write_bytes(default_policy_bytes() + GOOD.encode())
    assert main(["policy", "check", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        f"{path}: mapping 'accounts': identity.accounts; records com.acme.Account; "
        "subject_id user.id, event_id meta.id, occurred_at meta.at; identifiers contact.email "
        "(email, purposes from contact.email_purposes), two_factor_phone (phone, purposes "
        "[security.mfa]), phones[*].number (phone, purposes from the schema's tags), "
        "recovery_email (email, purposes from the ledger)"
    )
    assert len(lines) == 2
    path.write_bytes(path.read_bytes().replace(b"subject_id: user.id", b"subject_id: user.[0]"))
    assert main(["policy", "check", str(path)]) == 2
    assert "at formats.mappings[0].subject_id: Value error, not a record path" in (
        capsys.readouterr().err
    )


def test_a_section_that_stops_reading_tagged_fields_is_warned_about() -> None:
    """The security guardrail judges the rules, not which fields are read: a tag
    convention without a default type tag, or a mapping reading no schema tags, lets a
    field tagged ``PII_PHONE`` pass unjudged. Both load, with a warning naming it."""
    assert load(GOOD.replace("      schema_tags: false\n", "")).formats_warnings() == []
    warned = load(GOOD).warnings()
    assert (
        "formats mapping 'accounts' reads no schema tags (schema_tags: false): a field the "
        "schema tags as an identifier is judged only if the mapping names it"
    ) in warned
    own = load(
        "formats:\n  tags:\n    types: {SENSITIVE_PHONE: phone, pii_email: email}\n"
    ).formats_warnings()
    assert own == [
        "formats.tags.types leaves out the default type tag(s) PII_PHONE, PII_DEVICE_ID: "
        "fields tagged so are not read as identifiers"
    ]
    assert load("").formats_warnings() == []
