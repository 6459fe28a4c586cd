"""The schema registry's settings: a URL that can name one, credentials that go
together, a password from a variable or a file and never a flag (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from enforcer.config.schema_registry import RegistryConfigError, registry_basic_auth
from enforcer.config.settings import EnforcerSettings

URL = "http://127.0.0.1:8081/apis/ccompat/v7"


def test_no_registry_by_default() -> None:
    settings = EnforcerSettings()
    assert settings.schema_registry_url is None
    assert registry_basic_auth(settings) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://registry:8081", "must be an http:// or https:// URL with a host"),
        ("registry:8081", "must be an http:// or https:// URL with a host"),
        ("http://", "must be an http:// or https:// URL with a host"),
        ("http://user:secret@registry:8081", "must not hold credentials"),
        ("http://registry:8081/?token=x", "must not have a query or a fragment"),
        ("http://registry:99999", "has a port that is not a number from 1 to 65535"),
    ],
)
def test_a_url_that_names_no_registry_is_refused(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        EnforcerSettings(schema_registry_url=url)
    assert "secret" not in str(caught.value.errors(include_input=False))


def test_the_url_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENFORCER_SCHEMA_REGISTRY_URL", URL)
    assert EnforcerSettings().schema_registry_url == URL


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"schema_registry_user": "u"}, "ENFORCER_SCHEMA_REGISTRY_USER is set but no schema"),
        ({"schema_registry_url": URL, "schema_registry_user": "u"}, "USER needs a password"),
        (
            {"schema_registry_url": URL, "schema_registry_password": "p"},
            "a schema registry password is set without ENFORCER_SCHEMA_REGISTRY_USER",
        ),
        (
            {
                "schema_registry_url": URL,
                "schema_registry_user": "u",
                "schema_registry_password": "p",
                "schema_registry_password_file": "/x",
            },
            "two schema registry passwords are configured",
        ),
        (
            {"schema_registry_url": URL, "schema_registry_ca_file": "/ca.pem"},
            "ENFORCER_SCHEMA_REGISTRY_CA_FILE is set but the schema registry URL is not https",
        ),
        (
            {"schema_registry_url": "https://r", "schema_registry_key_file": "/k.pem"},
            "ENFORCER_SCHEMA_REGISTRY_KEY_FILE needs ENFORCER_SCHEMA_REGISTRY_CERT_FILE",
        ),
        ({"schema_registry_url": URL, "schema_registry_timeout": 0}, "greater than 0"),
        ({"schema_registry_url": URL, "schema_registry_timeout": 30}, "less than or equal to 20"),
        ({"schema_registry_url": URL, "schema_registry_deadline": 0}, "greater than or equal"),
    ],
)
def test_settings_that_do_not_go_together_are_refused(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        EnforcerSettings(**fields)  # type: ignore[arg-type]


def test_the_password_comes_from_the_variable_or_a_file(tmp_path: Path) -> None:
    """A file's trailing newline is no part of the password; the variable is a secret."""
    settings = EnforcerSettings(
        schema_registry_url=URL,
        schema_registry_user="u",
        schema_registry_password="s3cret",  # noqa: S106
    )
    assert registry_basic_auth(settings) == ("u", "s3cret")
    assert "s3cret" not in repr(settings)
    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    from_file = EnforcerSettings(
        schema_registry_url=URL, schema_registry_user="u", schema_registry_password_file=secret
    )
    assert registry_basic_auth(from_file) == ("u", "from-file")


@pytest.mark.parametrize(("content", "message"), [(None, "cannot read"), ("\n", "is empty")])
def test_a_password_file_that_cannot_be_used_is_one_line(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "password"
    if content is not None:
        path.write_text(content)
    settings = EnforcerSettings(
        schema_registry_url=URL, schema_registry_user="u", schema_registry_password_file=path
    )
    with pytest.raises(RegistryConfigError, match=message) as caught:
        registry_basic_auth(settings)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
