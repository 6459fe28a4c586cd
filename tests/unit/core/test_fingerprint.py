"""Fingerprints (docs/contract.md: violation event): keyed, normalized, never the value itself."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.fingerprint import (
    CACHED_VALUE_CHARS,
    MAC_CACHE_CHARS,
    MAC_CACHE_SIZE,
    NO_PHONE_REGION,
    Fingerprinter,
    FingerprintKeyError,
    generate_key,
    normalize_value,
)

KEY = b"k" * 32


def test_fingerprint_is_hmac_of_type_nul_normalized_value() -> None:
    """hex HMAC-SHA-256 of lower-cased type, a NUL byte, the normalized value."""
    expected = hmac.new(KEY, b"email\x00a.b@example.com", hashlib.sha256).hexdigest()
    assert Fingerprinter(KEY)("email", "  A.B@Example.COM ") == "hmac-sha256:" + expected


@pytest.mark.parametrize(
    ("kind", "raw", "normalized"),
    [
        ("email", " Zoe@Example.com\n", "zoe@example.com"),
        ("phone", "+1 (415) 555-0100", "+14155550100"),
        ("phone", "+44.20.7946.0000", "+442079460000"),
        ("phone", "(415) 555-0100", "+14155550100"),
        ("phone", "001 415 555 0100", "+14155550100"),
        ("phone", "011 1 415 555 0100", "+14155550100"),
        ("phone", "[030] 1234 5678", "03012345678"),
        ("phone", "12-34", "1234"),
        ("phone", "not\u00a0a number", "notanumber"),
        ("device_id", "  AbC-1 ", "AbC-1"),
    ],
)
def test_normalization(kind: str, raw: str, normalized: str) -> None:
    """Emails trimmed and lower-cased; phones in E.164 (default region US) when they are
    valid numbers, else stripped of separators; others trimmed."""
    assert normalize_value(kind, raw) == normalized


def test_same_number_written_differently_correlates() -> None:
    """Two spellings of one phone number give one fingerprint; another key gives another."""
    fp = Fingerprinter(KEY)
    assert fp("phone", "+1 (415) 555-0100") == fp("phone", "+1.415.555.0100")
    assert Fingerprinter(b"x" * 32)("phone", "+14155550100") != fp("phone", "+14155550100")
    assert fp("email", "a@b.c") != fp("phone", "a@b.c")


def test_short_keys_are_refused_with_advice() -> None:
    """A key too short to be secret is refused, and the message says how to make one."""
    with pytest.raises(FingerprintKeyError, match="enforcer keygen"):
        Fingerprinter(b"short")


def test_the_key_does_not_show_in_repr() -> None:
    """Printing the fingerprinter never shows its key."""
    key = generate_key()
    assert key not in repr(Fingerprinter(key.encode()))
    assert len(bytes.fromhex(key)) == 32


def test_one_number_written_three_ways_has_one_fingerprint() -> None:
    """With the default region US, international, national and 00-prefixed forms agree."""
    fp = Fingerprinter(KEY, "US")
    prints = {fp("phone", v) for v in ("+1 (415) 555-0100", "(415) 555-0100", "001 415 555 0100")}
    assert len(prints) == 1


def test_the_region_decides_numbers_without_a_country_code() -> None:
    """A national number is read in the configured region; ZZ reads none, only ``+``."""
    assert normalize_value("phone", "030 1234 5678", "DE") == "+493012345678"
    assert normalize_value("phone", "(415) 555-0100", NO_PHONE_REGION) == "4155550100"
    assert normalize_value("phone", "+1 (415) 555-0100", NO_PHONE_REGION) == "+14155550100"
    assert Fingerprinter(KEY, "DE")("phone", "030 1234 5678") != Fingerprinter(KEY, "US")(
        "phone", "030 1234 5678"
    )


def test_phone_noise_is_every_unicode_space_and_the_separators() -> None:
    """Invalid numbers lose exactly str.isspace() characters and ``.-()[]``."""
    noise = [chr(c) for c in range(0x110000) if chr(c).isspace() or chr(c) in ".-()[]"]
    kept = [chr(c) for c in range(0x20, 0x3000) if chr(c) not in noise]
    assert normalize_value("phone", "x".join(noise)) == "x" * (len(noise) - 1)
    assert normalize_value("phone", "".join(kept)) == "".join(kept)


def test_key_id_is_short_public_and_tied_to_the_key() -> None:
    """16 hex digits of HMAC(key, a fixed label): stable per key, different across keys,
    and neither the key nor a plain hash of it."""
    key_id = Fingerprinter(KEY).key_id
    assert key_id == hmac.new(KEY, b"purpose-enforcer key-id v1", hashlib.sha256).hexdigest()[:16]
    assert Fingerprinter(KEY).key_id == key_id
    assert Fingerprinter(b"x" * 32).key_id != key_id
    assert key_id not in hashlib.sha256(KEY).hexdigest()
    assert key_id in repr(Fingerprinter(KEY))


@given(key=st.binary(min_size=16, max_size=200), value=st.text(min_size=1, max_size=40))
def test_the_fingerprint_is_hmac_sha256_of_type_nul_and_value(key: bytes, value: str) -> None:
    """The hand-rolled HMAC (two keyed SHA-256 states) equals the standard library's,
    for short keys and for keys longer than a SHA-256 block (hashed first)."""
    want = hmac.new(key, b"device_id\x00" + value.strip().encode(), hashlib.sha256).digest()
    assert Fingerprinter(key).mac("device_id", value) == want
    assert Fingerprinter(key)("device_id", value) == "hmac-sha256:" + want.hex()


def test_the_memory_keeps_what_recurs_and_stays_bounded() -> None:
    """Two generations of MAC_CACHE_SIZE: a full recent generation becomes the older one;
    a fingerprint found there is remembered again; the recent one never holds more."""
    fingerprinter = Fingerprinter(KEY)
    first = [f"user{n}@example.com" for n in range(MAC_CACHE_SIZE)]
    for value in first:
        fingerprinter.mac("email", value)
    assert fingerprinter.remembered() == MAC_CACHE_SIZE
    fingerprinter.mac("device_id", "d-new")  # the recent generation is full: a new one
    assert fingerprinter.remembered() == 1
    recurring = fingerprinter.mac("email", first[7])  # from the older generation
    assert fingerprinter.remembered() == 2
    assert recurring == fingerprinter.mac_once("email", first[7])
    assert fingerprinter.mac("email", first[7]) == recurring
    assert fingerprinter.remembered() == 2  # found in the recent generation now
    for n in range(2 * MAC_CACHE_SIZE + 5):
        fingerprinter.mac("device_id", f"d-{n}")
        assert fingerprinter.remembered() <= MAC_CACHE_SIZE


@given(
    st.lists(
        st.tuples(st.sampled_from(["email", "phone", "device_id"]), st.text(max_size=12)),
        max_size=40,
    )
)
def test_a_remembered_fingerprint_is_the_one_computed(
    identifiers: list[tuple[str, str]],
) -> None:
    fingerprinter = Fingerprinter(KEY)
    for kind, value in [*identifiers, *identifiers]:
        assert fingerprinter.mac(kind, value) == fingerprinter.mac_once(kind, value)


def test_long_values_turn_the_memory_over_sooner() -> None:
    """Values of the longest remembered length fill a generation by their characters
    before their number: the memory is bounded by both."""
    fingerprinter = Fingerprinter(KEY)
    per_generation = -(-MAC_CACHE_CHARS // CACHED_VALUE_CHARS)
    for n in range(per_generation):
        fingerprinter.mac("email", f"{n:08d}".ljust(CACHED_VALUE_CHARS, "\u2602"))
    assert fingerprinter.remembered() == per_generation < MAC_CACHE_SIZE
    fingerprinter.mac("email", "one-more@example.com")
    assert fingerprinter.remembered() == 1
