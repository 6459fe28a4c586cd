"""Keyed fingerprints of identifiers (SPEC §6): correlate without revealing.

``hmac-sha256:`` + hex HMAC-SHA-256, under the operator's secret key, of the
lower-cased type, a NUL byte, and the normalized value.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

MIN_KEY_BYTES = 16
# Spaces (any Unicode white space), dots, dashes and brackets, deleted by str.translate.
_PHONE_NOISE = {
    code: None for code in range(0x110000) if chr(code).isspace() or chr(code) in ".-()[]"
}


class FingerprintKeyError(ValueError):
    """No usable fingerprint key; the message says how to make one."""


HOW_TO_MAKE_A_KEY = (
    "create one with `enforcer keygen > fingerprint.key` and pass --fingerprint-key-file "
    "fingerprint.key, or set ENFORCER_FINGERPRINT_KEY to its contents"
)


def normalize_value(identifier_type: str, value: str) -> str:
    """Emails trimmed and lower-cased; phones without spaces, dots, dashes, brackets."""
    if identifier_type == "email":
        return value.strip().lower()
    if identifier_type == "phone":
        return value.translate(_PHONE_NOISE)
    return value.strip()


class Fingerprinter:
    """Computes fingerprints under one secret key. The key never leaves this object."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise FingerprintKeyError(
                f"the fingerprint key must be at least {MIN_KEY_BYTES} bytes; {HOW_TO_MAKE_A_KEY}"
            )
        # The keyed state is computed once; each fingerprint continues from a copy.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "Fingerprinter(key=**********)"

    def __call__(self, identifier_type: str, value: str) -> str:
        """The fingerprint of one identifier; ``identifier_type`` already lower-cased."""
        message = (
            identifier_type.encode() + b"\x00" + normalize_value(identifier_type, value).encode()
        )
        mac = self._keyed.copy()
        mac.update(message)
        return "hmac-sha256:" + mac.hexdigest()


def key_from_text(text: str) -> bytes:
    """Interpret a configured key: the text's bytes, trimmed of surrounding whitespace."""
    key = text.strip().encode()
    if not key:
        raise FingerprintKeyError(f"the fingerprint key is empty; {HOW_TO_MAKE_A_KEY}")
    return key


def generate_key() -> str:
    """A new random key (256 bits, hex), for `enforcer keygen`."""
    return secrets.token_hex(32)
