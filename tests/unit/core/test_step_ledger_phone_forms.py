"""A phone number the ledger holds is found whatever separators an event writes it
with: a consumer that keeps only a number's digits (as audience tools ask) reads
``+1_415_555_0100`` as ``+14155550100``, so under ``fallback`` such a spelling must not
be "unknown to the ledger" and judged by the event's own tags (docs/ledger.md)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.step import OutcomeKind

from ..conftest import KEY, event, ident, make_step, record
from .test_step_ledger import ADS, MFA, SET_FALLBACK, SUBJECT, ledger_of

PHONE = "+14155550100"
FP = Fingerprinter(KEY)
# Characters a digit-keeping consumer drops; none a digit or a plus.
NOISE = st.sampled_from([*"_,#*/;:~|'\"!?=&%$@^`", "\u3000", "\u00b7"])


@st.composite
def spelled(draw: st.DrawFn) -> str:
    """``PHONE`` with noise characters put between (or after) its digits."""
    digits = PHONE[1:]
    out = ["+"]
    for index, digit in enumerate(digits):
        out.append(digit)
        if index < len(digits) - 1 or draw(st.booleans()):
            out.append("".join(draw(st.lists(NOISE, max_size=2))))
    return "".join(out)


@settings(max_examples=150, deadline=None)
@given(value=spelled())
def test_a_phone_spelled_with_any_noise_is_the_ledgers_number(value: str) -> None:
    assert FP.mac("phone", value) == FP.mac("phone", PHONE)
    assert FP.mac_once("phone", value) == FP.mac("phone", PHONE)


def test_an_mfa_only_phone_written_with_underscores_does_not_flow_under_fallback() -> None:
    """The 2019 case through a spelling: the ledger holds the number for MFA only, the
    event writes it ``+1_415_555_0100`` and claims advertising."""
    ledger = ledger_of(SUBJECT, ident("phone", PHONE, [MFA]))
    step = make_step(SET_FALLBACK, ledger)
    for value in ("+1_415_555_0100", "+1,415,555,0100", "+14155550100#", "+1 415 555 0100 (m)"):
        out = step(record(event(ident("phone", value, [ADS]))))
        assert out.kind is OutcomeKind.DROPPED, value
        assert out.violation is not None
        assert out.violation["findings"][0]["rule"] == "purpose-not-granted"
