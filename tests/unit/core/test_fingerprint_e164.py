"""The E.164 fast path (enforcer/core/fingerprint.py) gives phonenumbers' answer.

A phone number written with its country code (``+1 415 555 0100``) is normalized
without phonenumbers' parse. Whatever the fast path answers, ``E.164`` or "not a
valid number", must be what phonenumbers' own parse and validity check answer for
the same text; what it is unsure of it leaves to phonenumbers (:data:`UNSURE`).
"""

from __future__ import annotations

import hashlib
import hmac
import re

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from enforcer.core.fingerprint import (
    NO_PHONE_REGION,
    UNSURE,
    Fingerprinter,
    international_e164,
    normalize_value,
    parsed_e164,
    phone_e164,
)

_REGIONS = ("US", "GB", "DE", "IT", "RU", NO_PHONE_REGION)
_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_SEPARATORS = " ().-"


def _examples() -> list[str]:
    """Every example number of phonenumbers' metadata, in E.164 and international form."""
    numbers = [
        phonenumbers.example_number_for_type(region, kind)
        for region in sorted(phonenumbers.SUPPORTED_REGIONS)
        for kind in (
            PhoneNumberType.FIXED_LINE,
            PhoneNumberType.MOBILE,
            PhoneNumberType.TOLL_FREE,
            PhoneNumberType.PREMIUM_RATE,
            PhoneNumberType.SHARED_COST,
            PhoneNumberType.VOIP,
            PhoneNumberType.PERSONAL_NUMBER,
            PhoneNumberType.PAGER,
            PhoneNumberType.UAN,
            PhoneNumberType.VOICEMAIL,
        )
    ]
    numbers += [
        phonenumbers.example_number_for_non_geo_entity(code)
        for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)
    ]
    return sorted(
        {
            phonenumbers.format_number(number, style)
            for number in numbers
            if number is not None
            for style in (PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL)
        }
    )


EXAMPLES = _examples()


def test_every_example_number_of_the_metadata_takes_the_fast_path_with_its_answer() -> None:
    """Each region's example numbers, valid by construction: the fast path answers most
    of them itself, always with phonenumbers' E.164."""
    fast = 0
    for text in EXAMPLES:
        answer = international_e164(text)
        if answer != UNSURE:
            fast += 1
            assert answer == parsed_e164(text), text
    assert fast > 0.9 * len(EXAMPLES)


@st.composite
def international(draw: st.DrawFn) -> str:
    """A plus, a country code (mostly a real one), digits, and separators between."""
    code = draw(st.sampled_from(_CODES).map(str) | st.text("0123456789", min_size=1, max_size=3))
    rest = draw(st.text("0123456789", min_size=0, max_size=16))
    digits = code + rest
    out = ["+"]
    for digit in digits:
        out.append(draw(st.text(_SEPARATORS, max_size=2)))
        out.append(digit)
    out.append(draw(st.text(_SEPARATORS, max_size=2)))
    return "".join(out)


@st.composite
def mutated_example(draw: st.DrawFn) -> str:
    """An example number with one digit changed, added or removed: near the edges of
    the patterns, where valid and invalid numbers lie side by side."""
    text = draw(st.sampled_from(EXAMPLES))
    positions = [i for i, c in enumerate(text) if c.isdigit()]
    at = draw(st.sampled_from(positions))
    digit = draw(st.sampled_from("0123456789"))
    how = draw(st.sampled_from(["change", "add", "remove"]))
    if how == "change":
        return text[:at] + digit + text[at + 1 :]
    if how == "add":
        return text[:at] + digit + text[at:]
    return text[:at] + text[at + 1 :]


# No deadline: the first number of a country loads its metadata (lazily, in phonenumbers).
@settings(max_examples=3000, deadline=None)
@given(st.one_of(international(), mutated_example()), st.sampled_from(_REGIONS))
@example("+1 (415) 555-0100", "US")
@example("+1 1 415 555 0100", "US")  # the national prefix after the code: phonenumbers
@example("+44 020 7946 0000", "GB")  # strips it, so the fast path must not answer
@example("+39 06 6982 0000", "IT")  # a leading zero Italy keeps
@example("+0 12 345", "US")
@example("+999 123 4567", "US")  # no such country code
@example("+800 1234 5678", "US")  # a code of no region (international freephone)
@example("+7 495 123-45-67", "RU")  # a code shared by regions
@example("+1 204 555 0100", "US")  # Canada, the second region of +1
def test_the_fast_path_answers_as_phonenumbers_does(text: str, region: str) -> None:
    answer = international_e164(text)
    if answer != UNSURE:
        assert answer == parsed_e164(text, region)
    assert phone_e164(text, region) == parsed_e164(text, region)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30), st.sampled_from(_REGIONS))
def test_any_text_normalizes_as_before(text: str, region: str) -> None:
    """Whatever the value, the phone normalization is phonenumbers' (fast path or not)."""
    assert phone_e164(text, region) == parsed_e164(text, region)


@pytest.mark.parametrize(
    "text",
    ["+1 415 555 0100 ext. 12", "+1\t415 555 0100", "+1 415 555 0100#", "tel:+14155550100"],
)
def test_other_characters_are_left_to_phonenumbers(text: str) -> None:
    assert international_e164(text) == UNSURE


def test_fingerprints_use_the_fast_path_result() -> None:
    assert normalize_value("phone", "+1 (415) 555-0100") == "+14155550100"
    assert international_e164("+1 (415) 555-0100") == "+14155550100"
    assert international_e164("+1 415 555 01") is None  # too short: not a valid number


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("phone", "+1 (415) 555-0100"),
        ("phone", "+1 415 555 01"),  # the fast path: not a valid number
        ("phone", "(415) 555-0100"),  # phonenumbers: no country code
        ("phone", "+44 020 7946 0000"),  # phonenumbers: a national prefix after the code
        ("phone", "not a number"),
        ("email", " A@Example.com"),
        ("device_id", " d-1 "),
    ],
)
def test_fingerprints_are_the_hmac_of_phonenumbers_normalization(kind: str, value: str) -> None:
    """:meth:`Fingerprinter.mac_once` (the ledger's, bypassing the caches) and
    :meth:`Fingerprinter.mac` (the events') are HMAC-SHA-256 of the type, a NUL byte and
    the value normalized by phonenumbers' parse (for a phone) or trimmed (and, for an
    email, lower-cased)."""
    key = b"k" * 32
    if kind == "phone":
        normalized = parsed_e164(value, "GB") or re.sub(r"[\s.\-()\[\]]+", "", value)
    else:
        normalized = value.strip().lower() if kind == "email" else value.strip()
    expected = hmac.new(key, f"{kind}\x00{normalized}".encode(), hashlib.sha256).digest()
    assert Fingerprinter(key, "GB").mac_once(kind, value) == expected
    assert Fingerprinter(key, "GB").mac(kind, value) == expected
