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
from typing import Any, NamedTuple

MIN_KEY_BYTES = 16
_SHA256_BLOCK = 64
FINGERPRINT_PREFIX = "hmac-sha256:"
MAC_BYTES = 32
"""An HMAC-SHA-256 is 32 bytes."""


def mac_of_fingerprint(fingerprint: str) -> bytes:
    """The 32 bytes a ``hmac-sha256:<hex>`` fingerprint writes out. Raises ``ValueError``
    for text that is not one."""
    if not fingerprint.startswith(FINGERPRINT_PREFIX):
        raise ValueError("not an hmac-sha256 fingerprint")
    mac = bytes.fromhex(fingerprint[len(FINGERPRINT_PREFIX) :])
    if len(mac) != MAC_BYTES:
        raise ValueError("not an hmac-sha256 fingerprint")
    return mac


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
    A number already written with its country code (``+1 415 555 0100``) takes a fast
    path with the same answer (:func:`international_e164`).
    """
    fast = international_e164(value)
    if fast != UNSURE:
        return fast
    return parsed_e164(value, region)


def parsed_e164(value: str, region: str = DEFAULT_PHONE_REGION) -> str | None:
    """:func:`phone_e164` by phonenumbers' parse: any way of writing a number.

    When phonenumbers reads no valid number in the text as written, its digits alone
    are tried (a plus before the first digit kept): a consumer that keeps only the
    digits of a phone number (as audience tools ask) reads ``+1_415_555_0142`` or
    ``+14155550142#`` as that number, so the ledger must find it as that number too
    (docs/ledger.md)."""
    candidates = [value]
    digits = _PHONE_NOISE.sub("", value)
    if digits.startswith("00"):
        candidates.append("+" + digits[2:])
    found = _first_valid(candidates, region)
    if found is not None:
        return found
    bare = _digits_only(value)
    if bare is None or bare in candidates:
        return None
    return _first_valid([bare, "+" + bare[2:]] if bare.startswith("00") else [bare], region)


_A_DIGIT = re.compile(r"\d")
"""A (Unicode) decimal digit: phonenumbers reads the digits of many scripts."""
_NOT_A_DIGIT = re.compile(r"\D+")
_PLUS_SIGNS = ("+", "\uff0b")
"""The plus signs phonenumbers reads (ASCII and full width)."""


def _digits_only(value: str) -> str | None:
    """The digits of ``value``, after a plus when one comes before the first digit;
    ``None`` when it has no digit, or a plus after one (``1.+1 415 ...``: not one
    number written with noise)."""
    first = _A_DIGIT.search(value)
    if first is None:
        return None
    rest = value[first.start() :]
    if any(sign in rest for sign in _PLUS_SIGNS):
        return None
    digits = _NOT_A_DIGIT.sub("", rest)
    before = value[: first.start()]
    return "+" + digits if any(sign in before for sign in _PLUS_SIGNS) else digits


def _first_valid(candidates: list[str], region: str) -> str | None:
    """E.164 of the first candidate phonenumbers reads as a valid number."""
    phonenumbers = _phonenumbers()
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return None


# -- A fast path for numbers written in international form -----------------------
#
# Most stored phone numbers are already international: "+14155550100", or the same
# with spaces, dashes, dots or brackets. For those, phonenumbers' parse() reduces to a
# few steps (strip the plus and the punctuation, take the country code, keep the
# rest), and its validity check to a handful of regular expressions of the number's
# region. The fast path below does exactly those steps with phonenumbers' own
# metadata, precompiled per country code, and hands every value whose parse could
# take another branch (a national prefix after the country code, a leading zero,
# an unknown country code, odd lengths, any other character) to phonenumbers itself.
# tests/unit/core/test_fingerprint_e164.py holds it to phonenumbers' answers.

_INTERNATIONAL = re.compile(r"\+[0-9 ().\-]{3,40}")
"""A plus, then ASCII digits and the plainest separators (the fast path's shape)."""
_SEPARATORS = b" ().-"
"""Deleted from the value's bytes (ASCII once the shape matched): ``bytes.translate``
deletes at C speed, ``str.translate`` maps character by character through a dict."""
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' national significant number lengths
UNSURE = "?"
"""The fast path's answer when phonenumbers itself must decide."""


class _Desc(NamedTuple):
    """One phonenumbers number description: possible lengths (empty: any) and pattern."""

    lengths: frozenset[int]
    pattern: str | None


class _RegionCheck:
    """What phonenumbers' validity check reads of one region's metadata.

    phonenumbers asks, for a number's national significant number, whether it matches
    the region's general description and then one number type after another (each a
    length test, then a full match of its pattern): ten or more regular expressions,
    and twice for one number. Here the descriptions that admit a length are joined
    into one expression per length, built on first use: one match instead.
    """

    __slots__ = ("_by_length", "_general", "_types", "leading")

    def __init__(self, metadata: Any) -> None:
        kinds = [
            metadata.premium_rate,
            metadata.toll_free,
            metadata.shared_cost,
            metadata.voip,
            metadata.personal_number,
            metadata.pager,
            metadata.uan,
            metadata.voicemail,
            metadata.fixed_line,
        ]
        # A number that misses the fixed-line pattern is mobile only when the two
        # patterns differ (phonenumbers' same_mobile_and_fixed_line_pattern).
        if not metadata.same_mobile_and_fixed_line_pattern:
            kinds.append(metadata.mobile)
        self._general = _desc(metadata.general_desc)
        self._types = [d for d in map(_desc, kinds) if d is not None]
        self._by_length: dict[int, re.Pattern[str] | None] = {}
        self.leading = (
            re.compile(metadata.leading_digits) if metadata.leading_digits is not None else None
        )
        """``leading_digits``: picks the region of a shared country code by prefix."""

    def known(self, nsn: str) -> bool:
        """phonenumbers' ``_number_type_helper(nsn) != UNKNOWN``."""
        length = len(nsn)
        try:
            pattern = self._by_length[length]
        except KeyError:
            pattern = self._by_length[length] = self._pattern(length)
        return pattern is not None and pattern.fullmatch(nsn) is not None

    def _pattern(self, length: int) -> re.Pattern[str] | None:
        """The general description (a look-ahead) and every type admitting ``length``."""
        general = self._general
        if general is None or not general.pattern:
            return None
        if general.lengths and length not in general.lengths:
            return None
        admitted = [
            f"(?:{d.pattern})"
            for d in self._types
            if d.pattern and (not d.lengths or length in d.lengths)
        ]
        if not admitted:
            return None
        return re.compile(f"(?=(?:{general.pattern})\\Z)(?:{'|'.join(admitted)})")


def _desc(description: Any) -> _Desc | None:
    if description is None:
        return None
    return _Desc(frozenset(description.possible_length), description.national_number_pattern)


class _CountryCheck(NamedTuple):
    national_prefix: re.Pattern[str] | None
    """``national_prefix_for_parsing`` of the parse's metadata: a number starting with
    it may be stripped by parse(), so it goes to phonenumbers."""
    regions: tuple[tuple[_RegionCheck | None, _RegionCheck | None], ...]
    """Per region of the code, in order: what selects it (``None``: the only region),
    and what validates a number selected there (``None``: such a number is invalid).
    The two are one object when they read the same metadata."""


@cache
def _country_check(country_code: int) -> _CountryCheck | None:
    """phonenumbers' metadata for one country code, as the fast path reads it."""
    phonenumbers = _phonenumbers()
    from phonenumbers.phonemetadata import PhoneMetadata

    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return None
    main = PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0])
    if main is None:
        return None
    prefix = main.national_prefix_for_parsing
    checks: dict[int, _RegionCheck] = {}

    def check_of(metadata: Any) -> _RegionCheck:
        return checks.setdefault(id(metadata), _RegionCheck(metadata))

    plan = []
    for region in regions:
        # region_code_for_number takes a code's only region without a look, and skips
        # a region without metadata when there are several.
        chosen = PhoneMetadata.metadata_for_region(region.upper(), None)
        if chosen is None and len(regions) > 1:
            continue
        final = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region.upper())
        valid_here = final is not None and (
            region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
            or country_code == phonenumbers.country_code_for_valid_region(region)
        )
        select = check_of(chosen) if len(regions) > 1 else None
        plan.append((select, check_of(final) if valid_here else None))
    return _CountryCheck(re.compile(prefix) if prefix else None, tuple(plan))


def _valid(check: _CountryCheck, nsn: str) -> bool:
    """phonenumbers' is_valid_number for a number of this country code and ``nsn``."""
    for select, final in check.regions:
        if select is not None:
            # region_code_for_number: a region's leading digits pick it; without them,
            # a number of a known type there does (and is then valid when the region
            # validates with the same metadata).
            if select.leading is not None:
                if select.leading.match(nsn) is None:
                    continue
            elif not select.known(nsn):
                continue
            elif final is select:
                return True
        return final is not None and final.known(nsn)
    return False


def international_e164(value: str) -> str | None:  # noqa: PLR0911 - each return is a bail-out
    """E.164 of ``value`` written in international form, ``None`` if not a valid number,
    or :data:`UNSURE` when phonenumbers must decide."""
    if _INTERNATIONAL.fullmatch(value) is None:
        return UNSURE
    digits = value.encode()[1:].translate(None, _SEPARATORS).decode()
    if len(digits) < 3 or digits[0] == "0":
        return UNSURE
    for width in (1, 2, 3):
        code = int(digits[:width])
        check = _country_check(code)
        if check is not None:
            break
        if code in _phonenumbers().COUNTRY_CODE_TO_REGION_CODE:
            return UNSURE  # a code without usable metadata
    else:
        return UNSURE
    nsn = digits[width:]
    if not _MIN_NSN <= len(nsn) <= _MAX_NSN or nsn[0] == "0":
        return UNSURE
    if check.national_prefix is not None and check.national_prefix.match(nsn):
        return UNSURE
    return "+" + digits if _valid(check, nsn) else None


def normalize_value(identifier_type: str, value: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """Emails trimmed and lower-cased; phones in E.164, or without separators; others trimmed."""
    if identifier_type == "email":
        return value.strip().lower()
    if identifier_type == "phone":
        return _e164(value, region) or _PHONE_NOISE.sub("", value)
    return value.strip()


CACHED_VALUE_CHARS = 256
"""The longest identifier value the caches of fingerprints and phone numbers keep. They
bound their entries' number, not their size: a stream of records each holding a new
value of a megabyte would be kept whole, up to 65,536 of them, and the worker would run
out of memory. Real identifiers are far shorter (an email address has at most 254
characters); a longer value is fingerprinted every time."""


def _e164(value: str, region: str) -> str | None:
    """:func:`phone_e164`, through its cache only for a value it may keep."""
    if len(value) <= CACHED_VALUE_CHARS:
        return phone_e164(value, region)
    fast = international_e164(value)
    return fast if fast != UNSURE else parsed_e164(value, region)


MAC_CACHE_SIZE = 65_536
"""Fingerprints remembered per :class:`Fingerprinter` in each of its two generations:
between 65,536 and twice as many identifiers, the most recently used, unless their
values are long (:data:`MAC_CACHE_CHARS`). About 20 MB for short identifiers of a few
types (a remembered one costs about 100 bytes besides its value)."""
MAC_CACHE_CHARS = 2_097_152
"""Characters of values remembered per generation: a generation holding this many
turns over before it holds :data:`MAC_CACHE_SIZE` identifiers. 65,536 ordinary
identifiers (an email address, a phone number, a device id: 10 to 40 characters) hold
fewer, so they never reach it; values of :data:`CACHED_VALUE_CHARS` characters outside
Latin-1, each of a type of its own, would otherwise take about 190 MB in the two
generations, and take about 62 MB with it (measured with tracemalloc)."""


class Fingerprinter:
    """Computes fingerprints under one secret key. The key never leaves this object."""

    __slots__ = (
        "_inner",
        "_older",
        "_outer",
        "_young",
        "_young_chars",
        "_young_count",
        "key_id",
        "phone_region",
    )

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
        self._young: dict[str, dict[str, bytes]] = {}
        """The recent generation of remembered fingerprints: by type, then value."""
        self._older: dict[str, dict[str, bytes]] = {}
        """The generation before it: a fingerprint found there is remembered again."""
        self._young_count = 0
        """How many fingerprints the recent generation holds."""
        self._young_chars = 0
        """How many characters the recent generation's values hold."""
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

        Remembered in two generations of :data:`MAC_CACHE_SIZE` identifiers each: with
        a purpose ledger or exposure every identifier of every event is fingerprinted,
        and an account's identifiers recur in many events. When the recent generation is
        full it becomes the older one and the one before is forgotten; a fingerprint
        found in the older generation is remembered again in the recent one, so what
        recurs stays while what was seen once (a device id) goes. Keyed by type, then
        value: no tuple is built or kept per identifier. In process memory only, like
        the record."""
        if len(value) > CACHED_VALUE_CHARS:
            return self.mac_once(identifier_type, value)
        young = self._young.get(identifier_type)
        if young is not None:
            found = young.get(value)
            if found is not None:
                return found
        older = self._older.get(identifier_type)
        found = older.get(value) if older is not None else None
        if found is None:
            found = self.mac_once(identifier_type, value)
        if self._young_count >= MAC_CACHE_SIZE or self._young_chars >= MAC_CACHE_CHARS:
            self._older = self._young
            self._young = {}
            self._young_count = 0
            self._young_chars = 0
            young = None
        if young is None:
            young = self._young[identifier_type] = {}
        young[value] = found
        self._young_count += 1
        self._young_chars += len(value)
        return found

    def remembered(self) -> int:
        """How many MACs :meth:`mac` remembers in its recent generation: each one it
        computed, or found in the older generation, for a short value since that
        generation began."""
        return self._young_count

    def mac_once(self, identifier_type: str, value: str) -> bytes:
        """:meth:`mac`, not remembered: for the purpose ledger, which fingerprints each
        identifier once as it reads it (remembering a restore's millions would only
        push out the events' recent identifiers). :meth:`_hmac` inlined: a restore
        calls it for every identifier, and :meth:`mac` for every one not remembered."""
        if identifier_type == "phone":
            # Nor through the cache of phone numbers, when the fast path answers.
            e164 = international_e164(value)
            if e164 == UNSURE:
                e164 = _e164(value, self.phone_region)
            normalized = e164 or _PHONE_NOISE.sub("", value)
        else:
            normalized = normalize_value(identifier_type, value, self.phone_region)
        inner = self._inner.copy()
        # One text encoded once: compiled, ``bytes + bytes`` leaked its left operand
        # (mypyc 1.20's CPyBytes_Concat, fixed upstream), two objects a fingerprint.
        inner.update((identifier_type + "\x00" + normalized).encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

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
