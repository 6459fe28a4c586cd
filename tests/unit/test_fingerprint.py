"""Fingerprints (SPEC §6): keyed, normalized, never the value itself."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from enforcer.fingerprint import Fingerprinter, FingerprintKeyError, generate_key, normalize_value

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
        ("phone", "[030] 1234 5678", "03012345678"),
        ("device_id", "  AbC-1 ", "AbC-1"),
    ],
)
def test_normalization(kind: str, raw: str, normalized: str) -> None:
    """Emails trimmed and lower-cased; phones stripped of separators; others trimmed."""
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
