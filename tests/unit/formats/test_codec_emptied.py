"""Emptying values in a decoded record, shared by the Avro and JSON Schema codecs."""

from __future__ import annotations

from typing import Any

import pytest

from enforcer.formats.codec import Location
from enforcer.formats.emptied import emptied_copy, schema_path

RECORD: dict[str, Any] = {"a": "x", "b": {"c": "y", "d": [1, 2, 3]}, "e": [{"f": 1}, {"f": 2}]}


@pytest.mark.parametrize(
    ("location", "path"),
    [(("a",), "a"), (("b", "c"), "b.c"), (("e", 1, "f"), "e[*].f"), (("b", "d", 0), "b.d[*]")],
)
def test_schema_path(location: Location, path: str) -> None:
    assert schema_path(location) == path


def test_fields_become_null_or_go_and_list_items_go() -> None:
    result = emptied_copy(
        RECORD,
        [
            (("a",), False),
            (("b", "c"), True),
            (("b", "d", 0), False),
            (("b", "d", 2), False),
            (("e", 0, "f"), False),
        ],
    )
    assert result == {"a": None, "b": {"d": [2]}, "e": [{"f": None}, {"f": 2}]}
    assert RECORD == {"a": "x", "b": {"c": "y", "d": [1, 2, 3]}, "e": [{"f": 1}, {"f": 2}]}


def test_an_emptied_parent_makes_its_childrens_edits_moot() -> None:
    assert emptied_copy(RECORD, [(("e", 0, "f"), False), (("e", 0), False)])["e"] == [{"f": 2}]
    assert emptied_copy(RECORD, [(("b", "c"), False), (("b",), False)])["b"] is None


@pytest.mark.parametrize("location", [(), ("zz",), ("a", "b"), ("e", 5), ("e", "x"), ("b", 0)])
def test_a_location_that_names_no_value_raises(location: Location) -> None:
    with pytest.raises(LookupError):
        emptied_copy(RECORD, [(location, False)])
