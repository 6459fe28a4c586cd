"""The cheap check of a plain JSON record's keys (enforcer/formats/unambiguous.py): it
says yes only for a record the exact checks would let through, and it does say yes to
the plain records most topics carry."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.parse import json_strings
from enforcer.core.policy.spec import MappingSpec
from enforcer.formats.mapping import FieldMapping
from enforcer.formats.paths import emptied
from enforcer.formats.reader import _emptied_in_place, _other_case_on_paths
from enforcer.formats.unambiguous import UnambiguousKeys

_MAPPING = FieldMapping.of(
    MappingSpec.model_validate(
        {
            "name": "contacts",
            "subject_id": "accountId",
            "occurred_at": "at",
            "identifiers": [
                {
                    "path": "contact.email",
                    "type": "email",
                    "purposes": {"path": "contact.tags"},
                },
                {"path": "phone", "type": "phone", "purposes": ["security.mfa"]},
                {"path": "backup", "type": "email", "purposes": "ledger"},
            ],
        }
    )
)


def _keys() -> UnambiguousKeys:
    keys = _MAPPING.unambiguous_keys
    assert keys is not None
    return keys


_KEYS = _keys()

# Keys a record may have: the mapped names, their other cases and look-alikes (a dotless
# and a dotted capital i, a long s, the Kelvin sign: an i, an s and a k to a case-blind
# match), and names the mapping does not read.
_NAMES = [
    *("accountId", "accountid", "ACCOUNTID", "account\u0130d", "at", "AT", "contact"),
    *("Contact", "email", "EMAIL", "ema\u0131l", "tags", "tag\u017f", "phone", "PHONE"),
    *("backup", "bac\u212aup", "note", "\u212aey", "key"),
]
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["", "x", "a@b.c", "\u00e9"])
)


def _object_text(draw: st.DrawFn, depth: int) -> str:
    """A JSON object's text, keys drawn from ``_NAMES`` (the same key may come twice),
    values scalars, lists or objects."""
    pairs = []
    for name in draw(st.lists(st.sampled_from(_NAMES), max_size=6)):
        pairs.append(f"{json.dumps(name, ensure_ascii=False)}:{_value_text(draw, depth)}")
    return "{" + ",".join(pairs) + "}"


def _value_text(draw: st.DrawFn, depth: int) -> str:
    kind = draw(st.integers(0, 2 if depth < 2 else 0))
    if kind == 1:
        return _object_text(draw, depth + 1)
    if kind == 2:
        items = [_value_text(draw, depth + 1) for _ in range(draw(st.integers(0, 2)))]
        return "[" + ",".join(items) + "]"
    return json.dumps(draw(_SCALARS), ensure_ascii=False)


@st.composite
def _records(draw: st.DrawFn) -> bytes:
    return _object_text(draw, 0).encode()


def _has_a_repeated_key(value: bytes) -> bool:
    repeated = False

    def pairs(found: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        names = [name for name, _ in found]
        repeated = repeated or len(set(names)) < len(names)
        return dict(found)

    json.loads(value, object_pairs_hook=pairs)
    return repeated


@given(_records())
def test_yes_only_when_no_key_repeats_and_no_mapped_name_has_another_case(value: bytes) -> None:
    document = orjson.loads(value)
    if _KEYS.plainly(value, document):
        assert not _has_a_repeated_key(value)
        assert not _other_case_on_paths(document, _MAPPING)


@given(_records())
def test_a_record_written_without_repeats_or_other_cases_is_plainly_unambiguous(
    value: bytes,
) -> None:
    """The converse, for the records the exact checks let through: said yes to (unless
    written with an escape)."""
    document = orjson.loads(value)
    if not _has_a_repeated_key(value) and not _other_case_on_paths(document, _MAPPING):
        assert _KEYS.plainly(value, document) is (b"\\" not in value)


def test_a_plain_record_is_plainly_unambiguous_and_each_problem_is_not() -> None:
    record = {
        "accountId": "a-1",
        "at": 1,
        "contact": {"email": "a@b.c", "tags": ["x"], "EMAIL2": "other"},
        "phone": "+14155552671",
        "note": {"Phone": "a name off the mapped paths"},
    }
    value = orjson.dumps(record)
    assert _KEYS.plainly(value, orjson.loads(value))
    for text in (
        value[:-1] + b',"phone":"+14155550000"}',  # written twice
        value[:-1] + b',"PHONE":"+14155550000"}',  # another case where it is read
        value[:-1] + b',"account\xc4\xb1d":"a-2"}',  # a dotless i for the I
        value.replace(b'"email"', b'"EMAIL"'),  # only the other case
        value.replace(b'"note"', b'"n\\u006fte"'),  # an escape: the exact check decides
    ):
        assert not _KEYS.plainly(text, orjson.loads(text)), text


def test_two_names_read_in_one_object_that_differ_in_case_make_either_key_ambiguous() -> None:
    spec = {
        "name": "twins",
        "subject_id": "s",
        "occurred_at": "t",
        "identifiers": [
            {"path": "email", "type": "email", "purposes": "ledger"},
            {"path": "Email", "type": "email", "purposes": "ledger"},
        ],
    }
    mapping = FieldMapping.of(MappingSpec.model_validate(spec))
    keys = mapping.unambiguous_keys
    assert keys is not None
    for record in ({"s": "u", "t": 1, "email": "a@b.c"}, {"s": "u", "t": 1, "Email": "a@b.c"}):
        value = orjson.dumps(record)
        assert _other_case_on_paths(orjson.loads(value), mapping)
        assert not keys.plainly(value, orjson.loads(value))
    value = orjson.dumps({"s": "u", "t": 1})
    assert keys.plainly(value, orjson.loads(value))


def test_a_mapping_through_a_list_has_no_cheap_check() -> None:
    spec = {
        "name": "list",
        "subject_id": "s",
        "occurred_at": "t",
        "identifiers": [{"path": "phones[*].number", "type": "phone", "purposes": "ledger"}],
    }
    assert FieldMapping.of(MappingSpec.model_validate(spec)).unambiguous_keys is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)


@given(_JSON)
def test_json_strings_counts_each_key_and_string(document: Any) -> None:
    """Written without escapes, a text has two quotes for each."""
    text = orjson.dumps(document)
    if b"\\" not in text:
        assert 2 * json_strings(document) == text.count(b'"')


_LOCATIONS = st.lists(
    st.sampled_from([("a",), ("b",), ("c", "d"), ("c", "e"), ("f", "g", "h")]), unique=True
)


@given(_LOCATIONS, st.booleans())
def test_emptying_in_place_writes_what_the_copy_writes(
    locations: list[tuple[str, ...]], remove: bool
) -> None:
    document = {"a": "1", "z": 0, "b": "2", "c": {"d": "3", "e": "4"}, "f": {"g": {"h": "5"}}}
    copied = orjson.dumps(emptied(json.loads(json.dumps(document)), locations, remove=remove))
    in_place = orjson.dumps(_emptied_in_place(document, list(locations), remove))
    assert in_place == copied
