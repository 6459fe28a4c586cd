"""Whether a plain JSON record's keys are plainly unambiguous to a mapping
(docs/formats.md: "How a record is read").

A record whose mapped key is written twice in one object, or in other letter cases where
the mapping reads it, is refused: a consumer that takes the other copy (or matches
names without case, as Go's ``encoding/json`` does) would read what nobody judged.
:class:`UnambiguousKeys` answers the cheap half of that question from the parsed
document, for a mapping whose paths are field names only: ``True`` only when no key of
the record is written twice in one object and no object the mapping reads holds a key a
case-blind match takes for a name read there. Anything else (``False``) sends the record
to the exact check, which gives the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence

from enforcer.core.parse import case_blind, json_strings
from enforcer.formats.paths import RecordPath

_QUOTE = 34
_FINE_LIMIT = 4096
"""Keys remembered as fine per object, before the memory starts again."""


class _ObjectKeys:
    """The names a mapping reads in one of the record's objects, and the keys already
    found not to be taken for one of them."""

    __slots__ = ("_fine", "_first", "_names_by_blind")

    def __init__(self, names: set[str]) -> None:
        by_blind: dict[str, set[str]] = {}
        for name in names:
            by_blind.setdefault(case_blind(name), set()).add(name)
        self._names_by_blind = {blind: frozenset(found) for blind, found in by_blind.items()}
        # A name read here is fine as a key unless another name read here is the same to
        # a case-blind match (then either key is ambiguous).
        self._first = frozenset(
            name for found in self._names_by_blind.values() if len(found) == 1 for name in found
        )
        self._fine = set(self._first)

    def fine(self, node: dict[str, object]) -> bool:
        """Whether no key of ``node`` is another letter case of a name read in it."""
        fine = self._fine
        if fine.issuperset(node):
            return True
        for key in node:
            if key in fine:
                continue
            names = self._names_by_blind.get(case_blind(key))
            if names is not None and (len(names) > 1 or key not in names):
                return False
            if len(fine) >= _FINE_LIMIT:
                fine.clear()
                fine.update(self._first)
            fine.add(key)
        return True


class UnambiguousKeys:
    """The cheap check of one mapping (see the module text)."""

    __slots__ = ("_objects",)

    def __init__(self, objects: Sequence[tuple[tuple[str, ...], _ObjectKeys]]) -> None:
        self._objects = tuple(objects)

    @classmethod
    def of(cls, paths: Sequence[RecordPath]) -> UnambiguousKeys | None:
        """The check for a mapping reading ``paths``; ``None`` when a path goes through
        a list (the exact check is then the only one)."""
        read_at: dict[tuple[str, ...], set[str]] = {}
        for path in paths:
            names: list[str] = []
            for step in path.steps:
                if type(step) is not str:
                    return None
                read_at.setdefault(tuple(names), set()).add(step)
                names.append(step)
        return cls([(where, _ObjectKeys(names)) for where, names in sorted(read_at.items())])

    def plainly(self, value: bytes, document: dict[str, object]) -> bool:
        """Whether JSON ``value``, parsed as ``document``, is plainly unambiguous: it has
        no escape (each of its strings then written between two quotes, and no other
        quote written, so a key written twice leaves more quotes than the document has
        strings) and no key in other letter cases where a name is read."""
        if 92 in value or value.count(_QUOTE) != 2 * json_strings(document):
            return False
        for where, keys in self._objects:
            node: object = document
            for name in where:
                node = node.get(name) if type(node) is dict else None
            if type(node) is dict and not keys.fine(node):
                return False
        return True
