"""A record read by topic replay is the step's input the live engine would make."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from enforcer.core.step import Source, traceparent
from enforcer.replay.sources.kafka_topic import input_record

TRACE = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_null_header_value_stays_null_and_a_later_traceparent_is_found() -> None:
    """The live engine keeps a null header value null, and the trace context of a record
    whose first ``traceparent`` is null comes from the next one: replay reads it alike
    (it read the null as empty bytes, an invalid trace context, and found none)."""
    message = ConsumerRecord(
        topic="identity.events",
        partition=2,
        offset=7,
        timestamp=0,
        timestamp_type=0,
        key=b"acct",
        value=b"{}",
        checksum=None,
        serialized_key_size=4,
        serialized_value_size=2,
        headers=[("traceparent", None), ("traceparent", TRACE), ("x", b"1")],
    )
    record = input_record(message)
    assert record.headers == (("traceparent", None), ("traceparent", TRACE), ("x", b"1"))
    assert traceparent(record.headers) == TRACE.decode()
    assert (record.key, record.value) == (b"acct", b"{}")
    assert record.source == Source("identity.events", 2, 7)
