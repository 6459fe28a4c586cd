"""The demo's purpose ledger: what each sample account's identifiers were collected for,
events that wrongly claim advertising for 2FA-only numbers, and consent withdrawals.

Pure: sample values in, ledger records and rewritten values out (docs/ledger.md).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from enforcer.core.purposes import normalize_tag, within_any
from enforcer.demo.sample import SECURITY_ONLY_PURPOSES
from enforcer.ledger.model import LedgerEntry

ADVERTISING = "marketing.advertising"
COLLECTED_AT = "2019-09-01T00:00:00Z"
WITHDRAWN_AT = "2019-10-04T12:00:00Z"


@dataclass
class DemoLedger:
    """The ledger written before the enforcer starts, the events to send, and the
    ledger records sent halfway through them."""

    ledger: list[LedgerEntry] = field(default_factory=list)
    events: list[bytes] = field(default_factory=list)
    withdrawals: list[LedgerEntry] = field(default_factory=list)
    miss_claims: int = 0
    """Events rewritten to claim advertising for a number collected for 2FA only."""


def _advertising(purposes: Sequence[str]) -> bool:
    return any(
        (t := normalize_tag(p)) is not None and within_any(t, (ADVERTISING,)) for p in purposes
    )


def demo_ledger(values: Sequence[bytes], seed: int, withdrawals: int = 100) -> DemoLedger:
    """Build the ledger from the sample events as collected (each identifier with the
    purposes it was first given for), then let a careless producer claim advertising
    for a third of the 2FA-only phone numbers; ``withdrawals`` accounts that consented
    to advertising withdraw it halfway, and a fifth as many are erased."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    collected: dict[str, dict[tuple[str, str], list[str]]] = {}
    for value in values:
        event = _event(value)
        if event is None:
            continue
        held = collected.setdefault(str(event["subject_id"]), {})
        identifiers = event["identifiers"]
        assert isinstance(identifiers, list)
        for item in identifiers:
            held.setdefault((item["type"], item["value"]), list(item.get("purposes") or []))
    demo = DemoLedger()
    for subject, held in collected.items():
        demo.ledger.append((subject, _value(subject, COLLECTED_AT, held)))
    for value in values:
        event = _event(value)
        if event is not None and _miss_claim(event, collected[str(event["subject_id"])], rng):
            demo.miss_claims += 1
            demo.events.append(orjson.dumps(event))
        else:
            demo.events.append(value)
    consented = sorted(
        s for s, held in collected.items() if any(_advertising(p) for p in held.values())
    )
    chosen = rng.sample(consented, min(len(consented), withdrawals + withdrawals // 5))
    for subject in chosen[:withdrawals]:
        held = {
            key: (["security.account_recovery"] if _advertising(p) else p)
            for key, p in collected[subject].items()
        }
        demo.withdrawals.append((subject, _value(subject, WITHDRAWN_AT, held)))
    demo.withdrawals += [(subject, None) for subject in chosen[withdrawals:]]
    return demo


def _miss_claim(
    event: dict[str, object], held: dict[tuple[str, str], list[str]], rng: random.Random
) -> bool:
    """Claim advertising for the event's phone when the ledger has it 2FA-only (one
    event in three): the 2019 mistake, made by a producer."""
    identifiers = event["identifiers"]
    assert isinstance(identifiers, list)
    for item in identifiers:
        # The sample gave it for security only (it is what the ledger then records).
        collected = held[(item["type"], item["value"])]
        if item["type"] != "phone" or collected not in SECURITY_ONLY_PURPOSES:
            continue
        if rng.random() < 1 / 3:
            item["purposes"] = [ADVERTISING]
            return True
    return False


def _event(value: bytes) -> dict[str, object] | None:
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("subject_id"), str):
        return None
    if not isinstance(event.get("identifiers"), list):
        return None
    return event


def _value(subject: str, at: str, held: dict[tuple[str, str], list[str]]) -> bytes:
    return orjson.dumps(
        {
            "subject_id": subject,
            "updated_at": at,
            "identifiers": [
                {"type": kind, "value": value, "purposes": purposes}
                for (kind, value), purposes in held.items()
            ],
        }
    )
