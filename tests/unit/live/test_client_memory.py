"""The worker's Kafka clients hold bounded memory (docs/operations.md: memory): the
consumer's read-ahead and the producer's queue come from settings, a client-properties
file may set them instead, and the output queue always holds the largest output."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from pydantic import ValidationError

from enforcer.cli import main
from enforcer.config.client_properties import ClientPropertiesError
from enforcer.config.settings import EnforcerSettings
from enforcer.core.fingerprint import generate_key
from enforcer.live.clients import ClientErrors, consumer_config, producer_config
from enforcer.live.limits import RECORD_OVERHEAD
from enforcer.live.worker import output_producer_config

BOUNDS = {
    "queued.max.messages.kbytes": 8192,
    "queued.min.messages": 10_000,
    "fetch.max.bytes": 4 * 1024 * 1024,
    "fetch.queue.backoff.ms": 10,
}


def _settings(**fields: object) -> EnforcerSettings:
    return EnforcerSettings(group_id="g", instance_id="i", **fields)  # type: ignore[arg-type]


def test_the_defaults_bound_what_the_clients_hold_and_librdkafka_takes_them() -> None:
    """Without settings or a file, the consumer reads 8 MiB ahead (not librdkafka's
    64 MiB, 100,000 records per partition) and the producer queues 16 MiB (not 1 GiB)."""
    errors = ClientErrors()
    consumer = consumer_config(_settings(), errors)
    assert {name: consumer[name] for name in BOUNDS} == BOUNDS
    producer = producer_config(_settings(), errors)
    assert producer["queue.buffering.max.kbytes"] == 16384
    assert producer["queue.buffering.max.messages"] == 100_000
    Consumer(consumer).close()  # librdkafka accepts the combination
    Producer(producer).flush(0)


def test_settings_change_the_bounds() -> None:
    """Each bound is its setting."""
    settings = _settings(
        consumer_prefetch_kbytes=2048,
        consumer_prefetch_records=500,
        consumer_fetch_max_bytes=2 * 1024 * 1024,
        producer_queue_kbytes=4096,
        producer_queue_records=2000,
    )
    consumer = consumer_config(settings, ClientErrors())
    assert consumer["queued.max.messages.kbytes"] == 2048
    assert consumer["queued.min.messages"] == 500
    assert consumer["fetch.max.bytes"] == 2 * 1024 * 1024
    producer = producer_config(settings, ClientErrors())
    assert producer["queue.buffering.max.kbytes"] == 4096
    assert producer["queue.buffering.max.messages"] == 2000


def test_a_fetch_larger_than_the_prefetch_is_refused() -> None:
    """One fetch may overshoot the read-ahead by its own size: a fetch above it is a
    mistake, refused naming both settings."""
    with pytest.raises(ValidationError, match="ENFORCER_CONSUMER_FETCH_MAX_BYTES"):
        _settings(consumer_prefetch_kbytes=2048, consumer_fetch_max_bytes=4 * 1024 * 1024)
    with pytest.raises(ValidationError):
        _settings(consumer_fetch_max_bytes=999_999)  # below librdkafka's message.max.bytes


def test_the_file_s_value_stands_and_an_explicit_setting_must_agree(tmp_path: Path) -> None:
    """A bound in the client-properties file is used as it always was; the same bound
    given explicitly as a setting too must say the same, else start is refused."""
    path = tmp_path / "client.properties"
    path.write_text(
        "queued.max.messages.kbytes=4096\nqueue.buffering.max.messages=5000\n"
        "fetch.queue.backoff.ms=100\n"
    )
    consumer = consumer_config(_settings(kafka_config=path), ClientErrors())
    assert consumer["queued.max.messages.kbytes"] == "4096"
    assert consumer["fetch.queue.backoff.ms"] == "100"
    assert consumer["queued.min.messages"] == 10_000  # not in the file: the setting's
    agreeing = _settings(kafka_config=path, producer_queue_records=5000)
    assert producer_config(agreeing, ClientErrors())["queue.buffering.max.messages"] == "5000"
    differing = _settings(kafka_config=path, consumer_prefetch_kbytes=8192)
    with pytest.raises(ClientPropertiesError, match="ENFORCER_CONSUMER_PREFETCH_KBYTES"):
        consumer_config(differing, ClientErrors())


def test_a_contradicting_file_stops_run_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One line, exit 2, naming the property and the setting, never the value."""
    monkeypatch.setenv("ENFORCER_FINGERPRINT_KEY", generate_key())
    path = tmp_path / "client.properties"
    path.write_text("queue.buffering.max.kbytes=123456\n")
    status = main(
        [
            "run",
            "--kafka-config",
            str(path),
            "--producer-queue-kbytes",
            "2048",
            "--bootstrap-servers",
            "127.0.0.1:1",
        ]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert "queue.buffering.max.kbytes" in err and "ENFORCER_PRODUCER_QUEUE_KBYTES" in err
    assert "123456" not in err and len(err.strip().splitlines()) == 1


def test_the_output_queue_holds_the_largest_output_a_topic_accepts() -> None:
    """A record larger than the whole queue could never be queued: the queue grows to
    the largest output the topics accept, and stays at its setting otherwise."""
    settings = _settings()
    small = output_producer_config(settings, ClientErrors(), {"sink": 1_048_588}, None)
    assert small["queue.buffering.max.kbytes"] == 16384
    large = 50_000_000
    config = output_producer_config(settings, ClientErrors(), {"sink": large}, None)
    assert config["message.max.bytes"] == large + RECORD_OVERHEAD
    assert config["queue.buffering.max.kbytes"] == math.ceil((large + RECORD_OVERHEAD) / 1024)
