"""Exposure: what the enforcer forwarded to a sink, per subject, and its topic value.

An :class:`ExposureEntry` is one identifier that reached a sink topic: the sink, the
identifier's type, its fingerprint and the id of the key that made it, the purposes it
was judged by (and whether they were the ledger's), the policy version it was last
forwarded under, and when it was first and last forwarded. A subject's exposure is all
its entries (:class:`SubjectExposure`). No raw identifier value is ever part of it.

The compacted exposure topic holds one record per subject (docs/exposure.md): key = the
subject id (UTF-8), value = the subject's whole exposure as JSON, a tombstone when it
is empty::

    {"format": 1, "subject_id": "acct-0042",
     "entries": [{"sink_topic": "audience.identity", "identifier_type": "email",
                  "fingerprint": "hmac-sha256:<64 hex>", "key_id": "<16 hex>",
                  "purposes": ["marketing.advertising"], "by_ledger": true,
                  "policy_version": "2026-11-01",
                  "first_forwarded_at": "2026-11-30T12:00:00Z",
                  "last_forwarded_at": "2026-12-02T08:15:00Z"}]}

:func:`parse_exposure_record` reads a record strictly and never raises: a value it
cannot vouch for is an :class:`ExposureFailure` naming the field and the problem,
never a value. :func:`exposure_value` writes one. Times are kept to the second.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

import orjson

from enforcer.core.fingerprint import FINGERPRINT_PREFIX, KEY_ID_HEX_DIGITS
from enforcer.core.identifier_types import is_stored_type_name
from enforcer.core.models import is_plain_rfc3339, parse_rfc3339
from enforcer.core.purposes import normalize_tag

FORMAT = 1
"""The version of the value format this code writes and reads."""

_ENTRY_FIELDS = frozenset(
    {
        "sink_topic",
        "identifier_type",
        "fingerprint",
        "key_id",
        "purposes",
        "by_ledger",
        "policy_version",
        "first_forwarded_at",
        "last_forwarded_at",
    }
)
_VALUE_FIELDS = frozenset({"format", "subject_id", "entries"})
_FINGERPRINT = re.compile(re.escape(FINGERPRINT_PREFIX) + r"[0-9a-f]{64}")
_KEY_ID = re.compile(f"[0-9a-f]{{{KEY_ID_HEX_DIGITS}}}")
MAX_SECONDS = 2**32 - 1
"""Times are kept as unsigned 32-bit seconds since 1970 (until 2106)."""


class Forward(NamedTuple):
    """One identifier of one record that went to the sink, as the decision judged it."""

    sink_topic: str
    identifier_type: str
    """Lower-cased, as judged."""
    fingerprint: str
    """``hmac-sha256:<64 hex>``."""
    key_id: str
    """The fingerprint key's id (16 hex digits)."""
    purposes: tuple[str, ...]
    """What the identifier was judged by: normalized tags."""
    by_ledger: bool
    """Whether ``purposes`` were the purpose ledger's (the ledger knew the identifier)."""
    policy_version: str


class ExposureEntry(NamedTuple):
    """One identifier exposed to one sink topic."""

    sink_topic: str
    identifier_type: str
    fingerprint: str
    key_id: str
    purposes: tuple[str, ...]
    """Sorted and de-duplicated."""
    by_ledger: bool
    policy_version: str
    """The version of the policy it was last forwarded under."""
    first_forwarded_at: str
    """RFC 3339, UTC, to the second."""
    last_forwarded_at: str
    """RFC 3339, UTC, to the second; moved forward at most once a day (docs/exposure.md)."""

    @property
    def identity(self) -> tuple[str, str, str]:
        """What makes two entries one: (sink topic, identifier type, fingerprint)."""
        return (self.sink_topic, self.identifier_type, self.fingerprint)


class SubjectExposure(NamedTuple):
    """A subject's whole exposure: no entry means nothing exposed (a tombstone)."""

    subject_id: str
    entries: tuple[ExposureEntry, ...]


class ExposureFailure(NamedTuple):
    """Why an exposure record was refused: the field and the problem, never a value."""

    message: str


@lru_cache(maxsize=65_536)
def seconds_of(text: str) -> int:
    """An RFC 3339 time as whole seconds since 1970 (fractions dropped).

    Raises ``ValueError`` when it is not RFC 3339 or outside 1970 to 2106."""
    seconds = int(parse_rfc3339(text).timestamp() // 1)
    if not 0 <= seconds <= MAX_SECONDS:
        raise ValueError("a time outside 1970 to 2106")
    return seconds


@lru_cache(maxsize=4096)
def text_of(seconds: int) -> str:
    """Seconds since 1970 as RFC 3339 in UTC, to the second (``...Z``)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def exposure_key(subject_id: str) -> bytes:
    """The exposure record's key: the subject id, as the source's keys hold it."""
    return subject_id.encode("utf-8", "surrogatepass")


def exposure_value(exposure: SubjectExposure) -> bytes | None:
    """The value of ``exposure``'s record: ``None`` (a tombstone) when it is empty."""
    if not exposure.entries:
        return None
    return orjson.dumps(
        {
            "format": FORMAT,
            "subject_id": exposure.subject_id,
            "entries": [
                {
                    "sink_topic": e.sink_topic,
                    "identifier_type": e.identifier_type,
                    "fingerprint": e.fingerprint,
                    "key_id": e.key_id,
                    "purposes": list(e.purposes),
                    "by_ledger": e.by_ledger,
                    "policy_version": e.policy_version,
                    "first_forwarded_at": e.first_forwarded_at,
                    "last_forwarded_at": e.last_forwarded_at,
                }
                for e in exposure.entries
            ],
        }
    )


def parse_exposure_record(
    key: bytes | None, value: bytes | None
) -> SubjectExposure | ExposureFailure:
    """Read one record of the exposure topic; never raises.

    A tombstone is a subject with no entry. A value must be exactly the format above:
    ``format`` 1, ``subject_id`` equal to the key, at least one entry (an empty
    exposure is written as a tombstone), each entry with exactly its fields, valid
    and canonical (purposes sorted, de-duplicated, normalized), its last forwarded
    time not before its first, and no two entries with one identity.
    """
    try:
        subject_id = _subject(key)
        if isinstance(subject_id, ExposureFailure):
            return subject_id
        if value is None:
            return SubjectExposure(subject_id, ())
        return _value(subject_id, value)
    except Exception as exc:  # an exposure record must never stop the worker
        return ExposureFailure(f"internal error: {type(exc).__name__}")


def _subject(key: bytes | None) -> str | ExposureFailure:
    if not key:
        return ExposureFailure("the record has no subject id key")
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return ExposureFailure("the record key is not UTF-8")


def _value(subject_id: str, value: bytes) -> SubjectExposure | ExposureFailure:  # noqa: PLR0911
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return ExposureFailure("not valid JSON")
    if type(document) is not dict:
        return ExposureFailure("not a JSON object")
    if set(document) != _VALUE_FIELDS:
        return ExposureFailure(_fields_problem("", set(document), _VALUE_FIELDS))
    if type(document["format"]) is not int:
        return ExposureFailure("format: not an integer")
    if document["format"] != FORMAT:
        return ExposureFailure(f"format: this version reads format {FORMAT} only")
    if document["subject_id"] != subject_id:
        return ExposureFailure("subject_id: does not match the record key")
    items = document["entries"]
    if type(items) is not list:
        return ExposureFailure("entries: not a list")
    if not items:
        return ExposureFailure("entries: empty (an empty exposure is a tombstone)")
    entries = []
    seen: set[tuple[str, str, str]] = set()
    for index, item in enumerate(items):
        entry = _entry(f"entries[{index}]", item)
        if isinstance(entry, ExposureFailure):
            return entry
        if entry.identity in seen:
            return ExposureFailure(f"entries[{index}]: the same identifier twice")
        seen.add(entry.identity)
        entries.append(entry)
    return SubjectExposure(subject_id, tuple(entries))


_valid_purposes: dict[tuple[object, ...], None] = {}
"""Purpose lists found valid (a stream has few): a restore checks each once."""


def _purposes_problem(purposes: tuple[object, ...]) -> str | None:
    """What is wrong with a value's purpose list (after ``purposes``), or ``None``."""
    try:
        if purposes in _valid_purposes:
            return None
    except TypeError:  # a list or an object among them: not hashable
        pass
    for position, tag in enumerate(purposes):
        if type(tag) is not str or normalize_tag(tag) != tag:
            return f"[{position}]: not a normalized purpose tag"
    if list(purposes) != sorted(set(purposes)):  # type: ignore[type-var]
        return ": not sorted and de-duplicated"
    if len(_valid_purposes) >= 4096:
        _valid_purposes.clear()
    _valid_purposes[purposes] = None
    return None


def _fields_problem(path: str, found: set[str], expected: frozenset[str]) -> str:
    prefix = f"{path}: " if path else ""
    missing = sorted(expected - found)
    if missing:
        return f"{prefix}missing field {missing[0]}"
    return f"{prefix}unknown field"  # never its name: it could be anything


def parse_entry(path: str, item: object) -> ExposureEntry | ExposureFailure:
    """One entry of a value as JSON data, read as strictly as a record's (the plan file's
    exposure entries are checked by it); a failure names ``path`` and the field."""
    return _entry(path, item)


def _entry(path: str, item: object) -> ExposureEntry | ExposureFailure:  # noqa: PLR0911, PLR0912
    if type(item) is not dict:
        return ExposureFailure(f"{path}: not a JSON object")
    if set(item) != _ENTRY_FIELDS:
        return ExposureFailure(_fields_problem(path, set(item), _ENTRY_FIELDS))
    for name in ("sink_topic", "identifier_type", "policy_version"):
        text = item[name]
        if type(text) is not str or not text:
            return ExposureFailure(f"{path}.{name}: not a non-empty string")
    if not is_stored_type_name(item["identifier_type"]):
        return ExposureFailure(f"{path}.identifier_type: not a lower-cased identifier type name")
    fingerprint, key_id = item["fingerprint"], item["key_id"]
    if type(fingerprint) is not str or _FINGERPRINT.fullmatch(fingerprint) is None:
        return ExposureFailure(f"{path}.fingerprint: not an hmac-sha256 fingerprint")
    if type(key_id) is not str or _KEY_ID.fullmatch(key_id) is None:
        return ExposureFailure(f"{path}.key_id: not a key id ({KEY_ID_HEX_DIGITS} hex digits)")
    purposes = item["purposes"]
    if type(purposes) is not list:
        return ExposureFailure(f"{path}.purposes: not a list")
    problem = _purposes_problem(tuple(purposes)) if purposes else None
    if problem is not None:
        return ExposureFailure(f"{path}.purposes{problem}")
    if type(item["by_ledger"]) is not bool:
        return ExposureFailure(f"{path}.by_ledger: not true or false")
    times = []
    for name in ("first_forwarded_at", "last_forwarded_at"):
        text = item[name]
        if type(text) is not str or not text.isascii():
            return ExposureFailure(f"{path}.{name}: not an RFC 3339 time")
        try:
            times.append(seconds_of(text))
        except ValueError:
            if not is_plain_rfc3339(text):
                return ExposureFailure(f"{path}.{name}: not an RFC 3339 time")
            return ExposureFailure(f"{path}.{name}: outside 1970 to 2106")
    if times[1] < times[0]:
        return ExposureFailure(f"{path}.last_forwarded_at: before first_forwarded_at")
    return ExposureEntry(
        item["sink_topic"],
        item["identifier_type"],
        fingerprint,
        key_id,
        tuple(purposes),
        item["by_ledger"],
        item["policy_version"],
        text_of(times[0]),
        text_of(times[1]),
    )
