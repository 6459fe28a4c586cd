"""The topic check at start: a topic the cluster's listing leaves out is asked about by
name, and a missing permission is reported as one (docs/security.md)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._metadata import ClusterMetadata, PartitionMetadata, TopicMetadata

from enforcer.config.settings import EnforcerSettings
from enforcer.live import admin as admin_module
from enforcer.live.admin import TopicSetupError, ensure_topics

TOPICS = {
    "source_topic": "t-src",
    "sink_topic": "t-sink",
    "violations_topic": "t-vio",
    "deadletter_topic": "t-dlq",
    "metrics_topic": "t-met",
    "ledger_topic": "t-ledger",
}


class _Admin:
    """Answers ``describe_topics`` per name: a description, or the error Kafka gives."""

    def __init__(self, answers: dict[str, int | None]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def describe_topics(self, topics: TopicCollection, **_: Any) -> dict[str, Future[object]]:
        futures: dict[str, Future[object]] = {}
        for name in topics.topic_names:
            self.asked.append(name)
            future: Future[object] = Future()
            code = self.answers[name]
            if code is None:
                future.set_result(object())
            else:
                future.set_exception(KafkaException(KafkaError(code, "as Kafka says it")))
            futures[name] = future
        return futures


def _listing(*names: str) -> ClusterMetadata:
    metadata = ClusterMetadata()
    metadata.topics = {name: TopicMetadata() for name in names}
    return metadata


@pytest.fixture
def check(monkeypatch: pytest.MonkeyPatch) -> Callable[[_Admin, tuple[str, ...]], list[str]]:
    """``ensure_topics`` over a connection that lists ``listed`` and answers as ``admin``."""

    def checked(admin: _Admin, listed: tuple[str, ...]) -> list[str]:
        connection = (cast(AdminClient, admin), _listing(*listed))
        monkeypatch.setattr(admin_module, "_connect", lambda _: connection)
        return ensure_topics(EnforcerSettings(**TOPICS))  # type: ignore[arg-type]

    return checked


Check = Callable[[_Admin, tuple[str, ...]], list[str]]


EVERY_BUT_THE_LEDGER = ("t-src", "t-sink", "t-vio", "t-dlq", "t-met")


def test_a_topic_left_out_of_the_listing_without_describe_is_a_permission_matter(
    check: Check,
) -> None:
    """Kafka lists only what the principal may describe; asked by name it says
    TOPIC_AUTHORIZATION_FAILED (for a topic that does not exist too, so the message
    does not say it exists). Not "missing … pass --create-topics"."""
    admin = _Admin({"t-ledger": KafkaError.TOPIC_AUTHORIZATION_FAILED})
    with pytest.raises(TopicSetupError) as caught:
        check(admin, EVERY_BUT_THE_LEDGER)
    assert str(caught.value) == (
        "not authorized to describe the ledger topic 't-ledger' (TOPIC_AUTHORIZATION_FAILED): "
        "grant Read and Describe on it (deploy/acls.sh, docs/security.md)"
    )
    assert admin.asked == ["t-ledger"]


def test_an_output_topic_names_the_grants_an_output_needs(check: Check) -> None:
    admin = _Admin({"t-sink": KafkaError.TOPIC_AUTHORIZATION_FAILED, "t-ledger": None})
    with pytest.raises(
        TopicSetupError, match=r"^not authorized to describe the sink topic 't-sink'"
    ):
        check(admin, ("t-src", "t-vio", "t-dlq", "t-met"))
    with pytest.raises(TopicSetupError, match=r"grant Write, Describe and DescribeConfigs on it"):
        check(admin, ("t-src", "t-vio", "t-dlq", "t-met"))


def test_a_topic_kafka_does_not_know_is_missing(check: Check) -> None:
    admin = _Admin({"t-ledger": KafkaError.UNKNOWN_TOPIC_OR_PART})
    with pytest.raises(TopicSetupError, match=r"^missing on .*: ledger topic 't-ledger'; create"):
        check(admin, EVERY_BUT_THE_LEDGER)


def test_a_topic_described_after_the_listing_is_there(check: Check) -> None:
    """Created by another worker between the listing and the question: nothing to do."""
    assert check(_Admin({"t-ledger": None}), EVERY_BUT_THE_LEDGER) == []


@pytest.mark.parametrize("code", [KafkaError.TOPIC_EXCEPTION, KafkaError._TIMED_OUT])
def test_any_other_answer_leaves_the_topic_missing(check: Check, code: int) -> None:
    """An invalid name, a time-out: missing as before (creating it, when asked, says
    what Kafka makes of it)."""
    admin = _Admin({"t-ledger": code})
    with pytest.raises(TopicSetupError, match=r"^missing on .*: ledger topic 't-ledger'; create"):
        check(admin, EVERY_BUT_THE_LEDGER)


def test_every_topic_listed_asks_nothing_more(check: Check) -> None:
    admin = _Admin({})
    assert check(admin, (*EVERY_BUT_THE_LEDGER, "t-ledger")) == []
    assert admin.asked == []


class _Propagating:
    """An admin whose listing shows a topic just created without its partitions for the
    first ``late`` listings, as a broker's metadata does a moment after the creation."""

    def __init__(self, names: tuple[str, ...], late: int) -> None:
        self.names = names
        self.late = late
        self.listings = 0

    def list_topics(self, **_: Any) -> ClusterMetadata:
        self.listings += 1
        metadata = _listing(*self.names)
        if self.listings > self.late:
            for topic in metadata.topics.values():
                topic.partitions = {0: PartitionMetadata(), 1: PartitionMetadata()}
        return metadata


def test_topics_just_created_are_listed_again_until_their_partitions_show() -> None:
    """A worker that created its source and ledger checks that they are co-partitioned:
    a listing read before the new topics' partitions reached the broker's metadata is
    read again, not taken for "cannot read the partitions"."""
    admin = _Propagating(("t-src", "t-ledger"), late=2)
    settings = EnforcerSettings(**TOPICS)  # type: ignore[arg-type]
    admin_module._check_co_partitioned(settings, cast(AdminClient, admin), _listing())
    assert admin.listings == 3


def test_a_listing_whose_partitions_never_show_is_given_up_at_the_timeout() -> None:
    """The wait is bounded: the last listing is returned, and the check that reads it
    refuses the topic in one line as before."""
    admin = _Propagating(("t-src", "t-ledger"), late=10**6)
    listing = admin_module._listing_with_partitions(
        cast(AdminClient, admin), ("t-src", "t-ledger"), timeout_s=0.25
    )
    assert not listing.topics["t-src"].partitions and admin.listings >= 2
