"""TLS and SASL to Kafka: a broker with a SASL_SSL listener, a CA and certificates made
by the test, SCRAM and PLAIN users made with the broker's own tools; and a
SASL_PLAINTEXT listener taking OAUTHBEARER in the broker's unsecured-JWT mode, for a
worker configured through a client-properties file (``--kafka-config``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from enforcer.config.settings import EnforcerSettings
from enforcer.core.fingerprint import generate_key
from enforcer.live.admin import TopicSetupError, ensure_topics
from enforcer.testing.kafka_broker import LocalKafka, free_port, unsecured_oauthbearer_config
from enforcer.testing.topics import create_topics, unique_topic_name
from enforcer.testing.worker import (
    Deployment,
    EnforcerTopics,
    check_outcomes,
    end_offsets_of,
    mixed_values,
    produce,
    wait_for_commits,
)

pytestmark = pytest.mark.timeout(300)

USER, PASSWORD = "enforcer", "right-password-0123"
OAUTHBEARER_UNSECURED = (
    "# the broker's unsecured-JWT mode: a test setting, never a production one\n"
    "security.protocol=SASL_PLAINTEXT\n"
    "sasl.mechanisms=OAUTHBEARER\n"
    "sasl.oauthbearer.method=default\n"
    "enable.sasl.oauthbearer.unsecure.jwt=true\n"
    "sasl.oauthbearer.config=principal=enforcer scope=kafka\n"
)
"""A client-properties file for the OAUTHBEARER listener (unsecured JWT: no token
endpoint, nothing signed)."""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: Path) -> tuple[Path, Path]:
    """A CA, and a broker key and certificate (for IP 127.0.0.1) signed by it.

    Returns the CA certificate and the broker's PEM key store (key + certificate chain).
    """
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=enforcer-test-ca",
        cwd=directory,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
        "-subj",
        "/CN=127.0.0.1",
        cwd=directory,
    )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "broker.pem",
        "-extfile",
        "san.ext",
        cwd=directory,
    )
    _openssl(
        "pkcs8", "-topk8", "-nocrypt", "-in", "broker.key", "-out", "broker.pk8", cwd=directory
    )
    keystore = directory / "broker-keystore.pem"
    keystore.write_text(
        (directory / "broker.pk8").read_text()
        + (directory / "broker.pem").read_text()
        + (directory / "ca.pem").read_text()
    )
    return directory / "ca.pem", keystore


class SecureKafka(NamedTuple):
    """The broker's addresses: plaintext (for the test's own clients), SASL_SSL with the
    test CA, and SASL_PLAINTEXT with OAUTHBEARER (unsecured JWT)."""

    plain: str
    secure: str
    ca: Path
    oauth: str


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """One broker with all three listeners."""
    directory = tmp_path_factory.mktemp("secure-kafka")
    ca, keystore = make_certificates(directory)
    port, controller, secure, oauth = free_port(), free_port(), free_port(), free_port()
    extra = directory / "extra.properties"
    extra.write_text(
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},"
        f"SASL_SSL://127.0.0.1:{secure},SASL_PLAINTEXT://127.0.0.1:{oauth}\n"
        f"advertised.listeners=SASL_SSL://127.0.0.1:{secure},"
        f"SASL_PLAINTEXT://127.0.0.1:{oauth},PLAINTEXT://127.0.0.1:{port}\n"
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
        "SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT\n"
        "listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN\n"
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
        "listener.name.sasl_ssl.plain.sasl.jaas.config="
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{USER}="{PASSWORD}";\n' + unsecured_oauthbearer_config() + "ssl.keystore.type=PEM\n"
        f"ssl.keystore.location={keystore}\n"
    )
    kafka = LocalKafka(
        directory / "kafka",
        port=port,
        controller_port=controller,
        extra_env={
            "KAFKA_EXTRA_CONFIG": str(extra),
            "KAFKA_ADD_SCRAM": f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]",
        },
    )
    with kafka:
        yield SecureKafka(kafka.bootstrap_servers, f"127.0.0.1:{secure}", ca, f"127.0.0.1:{oauth}")


def _secure_env(bootstrap: str, ca: Path, mechanism: str, password: str) -> dict[str, str]:
    return {
        "ENFORCER_BOOTSTRAP_SERVERS": bootstrap,
        "ENFORCER_SECURITY_PROTOCOL": "SASL_SSL",
        "ENFORCER_SSL_CAFILE": str(ca),
        "ENFORCER_SASL_MECHANISM": mechanism,
        "ENFORCER_SASL_USERNAME": USER,
        "ENFORCER_SASL_PASSWORD": password,
    }


async def test_the_right_scram_password_processes_records(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    """SCRAM-SHA-512 over TLS: the worker decides every record, exactly once."""
    plain, secure, ca, _ = secure_kafka
    topics = EnforcerTopics.unique("secure")
    with Deployment(secure, topics, f"group-{topics.source}", generate_key(), tmp_path) as d:
        await Deployment(plain, topics, d.group_id, d.fingerprint_key, tmp_path).create_topics(2)
        d.extra_env = {**d.extra_env, **_secure_env(secure, ca, "SCRAM-SHA-512", PASSWORD)}
        worker = d.worker("secure")
        worker.start()
        inputs = await produce(plain, topics.source, mixed_values(200, seed=11))
        await wait_for_commits(
            plain,
            d.group_id,
            topics.source,
            until=end_offsets_of(inputs),
            timeout_s=120,
            alive=[worker],
        )
        assert worker.stop() == 0
        check = await check_outcomes(plain, topics, inputs, fingerprint_key=d.fingerprint_key)
        assert check.problems() == []
        assert PASSWORD not in (worker.log_path.read_text() if worker.log_path else "")


async def test_oauthbearer_through_a_client_properties_file(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    """OAUTHBEARER, set only in the ``--kafka-config`` file, against the broker's
    **unsecured-JWT mode** (``OAuthBearerLoginModule`` with Kafka's default unsecured
    validator; the client signs nothing, ``enable.sasl.oauthbearer.unsecure.jwt=true``):
    the worker decides every record, exactly once. No OIDC token endpoint is involved;
    with one, only the file's ``sasl.oauthbearer.*`` lines change (docs/security.md)."""
    plain, _, _, oauth = secure_kafka
    properties = tmp_path / "client.properties"
    properties.write_text(OAUTHBEARER_UNSECURED)
    topics = EnforcerTopics.unique("oauth")
    with Deployment(oauth, topics, f"group-{topics.source}", generate_key(), tmp_path) as d:
        await Deployment(plain, topics, d.group_id, d.fingerprint_key, tmp_path).create_topics(2)
        d.extra_env = {**d.extra_env, "ENFORCER_KAFKA_CONFIG": str(properties)}
        worker = d.worker("oauth")
        worker.start()
        inputs = await produce(plain, topics.source, mixed_values(200, seed=13))
        await wait_for_commits(
            plain,
            d.group_id,
            topics.source,
            until=end_offsets_of(inputs),
            timeout_s=120,
            alive=[worker],
        )
        assert worker.stop() == 0
        check = await check_outcomes(plain, topics, inputs, fingerprint_key=d.fingerprint_key)
        assert check.problems() == []


def test_without_the_client_properties_file_oauthbearer_is_not_spoken(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    """The same listener refuses the enforcer's own PLAIN settings: the file is what made
    the worker above connect (exit 2, one line, no password)."""
    _, _, _, oauth = secure_kafka
    result = subprocess.run(
        [sys.executable, "-m", "enforcer.cli", "run"],
        env={
            "PATH": "/usr/bin:/bin",
            "ENFORCER_FINGERPRINT_KEY": generate_key(),
            "ENFORCER_DATA_DIR": str(tmp_path),
            "ENFORCER_HTTP_PORT": "0",  # other tests' workers may hold the default port
            "ENFORCER_BOOTSTRAP_SERVERS": oauth,
            "ENFORCER_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "ENFORCER_SASL_MECHANISM": "PLAIN",
            "ENFORCER_SASL_USERNAME": USER,
            "ENFORCER_SASL_PASSWORD": PASSWORD,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "refused the credentials of 'enforcer' (PLAIN)" in result.stderr, result.stderr
    assert PASSWORD not in result.stderr


def test_the_lag_exporter_speaks_oauthbearer_through_the_file(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    """``enforcer lag-exporter --kafka-config`` on the unsecured-JWT OAUTHBEARER listener:
    its scrape reports the broker answered (``enforcer_group_lag_up 1``)."""
    plain, _, _, oauth = secure_kafka
    topic = unique_topic_name("lag-oauth")
    asyncio.run(create_topics(plain, [topic], 1))
    properties = tmp_path / "client.properties"
    properties.write_text(OAUTHBEARER_UNSECURED)
    port, log = free_port(), tmp_path / "lag-exporter.log"
    with log.open("w") as output:
        exporter = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "enforcer.cli",
                "lag-exporter",
                "--bootstrap-servers",
                oauth,
                "--kafka-config",
                str(properties),
                "--source-topic",
                topic,
                "--group-id",
                f"group-{topic}",
                "--http-port",
                str(port),
            ],
            env={"PATH": "/usr/bin:/bin"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    up = f'enforcer_group_lag_up{{group="group-{topic}",topic="{topic}"}} 1.0'
    try:
        deadline, scraped = time.monotonic() + 60, ""
        while up not in scraped:
            assert exporter.poll() is None, log.read_text()
            assert time.monotonic() < deadline, scraped
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
                    scraped = page.read().decode()
            except OSError:
                pass  # not serving yet
            time.sleep(0.2)  # poll interval, until the state is reached
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)


async def test_replay_from_a_topic_takes_the_files_security_subset(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    """``enforcer replay --topic`` (aiokafka) over SASL_SSL with SCRAM, the protocol, CA and
    credentials all from the client-properties file, and a librdkafka-only tuning line
    beside them: every record replayed; the password never printed."""
    plain, secure, ca, _ = secure_kafka
    topic = unique_topic_name("replay-secure")
    await create_topics(plain, [topic], 2)
    await produce(plain, topic, mixed_values(50, seed=17))
    properties = tmp_path / "client.properties"
    properties.write_text(
        "security.protocol=SASL_SSL\n"
        f"ssl.ca.location={ca}\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        f"sasl.username={USER}\n"
        f"sasl.password={PASSWORD}\n"
        "fetch.wait.max.ms=100\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "enforcer.cli",
            "replay",
            "--no-progress",
            "--topic",
            topic,
            "--bootstrap-servers",
            secure,
            "--kafka-config",
            str(properties),
            "--out",
            str(tmp_path / "out"),
        ],
        env={"PATH": "/usr/bin:/bin", "ENFORCER_FINGERPRINT_KEY": generate_key()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "replayed 50 records" in result.stderr, result.stderr
    assert PASSWORD not in result.stderr + result.stdout


def test_a_wrong_password_fails_fast_with_a_clear_message(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    """Exit 2 within seconds, naming the user and mechanism, never the password."""
    _, secure, ca, _ = secure_kafka
    result = subprocess.run(
        [sys.executable, "-m", "enforcer.cli", "run"],
        env={
            "PATH": "/usr/bin:/bin",
            "ENFORCER_FINGERPRINT_KEY": generate_key(),
            "ENFORCER_DATA_DIR": str(tmp_path),
            "ENFORCER_HTTP_PORT": "0",  # other tests' workers may hold the default port
            **_secure_env(secure, ca, "SCRAM-SHA-512", "wrong-password-42"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "refused the credentials of 'enforcer' (SCRAM-SHA-512)" in result.stderr, result.stderr
    assert "wrong-password-42" not in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(("password", "ok"), [(PASSWORD, True), ("nope-nope-nope", False)])
def test_plain_mechanism(secure_kafka: SecureKafka, password: str, ok: bool) -> None:
    """SASL/PLAIN over TLS, checked through the enforcer's own topic check."""
    _, secure, ca, _ = secure_kafka
    settings = EnforcerSettings(
        bootstrap_servers=secure,
        security_protocol="SASL_SSL",
        ssl_cafile=ca,
        sasl_mechanism="PLAIN",
        sasl_username=USER,
        sasl_password=password,
        source_topic="absent-source",
    )
    with pytest.raises(TopicSetupError) as caught:
        ensure_topics(settings)
    if ok:
        assert "missing on" in str(caught.value)  # authenticated: it could list topics
    else:
        assert "refused the credentials" in str(caught.value)


def test_tls_to_an_untrusted_broker_is_refused(secure_kafka: SecureKafka) -> None:
    """Without the test CA the broker's certificate is not trusted: a clear error."""
    _, secure, _, _ = secure_kafka
    settings = EnforcerSettings(
        bootstrap_servers=secure,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=USER,
        sasl_password=PASSWORD,
    )
    with pytest.raises(TopicSetupError, match=r"TLS to|cannot reach"):
        ensure_topics(settings)


def test_secrets_are_hidden_when_settings_are_printed() -> None:
    """SecretStr: neither the SASL password nor the key shows in a dump or repr."""
    settings = EnforcerSettings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username=USER,
        sasl_password=PASSWORD,
        fingerprint_key="k" * 32,
    )
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in settings.model_dump_json()
    assert "k" * 32 not in str(settings.model_dump())
