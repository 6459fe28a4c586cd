"""Stop lines and abort reasons name the error as the broker or librdkafka reported it,
not the ``_STATE`` every send meets after a transaction error (docs/operations.md: what
you see when something goes wrong).

The fake producer hands over its log lines and delivery reports only when polled, as
librdkafka does; the log lines have the shape librdkafka 2.16 gives a Python logger
(measured on a broker with ACLs, a topic's Write revoked while a transaction was open).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from enforcer.live.clients import TransactionReports
from enforcer.live.failures import WorkerStopError
from enforcer.live.output import (
    AtLeastOnceOutput,
    CommitAborted,
    RenewalBudget,
    TransactionalOutput,
)
from enforcer.outputs.records import OutputRecord

FMT = "%s [%s] %s"
CLIENT = "rdkafka#producer-1"
ADDPARTS_DENIED = (
    "ADDPARTS",
    CLIENT,
    '[thrd:main]: TxnCoordinator/1: Failed to add partition "sink" [1] to transaction: '
    "Broker: Topic authorization failed",
)
ADDPARTS_SKIPPED = (
    "ADDPARTS",
    CLIENT,
    '[thrd:main]: TxnCoordinator/1: Failed to add partition "violations" [0] to '
    "transaction: Broker: Operation not attempted",
)
TXNERR_DENIED = (
    "TXNERR",
    CLIENT,
    "[thrd:main]: Current transaction failed in state InTransaction: Failed to add "
    "partition(s) to transaction on broker TxnCoordinator/1: Broker: Topic authorization "
    "failed (after 4 ms) (TOPIC_AUTHORIZATION_FAILED)",
)
STATE = KafkaError(KafkaError._STATE, "Unable to produce message: Local: Erroneous state")


def _error(code: int, text: str, *, abort: bool = False) -> KafkaException:
    return KafkaException(KafkaError(code, text, txn_requires_abort=abort))


@dataclass
class _Message:
    name: str

    def topic(self) -> str:
        return self.name


@dataclass
class _Producer:
    """Queues log lines and delivery reports until :meth:`poll`; raises what it is told."""

    reports: TransactionReports
    produce_raises: KafkaException | None = None
    commit_raises: KafkaException | None = None
    commit_answers: list[KafkaException | None] = field(default_factory=list)
    """What the next commits answer, in turn (``None``: committed); then ``commit_raises``."""
    logs: list[tuple[str, str, str]] = field(default_factory=list)
    deliveries: list[tuple[KafkaError, str]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def init_transactions(self, _: float) -> None:
        self.calls.append("init")

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def produce(self, topic: str, **_: Any) -> None:
        self.calls.append(f"produce {topic}")
        if self.produce_raises is not None:
            raise self.produce_raises

    def poll(self, _: float) -> int:
        logs, self.logs = self.logs, []
        for line in logs:
            self.reports.log(logging.ERROR, FMT, *line)
        deliveries, self.deliveries = self.deliveries, []
        for error, topic in deliveries:
            self.reports.delivered(error, _Message(topic))
        return len(logs) + len(deliveries)

    def commit_transaction(self, _: float) -> None:
        self.calls.append("commit")
        if self.commit_answers:
            answer = self.commit_answers.pop(0)
            if answer is not None:
                raise answer
            return
        if self.commit_raises is not None:
            raise self.commit_raises

    def abort_transaction(self, _: float) -> None:
        self.calls.append("abort")

    def flush(self, _: float) -> int:
        self.poll(0)
        return 0

    def purge(self) -> None:
        self.calls.append("purge")


def _output(producer: _Producer, deadline_s: float = 20.0) -> TransactionalOutput:
    budget = RenewalBudget(3, 300.0, lambda: 0.0)
    return TransactionalOutput(
        lambda: cast(Producer, producer), deadline_s, budget, producer.reports
    )


def _record(topic: str) -> OutputRecord:
    return OutputRecord(topic, b"k", b"{}", ())


NO_CONSUMER = cast(Consumer, None)


def test_a_send_refused_after_a_denied_partition_names_the_permission_and_topic() -> None:
    """Write on the sink revoked: librdkafka logs which partition it could not add to
    the transaction, then refuses every send with _STATE. The stop line is the
    permission, on the sink, and not _STATE; the partition merely not attempted (the
    violations topic) is not blamed."""
    producer = _Producer(TransactionReports())
    output = _output(producer)
    output.send(_record("sink"))
    producer.logs += [ADDPARTS_DENIED, ADDPARTS_SKIPPED, TXNERR_DENIED]
    producer.deliveries.append((KafkaError(KafkaError._PURGE_QUEUE), "sink"))
    producer.produce_raises = KafkaException(STATE)
    with pytest.raises(WorkerStopError) as caught:
        output.send(_record("violations"))
    assert str(caught.value) == (
        "not authorized on topic 'sink': TOPIC_AUTHORIZATION_FAILED (Broker: Topic "
        "authorization failed); grant the ACLs listed in docs/security.md, then restart"
    )
    assert "commit" not in producer.calls  # the cause is never learnt by committing


def test_without_a_partition_the_transaction_error_is_the_cause() -> None:
    producer = _Producer(TransactionReports())
    output = _output(producer)
    output.send(_record("sink"))
    producer.logs.append(TXNERR_DENIED)
    producer.produce_raises = KafkaException(STATE)
    with pytest.raises(WorkerStopError) as caught:
        output.send(_record("sink"))
    assert str(caught.value).startswith(
        "not authorized: TOPIC_AUTHORIZATION_FAILED (Current transaction failed in state "
        "InTransaction: Failed to add partition(s) to transaction on broker "
        "TxnCoordinator/1: Broker: Topic authorization failed (after 4 ms)); grant"
    )


def test_a_failed_delivery_is_the_best_cause() -> None:
    """A record too large for the broker: its delivery report names the error and its
    topic; the send refused after it says so rather than _STATE."""
    producer = _Producer(TransactionReports())
    output = _output(producer)
    output.send(_record("sink"))
    too_large = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Broker: Message size too large")
    producer.deliveries += [(KafkaError(KafkaError._PURGE_QUEUE), "metrics"), (too_large, "sink")]
    producer.logs.append(TXNERR_DENIED)
    producer.produce_raises = KafkaException(STATE)
    with pytest.raises(WorkerStopError) as caught:
        output.send(_record("violations"))
    assert str(caught.value) == (
        "send to 'violations' failed: MSG_SIZE_TOO_LARGE (Broker: Message size too large) "
        "on topic 'sink'"
    )


def test_a_send_refused_after_an_abortable_transaction_error_aborts_and_goes_on() -> None:
    """A worker frozen (SIGSTOP) long enough for the broker to fence its sequence
    numbers: librdkafka fails the transaction with an error an abort clears, then
    refuses every send with _STATE. The transaction is aborted and its records decided
    again (CommitAborted), rather than the worker stopping: an ordinary operation."""
    producer = _Producer(TransactionReports())
    output = _output(producer)
    output.send(_record("sink"))
    producer.logs.append(
        (
            "TXNERR",
            CLIENT,
            "[thrd:127.0.0.1:9092/1]: Current transaction failed in state InTransaction: "
            "skipped sequence numbers (OUT_OF_ORDER_SEQUENCE_NUMBER, requires epoch bump)",
        )
    )
    producer.produce_raises = KafkaException(STATE)
    with pytest.raises(CommitAborted) as caught:
        output.send(_record("violations"))
    assert "OUT_OF_ORDER_SEQUENCE_NUMBER" in caught.value.reason
    assert producer.calls[-1] == "abort" and not output.open


@pytest.mark.parametrize(
    "code",
    [KafkaError._MSG_TIMED_OUT, KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_ENOUGH_REPLICAS],
)
def test_a_send_refused_after_a_delivery_timed_out_aborts_and_goes_on(code: int) -> None:
    """The broker stalls past the transaction's time-out: the records in flight time
    out (_MSG_TIMED_OUT), librdkafka fails the transaction, and refuses every send with
    _STATE. A broker that comes back is an ordinary operation: the transaction is
    aborted and its records decided again (CommitAborted) rather than the worker
    stopping; the reason names the delivery and its topic."""
    producer = _Producer(TransactionReports())
    output = _output(producer)
    output.send(_record("sink"))
    producer.deliveries.append((KafkaError(code, "Local: Message timed out"), "sink"))
    producer.produce_raises = KafkaException(STATE)
    with pytest.raises(CommitAborted) as caught:
        output.send(_record("violations"))
    assert f"{KafkaError(code).name()} (Local: Message timed out) on topic 'sink'" in (
        caught.value.reason
    )
    assert producer.calls[-1] == "abort" and not output.open
    producer.produce_raises = None
    output.send(_record("sink"))  # a new transaction: the old delivery is forgotten
    assert producer.calls[-2:] == ["begin", "produce sink"]


def test_with_nothing_better_the_send_error_is_named() -> None:
    producer = _Producer(TransactionReports())
    producer.produce_raises = KafkaException(STATE)
    with pytest.raises(WorkerStopError) as caught:
        _output(producer).send(_record("sink"))
    assert str(caught.value) == (
        "send to 'sink' failed: _STATE (Unable to produce message: Local: Erroneous state)"
    )


def test_a_send_denied_itself_names_its_topic() -> None:
    """No Describe on the topic: produce itself raises the permission error."""
    producer = _Producer(TransactionReports())
    producer.produce_raises = _error(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Topic auth")
    with pytest.raises(WorkerStopError, match=r"^not authorized on topic 'violations': TOPIC_"):
        _output(producer).send(_record("violations"))


def test_a_denied_commit_stops_although_librdkafka_says_abort() -> None:
    """The commit fails with TOPIC_AUTHORIZATION_FAILED and txn_requires_abort: aborting
    and deciding again would meet it again, until the watchdog's "no commit for 31s".
    The worker stops at once, naming the topic (the transaction is aborted by the
    engine on the way out)."""
    producer = _Producer(TransactionReports())
    output = _output(producer)
    output.send(_record("sink"))
    producer.logs += [ADDPARTS_DENIED, TXNERR_DENIED]
    producer.commit_raises = _error(
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        "Failed to add partition(s) to transaction on broker TxnCoordinator/1: Broker: "
        "Topic authorization failed (after 4 ms)",
        abort=True,
    )
    with pytest.raises(WorkerStopError, match=r"^not authorized on topic 'sink': TOPIC_AUTH"):
        output.commit({}, NO_CONSUMER)
    assert output.open


def test_an_aborted_commit_carries_the_error_text_and_the_first_failure() -> None:
    """/healthz's last_failure and the watchdog's line show the reason: the error's
    name and text, and the failed delivery the commit points to."""
    producer = _Producer(TransactionReports())
    output = _output(producer)
    output.send(_record("sink"))
    too_large = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Broker: Message size too large")
    producer.deliveries.append((too_large, "sink"))
    producer.commit_raises = _error(
        KafkaError._INCONSISTENT, "1 message(s) failed delivery", abort=True
    )
    with pytest.raises(CommitAborted) as caught:
        output.commit({}, NO_CONSUMER)
    assert caught.value.reason == (
        "commit: _INCONSISTENT (1 message(s) failed delivery); first failure: "
        "MSG_SIZE_TOO_LARGE (Broker: Message size too large) on topic 'sink'"
    )
    assert producer.calls[-1] == "abort" and not output.open


def test_an_aborted_commit_without_more_to_say_names_its_error() -> None:
    producer = _Producer(TransactionReports())
    output = _output(producer)
    output.send(_record("sink"))
    producer.commit_raises = _error(KafkaError.ILLEGAL_GENERATION, "stale generation", abort=True)
    with pytest.raises(CommitAborted) as caught:
        output.commit({}, NO_CONSUMER)
    assert caught.value.reason == "commit: ILLEGAL_GENERATION (stale generation)"


def test_a_new_transaction_forgets_the_previous_one() -> None:
    producer = _Producer(TransactionReports())
    output = _output(producer)
    output.send(_record("sink"))
    producer.logs += [ADDPARTS_DENIED, TXNERR_DENIED]
    producer.poll(0)
    output.abort()
    output.send(_record("sink"))  # a new transaction
    producer.produce_raises = KafkaException(STATE)
    with pytest.raises(WorkerStopError, match=r"^send to 'sink' failed: _STATE"):
        output.send(_record("sink"))


def test_every_log_line_still_reaches_the_client_log(caplog: pytest.LogCaptureFixture) -> None:
    reports = TransactionReports()
    with caplog.at_level(logging.INFO, logger="enforcer.kafka"):
        reports.log(logging.ERROR, FMT, *TXNERR_DENIED)
        reports.log(logging.INFO, FMT, "GETPID", CLIENT, "[thrd:main]: retrying")
    assert [r.getMessage() for r in caplog.records] == [
        FMT % TXNERR_DENIED,
        FMT % ("GETPID", CLIENT, "[thrd:main]: retrying"),
    ]


@dataclass
class _PlainProducer:
    """At least once: delivery reports come through each record's callback at flush."""

    failures: list[tuple[KafkaError, str]]
    callbacks: list[Any] = field(default_factory=list)

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.callbacks.append((kwargs["on_delivery"], topic))

    def flush(self, _: float) -> int:
        for (callback, topic), (error, _failed_topic) in zip(
            self.callbacks, self.failures, strict=False
        ):
            callback(error, _Message(topic))
        self.callbacks = []
        return 0


def test_at_least_once_a_denied_delivery_stops_and_another_failure_is_named() -> None:
    denied = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Broker: Topic authorization failed")
    output = AtLeastOnceOutput(cast(Producer, _PlainProducer([(denied, "sink")])), 1.0)
    output.send(_record("sink"))
    with pytest.raises(WorkerStopError, match=r"^not authorized on topic 'sink': TOPIC_AUTH"):
        output.commit({}, NO_CONSUMER)
    timed_out = KafkaError(KafkaError._MSG_TIMED_OUT, "Local: Message timed out")
    output = AtLeastOnceOutput(cast(Producer, _PlainProducer([(timed_out, "sink")])), 1.0)
    output.send(_record("sink"))
    with pytest.raises(CommitAborted) as caught:
        output.commit({}, NO_CONSUMER)
    assert caught.value.reason == (
        "delivery: _MSG_TIMED_OUT (Local: Message timed out) on topic 'sink'"
    )


def test_a_producer_failed_for_good_at_begin_is_replaced_as_at_a_send() -> None:
    """A transaction begun without a send (ledger ends held, ledger records that retract
    nothing) meets a fenced producer at begin: it is replaced and the records decided
    again, as at a send, instead of stopping the worker."""
    producer = _Producer(TransactionReports())
    fenced = KafkaError(KafkaError._FENCED, "Producer fenced", fatal=True)

    def begin_fenced() -> None:
        producer.calls.append("begin")
        if producer.calls.count("begin") == 1:
            raise KafkaException(fenced)

    producer.begin_transaction = begin_fenced  # type: ignore[method-assign]
    output = _output(producer)
    with pytest.raises(CommitAborted, match="producer replaced"):
        output.begin()
    assert not output.open
    assert producer.calls == ["begin", "purge", "init"]  # the new producer registered
    output.begin()
    assert output.open


TIMED_OUT = KafkaError(
    KafkaError._TIMED_OUT, "Transactional API operation timed out", retriable=True
)


def test_a_commit_that_timed_out_is_asked_again_and_never_aborted() -> None:
    """The commit request may have reached the coordinator when the call timed out:
    aborting and deciding the records again would then write them twice. Asked again,
    librdkafka says it committed."""
    producer = _Producer(TransactionReports())
    output = _output(producer)
    output.send(_record("sink"))
    producer.commit_answers = [KafkaException(TIMED_OUT), KafkaException(TIMED_OUT), None]
    output.commit({}, NO_CONSUMER)
    assert producer.calls == ["begin", "produce sink", "commit", "commit", "commit"]
    assert not output.open


def test_a_commit_whose_end_stays_unknown_stops_the_worker_without_an_abort() -> None:
    """Still timing out at the deadline: neither aborted nor decided again (either could
    write the outputs twice); the worker stops, and its successor reads what was
    committed."""
    producer = _Producer(TransactionReports())
    output = _output(producer, deadline_s=0.3)
    output.send(_record("sink"))
    producer.commit_raises = KafkaException(TIMED_OUT)
    with pytest.raises(WorkerStopError, match=r"^commit: the transaction's end is unknown"):
        output.commit({}, NO_CONSUMER)
    assert producer.calls.count("commit") >= 2
    assert "abort" not in producer.calls and "init" not in producer.calls


def test_a_commit_that_timed_out_then_failed_for_good_stops_instead_of_replacing() -> None:
    """A fatal error after a timeout leaves the transaction's end unknown too: replacing
    the producer and deciding the records again could write them twice."""
    producer = _Producer(TransactionReports())
    output = _output(producer)
    output.send(_record("sink"))
    fenced = KafkaError(KafkaError._FENCED, "Producer fenced", fatal=True)
    producer.commit_answers = [KafkaException(TIMED_OUT), KafkaException(fenced)]
    with pytest.raises(WorkerStopError, match=r"^commit: the transaction's end is unknown"):
        output.commit({}, NO_CONSUMER)
    assert "abort" not in producer.calls and "purge" not in producer.calls


def test_a_commit_that_timed_out_then_needs_an_abort_is_aborted() -> None:
    """librdkafka says the transaction cannot commit: aborting it and deciding its
    records again is safe."""
    producer = _Producer(TransactionReports())
    output = _output(producer)
    output.send(_record("sink"))
    producer.commit_answers = [
        KafkaException(TIMED_OUT),
        _error(KafkaError._INCONSISTENT, "1 message(s) failed delivery", abort=True),
    ]
    with pytest.raises(CommitAborted, match="_INCONSISTENT"):
        output.commit({}, NO_CONSUMER)
    assert producer.calls[-1] == "abort" and not output.open


def test_a_producer_fenced_at_its_first_commit_is_replaced() -> None:
    """Fenced before any commit request went out: the transaction cannot have
    committed, so the producer is replaced and the records decided again."""
    producer = _Producer(TransactionReports())
    output = _output(producer)
    output.send(_record("sink"))
    fenced = KafkaError(KafkaError._FENCED, "Producer fenced", fatal=True)
    producer.commit_answers = [KafkaException(fenced)]
    with pytest.raises(CommitAborted, match="producer replaced"):
        output.commit({}, NO_CONSUMER)
    assert producer.calls[-2:] == ["purge", "init"]
