"""Record paths (docs/formats.md: "Field mappings"): ``contact.email``,
``phones[*].number``, ``phones[0]``. A path is parsed once, from the policy; per record it
finds the concrete :data:`~enforcer.formats.codec.Location` of every value it names in
a decoded record (dicts, lists and scalars), and a plain JSON record is written back with
values at some locations emptied.

The grammar is the policy file's (:data:`enforcer.core.policy.spec.RECORD_PATH`): names
joined by dots, each followed by any number of ``[*]`` (every item of a list) or ``[n]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from enforcer.formats.codec import FieldInfo, Location

EVERY = None
"""The ``[*]`` step of a path: every item of a list."""
PathStep = str | int | None
"""A path's step: a field name, a list index, or :data:`EVERY`."""

_NAME = re.compile(r"[^.\[\]\s\x00-\x1f\x7f]+")
_INDEX = re.compile(r"\[(\*|0|[1-9][0-9]{0,8})\]")


class PathSyntaxError(ValueError):
    """Text that is not a record path; the message says where and why."""


class PathTypeError(Exception):
    """A record whose value on a path has the wrong type to go on (a list where a field
    is named, a number where a list is walked). Names the place and the types, never a
    value."""

    def __init__(self, place: str, problem: str) -> None:
        super().__init__(f"{place}: {problem}")
        self.place = place
        self.problem = problem


@dataclass(frozen=True, slots=True)
class RecordPath:
    """A parsed record path."""

    text: str
    steps: tuple[PathStep, ...]
    concrete: Location | None = field(init=False, compare=False, repr=False)
    """The path as a location when it has no ``[*]`` (found in one walk), else ``None``."""

    def __post_init__(self) -> None:
        steps = self.steps
        concrete = None if EVERY in steps else cast("Location", steps)
        object.__setattr__(self, "concrete", concrete)

    @property
    def wildcards(self) -> int:
        """How many ``[*]`` it has."""
        return sum(1 for step in self.steps if step is EVERY)

    @property
    def field_path(self) -> str:
        """The path as a schema names its field (:attr:`FieldInfo.path`): every index
        written ``[*]``."""
        return render(tuple(s if isinstance(s, str) else EVERY for s in self.steps))

    def bind(self, positions: Iterable[int]) -> RecordPath:
        """The path with its ``[*]`` replaced, in order, by ``positions`` (as many as
        there are; the rest stay ``[*]``)."""
        given = iter(positions)
        steps = tuple(next(given, EVERY) if step is EVERY else step for step in self.steps)
        return RecordPath(render(steps), steps)


def parse_path(text: str) -> RecordPath:
    """Parse ``text``; raise :class:`PathSyntaxError` naming the first position that
    breaks the grammar."""
    steps: list[PathStep] = []
    position = 0
    while True:
        name = _NAME.match(text, position)
        if name is None:
            raise PathSyntaxError(_expected(text, position, "a field name"))
        steps.append(name.group())
        position = name.end()
        while (index := _INDEX.match(text, position)) is not None:
            steps.append(EVERY if index.group(1) == "*" else int(index.group(1)))
            position = index.end()
        if position == len(text):
            return RecordPath(text, tuple(steps))
        if text[position] != ".":
            raise PathSyntaxError(_expected(text, position, "'.', '[*]' or '[n]'"))
        position += 1


def is_path_name(name: str) -> bool:
    """Whether a path can name a field called ``name``: one name of the grammar, so
    that ``contact.email`` or ``phones[0]`` as a field's own name is not one (a path
    would read them as two steps, or a step and an index)."""
    return _NAME.fullmatch(name) is not None


def _expected(text: str, position: int, what: str) -> str:
    found = "the end" if position >= len(text) else repr(text[position])
    return f"not a record path: {what} expected at character {position + 1}, found {found}"


def render(steps: tuple[PathStep, ...]) -> str:
    """Path steps as text: ``("phones", None, "number")`` is ``phones[*].number``."""
    out = ""
    for step in steps:
        if step is EVERY:
            out += "[*]"
        elif isinstance(step, int):
            out += f"[{step}]"
        else:
            out += f".{step}" if out else step
    return out


def location_text(location: Location) -> str:
    """``("phones", 1, "number")`` as ``phones[1].number``."""
    return render(location)


def kind_of(value: object) -> str:
    """What ``value`` is, in words (``a number``, ``an object``), never what it holds."""
    for kinds, words in _KINDS:
        if isinstance(value, kinds):
            return words
    return f"a {type(value).__name__}"


_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "null"),
    (bool, "a boolean"),  # before int: a bool is an int
    ((int, float), "a number"),
    (str, "a string"),
    (Mapping, "an object"),
    ((list, tuple), "a list"),
)


def find(
    view: Any, path: RecordPath, visited: set[tuple[int, str]] | None = None
) -> list[tuple[Location, Any]]:
    """Every concrete location ``path`` names in ``view`` with its value, in record order.

    A name the record does not have, an index past a list's end or a null on the way
    names nothing (an optional field left out). A value of the wrong type on the way (a
    list where a name follows, an object under ``[*]``) raises :class:`PathTypeError`.
    ``visited`` collects ``(id(object), name)`` for each name found in an object, for
    the repeated-key check of plain JSON."""
    if path.concrete is not None:
        return _find_concrete(view, path.concrete, visited)
    found: list[tuple[Location, Any]] = [((), view)]
    for step in path.steps:
        following: list[tuple[Location, Any]] = []
        for location, value in found:
            if value is None:
                continue
            if isinstance(step, str):
                if not isinstance(value, Mapping):
                    raise PathTypeError(_place(location), f"{kind_of(value)}, not an object")
                if step in value:
                    if visited is not None:
                        visited.add((id(value), step))
                    following.append(((*location, step), value[step]))
                continue
            if not isinstance(value, list | tuple):
                raise PathTypeError(_place(location), f"{kind_of(value)}, not a list")
            if step is EVERY:
                following.extend(((*location, i), item) for i, item in enumerate(value))
            elif step < len(value):
                following.append(((*location, step), value[step]))
        found = following
        if not found:
            break
    return found


MISSING: Any = object()
"""What :func:`lookup` gives for a name an object does not have."""
UNSURE: Any = object()
"""What :func:`lookup` gives when the way is not objects all along (ask :func:`find`)."""


def lookup(view: Any, location: Location) -> Any:
    """The value at a location made of names only through objects only: the common
    case, in one tight walk. :data:`MISSING` when a name is not there (a null on the
    way also), :data:`UNSURE` for anything else, which :func:`find` then decides."""
    value = view
    for step in location:
        if type(value) is not dict or type(step) is not str:
            return MISSING if value is None else UNSURE
        value = value.get(step, MISSING)
        if value is MISSING:
            return MISSING
    return value


def _find_concrete(
    view: Any, location: Location, visited: set[tuple[int, str]] | None
) -> list[tuple[Location, Any]]:
    """:func:`find` for a path without ``[*]``: one walk, at most one value."""
    value = view
    for depth, step in enumerate(location):
        # A dict holding the name is the common case: one lookup, no further tests.
        if type(value) is dict and type(step) is str and visited is None:
            value = value.get(step, _ABSENT)
        elif value is not None:
            value = _step(value, step, location[:depth], visited)
        if value is _ABSENT or (value is None and depth < len(location) - 1):
            return []
    return [(location, value)]


_ABSENT = object()


def _step(value: Any, step: str | int, at: Location, visited: set[tuple[int, str]] | None) -> Any:
    """One step of :func:`_find_concrete` off the common case (``at``: where it is)."""
    if isinstance(step, str):
        if not isinstance(value, Mapping):
            raise PathTypeError(_place(at), f"{kind_of(value)}, not an object")
        if step not in value:
            return _ABSENT
        if visited is not None:
            visited.add((id(value), step))
        return value[step]
    if not isinstance(value, list | tuple):
        raise PathTypeError(_place(at), f"{kind_of(value)}, not a list")
    return value[step] if step < len(value) else _ABSENT


def _place(location: Location) -> str:
    return location_text(location) or "(the record)"


def value_at(view: Any, location: Location) -> Any:
    """The value at a concrete location (``KeyError``/``IndexError`` when absent)."""
    for step in location:
        view = view[step]
    return view


def emptied(document: Any, locations: Iterable[Location], *, remove: bool) -> Any:
    """``document`` with the values at ``locations`` set to null, or removed (a field
    from its object, an item from its list). A new document: only the objects and lists
    on the way to a location are copied, the rest is shared; ``document`` is not
    changed. A location that does not exist is ignored."""
    tree: dict[str | int, Any] = {}
    for location in locations:
        if not location:
            continue
        node = tree
        for step in location[:-1]:
            node = node.setdefault(step, {})
            if node is _LEAF:
                break
        else:
            node[location[-1]] = _LEAF
    return _apply(document, tree, remove)


_LEAF: dict[str | int, Any] = {}


def _apply(value: Any, tree: dict[str | int, Any], remove: bool) -> Any:
    if isinstance(value, dict):
        return _apply_to_object(value, tree, remove)
    if isinstance(value, list):
        return _apply_to_list(value, tree, remove)
    return value


def _apply_to_object(value: dict[str, Any], tree: dict[str | int, Any], remove: bool) -> Any:
    copied = dict(value)
    for step, below in tree.items():
        if not isinstance(step, str) or step not in copied:
            continue
        if below is not _LEAF:
            copied[step] = _apply(copied[step], below, remove)
        elif remove:
            del copied[step]
        else:
            copied[step] = None
    return copied


def _apply_to_list(value: list[Any], tree: dict[str | int, Any], remove: bool) -> Any:
    items = list(value)
    gone: set[int] = set()
    for step, below in tree.items():
        if not isinstance(step, int) or step >= len(items):
            continue
        if below is not _LEAF:
            items[step] = _apply(items[step], below, remove)
        elif remove:
            gone.add(step)
        else:
            items[step] = None
    return [item for i, item in enumerate(items) if i not in gone] if gone else items


def field_of(fields: Mapping[str, FieldInfo], path: RecordPath) -> FieldInfo | str:
    """The schema's field that ``path`` names, or why none does. Under a map the schema
    names no fields: a path that goes into a map is taken as the map's (its keys are the
    record's)."""
    for end in range(1, len(path.steps) + 1):
        prefix = RecordPath("", path.steps[:end]).field_path
        info = fields.get(prefix)
        if info is None:
            if end == len(path.steps) or isinstance(path.steps[end], str):
                return f"'{prefix}' is not a field of the schema"
            continue  # an index on a name: the list's field is checked with its [*]
        if info.kind == "map" and end < len(path.steps):
            if not info.keyed_by_name:
                # Its keys are numbers or booleans: a name below it would find nothing,
                # and the identifier there would pass unjudged.
                return (
                    f"'{prefix}' is a map whose keys are not strings: a path cannot name "
                    "its entries"
                )
            return info
    found = fields.get(path.field_path)
    return found if found is not None else f"'{path.field_path}' is not a field of the schema"
