"""The producer side of the loop: one transaction at a time (or none, at least once).

:class:`TransactionalOutput` wraps one transactional producer per worker. Its
transactional id is stable for a worker's instance id, so a restarted worker fences
its previous incarnation at once; zombies of an earlier group generation are fenced
by the group metadata sent with the offsets (KIP-447), so one producer serves every
partition the worker is given, across rebalances.

:class:`AtLeastOnceOutput` has the same shape without transactions: outputs are
flushed, then the offsets are committed; a crash in between repeats outputs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from enforcer.live.clients import DENIED, Cause, TransactionReports, denied_cause, kafka_error
from enforcer.live.failures import Remedy, WorkerStopError, remedy_for
from enforcer.live.positions import TopicPartitionKey
from enforcer.outputs.records import OutputRecord

log = logging.getLogger("enforcer.output")

# How long one client call may block before it is retried: short enough that a
# SIGTERM is seen promptly, long enough for a broker under load.
CALL_TIMEOUT_S = 5.0
NO_RETRY = 0.0
"""Sending the offsets into the transaction is not retried: a send that timed out is
aborted, which costs only deciding the transaction's records again (nothing of it
can have been committed before the commit itself)."""


class CommitAborted(Exception):  # noqa: N818 - an outcome, not a failure of the worker
    """The transaction was aborted instead of committed; its records must be decided
    again. ``reason`` names the Kafka error (name and text); ``error`` is that error,
    when a client call raised one."""

    def __init__(self, reason: str, error: KafkaError | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


class Output(Protocol):
    """What the loop needs of its producer side."""

    def start(self, should_stop: Callable[[], bool]) -> None: ...
    def begin(self) -> None: ...
    def send(self, record: OutputRecord) -> None: ...
    def commit(self, offsets: Mapping[TopicPartitionKey, int], consumer: Consumer) -> None: ...
    def abort(self) -> None: ...
    def poll(self) -> None: ...
    def close(self, timeout_s: float) -> None: ...
    @property
    def open(self) -> bool: ...


def _partitions(offsets: Mapping[TopicPartitionKey, int]) -> list[TopicPartition]:
    return [
        TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()
    ]


def _call(what: str, call: Callable[[], Any], deadline_s: float) -> Any:
    """Make ``call``, retrying what Kafka calls retriable until ``deadline_s`` passes
    (``deadline_s`` 0: no retry, a retriable error aborts).

    Raises :class:`CommitAborted` for errors that need the transaction aborted and
    :class:`WorkerStopError` for everything else.
    """
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return call()
        except KafkaException as exc:
            error = kafka_error(exc)
            remedy = remedy_for(error)
            if remedy is Remedy.RETRY and time.monotonic() < deadline:
                log.info("%s: %s, retrying", what, error.name())
                time.sleep(0.1)
                continue
            if remedy is Remedy.ABORT or (remedy is Remedy.RETRY and not deadline_s):
                raise CommitAborted(f"{what}: {error.name()} ({error.str()})", error) from None
            raise ClientFailedError(what, error) from None


class ClientFailedError(WorkerStopError):
    """A client call failed for good (a fatal error, such as being fenced)."""

    def __init__(self, what: str, error: KafkaError) -> None:
        super().__init__(f"{what} failed: {error.name()} ({error.str()})")


class RenewalBudget:
    """How often a failed producer may be replaced before the worker gives up: a
    broker restart that outlives the transaction timeout fences the producer once;
    two workers sharing one instance id would fence each other without end."""

    def __init__(self, most: int, window_s: float, monotonic: Callable[[], float]) -> None:
        self._most = most
        self._window_s = window_s
        self._monotonic = monotonic
        self._times: list[float] = []

    def allow(self) -> bool:
        """Take one renewal if fewer than ``most`` were taken within the window."""
        now = self._monotonic()
        self._times = [t for t in self._times if now - t < self._window_s]
        if len(self._times) >= self._most:
            return False
        self._times.append(now)
        return True


class TransactionalOutput:
    """Outputs and offsets in one Kafka transaction; begun lazily at the first send.

    A producer that fails for good (fenced after Kafka timed its transaction out while
    a broker was down) is replaced by a new one with the same transactional id, whose
    registration aborts whatever the old one left open; the transaction's records are
    then decided again (:class:`CommitAborted`).
    """

    def __init__(
        self,
        make_producer: Callable[[], Producer],
        deadline_s: float,
        budget: RenewalBudget,
        reports: TransactionReports | None = None,
    ) -> None:
        self._make_producer = make_producer
        self._producer = make_producer()
        self._deadline_s = deadline_s
        self._budget = budget
        # What the producer reports about the open transaction (the producers this
        # makes give it their log lines and failed deliveries: clients.producer_config).
        self._reports = reports if reports is not None else TransactionReports()
        self._open = False

    @property
    def open(self) -> bool:
        """Whether a transaction is open (something was sent since the last commit)."""
        return self._open

    def start(self, should_stop: Callable[[], bool]) -> None:
        """Register the transactional id, fencing an earlier incarnation of this worker
        and aborting what it left open. Retries until it works or ``should_stop``."""
        deadline = time.monotonic() + self._deadline_s
        while not should_stop():
            try:
                self._producer.init_transactions(min(CALL_TIMEOUT_S, self._deadline_s))
                return
            except KafkaException as exc:
                error = kafka_error(exc)
                if remedy_for(error) is not Remedy.RETRY or time.monotonic() > deadline:
                    raise WorkerStopError(
                        f"cannot start transactions: {error.name()} ({error.str()})"
                    ) from None

    def begin(self) -> None:
        """Open a transaction if none is open (offsets alone may be committed in it)."""
        if not self._open:
            self._reports.clear()
            try:
                _call("begin transaction", self._producer.begin_transaction, self._deadline_s)
            except ClientFailedError as failure:
                # Failed for good (fenced after a broker outage): replaced, as at a
                # send; the engine also begins without a send (offsets alone).
                self._renew(str(failure))
                raise CommitAborted("producer replaced") from None
            self._open = True

    def send(self, record: OutputRecord) -> None:
        """Queue one output in the open transaction (opening one if needed).

        A refused send stops the worker, naming the best cause known
        (:meth:`_cause`): after a transaction error librdkafka refuses every send with
        ``_STATE``, which names none. Unless the cause is a transaction error that an
        abort clears (a producer frozen long enough for its sequence numbers to be
        skipped, say): then the transaction is aborted and :class:`CommitAborted`
        raised, so its records are decided again."""
        try:
            self.begin()
            _produce(self._producer, record)
        except KafkaException as exc:
            error = kafka_error(exc)
            if not error.fatal():
                # An error of the send itself concerns the record's topic; _STATE, the
                # transaction's state.
                topic = None if error.code() == KafkaError._STATE else record.topic
                cause = self._cause(error, topic)
                if cause.denied:
                    raise WorkerStopError(denied_cause(cause.error, cause.topic)) from None
                if cause.abortable:
                    self.abort()  # raises WorkerStopError when even that fails
                    raise CommitAborted(f"send to '{record.topic}' refused: {cause}") from None
                raise WorkerStopError(f"send to '{record.topic}' failed: {cause}") from None
            self._renew(f"send failed: {error.name()} ({error.str()})")
            raise CommitAborted(f"producer replaced after {error.name()}") from None
        except ClientFailedError as failure:
            self._renew(str(failure))
            raise CommitAborted("producer replaced") from None

    def commit(self, offsets: Mapping[TopicPartitionKey, int], consumer: Consumer) -> None:
        """Put ``offsets`` in the transaction with the group's metadata and commit.

        Raises :class:`CommitAborted` after aborting, when Kafka refuses the commit
        (a stale generation, a failed delivery, a timeout), and :class:`WorkerStopError`
        when the worker must stop.
        """
        if not self._open:
            return
        try:
            if offsets:
                metadata = consumer.consumer_group_metadata()
                _call(
                    "send offsets",
                    lambda: self._producer.send_offsets_to_transaction(
                        _partitions(offsets), metadata, CALL_TIMEOUT_S
                    ),
                    NO_RETRY,
                )
            self._commit_transaction()
        except CommitAborted as aborted:
            reason = self._refused(aborted)
            self.abort()
            raise CommitAborted(reason, aborted.error) from None
        except ClientFailedError as failure:
            self._renew(str(failure))
            raise CommitAborted("producer replaced") from None
        self._open = False

    def _commit_transaction(self) -> None:
        """Commit the open transaction, or learn that it cannot commit.

        A commit that timed out may still complete: its request may have reached the
        transaction coordinator, and librdkafka goes on with it, saying how it ended
        when asked again. Aborted then and its records decided again, the transaction
        would put its outputs in the sink twice. So a commit that timed out is asked
        again until it ends (committed, or refused with an error that needs an abort)
        within the deadline. A transaction whose end is still unknown then is neither
        aborted nor decided again: the worker stops (:class:`WorkerStopError`), and the
        one started after it reads what was committed.

        Raises :class:`CommitAborted` (without aborting) when the transaction needs an
        abort, and :class:`ClientFailedError` when the producer failed for good before
        the commit could have been sent (fenced, say).
        """
        deadline = time.monotonic() + self._deadline_s
        timed_out = False
        while True:
            try:
                self._producer.commit_transaction(CALL_TIMEOUT_S)
                return
            except KafkaException as exc:
                error = kafka_error(exc)
            remedy = remedy_for(error)
            if remedy is Remedy.ABORT:
                # librdkafka knows the transaction did not commit: aborting is safe.
                raise CommitAborted(f"commit: {error.name()} ({error.str()})", error)
            if remedy is Remedy.RETRY and time.monotonic() < deadline:
                timed_out = True
                log.info("commit: %s, asking again how the commit ended", error.name())
                time.sleep(0.1)  # some retriable errors come back at once
                continue
            if not timed_out and remedy is Remedy.STOP:
                raise ClientFailedError("commit", error)
            raise WorkerStopError(
                f"commit: the transaction's end is unknown after {self._deadline_s:g}s "
                f"({error.name()}: {error.str()}); stopping so that the restarted worker "
                "reads what was committed (aborting and deciding its records again could "
                "write them twice)"
            )

    def abort(self) -> None:
        """Abort the open transaction, if any: nothing of it is ever read committed."""
        if not self._open:
            return
        try:
            _call(
                "abort",
                lambda: self._producer.abort_transaction(CALL_TIMEOUT_S),
                self._deadline_s,
            )
        except CommitAborted as exc:  # an abort that needs an abort cannot happen
            raise WorkerStopError(f"abort failed: {exc.reason}") from None
        except ClientFailedError as failure:
            self._renew(str(failure))  # the new producer's registration aborts it
        self._open = False

    def _cause(self, raised: KafkaError, topic: str | None = None) -> Cause:
        """The best cause known for a failure that raised ``raised``: a failed delivery,
        else the transaction's error as librdkafka logged it, else ``raised`` itself
        (about ``topic``). Never a commit made to learn it: after a commit that timed
        out, that would commit a half-sent transaction."""
        self._producer.poll(0)  # serve the delivery reports and log lines still queued
        return self._reports.cause() or Cause(raised, topic)

    def _refused(self, aborted: CommitAborted) -> str:
        """Why a commit was refused; raises :class:`WorkerStopError` for a missing
        permission, which aborting and deciding again would only meet again."""
        if aborted.error is None:
            return aborted.reason
        cause = self._cause(aborted.error)
        if cause.denied:
            raise WorkerStopError(denied_cause(cause.error, cause.topic))
        if aborted.error.code() in DENIED:
            raise WorkerStopError(denied_cause(aborted.error))
        if cause.error is aborted.error:
            return aborted.reason
        return f"{aborted.reason}; first failure: {cause}"

    def _renew(self, cause: str) -> None:
        if not self._budget.allow():
            raise WorkerStopError(f"{cause}; the producer was replaced too often: stopping")
        log.warning("producer failed (%s); replacing it (same transactional id)", cause)
        old, self._producer = self._producer, self._make_producer()
        self._open = False
        self._reports.clear()
        try:
            old.purge()
            old.flush(0)
        except (KafkaException, BufferError):
            pass  # it is discarded either way
        self.start(lambda: False)

    def poll(self) -> None:
        """Serve delivery reports; failures surface at the commit."""
        self._producer.poll(0)

    def close(self, timeout_s: float) -> None:
        """Abort what is open (an unfinished transaction is never committed here)."""
        try:
            self.abort()
        finally:
            self._producer.flush(timeout_s)


class AtLeastOnceOutput:
    """Outputs flushed, then offsets committed by the consumer: no transaction."""

    def __init__(self, producer: Producer, deadline_s: float) -> None:
        self._producer = producer
        self._deadline_s = deadline_s
        self._failed: list[Cause] = []
        self._open = False

    @property
    def open(self) -> bool:
        """Whether outputs were sent since the last commit."""
        return self._open

    def start(self, should_stop: Callable[[], bool]) -> None:
        """Nothing to register without transactions."""

    def begin(self) -> None:
        """Mark offsets to commit even when nothing was sent."""
        self._open = True

    def send(self, record: OutputRecord) -> None:
        """Queue one output."""
        self._open = True
        _produce(self._producer, record, self._delivered)

    def _delivered(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self._failed.append(Cause(error, message.topic()))

    def commit(self, offsets: Mapping[TopicPartitionKey, int], consumer: Consumer) -> None:
        """Wait until every output is delivered, then commit the offsets. A delivery
        refused for a missing permission stops the worker."""
        remaining = self._producer.flush(self._deadline_s)
        failed, self._failed = self._failed, []
        if remaining or failed:
            self._open = False
            denied = next((cause for cause in failed if cause.denied), None)
            if denied is not None:
                raise WorkerStopError(denied_cause(denied.error, denied.topic))
            why = str(failed[0]) if failed else f"{remaining} outputs undelivered"
            raise CommitAborted(f"delivery: {why}")
        if offsets:
            try:
                consumer.commit(offsets=_partitions(offsets), asynchronous=False)
            except KafkaException as exc:
                self._open = False
                error = kafka_error(exc)
                # The partitions moved on, or the group did: they are read again.
                raise CommitAborted(f"commit: {error.name()} ({error.str()})", error) from None
        self._open = False

    def abort(self) -> None:
        """Nothing can be taken back: what was delivered stays (at least once)."""
        self._open = False

    def poll(self) -> None:
        """Serve delivery reports."""
        self._producer.poll(0)

    def close(self, timeout_s: float) -> None:
        """Deliver what is queued."""
        self._producer.flush(timeout_s)


def _produce(
    producer: Producer,
    record: OutputRecord,
    on_delivery: Callable[[KafkaError | None, Any], None] | None = None,
) -> None:
    while True:
        try:
            producer.produce(
                record.topic,
                value=record.value,
                key=record.key,
                partition=record.partition,
                headers=list(record.headers) or None,
                on_delivery=on_delivery,
            )
            return
        except BufferError:
            # The client's queue is full: let it deliver some, then try again.
            producer.poll(0.05)
