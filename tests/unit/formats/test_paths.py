"""Record paths (docs/formats.md: "Field mappings"): parsed like the policy file checks
them, every location found holds the value found, and emptying touches only what it names."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.policy.spec import RECORD_PATH
from enforcer.formats.codec import FieldInfo, Location
from enforcer.formats.paths import (
    EVERY,
    PathSyntaxError,
    PathTypeError,
    RecordPath,
    emptied,
    field_of,
    find,
    location_text,
    parse_path,
    value_at,
)

NAMES = st.sampled_from(["a", "b", "c", "email", "ü-x", "$id"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3))
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(NAMES, inner, max_size=3)),
    max_leaves=12,
)
OBJECTS = st.dictionaries(NAMES, DOCUMENTS, max_size=4)
STEPS = st.one_of(NAMES, st.none(), st.integers(0, 3))


@st.composite
def paths(draw: st.DrawFn) -> RecordPath:
    """A path that parses: a name first, then names and indexes (an index always after
    a name or another index)."""
    steps: list[str | int | None] = [draw(NAMES)]
    steps += draw(st.lists(STEPS, max_size=4))
    text = ""
    for step in steps:
        if step is EVERY:
            text += "[*]"
        elif isinstance(step, int):
            text += f"[{step}]"
        else:
            text += f".{step}" if text else step
    return parse_path(text)


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("a", ("a",)),
        ("a.b", ("a", "b")),
        ("a.b[*]", ("a", "b", None)),
        ("a[*].b", ("a", None, "b")),
        ("a[0]", ("a", 0)),
        ("a[12][*].ü-x", ("a", 12, None, "ü-x")),
    ],
)
def test_a_path_parses_into_steps(text: str, steps: tuple[Any, ...]) -> None:
    """Names, [*] and [n], and the text back from the steps."""
    path = parse_path(text)
    assert path.steps == steps
    assert path.text == text


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("", "a field name expected at character 1, found the end"),
        ("a..b", "a field name expected at character 3"),
        (".a", "a field name expected at character 1"),
        ("a.", "found the end"),
        ("a[x]", "'.', '[*]' or '[n]' expected at character 2"),
        ("a[01]", "character 2"),
        ("a b", "character 2"),
        ("[0].a", "a field name expected at character 1"),
        ("a[*]b", "character 5"),
    ],
)
def test_bad_syntax_is_refused_with_the_place(text: str, where: str) -> None:
    """A message that says what was expected where."""
    with pytest.raises(PathSyntaxError, match="not a record path") as caught:
        parse_path(text)
    assert where in str(caught.value)


@given(st.text(alphabet="ab.[]*0123 ", max_size=12))
def test_the_parser_and_the_policy_file_agree(text: str) -> None:
    """The policy file's pattern accepts exactly what the parser parses."""
    try:
        parse_path(text)
    except PathSyntaxError:
        parsed = False
    else:
        parsed = True
    assert parsed == (RECORD_PATH.fullmatch(text) is not None)


@given(OBJECTS, paths())
def test_every_location_found_holds_the_value_found(document: Any, path: RecordPath) -> None:
    """Each location is concrete, matches the path step by step, and holds its value."""
    try:
        found = find(document, path)
    except PathTypeError:
        return
    assert len({location for location, _ in found}) == len(found)
    for location, value in found:
        assert len(location) == len(path.steps)
        for step, part in zip(path.steps, location, strict=True):
            assert part == step or (step is EVERY and isinstance(part, int))
        assert value_at(document, location) is value


@given(OBJECTS, paths())
def test_setting_to_null_empties_exactly_the_locations(document: Any, path: RecordPath) -> None:
    """Each location holds null, everything else is as it was, and the original
    document is unchanged."""
    try:
        locations = {location for location, _ in find(document, path)}
    except PathTypeError:
        return
    before = repr(document)
    out = emptied(document, locations, remove=False)
    assert repr(document) == before
    for location in locations:
        assert value_at(out, location) is None
    assert out == _nulled_by_hand(document, locations)


def _nulled_by_hand(value: Any, locations: set[Location], at: Location = ()) -> Any:
    if at in locations:
        return None
    if isinstance(value, dict):
        return {k: _nulled_by_hand(v, locations, (*at, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulled_by_hand(v, locations, (*at, i)) for i, v in enumerate(value)]
    return value


@given(OBJECTS, paths())
def test_removing_takes_out_exactly_the_locations(document: Any, path: RecordPath) -> None:
    """A removed field is gone from its object, a removed item from its list, and
    nothing else changes."""
    try:
        locations = {location for location, _ in find(document, path)}
    except PathTypeError:
        return
    before = repr(document)
    out = emptied(document, locations, remove=True)
    assert repr(document) == before
    assert out == _removed_by_hand(document, locations)


def _removed_by_hand(value: Any, locations: set[Location], at: Location = ()) -> Any:
    if isinstance(value, dict):
        return {
            k: _removed_by_hand(v, locations, (*at, k))
            for k, v in value.items()
            if (*at, k) not in locations
        }
    if isinstance(value, list):
        return [
            _removed_by_hand(v, locations, (*at, i))
            for i, v in enumerate(value)
            if (*at, i) not in locations
        ]
    return value


def test_find_walks_lists_and_skips_what_is_missing() -> None:
    """Missing names, nulls and indexes past the end name nothing."""
    document = {"phones": [{"number": "1"}, {"other": 2}, None, {"number": "3"}], "c": None}
    found = find(document, parse_path("phones[*].number"))
    assert found == [(("phones", 0, "number"), "1"), (("phones", 3, "number"), "3")]
    assert find(document, parse_path("phones[9].number")) == []
    assert find(document, parse_path("c.email")) == []
    assert find(document, parse_path("absent[*]")) == []
    assert location_text(("phones", 3, "number")) == "phones[3].number"


@pytest.mark.parametrize(
    ("document", "text", "message"),
    [
        ({"contact": "x"}, "contact.email", "contact: a string, not an object"),
        ({"phones": {"a": 1}}, "phones[*]", "phones: an object, not a list"),
        ({"a": [1, 2]}, "a.b", "a: a list, not an object"),
        ([1], "a", "(the record): a list, not an object"),
    ],
)
def test_a_value_of_the_wrong_type_on_the_way_is_an_error(
    document: Any, text: str, message: str
) -> None:
    """Named by place and type, never by value."""
    with pytest.raises(PathTypeError) as caught:
        find(document, parse_path(text))
    assert str(caught.value) == message
    assert "x" not in caught.value.problem


def test_a_path_is_checked_against_a_schemas_fields() -> None:
    """Found by its [*] form; a missing name is named; under a map anything goes."""

    def info(path: str, kind: Any) -> FieldInfo:
        return FieldInfo(path, kind, True, ())

    fields = {
        p.path: p
        for p in (
            info("phones", "list"),
            info("phones[*]", "record"),
            info("phones[*].number", "string"),
            info("attrs", "map"),
        )
    }
    found = field_of(fields, parse_path("phones[2].number"))
    assert isinstance(found, FieldInfo) and found.kind == "string"
    assert field_of(fields, parse_path("phones[*].nmber")) == (
        "'phones[*].nmber' is not a field of the schema"
    )
    assert field_of(fields, parse_path("contact.email")) == "'contact' is not a field of the schema"
    under_map = field_of(fields, parse_path("attrs.email"))
    assert isinstance(under_map, FieldInfo) and under_map.kind == "map"


def test_bind_puts_positions_into_the_wildcards_in_order() -> None:
    """phones[*].purposes bound to phones[3].number's position is phones[3].purposes."""
    path = parse_path("a[*].b[*].c")
    assert path.bind([3]).text == "a[3].b[*].c"
    assert path.bind([3, 1]).steps == ("a", 3, "b", 1, "c")
    assert path.field_path == "a[*].b[*].c"
    assert parse_path("a[2].b").field_path == "a[*].b"
