"""A decoded record (dicts and lists) copied with some of its values emptied: the part
the Avro and JSON Schema codecs share in ``encode_without`` (docs/formats.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from enforcer.formats.codec import Location


def schema_path(location: Location) -> str:
    """The schema's path of a value's location: ``("phones", 1, "number")`` is
    ``phones[*].number``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += "[*]"
        else:
            path = f"{path}.{part}" if path else part
    return path


def emptied_copy(root: Any, edits: Sequence[tuple[Location, bool]]) -> Any:
    """``root`` with the value at each edit's location emptied: a record field set to
    ``None`` (or its key removed when the edit's flag says so), a list item removed from
    its list. Only the dicts and lists on the edited paths are copied; ``root`` itself is
    not changed (a decoded record may be read again). Raises :class:`LookupError` when a
    location names no value."""
    for location, _ in edits:
        if not location:
            raise LookupError("an empty location names the whole record, not a field")
    return _edited(root, list(edits), 0)


def _edited(node: Any, edits: list[tuple[Location, bool]], depth: int) -> Any:
    # Group the edits by this node's child they go through; an edit that ends at a child
    # empties it, which makes any deeper edit under that child moot.
    ends: dict[str | int, bool] = {}
    deeper: dict[str | int, list[tuple[Location, bool]]] = {}
    for location, remove in edits:
        key = location[depth]
        if len(location) == depth + 1:
            ends[key] = ends.get(key, False) or remove
        else:
            deeper.setdefault(key, []).append((location, remove))
    if isinstance(node, dict):
        copy: dict[str, Any] = dict(node)
        for key, group in deeper.items():
            if key not in ends:
                copy[_dict_key(node, key)] = _edited(node[key], group, depth + 1)
        for key, remove in ends.items():
            name = _dict_key(node, key)
            if remove:
                del copy[name]
            else:
                copy[name] = None
        return copy
    if isinstance(node, list):
        items = list(node)
        for key, group in deeper.items():
            if key not in ends:
                index = _list_index(node, key)
                items[index] = _edited(node[index], group, depth + 1)
        gone = {_list_index(node, key) for key in ends}
        return [item for index, item in enumerate(items) if index not in gone]
    raise LookupError(f"no field below a {type(node).__name__} value")


def _dict_key(node: dict[str, Any], key: str | int) -> str:
    if not isinstance(key, str) or key not in node:
        raise LookupError("no such field")
    return key


def _list_index(node: list[Any], key: str | int) -> int:
    if not isinstance(key, int) or not 0 <= key < len(node):
        raise LookupError("no such list item")
    return key
