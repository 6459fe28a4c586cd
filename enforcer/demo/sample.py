"""Sample identity events shaped like the 2019 case, for demos, tests and benchmarks.

Accounts give a phone number or email only to secure the account (2FA, recovery);
others also consent to advertising; many give a phone number for SMS notifications or
a device id for analytics only, which is not advertising either; a few records are
malformed. Purposes are Fides data-use keys or within ``security``. Deterministic for
a seed. Identifier values are synthetic (example.com, 555 numbers).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson

SECURITY_ONLY_PURPOSES = (
    ["security.mfa"],
    ["security.account_recovery"],
    ["essential.service.authentication"],
    ["security.mfa", "essential.fraud_detection"],
)
CONSENTED_PURPOSES = (
    ["security.mfa", "marketing.advertising"],
    ["marketing.advertising"],
    ["marketing.advertising.third_party.targeted", "analytics"],
)
OTHER_PURPOSES = (
    ["essential.service.notifications.sms"],
    ["essential.service.notifications.sms", "security.mfa"],
    ["analytics.reporting"],
    ["functional.service.improve", "analytics.reporting.system"],
)
"""Given for something other than advertising: kept from audience building by the
default's ``purpose-not-allowed`` rule (a narrower policy lets them pass)."""
OTHER_SHARE = 0.25
MALFORMED = (
    b"{not json",
    b'["an", "array"]',
    b'{"event_id": "x", "identifiers": []}',
    b'{"event_id":"e","subject_id":"s","occurred_at":"yesterday","identifiers":[]}',
    b"\xff\xfe\x00 not utf-8",
)


def sample_event(rng: random.Random, number: int, security_only: bool, at: datetime) -> bytes:
    """One ~600-byte identity event with three identifiers.

    ``security_only``: the phone number was given only to secure the account; in one
    such event out of ten every identifier was (the record is dropped). Otherwise, one
    event in fifty has a device id with no declared purpose, and in a quarter of them
    the phone number or the device id was given for something other than advertising
    (SMS notifications, analytics).
    """
    account = rng.randrange(1, 50_000)
    email_purposes = rng.choice(CONSENTED_PURPOSES)
    phone_purposes = rng.choice(SECURITY_ONLY_PURPOSES if security_only else CONSENTED_PURPOSES)
    device_purposes: list[str] | None = ["analytics.reporting", "marketing.advertising"]
    if security_only and rng.random() < 0.1:
        email_purposes = device_purposes = ["security.account_recovery"]
    elif not security_only:
        roll = rng.random()
        if roll < 0.02:
            device_purposes = None
        elif roll >= 1 - OTHER_SHARE:
            other = rng.choice(OTHER_PURPOSES)
            if other[0].startswith("essential.service.notifications.sms"):
                phone_purposes = other
            else:
                device_purposes = other
    event = {
        "event_id": f"evt-{number:010d}-{rng.getrandbits(48):012x}",
        "subject_id": f"acct-{account:07d}",
        "occurred_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event_type": rng.choice(["account.updated", "login.verified", "profile.synced"]),
        "identifiers": [
            {
                "type": "email",
                "value": f"user{account}@example.com",
                "purposes": email_purposes,
                "verified": True,
            },
            {
                "type": "phone",
                "value": f"+1 (415) 555-{account % 10000:04d}",
                "purposes": phone_purposes,
                "verified": rng.random() < 0.9,
            },
            {
                "type": "device_id",
                "value": f"{rng.getrandbits(128):032x}",
                **({"purposes": device_purposes} if device_purposes is not None else {}),
            },
        ],
        "context": {
            "ip_country": rng.choice(["US", "GB", "DE", "BR", "JP"]),
            "client": rng.choice(["ios-8.2.1", "android-8.3.0", "web-2019.10"]),
            "session": f"s-{rng.getrandbits(64):016x}",
        },
        "schema_version": 3,
        "source": "settings-service",
    }
    return orjson.dumps(event)


def sample_values(
    count: int,
    *,
    seed: int = 2019,
    security_only_share: float = 0.2,
    invalid_share: float = 0.01,
    start: datetime = datetime(2019, 10, 1, tzinfo=UTC),
    days: int = 7,
) -> Iterator[bytes]:
    """``count`` record values: a realistic mix, spread evenly over ``days``."""
    rng = random.Random(seed)
    span = timedelta(days=days).total_seconds()
    for number in range(count):
        roll = rng.random()
        if roll < invalid_share:
            yield rng.choice(MALFORMED)
            continue
        at = start + timedelta(seconds=span * number / max(count, 1))
        yield sample_event(rng, number, roll < invalid_share + security_only_share, at)


def subject_key(value: bytes) -> bytes | None:
    """The Kafka key for a sample value: its subject id when it has one."""
    try:
        subject = orjson.loads(value).get("subject_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return subject.encode() if isinstance(subject, str) else None
