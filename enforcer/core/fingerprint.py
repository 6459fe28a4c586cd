"""Keyed fingerprints of identifiers (docs/contract.md: violation event): correlate without
revealing.

``hmac-sha256:`` + hex HMAC-SHA-256, under the operator's secret key, of the
lower-cased type, a NUL byte, and the normalized value. Phone numbers are
normalized to E.164 when they parse as a valid number (``phonenumbers``), so one
number written three ways gives one fingerprint.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
from functools import cache, lru_cache
from pathlib import Path
from types import ModuleType

MIN_KEY_BYTES = 16
_SHA256_BLOCK = 64
FINGERPRINT_PREFIX = "hmac-sha256:"
DEFAULT_PHONE_REGION = "US"
"""Region assumed for phone numbers written without a country code."""
NO_PHONE_REGION = "ZZ"
"""``phonenumbers``' code for "no region": only numbers with ``+`` become E.164."""
# Spaces (any Unicode white space: ``\s`` on str is ``str.isspace``), dots, dashes, brackets.
_PHONE_NOISE = re.compile(r"[\s.\-()\[\]]+")
# The message the key id is computed over. It holds no NUL byte, so it can never be
# the message of an identifier's fingerprint (``type NUL value``).
_KEY_ID_MESSAGE = b"purpose-enforcer key-id v1"
KEY_ID_HEX_DIGITS = 16


class FingerprintKeyError(ValueError):
    """No usable fingerprint key; the message says how to make one."""


HOW_TO_MAKE_A_KEY = (
    "create one with `(umask 077; enforcer keygen > fingerprint.key)` and pass "
    "--fingerprint-key-file "
    "fingerprint.key, or set ENFORCER_FINGERPRINT_KEY to its contents"
)


@cache
def _phonenumbers() -> ModuleType:
    # Imported on the first phone number: it costs ~35 ms that commands without
    # fingerprints (--help, policy check) should not pay.
    import phonenumbers

    return phonenumbers


def phone_regions() -> frozenset[str]:
    """Region codes accepted as the default phone region (``ZZ`` for none)."""
    return frozenset(_phonenumbers().SUPPORTED_REGIONS) | {NO_PHONE_REGION}


PHONE_CACHE_SIZE = 65_536
"""Phone values whose E.164 form is remembered. Parsing one with phonenumbers costs
~60 µs, most of a redacted record's decision, and the same account's number recurs
in many events. The cache lives in process memory only, like the record being decided;
65,536 entries take about 10 MB."""


@lru_cache(maxsize=PHONE_CACHE_SIZE)
def phone_e164(value: str, region: str = DEFAULT_PHONE_REGION) -> str | None:
    """``value`` in E.164 (``+`` and digits) if it is a valid number, else ``None``.

    A number without a country code is read as one of ``region``. A leading ``00``,
    the international prefix of most countries, is also tried as ``+`` when the
    region reads it otherwise (``001 415 555 0100`` in the US, whose prefix is 011).
    """
    phonenumbers = _phonenumbers()
    candidates = [value]
    digits = _PHONE_NOISE.sub("", value)
    if digits.startswith("00"):
        candidates.append("+" + digits[2:])
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return None


def normalize_value(identifier_type: str, value: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """Emails trimmed and lower-cased; phones in E.164, or without separators; others trimmed."""
    if identifier_type == "email":
        return value.strip().lower()
    if identifier_type == "phone":
        return phone_e164(value, region) or _PHONE_NOISE.sub("", value)
    return value.strip()


MAC_CACHE_SIZE = 65_536
"""Fingerprints remembered per :class:`Fingerprinter` (about 15 MB when full)."""


class Fingerprinter:
    """Computes fingerprints under one secret key. The key never leaves this object."""

    __slots__ = ("_inner", "_macs", "_outer", "key_id", "phone_region")

    def __init__(self, key: bytes, phone_region: str = DEFAULT_PHONE_REGION) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise FingerprintKeyError(
                f"the fingerprint key must be at least {MIN_KEY_BYTES} bytes; {HOW_TO_MAKE_A_KEY}"
            )
        # HMAC's two keyed hash states (RFC 2104), computed once and copied per
        # fingerprint at C speed: the hmac module's own copy() is Python code, a third
        # of a fingerprint's cost.
        block = key if len(key) <= _SHA256_BLOCK else hashlib.sha256(key).digest()
        block = block.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        self._macs: dict[tuple[str, str], bytes] = {}
        self.phone_region = phone_region
        # The first 64 bits of HMAC(key, a fixed label): a MAC of a public label reveals
        # nothing about the key (HMAC is a PRF); it only lets someone holding a candidate
        # key check it, which any fingerprint already allows. Unlike SHA-256(key), it is
        # domain-separated from every other use.
        self.key_id = self._hmac(_KEY_ID_MESSAGE).hex()[:KEY_ID_HEX_DIGITS]
        """A short public id of the key: fingerprints compare only under one key id."""

    def __repr__(self) -> str:
        return f"Fingerprinter(key=**********, key_id={self.key_id})"

    def __call__(self, identifier_type: str, value: str) -> str:
        """The fingerprint of one identifier; ``identifier_type`` already lower-cased."""
        return FINGERPRINT_PREFIX + self.mac(identifier_type, value).hex()

    def mac(self, identifier_type: str, value: str) -> bytes:
        """The fingerprint's 32 bytes (the ledger compares these, never hex).

        Remembered for the last :data:`MAC_CACHE_SIZE` identifiers: with a purpose
        ledger every identifier of every event is fingerprinted, and an account's
        identifiers recur in many events. In process memory only, like the record."""
        key = (identifier_type, value)
        found = self._macs.get(key)
        if found is None:
            if len(self._macs) >= MAC_CACHE_SIZE:
                self._macs.clear()
            found = self._macs[key] = self._mac(identifier_type, value)
        return found

    def _mac(self, identifier_type: str, value: str) -> bytes:
        normalized = normalize_value(identifier_type, value, self.phone_region)
        return self._hmac(identifier_type.encode() + b"\x00" + normalized.encode())

    def _hmac(self, message: bytes) -> bytes:
        """HMAC-SHA-256 of ``message`` under the key."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def key_from_text(text: str) -> bytes:
    """Interpret a configured key: the text's bytes, trimmed of surrounding whitespace."""
    key = text.strip().encode()
    if not key:
        raise FingerprintKeyError(f"the fingerprint key is empty; {HOW_TO_MAKE_A_KEY}")
    return key


OTHERS_MAY_ACCESS = stat.S_IRWXG | stat.S_IRWXO
"""Permission bits a key file must not have: anyone who can read the key can compute
the fingerprint of any phone number or email they guess, and so undo the fingerprints
(a phone number has few enough possible values to try them all)."""


def read_key_file(path: Path) -> bytes:
    """The key in ``path``; refused (:class:`FingerprintKeyError`, one line saying what
    to run) when the file may be read or written by its group or by others."""
    try:
        with path.open("rb") as file:
            status = os.fstat(file.fileno())
            raw = file.read()
    except OSError as exc:
        raise FingerprintKeyError(
            f"cannot read fingerprint key file {path}: {exc.strerror}"
        ) from None
    mode = status.st_mode
    if mode & OTHERS_MAY_ACCESS & ~(stat.S_IRGRP if _read_through_group(status) else 0):
        raise FingerprintKeyError(
            f"fingerprint key file {path} may be accessed by its group or others "
            f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}` and start again"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FingerprintKeyError(f"fingerprint key file {path} is not UTF-8 text") from None
    return key_from_text(text)


def _read_through_group(status: os.stat_result) -> bool:
    """Whether this process may read the file only through its group, the way Kubernetes
    mounts a Secret for a pod that does not run as root: root owns it, its group is one
    of ours (``fsGroup``), mode 0440. Group read is then allowed; group write, anything
    for others, and a group-readable file some other user owns never are."""
    return (
        status.st_uid == 0
        and os.geteuid() != 0
        and status.st_gid in {os.getegid(), *os.getgroups()}
    )


def generate_key() -> str:
    """A new random key (256 bits, hex), for `enforcer keygen`."""
    return secrets.token_hex(32)
