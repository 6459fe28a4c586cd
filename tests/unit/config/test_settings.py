"""Settings from ENFORCER_* variables: misspellings refused, the phone region checked."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from enforcer.cli import main
from enforcer.config.settings import (
    EnforcerSettings,
    UnknownVariableError,
    check_variables,
    known_variables,
)


def test_a_misspelled_variable_names_the_setting_it_resembles() -> None:
    """ENFORCER_MODEE would be ignored silently; it is refused with the likely name."""
    with pytest.raises(UnknownVariableError) as caught:
        check_variables({"ENFORCER_MODEE": "audit", "PATH": "/bin"})
    assert str(caught.value) == "unknown variable ENFORCER_MODEE (did you mean ENFORCER_MODE?)"


def test_unknown_variables_without_a_close_name_are_refused_too() -> None:
    """No suggestion when nothing is close; names are compared without regard to case."""
    with pytest.raises(UnknownVariableError, match=r"^unknown variable ENFORCER_ZZZZZZZZZZZZ$"):
        check_variables({"ENFORCER_ZZZZZZZZZZZZ": "1"})
    with pytest.raises(UnknownVariableError, match=r"enforcer_modee \(did you mean ENFORCER_MODE"):
        check_variables({"enforcer_modee": "audit"})


def test_known_debug_and_test_variables_are_accepted() -> None:
    """Every setting's variable, ENFORCER_DEBUG, the build's ENFORCER_COMPILE (exported
    for a plain build, it may stay set where the enforcer runs) and the test suite's
    ENFORCER_TEST_*."""
    check_variables(dict.fromkeys(known_variables(), "x"))
    check_variables({"ENFORCER_DEBUG": "1", "ENFORCER_TEST_BOOTSTRAP": "x", "OTHER": "y"})
    check_variables({"ENFORCER_COMPILE": "0"})
    assert "ENFORCER_PHONE_DEFAULT_REGION" in known_variables()


def test_the_command_line_refuses_a_misspelled_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 2 and one line, before anything runs."""
    monkeypatch.setenv("ENFORCER_MODEE", "audit")
    code = main(["explain", "--json"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "enforcer: error: unknown variable ENFORCER_MODEE (did you mean ENFORCER_MODE?)\n"
    )


def test_phone_region_is_a_known_region_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Upper-cased; ZZ means none; anything else is refused."""
    assert EnforcerSettings().phone_default_region == "US"
    assert EnforcerSettings(phone_default_region=" gb ").phone_default_region == "GB"
    assert EnforcerSettings(phone_default_region="ZZ").phone_default_region == "ZZ"
    monkeypatch.setenv("ENFORCER_PHONE_DEFAULT_REGION", "de")
    assert EnforcerSettings().phone_default_region == "DE"
    with pytest.raises(ValueError, match="two-letter region code"):
        EnforcerSettings(phone_default_region="Atlantis")


def test_the_fingerprinter_uses_the_configured_region() -> None:
    """The key and the region both come from the settings."""
    settings = EnforcerSettings(fingerprint_key="k" * 32, phone_default_region="DE")
    fp = settings.fingerprinter()
    assert fp.phone_region == "DE"
    assert fp("phone", "030 1234 5678") == fp("phone", "+49 30 12345678")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"sink_topic": "identity.events"}, "the sink topic and the source topic"),
        ({"violations_topic": "audience.building"}, "the violations topic and the sink topic"),
        ({"metrics_topic": "enforcer.deadletter"}, "the metrics topic and the dead-letter topic"),
    ],
)
def test_topic_names_that_alias_each_other_are_refused(flags: dict[str, str], message: str) -> None:
    """The enforcer must never read its own output, nor write two kinds to one topic."""
    with pytest.raises(ValidationError, match=message):
        EnforcerSettings.model_validate(flags)


@pytest.mark.parametrize("servers", ["127.0.0.1:notaport", "127.0.0.1", "host:0", "a:1,b:70000"])
def test_bootstrap_servers_need_a_port(servers: str) -> None:
    """Caught at start in one line, not minutes later inside the client."""
    with pytest.raises(ValidationError, match="is not host:port"):
        EnforcerSettings(bootstrap_servers=servers)


def test_ipv6_and_several_bootstrap_servers_are_fine() -> None:
    """Brackets and lists pass."""
    assert EnforcerSettings(bootstrap_servers="[::1]:9092,b:9093").bootstrap_servers
