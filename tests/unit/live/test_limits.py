"""Outputs fitted to their topics' size limits (docs/contract.md: liveness): no record halts the
pipeline."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.step import OutcomeKind
from enforcer.live.limits import (
    HEADER_VALUE_SHA256,
    HEADER_VALUE_SIZE,
    RECORD_OVERHEAD,
    OutputLimits,
    record_size,
    size_bound,
)
from enforcer.outputs.records import OutputRecord, OutputTopics, output_records

from ..conftest import event, ident, make_step, record

TOPICS = OutputTopics("sink", "violations", "deadletter")
STEP = make_step()


def _limits(sink: int, violations: int = 10**6, deadletter: int = 10**6) -> OutputLimits:
    return OutputLimits(TOPICS, {"sink": sink, "violations": violations, "deadletter": deadletter})


def _big_event(padding: int) -> dict[str, object]:
    return event(
        ident("phone", "+14155550100", ["security.mfa"]),
        ident("email", "a@example.com", ["marketing.advertising"]),
        note="x" * padding,
    )


def test_an_outcome_that_fits_is_sent_as_decided() -> None:
    """Nothing changes for outputs within their limits."""
    outcome = STEP(record(_big_event(100)))
    fitted, outputs = _limits(10_000).fit(outcome)
    assert fitted is outcome
    assert [o.topic for o in outputs] == ["sink", "violations"]


def test_a_forwarded_record_too_large_for_the_sink_is_dead_lettered() -> None:
    """The record is dead-lettered (output-too-large) with its original bytes; nothing
    goes to the sink and no violation is written for it."""
    source = record(_big_event(5_000))
    fitted, outputs = _limits(2_000).fit(STEP(source))
    assert fitted.kind is OutcomeKind.DEADLETTERED
    assert fitted.error_reason == "output-too-large"
    assert "topic sink" in (fitted.error_message or "")
    assert [o.topic for o in outputs] == ["deadletter"]
    assert outputs[0].value == source.value
    assert dict(outputs[0].headers)["enforcer.error.reason"] == b"output-too-large"


def test_a_dead_letter_too_large_itself_goes_without_its_value() -> None:
    """Its size and SHA-256 say what was left out; the message never quotes it."""
    source = record(_big_event(5_000))
    _, outputs = _limits(2_000, deadletter=2_000).fit(STEP(source))
    (letter,) = outputs
    headers = dict(letter.headers)
    assert letter.value is None and letter.key == source.key
    assert headers[HEADER_VALUE_SIZE] == str(len(source.value or b"")).encode()
    assert headers[HEADER_VALUE_SHA256] == hashlib.sha256(source.value or b"").hexdigest().encode()
    assert b"+14155550100" not in b"".join(v or b"" for _, v in letter.headers)


def test_a_huge_key_is_left_out_too() -> None:
    """If the dead letter is still too large without its value, key and input headers go."""
    source = record(_big_event(10), key=b"k" * 5_000, headers=(("trace", b"t" * 3_000),))
    _, (letter,) = _limits(2_000, deadletter=2_000).fit(STEP(source))
    assert letter.key is None and letter.value is None
    assert all(name.startswith("enforcer.") for name, _ in letter.headers)
    assert record_size(letter) <= 2_000


@settings(max_examples=60)
@given(
    padding=st.integers(0, 6_000),
    sink=st.integers(RECORD_OVERHEAD + 400, 8_000),
    deadletter=st.integers(RECORD_OVERHEAD + 400, 8_000),
)
def test_whatever_the_sizes_every_output_fits_and_the_record_has_one_outcome(
    padding: int, sink: int, deadletter: int
) -> None:
    """Every output sent fits its topic, and the record either keeps its decision
    (everything fit) or becomes exactly one dead letter."""
    limits = _limits(sink, violations=10**6, deadletter=deadletter)
    outcome = STEP(record(_big_event(padding)))
    fitted, outputs = limits.fit(outcome)
    assert all(limits.fits(o) for o in outputs)
    if fitted is outcome:
        assert all(o.topic != "deadletter" for o in outputs)
    else:
        assert fitted.kind is OutcomeKind.DEADLETTERED
        assert [o.topic for o in outputs] == ["deadletter"]


def test_a_dead_letter_keeps_its_reason_when_only_it_is_too_large() -> None:
    """Two megabytes of garbage stay an invalid-json dead letter, without the value."""
    garbage = record(b"\x00not json" * 2_000)
    fitted, (letter,) = _limits(2_000, deadletter=2_000).fit(STEP(garbage))
    assert fitted.error_reason == "invalid-json"
    assert letter.value is None
    assert dict(letter.headers)["enforcer.error.reason"] == b"invalid-json"


@given(
    key=st.none() | st.binary(max_size=50),
    value=st.none() | st.binary(max_size=200),
    headers=st.lists(st.tuples(st.text(max_size=20), st.none() | st.binary(max_size=30))),
)
def test_the_cheap_bound_is_never_below_the_size(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes | None]]
) -> None:
    """The bound checked for every output (lengths only) is at least the exact size, for
    header names in any script: nothing too large passes unseen."""
    out = OutputRecord("sink", key, value, tuple(headers))
    assert size_bound(out) >= record_size(out)


def test_an_output_whose_bound_reaches_the_limit_is_measured_exactly() -> None:
    """A long ASCII header name makes the bound four times its size: the exact size
    decides, so a record that fits to the byte is sent as decided, and one byte less
    makes it a dead letter."""
    headers = (("h" * 300, b"v"),)
    outcome = STEP(
        record(event(ident("email", "a@example.com", ["marketing.advertising"])), headers=headers)
    )
    (sink,) = output_records(outcome, TOPICS)
    exact = record_size(sink)
    assert size_bound(sink) > exact
    fitted, outputs = _limits(exact).fit(outcome)
    assert fitted is outcome and [o.topic for o in outputs] == ["sink"]
    letter, _ = _limits(exact - 1).fit(outcome)
    assert letter.error_reason == "output-too-large"
