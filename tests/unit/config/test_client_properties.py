"""The client-properties file (``--kafka-config``): parsed like a Java properties file,
merged under the enforcer's own settings for every librdkafka client, refusing in one
line what would break a guarantee, never showing a value (docs/security.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from enforcer.cli import main
from enforcer.config.client_properties import (
    GUARANTEES,
    OWN_SETTINGS,
    REMEDIATE_GUARANTEES,
    ClientPropertiesError,
    parse_properties,
    read_properties,
)
from enforcer.config.kafka_security import aiokafka_security, librdkafka_security
from enforcer.config.settings import EnforcerSettings
from enforcer.live.admin import TopicSetupError, ensure_topics
from enforcer.live.clients import (
    ClientErrors,
    consumer_config,
    metrics_producer_config,
    producer_config,
)
from enforcer.live.lag_exporter import admin_config

SECRET = "s3cret-never-shown-0042"
OAUTH = (
    "security.protocol=SASL_SSL\n"
    "sasl.mechanisms=OAUTHBEARER\n"
    "sasl.oauthbearer.method=oidc\n"
    "sasl.oauthbearer.client.id=enforcer\n"
    f"sasl.oauthbearer.client.secret={SECRET}\n"
    "sasl.oauthbearer.token.endpoint.url=https://idp.example/token\n"
)


def properties_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "client.properties"
    path.write_text(text)
    return path


def test_java_properties_syntax() -> None:
    """Comments, ``=`` or ``:``, spaces around the name, continued lines, escapes."""
    text = (
        "# a comment\n"
        "! another\n"
        "\n"
        "  fetch.max.bytes = 1048576\n"
        "socket.keepalive.enable: true\n"
        "sasl.oauthbearer.config=principal=enforcer \\\n"
        "    scope=kafka\n"
        "sasl.kerberos.kinit.cmd=kinit -kt /k/keytab\\=x\n"
    )
    assert parse_properties(text, "f") == {
        "fetch.max.bytes": "1048576",
        "socket.keepalive.enable": "true",
        "sasl.oauthbearer.config": "principal=enforcer scope=kafka",
        "sasl.kerberos.kinit.cmd": "kinit -kt /k/keytab=x",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"fetch.max.bytes=1\nsasl.password {SECRET}\n", "line 2: expected name=value"),
        (
            f"sasl.password={SECRET}\nsasl.password={SECRET}x\n",
            "line 2: sasl.password is set again (first on line 1)",
        ),
        ("sasl.mechanism=PLAIN\nsasl.mechanisms=SCRAM-SHA-512\n", "sasl.mechanisms is set again"),
        # Java's "name value" form with a value holding '=' (base64 padding): the value
        # would become part of the name, which librdkafka's refusal would quote.
        (f"sasl.oauthbearer.client.secret  {SECRET}==\n", "line 1: a property name with a space"),
    ],
)
def test_a_bad_line_is_one_line_naming_the_line_never_the_value(text: str, message: str) -> None:
    with pytest.raises(ClientPropertiesError) as caught:
        parse_properties(text, "client.properties")
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("name", sorted(GUARANTEES))
def test_what_the_enforcer_sets_for_its_guarantees_is_refused(tmp_path: Path, name: str) -> None:
    path = properties_file(tmp_path, f"sasl.password={SECRET}\n{name}=x\n")
    with pytest.raises(ClientPropertiesError) as caught:
        read_properties(path)
    message = str(caught.value)
    assert f"{name} is refused: " in message and str(path) in message
    assert SECRET not in message and "\n" not in message


def test_a_transactional_id_is_refused_with_the_advice_of_the_command(tmp_path: Path) -> None:
    """The workers' transactional id is named by ENFORCER_INSTANCE_ID; remediate's is
    derived from the plan's id, where that variable does nothing."""
    path = properties_file(tmp_path, "transactional.id=mine\n")
    with pytest.raises(ClientPropertiesError, match=r"set ENFORCER_INSTANCE_ID$"):
        read_properties(path)
    with pytest.raises(ClientPropertiesError) as caught:
        read_properties(path, REMEDIATE_GUARANTEES)
    assert "derives its own from the plan's id" in str(caught.value)
    assert "ENFORCER_INSTANCE_ID" not in str(caught.value)
    assert REMEDIATE_GUARANTEES.keys() == GUARANTEES.keys()


@pytest.mark.parametrize(
    "name",
    ["auto.commit.enable", "request.required.acks", "queue.buffering.max.ms"],
)
def test_aliases_are_refused_like_the_names_they_stand_for(tmp_path: Path, name: str) -> None:
    with pytest.raises(ClientPropertiesError, match=f"{name} is refused"):
        read_properties(properties_file(tmp_path, f"{name}=1\n"))


@pytest.mark.parametrize("name", sorted(OWN_SETTINGS))
def test_what_has_a_setting_of_its_own_names_that_setting(tmp_path: Path, name: str) -> None:
    with pytest.raises(ClientPropertiesError, match=r"has a setting of its own; set ENFORCER_"):
        read_properties(properties_file(tmp_path, f"{name}=1\n"))


def test_every_librdkafka_client_gets_the_file_under_the_enforcers_settings(
    tmp_path: Path,
) -> None:
    """Consumer, output producer, metrics producer, admin check, lag exporter: the file's
    OAUTHBEARER and tuning lines, and the enforcer's own settings unchanged on top."""
    path = properties_file(tmp_path, OAUTH + "fetch.max.bytes=1048576\nsocket.nagle.disable=true\n")
    settings = EnforcerSettings(kafka_config=path, group_id="g", instance_id="i")
    errors = ClientErrors()
    configs = {
        "consumer": consumer_config(settings, errors),
        "producer": producer_config(settings, errors),
        "metrics": metrics_producer_config(settings, errors),
        "lag": admin_config(settings),
    }
    for role, config in configs.items():
        assert config["sasl.mechanism"] == "OAUTHBEARER", role
        assert config["sasl.oauthbearer.client.secret"] == SECRET, role
        assert config["security.protocol"].upper() == "SASL_SSL", role
        assert config["fetch.max.bytes"] == "1048576", role
        assert config["bootstrap.servers"] == settings.bootstrap_servers, role
    consumer = configs["consumer"]
    assert (consumer["isolation.level"], consumer["enable.auto.commit"]) == (
        "read_committed",
        False,
    )
    assert configs["producer"]["transactional.id"] == "g-i"
    assert consumer["ssl.endpoint.identification.algorithm"] == "https"
    # The TLS hostname check is the file's to set when no setting gives it explicitly.
    path.write_text(OAUTH + "ssl.endpoint.identification.algorithm=none\n")
    relaxed = consumer_config(settings, errors)
    assert relaxed["ssl.endpoint.identification.algorithm"] == "none"


def test_a_security_property_set_twice_differently_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's protocol stands when the settings leave it at its default; an explicit
    ENFORCER_* value must agree with it."""
    path = properties_file(tmp_path, OAUTH)
    monkeypatch.setenv("ENFORCER_SECURITY_PROTOCOL", "SSL")
    with pytest.raises(ClientPropertiesError, match=r"security.protocol is set both by "):
        librdkafka_security(EnforcerSettings(kafka_config=path))
    monkeypatch.setenv("ENFORCER_SECURITY_PROTOCOL", "SASL_SSL")
    assert (
        librdkafka_security(EnforcerSettings(kafka_config=path))["sasl.mechanism"] == "OAUTHBEARER"
    )
    monkeypatch.setenv("ENFORCER_SASL_MECHANISM", "PLAIN")
    with pytest.raises(ClientPropertiesError, match=r"sasl.mechanism is set both by "):
        librdkafka_security(EnforcerSettings(kafka_config=path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("security.protocol=SASL_SSL\n", "needs a SASL mechanism"),
        (
            "sasl.mechanism=OAUTHBEARER\n",
            "a SASL mechanism is set but the security protocol is PLAINTEXT",
        ),
        ("security.protocol=kerberos\n", "must be one of PLAINTEXT, SSL"),
        ("bootstrap.servers=10.0.0.1:9092\n", "bootstrap.servers in"),
    ],
)
def test_an_incomplete_or_contradicting_file_is_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    """Without a mechanism librdkafka would try GSSAPI, its default, and fail later."""
    with pytest.raises(ClientPropertiesError, match=message):
        librdkafka_security(EnforcerSettings(kafka_config=properties_file(tmp_path, text)))


def test_the_same_bootstrap_servers_in_the_file_are_accepted(tmp_path: Path) -> None:
    path = properties_file(tmp_path, "bootstrap.servers=127.0.0.1:9092\n")
    assert "bootstrap.servers" not in librdkafka_security(EnforcerSettings(kafka_config=path))


def test_replay_takes_the_files_security_subset(tmp_path: Path) -> None:
    """aiokafka gets protocol and SCRAM credentials from the file; OAUTHBEARER is refused
    for replay in one line rather than connecting without it."""
    path = properties_file(
        tmp_path,
        f"security.protocol=sasl_plaintext\nsasl.mechanism=SCRAM-SHA-512\n"
        f"sasl.username=enforcer\nsasl.password={SECRET}\nfetch.max.bytes=1\n",
    )
    options = aiokafka_security(EnforcerSettings(kafka_config=path))
    assert options == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "enforcer",
        "sasl_plain_password": SECRET,
    }
    path.write_text(OAUTH)
    with pytest.raises(ClientPropertiesError, match="works for run and lag-exporter only"):
        aiokafka_security(EnforcerSettings(kafka_config=path))


def test_a_property_librdkafka_does_not_know_stops_the_check_in_one_line(
    tmp_path: Path,
) -> None:
    """The client refuses it before connecting; the value is not repeated."""
    path = properties_file(tmp_path, f"socket.timeout.ms={SECRET}\n")
    settings = EnforcerSettings(kafka_config=path, bootstrap_servers="127.0.0.1:1")
    with pytest.raises(TopicSetupError) as caught:
        ensure_topics(settings)
    assert "the Kafka client refused its configuration" in str(caught.value)
    assert "socket.timeout.ms" in str(caught.value) and SECRET not in str(caught.value)
    path.write_text("no.such.property=1\n")
    with pytest.raises(TopicSetupError, match=r"no\.such\.property"):
        ensure_topics(settings)


def test_the_file_reaches_a_real_client(tmp_path: Path) -> None:
    """librdkafka takes the merged OAUTHBEARER configuration as it is."""
    settings = EnforcerSettings(kafka_config=properties_file(tmp_path, OAUTH))
    AdminClient(admin_config(settings))


def test_run_refuses_a_guarantee_breaking_file_with_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = properties_file(tmp_path, f"sasl.password={SECRET}\nenable.auto.commit=true\n")
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", "0123456789abcdef0123456789abcdef")
    for argv in (
        ["run", "--kafka-config", str(path), "--http-port", "0", "--data-dir", str(tmp_path)],
        ["lag-exporter", "--kafka-config", str(path), "--http-port", "0"],
    ):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.count("\n") == 1 and "enable.auto.commit is refused" in err
        assert SECRET not in err


def test_gssapi_needs_a_librdkafka_with_sasl_support_said_in_one_line(tmp_path: Path) -> None:
    """The confluent-kafka wheels carry no Cyrus SASL: GSSAPI from the file is refused by
    the client before any connection, in one line (docs/security.md says how to get it)."""
    path = properties_file(
        tmp_path,
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=GSSAPI\n"
        "sasl.kerberos.service.name=kafka\n",
    )
    settings = EnforcerSettings(kafka_config=path, bootstrap_servers="127.0.0.1:1")
    with pytest.raises(TopicSetupError, match=r"No provider for SASL mechanism GSSAPI"):
        ensure_topics(settings)


def test_every_refused_property_is_documented() -> None:
    """docs/security.md lists what the file may not set, and why."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "security.md").read_text()
    for name in [*GUARANTEES, *OWN_SETTINGS]:
        if not name.endswith("_cb") and name not in {"logger", "on_commit", "on_delivery"}:
            assert f"`{name}`" in text, name
