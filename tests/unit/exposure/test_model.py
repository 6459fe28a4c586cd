"""The exposure topic's value: written, read back exactly, and refused strictly when
malformed (docs/exposure.md: "The value format")."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.fingerprint import Fingerprinter
from enforcer.exposure.model import (
    ExposureEntry,
    ExposureFailure,
    SubjectExposure,
    exposure_key,
    exposure_value,
    parse_exposure_record,
    seconds_of,
    text_of,
)

from ..conftest import KEY

FP = Fingerprinter(KEY)
ADS = "marketing.advertising"
ENTRY = ExposureEntry(
    "audience.identity",
    "email",
    FP("email", "ann@example.com"),
    FP.key_id,
    (ADS,),
    False,
    "v1",
    "2026-11-30T12:00:00Z",
    "2026-12-02T08:15:00Z",
)


def _value(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(
        exposure_value(SubjectExposure("acct-1", (ENTRY,))) or b""
    )
    entry_changes = {
        k: v for k, v in changes.items() if k not in {"format", "subject_id", "entries"}
    }
    document["entries"][0].update(entry_changes)
    document.update({k: v for k, v in changes.items() if k in {"format", "subject_id", "entries"}})
    return document


def _parse(document: object, key: bytes | None = b"acct-1") -> SubjectExposure | ExposureFailure:
    return parse_exposure_record(key, orjson.dumps(document))


def test_the_value_has_the_documented_shape() -> None:
    document = orjson.loads(exposure_value(SubjectExposure("acct-1", (ENTRY,))) or b"")
    assert document == {
        "format": 1,
        "subject_id": "acct-1",
        "entries": [
            {
                "sink_topic": "audience.identity",
                "identifier_type": "email",
                "fingerprint": ENTRY.fingerprint,
                "key_id": FP.key_id,
                "purposes": [ADS],
                "by_ledger": False,
                "policy_version": "v1",
                "first_forwarded_at": "2026-11-30T12:00:00Z",
                "last_forwarded_at": "2026-12-02T08:15:00Z",
            }
        ],
    }


def test_an_empty_exposure_is_a_tombstone_and_a_tombstone_is_empty() -> None:
    assert exposure_value(SubjectExposure("acct-1", ())) is None
    assert parse_exposure_record(b"acct-1", None) == SubjectExposure("acct-1", ())
    assert exposure_key("acct-1") == b"acct-1"


_tags = st.lists(st.sampled_from([ADS, "security.mfa", "analytics", "a.b-c_d"]), unique=True)
_times = st.integers(0, 2**32 - 1)


@st.composite
def _entries(draw: st.DrawFn) -> ExposureEntry:
    first = draw(_times)
    return ExposureEntry(
        draw(st.sampled_from(["sink", "audience.identity", "ünïcode-topic"])),
        draw(st.sampled_from(["email", "phone", "device_id"])),
        "hmac-sha256:" + draw(st.binary(min_size=32, max_size=32)).hex(),
        draw(st.binary(min_size=8, max_size=8)).hex(),
        tuple(sorted(draw(_tags))),
        draw(st.booleans()),
        draw(st.text(min_size=1, max_size=12)),
        text_of(first),
        text_of(draw(st.integers(first, 2**32 - 1))),
    )


@given(
    st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=20),
    st.lists(_entries(), max_size=5, unique_by=lambda e: e.identity),
)
def test_a_value_reads_back_as_written(subject_id: str, entries: list[ExposureEntry]) -> None:
    exposure = SubjectExposure(subject_id, tuple(entries))
    key = exposure_key(subject_id)
    assert parse_exposure_record(key, exposure_value(exposure)) == exposure


def test_times_are_kept_to_the_second_in_utc() -> None:
    assert seconds_of("2026-11-30T13:00:00.987+01:00") == seconds_of("2026-11-30T12:00:00Z")
    assert text_of(seconds_of("2026-11-30T13:00:00.987+01:00")) == "2026-11-30T12:00:00Z"
    parsed = _parse(_value(first_forwarded_at="2026-11-30T12:00:00.5Z"))
    assert isinstance(parsed, SubjectExposure)
    assert parsed.entries[0].first_forwarded_at == "2026-11-30T12:00:00Z"
    with pytest.raises(ValueError, match="1970"):
        seconds_of("1969-12-31T23:59:59Z")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (None, b"{}", "the record has no subject id key"),
        (b"\xff", None, "the record key is not UTF-8"),
        (b"acct-1", b"{", "not valid JSON"),
        (b"acct-1", b"[]", "not a JSON object"),
        (b"acct-1", b'{"format": NaN}', "not valid JSON"),
    ],
)
def test_a_malformed_record_is_refused(
    key: bytes | None, value: bytes | None, message: str
) -> None:
    assert parse_exposure_record(key, value) == ExposureFailure(message)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": 2}, "format: this version reads format 1 only"),
        ({"format": True}, "format: not an integer"),
        ({"format": "1"}, "format: not an integer"),
        ({"subject_id": "acct-2"}, "subject_id: does not match the record key"),
        ({"entries": []}, "entries: empty (an empty exposure is a tombstone)"),
        ({"entries": {}}, "entries: not a list"),
        ({"entries": [1]}, "entries[0]: not a JSON object"),
        ({"sink_topic": ""}, "entries[0].sink_topic: not a non-empty string"),
        (
            {"identifier_type": "Email"},
            "entries[0].identifier_type: not a lower-cased identifier type name",
        ),
        (
            {"identifier_type": "+14155550100"},
            "entries[0].identifier_type: not a lower-cased identifier type name",
        ),
        (
            {"identifier_type": "ph\u03bfne"},
            "entries[0].identifier_type: not a lower-cased identifier type name",
        ),
        ({"policy_version": 3}, "entries[0].policy_version: not a non-empty string"),
        (
            {"fingerprint": "ann@example.com"},
            "entries[0].fingerprint: not an hmac-sha256 fingerprint",
        ),
        (
            {"fingerprint": "hmac-sha256:" + "A" * 64},
            "entries[0].fingerprint: not an hmac-sha256 fingerprint",
        ),
        ({"key_id": "xyz"}, "entries[0].key_id: not a key id (16 hex digits)"),
        ({"purposes": "ads"}, "entries[0].purposes: not a list"),
        ({"purposes": ["Ads"]}, "entries[0].purposes[0]: not a normalized purpose tag"),
        ({"purposes": [1]}, "entries[0].purposes[0]: not a normalized purpose tag"),
        ({"purposes": ["ads", ["ads"]]}, "entries[0].purposes[1]: not a normalized purpose tag"),
        ({"purposes": ["b", "a"]}, "entries[0].purposes: not sorted and de-duplicated"),
        ({"purposes": ["a", "a"]}, "entries[0].purposes: not sorted and de-duplicated"),
        ({"by_ledger": 1}, "entries[0].by_ledger: not true or false"),
        (
            {"first_forwarded_at": "yesterday"},
            "entries[0].first_forwarded_at: not an RFC 3339 time",
        ),
        (
            {"last_forwarded_at": "2026-02-30T00:00:00Z"},
            "entries[0].last_forwarded_at: not an RFC 3339 time",
        ),
        (
            {"last_forwarded_at": "2200-01-01T00:00:00Z"},
            "entries[0].last_forwarded_at: outside 1970 to 2106",
        ),
        (
            {"last_forwarded_at": "2026-11-30T11:59:59Z"},
            "entries[0].last_forwarded_at: before first_forwarded_at",
        ),
    ],
)
def test_a_malformed_value_is_refused_by_field_never_by_value(
    changes: dict[str, Any], message: str
) -> None:
    assert _parse(_value(**changes)) == ExposureFailure(message)


def test_missing_unknown_and_repeated_fields_are_refused() -> None:
    document = _value()
    del document["entries"][0]["key_id"]
    assert _parse(document) == ExposureFailure("entries[0]: missing field key_id")
    document = _value()
    document["entries"][0]["value"] = "ann@example.com"
    assert _parse(document) == ExposureFailure("entries[0]: unknown field")
    document = _value()
    document["raw"] = "ann@example.com"
    assert _parse(document) == ExposureFailure("unknown field")
    document = _value()
    document["entries"].append(dict(document["entries"][0]))
    assert _parse(document) == ExposureFailure("entries[1]: the same identifier twice")


@given(st.binary(max_size=200))
def test_no_bytes_make_the_parser_raise(value: bytes) -> None:
    assert isinstance(parse_exposure_record(b"acct-1", value), SubjectExposure | ExposureFailure)
