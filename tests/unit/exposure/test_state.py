"""The exposure state: what a forward changes, what a retraction removes, a policy
change, a restore from the topic, rollback, and no raw value kept."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerMode
from enforcer.exposure.model import ExposureEntry, ExposureFailure, Forward, exposure_value
from enforcer.exposure.retract import (
    ExposureRetraction,
    allowed_under,
    not_allowed,
    retraction_value,
    retractions_of,
)
from enforcer.exposure.state import ExposureState, ExposureWrite, Undo
from enforcer.ledger.state import Grant, LedgerState, RetractionReason

from ..conftest import KEY

FP = Fingerprinter(KEY)
ADS, MFA = "marketing.advertising", "security.mfa"
SINK = "audience.identity"
ANN, BOB = FP("email", "ann@example.com"), FP("email", "bob@example.com")
DAY1, DAY1_LATER, DAY2 = "2026-11-30T12:00:00Z", "2026-11-30T23:59:59Z", "2026-12-01T00:00:00Z"


def fwd(
    fingerprint: str = ANN,
    purposes: tuple[str, ...] = (ADS,),
    version: str = "v1",
    *,
    sink: str = SINK,
    key_id: str = FP.key_id,
    by_ledger: bool = False,
) -> Forward:
    return Forward(sink, "email", fingerprint, key_id, purposes, by_ledger, version)


def entries(
    state: ExposureState, subject: str = "acct-1", partition: int = 0
) -> list[ExposureEntry]:
    return list(state.exposure(partition, subject).entries)


def passes_ads(_kind: str, purposes: tuple[str, ...]) -> bool:
    return ADS in purposes


def test_a_first_forward_is_written_with_its_first_and_last_time() -> None:
    state = ExposureState()
    write = state.forwarded(0, "acct-1", [fwd()], DAY1)
    assert write is not None
    assert write == ExposureWrite(0, b"acct-1", state.value(0, "acct-1"))
    assert entries(state) == [
        ExposureEntry(SINK, "email", ANN, FP.key_id, (ADS,), False, "v1", DAY1, DAY1)
    ]
    assert orjson.loads(write.value or b"")["entries"][0]["fingerprint"] == ANN
    assert (len(state), state.subjects, state.partitions) == (1, 1, (0,))


def test_the_same_forward_on_the_same_day_writes_nothing() -> None:
    state = ExposureState()
    state.forwarded(0, "acct-1", [fwd()], DAY1)
    assert state.forwarded(0, "acct-1", [fwd()], DAY1) is None
    assert state.forwarded(0, "acct-1", [fwd()], DAY1_LATER) is None
    assert entries(state)[0].last_forwarded_at == DAY1


def test_a_forward_on_a_later_day_moves_the_last_time_and_keeps_the_first() -> None:
    state = ExposureState()
    state.forwarded(0, "acct-1", [fwd()], DAY1)
    assert state.forwarded(0, "acct-1", [fwd()], DAY2) is not None
    (entry,) = entries(state)
    assert (entry.first_forwarded_at, entry.last_forwarded_at) == (DAY1, DAY2)
    assert state.forwarded(0, "acct-1", [fwd()], DAY1) is None  # an earlier time: nothing


@pytest.mark.parametrize(
    "changed",
    [
        fwd(purposes=(ADS, MFA)),
        fwd(version="v2"),
        fwd(key_id="0123456789abcdef"),
        fwd(by_ledger=True),
    ],
    ids=["purposes", "policy-version", "key-id", "by-ledger"],
)
def test_a_forward_under_other_purposes_policy_or_key_is_written(changed: Forward) -> None:
    state = ExposureState()
    state.forwarded(0, "acct-1", [fwd()], DAY1)
    assert state.forwarded(0, "acct-1", [changed], DAY1_LATER) is not None
    (entry,) = entries(state)
    assert (entry.purposes, entry.policy_version, entry.key_id, entry.by_ledger) == (
        changed.purposes,
        changed.policy_version,
        changed.key_id,
        changed.by_ledger,
    )
    assert (entry.first_forwarded_at, entry.last_forwarded_at) == (DAY1, DAY1_LATER)


def test_each_sink_and_identifier_is_an_entry_of_its_own() -> None:
    state = ExposureState()
    state.forwarded(0, "acct-1", [fwd(), fwd(BOB)], DAY1)
    state.forwarded(0, "acct-1", [fwd(sink="other.sink")], DAY1)
    state.forwarded(1, "acct-2", [fwd()], DAY1)
    assert [(e.sink_topic, e.fingerprint) for e in entries(state)] == [
        (SINK, ANN),
        (SINK, BOB),
        ("other.sink", ANN),
    ]
    assert (len(state), state.subjects, state.partitions) == (4, 2, (0, 1))
    assert state.subject_ids(1) == ["acct-2"]


def test_a_retraction_removes_exactly_the_entries_no_longer_allowed() -> None:
    state = ExposureState()
    state.forwarded(0, "acct-1", [fwd(), fwd(BOB, (MFA,))], DAY1)
    removed, write = state.retract(0, "acct-1", lambda _s, e: e.fingerprint != ANN)
    assert [e.fingerprint for e in removed] == [ANN]
    assert write == ExposureWrite(0, b"acct-1", state.value(0, "acct-1"))
    assert [e.fingerprint for e in entries(state)] == [BOB]
    assert state.retract(0, "acct-1", lambda _s, e: e.fingerprint != ANN) == ((), None)
    removed, write = state.retract(0, "acct-1", lambda _s, _e: False)
    assert [e.fingerprint for e in removed] == [BOB]
    assert write == ExposureWrite(0, b"acct-1", None)  # nothing left: a tombstone
    assert (len(state), state.subjects) == (0, 0)


def test_a_subject_never_forwarded_has_nothing_to_retract() -> None:
    state = ExposureState()
    assert state.retract(0, "acct-9", lambda _s, _e: False) == ((), None)
    state.forwarded(0, "acct-1", [fwd()], DAY1)
    assert state.retract(1, "acct-1", lambda _s, _e: False) == ((), None)


def test_a_retracted_identifier_forwarded_again_is_exposed_again() -> None:
    state = ExposureState()
    state.forwarded(0, "acct-1", [fwd()], DAY1)
    state.retract(0, "acct-1", lambda _s, _e: False)
    assert state.forwarded(0, "acct-1", [fwd()], DAY1_LATER) is not None
    (entry,) = entries(state)
    assert (entry.first_forwarded_at, entry.last_forwarded_at) == (DAY1_LATER, DAY1_LATER)


def test_a_policy_change_retracts_what_the_new_policy_would_not_forward() -> None:
    state = ExposureState()
    state.forwarded(0, "acct-1", [fwd(), fwd(BOB, (MFA,))], DAY1)
    state.forwarded(0, "acct-2", [fwd(BOB, (MFA,))], DAY1)
    state.forwarded(1, "acct-3", [fwd()], DAY1)
    only_mfa = allowed_under(lambda _k, p: MFA in p, LedgerMode.OFF, None)
    rejudged = state.rejudge(0, only_mfa, "v2")
    assert rejudged.retractions == [
        ExposureRetraction(
            SINK,
            "acct-1",
            "email",
            ANN,
            FP.key_id,
            RetractionReason.POLICY_CHANGED,
            policy_version="v2",
        )
    ]
    assert rejudged.writes == [ExposureWrite(0, b"acct-1", state.value(0, "acct-1"))]
    assert [e.fingerprint for e in entries(state, "acct-3", 1)] == [ANN]  # another partition
    assert state.rejudge(0, only_mfa, "v2") == ([], [])  # twice = once


def test_a_restore_applies_values_and_tombstones_and_forgets_a_malformed_value() -> None:
    source = ExposureState()
    source.forwarded(0, "acct-1", [fwd(), fwd(BOB)], DAY1)
    value = source.value(0, "acct-1")
    state = ExposureState()
    assert state.restore(0, b"acct-1", value) is None
    assert state.exposure(0, "acct-1") == source.exposure(0, "acct-1")
    assert state.value(0, "acct-1") == value
    assert state.restore(0, b"acct-1", b"{not json") == ExposureFailure("not valid JSON")
    assert (entries(state), len(state)) == ([], 0)
    state.restore(0, b"acct-1", value)
    assert state.restore(0, b"acct-1", None) is None
    assert (entries(state), len(state)) == ([], 0)
    assert state.restore(0, None, value) == ExposureFailure("the record has no subject id key")


def test_a_restored_subject_changes_only_as_a_forwarded_one_would() -> None:
    source = ExposureState()
    source.forwarded(0, "acct-1", [fwd()], DAY1)
    state = ExposureState()
    state.restore(0, b"acct-1", source.value(0, "acct-1"))
    assert state.forwarded(0, "acct-1", [fwd()], DAY1_LATER) is None
    assert state.forwarded(0, "acct-1", [fwd()], DAY2) is not None


def test_rollback_puts_back_what_a_transaction_changed() -> None:
    state = ExposureState()
    state.forwarded(0, "acct-1", [fwd()], DAY1)
    before = state.value(0, "acct-1")
    undo: Undo = {}
    state.forwarded(0, "acct-1", [fwd(BOB)], DAY1, undo)
    state.forwarded(0, "acct-2", [fwd()], DAY1, undo)
    state.retract(0, "acct-1", lambda _s, _e: False, undo)
    state.rollback(undo)
    assert (state.value(0, "acct-1"), state.value(0, "acct-2")) == (before, None)
    assert (len(state), state.subjects, undo) == (1, 1, {})


def test_dropping_a_partition_forgets_it() -> None:
    state = ExposureState()
    state.forwarded(0, "acct-1", [fwd()], DAY1)
    state.forwarded(1, "acct-2", [fwd(), fwd(BOB)], DAY1)
    assert (state.entries_in(0), state.entries_in(1), len(state)) == (1, 2, 3)
    state.drop(1)
    assert (len(state), state.partitions) == (1, (0,))
    assert (state.entries_in(0), state.entries_in(1)) == (1, 0)


def test_the_state_holds_no_raw_value() -> None:
    state = ExposureState()
    state.forwarded(0, "acct-1", [fwd()], DAY1)
    assert not state.holds_text("ann@example.com")
    assert state.holds_text(ADS)
    assert b"ann@example.com" not in (state.value(0, "acct-1") or b"")


def test_a_bad_fingerprint_or_time_is_a_value_error_and_changes_nothing() -> None:
    state = ExposureState()
    with pytest.raises(ValueError, match="fingerprint"):
        state.forwarded(0, "acct-1", [fwd("ann@example.com")], DAY1)
    with pytest.raises(ValueError, match="RFC 3339"):
        state.forwarded(0, "acct-1", [fwd()], "today")
    assert (len(state), state.value(0, "acct-1")) == (0, None)


# -- exact retractions against the ledger, and the records -------------------------


def test_allowed_under_the_ledger_follows_the_decision() -> None:
    ledger = LedgerState()
    ledger.replace("acct-1", DAY1, [Grant("email", ANN, (ADS,)), Grant("email", BOB, (MFA,))])
    carol = FP("email", "carol@example.com")

    def entry(fingerprint: str, *, by_ledger: bool) -> ExposureEntry:
        return ExposureEntry(
            SINK, "email", fingerprint, FP.key_id, (ADS,), by_ledger, "v1", DAY1, DAY1
        )

    authoritative = allowed_under(passes_ads, LedgerMode.AUTHORITATIVE, ledger)
    fallback = allowed_under(passes_ads, LedgerMode.FALLBACK, ledger)
    off = allowed_under(passes_ads, LedgerMode.OFF, ledger)
    for allowed in (authoritative, fallback):
        assert allowed("acct-1", entry(ANN, by_ledger=True))  # granted advertising
        assert not allowed("acct-1", entry(BOB, by_ledger=True))  # granted MFA only
    # unknown to the ledger: stopped under authoritative; under fallback judged by the
    # event's purposes, unless they were the ledger's (it was left out of the state)
    assert not authoritative("acct-1", entry(carol, by_ledger=False))
    assert fallback("acct-1", entry(carol, by_ledger=False))
    assert not fallback("acct-1", entry(carol, by_ledger=True))
    assert off("acct-1", entry(BOB, by_ledger=True))  # the ledger is not read
    ledger.erase("acct-1", DAY2)
    assert not fallback("acct-1", entry(ANN, by_ledger=True))
    assert not fallback("acct-1", entry(carol, by_ledger=False))  # erased: known, no purpose


def test_not_allowed_lists_exposed_entries_only() -> None:
    state = ExposureState()
    state.forwarded(0, "acct-1", [fwd(), fwd(BOB, (MFA,))], DAY1)
    exposure = state.exposure(0, "acct-1")
    assert not_allowed(exposure, allowed_under(passes_ads, LedgerMode.OFF, None)) == (
        exposure.entries[1],
    )


def test_retraction_values_carry_the_fields_of_their_reason() -> None:
    state = ExposureState()
    state.forwarded(0, "acct-1", [fwd()], DAY1)
    (entry,) = entries(state)
    common = {
        "subject_id": "acct-1",
        "identifier_type": "email",
        "fingerprint": ANN,
        "key_id": FP.key_id,
    }
    cases = [
        (RetractionReason.PURPOSE_WITHDRAWN, {"ledger_updated_at": DAY2}),
        (RetractionReason.SUBJECT_ERASED, {"ledger_updated_at": DAY2}),
        (RetractionReason.POLICY_CHANGED, {"policy_version": "v2"}),
        (RetractionReason.REMEDIATED, {"plan_id": "plan-1", "policy_version": "v2"}),
    ]
    for reason, fields in cases:
        (retraction,) = retractions_of("acct-1", [entry], reason, **fields)
        assert retraction.sink_topic == SINK
        assert orjson.loads(retraction_value(retraction)) == {
            "retraction": {**common, "reason": reason.value, **fields}
        }
    with pytest.raises(ValueError, match="ledger_updated_at"):
        retractions_of("acct-1", [entry], RetractionReason.PURPOSE_WITHDRAWN)
    with pytest.raises(ValueError, match="policy_version"):
        retractions_of("acct-1", [entry], RetractionReason.POLICY_CHANGED)
    with pytest.raises(ValueError, match="plan_id"):
        retractions_of("acct-1", [entry], RetractionReason.REMEDIATED, policy_version="v2")


def test_the_value_written_is_the_value_format() -> None:
    state = ExposureState()
    state.forwarded(0, "acct-1", [fwd()], DAY1)
    assert state.value(0, "acct-1") == exposure_value(state.exposure(0, "acct-1"))


_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12)
_FORWARDS = st.lists(
    st.builds(
        Forward,
        st.sampled_from([SINK, 'sink "b"', "sink-ü"]),
        st.sampled_from(["email", "phone", "device_id", 'x"y']),
        st.sampled_from([ANN, BOB, FP("phone", "+14155550100")]),
        st.sampled_from([FP.key_id, "0" * 16]),
        st.lists(st.sampled_from([ADS, MFA, "analytics"]), max_size=3).map(
            lambda tags: tuple(sorted(set(tags)))
        ),
        st.booleans(),
        _TEXT,
    ),
    min_size=1,
    max_size=6,
)


@given(
    subject=_TEXT,
    records=st.lists(
        st.tuples(_FORWARDS, st.sampled_from([DAY1, DAY1_LATER, DAY2])), min_size=1, max_size=4
    ),
)
def test_the_value_written_from_slots_is_the_value_format_byte_for_byte(
    subject: str, records: list[tuple[list[Forward], str]]
) -> None:
    """value() writes from the slots what exposure_value() writes from the entries,
    whatever the texts (quotes, non-ASCII), for any history of forwards; the live
    path by MACs changes the state exactly as the path by fingerprints does."""
    state, by_macs = ExposureState(), ExposureState()
    for forwards, at in records:
        state.forwarded(0, subject, forwards, at)
        for f in forwards:
            by_macs.forwarded_macs(
                0,
                subject,
                f.sink_topic,
                f.key_id,
                f.policy_version,
                [(f.identifier_type, bytes.fromhex(f.fingerprint[-64:]), f.purposes, f.by_ledger)],
                at,
            )
        assert state.value(0, subject) == exposure_value(state.exposure(0, subject))
        assert by_macs.value(0, subject) == state.value(0, subject)
