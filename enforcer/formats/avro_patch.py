"""Emptying fields of an Avro body by patching its bytes (docs/formats.md, "Avro").

In Avro's binary encoding a record is its fields' encodings one after the other, and a
union is its branch's index (a varint) followed by the branch's value. Setting a field
whose type is a union with ``"null"`` to null therefore changes that field's bytes only:
they become the null branch's index. The other fields' bytes stay as they came, so the
body can be cut at the emptied fields' spans instead of being written again.

A span is found by walking the body, over the fields up to the last one emptied, with
a walk generated once per record type (Python source: the common types' bytes skipped
inline, closures for the rest). The source holds numbers and names bound to objects
only, never text from the schema (which comes from a registry). The walk reads a body the way
fastavro's reader does (a negative block count of an array or map is followed by its
size in bytes, which is read and ignored; the items are walked). It handles record
fields reached through records and unions of records only: a location through a list,
or a body the walk does not understand (a union index out of range, a varint longer
than 64 bits, a null where a record was to be descended), raises :class:`PatchError`
and the caller writes the record again with fastavro, which gives the answer it always
gave.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

from enforcer.formats import avro_read

Skip = Callable[[bytes, int], int]
"""The position after the value that starts at the position given."""

Targets = dict[str, Union[bool, "Targets"]]
"""What to empty in a record: a field name to ``True`` (emptied) or to what to empty
inside that field's record."""


class PatchError(Exception):
    """The body or the locations are not a shape the patch handles."""


def read_long(body: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint as fastavro reads it (64 bits at most) and the position after it."""
    try:
        return avro_read.read_long(body, pos)
    except avro_read.NotCommon:
        raise PatchError("varint wider than 64 bits") from None


def _skip_varint(body: bytes, pos: int) -> int:
    # A long's value is not needed to skip it: every byte but the last has its top bit.
    while body[pos] & 0x80:
        pos += 1
    return pos + 1


def _skip_null(body: bytes, pos: int) -> int:
    return pos


def _skip_bytes(body: bytes, pos: int) -> int:
    size, pos = read_long(body, pos)
    if size < 0:
        raise PatchError("negative length")
    return pos + size


def _fixed_width(width: int) -> Skip:
    def skip(body: bytes, pos: int) -> int:
        return pos + width

    return skip


_PRIMITIVES: dict[str, Skip] = {
    "null": _skip_null,
    "boolean": _fixed_width(1),
    "int": _skip_varint,
    "long": _skip_varint,
    "enum": _skip_varint,
    "float": _fixed_width(4),
    "double": _fixed_width(8),
    "bytes": _skip_bytes,
    "string": _skip_bytes,
}


def _blocks(item: Skip, keyed: bool) -> Skip:
    """An array's (or, keyed, a map's) blocks: a count, its items, until a count of 0."""

    def skip(body: bytes, pos: int) -> int:
        count, pos = read_long(body, pos)
        while count:
            if count < 0:
                count = -count
                _, pos = read_long(body, pos)  # the block's size in bytes, unused
            for _ in range(count):
                if keyed:
                    pos = _skip_bytes(body, pos)
                pos = item(body, pos)
            count, pos = read_long(body, pos)
        return pos

    return skip


def _union(branches: Sequence[Skip]) -> Skip:
    def skip(body: bytes, pos: int) -> int:
        index, pos = read_long(body, pos)
        if not 0 <= index < len(branches):
            raise PatchError("union index out of range")
        return branches[index](body, pos)

    return skip


class _Record:
    """One record type: its fields' names, null branches and records (for descending),
    and the generated functions that walk it; filled in after it is made, so a record
    can hold itself."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.nulls: list[bytes | None] = []
        """The bytes of the null branch's index of each field's union, if it has one."""
        self.inner: list[list[_Record | None] | _Record | None] = []
        """Each field's record (a record field), or its union's records by branch."""
        self.starts: Callable[[bytes, int, int], list[int]] = _unfinished
        """Where each field starts, from the first up to ``stop``'s (the last entry
        is where the field before ``stop`` ends)."""
        self.skip_fields: Skip = _unfinished

    def skip(self, body: bytes, pos: int) -> int:
        return self.skip_fields(body, pos)


def _unfinished(*_: object) -> Any:
    raise PatchError("a record used before its walk was made")


class _Compiler:
    """Skip functions by type. A record's walk is generated Python, one straight line
    over its fields with the common types' bytes skipped inline: a walk of closures
    costs a call per field, which is most of what the patch would save."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        self._named = named
        self._records: dict[str, _Record] = {}

    def skip(self, avro_type: Any) -> Skip:
        if isinstance(avro_type, list):
            return _union([self.skip(branch) for branch in avro_type])
        record = self.record(avro_type)
        if record is not None:
            return record.skip
        if isinstance(avro_type, str):
            primitive = _PRIMITIVES.get(avro_type)
            return primitive if primitive else self.skip(self._named[avro_type])
        kind = avro_type["type"]
        if kind in ("array", "map"):
            keyed = kind == "map"
            return _blocks(self.skip(avro_type["values" if keyed else "items"]), keyed=keyed)
        if kind == "fixed":
            return _fixed_width(int(avro_type["size"]))
        # An enum is its index; a logical type (or a primitive written as a dict) is its
        # base type's bytes.
        return _skip_varint if kind == "enum" else self.skip(kind)

    def record(self, avro_type: Any) -> _Record | None:
        """The record ``avro_type`` is or names, else None."""
        if isinstance(avro_type, str):
            if avro_type in _PRIMITIVES or avro_type not in self._named:
                return None
            avro_type = self._named[avro_type]
        if not isinstance(avro_type, dict) or avro_type.get("type") not in ("record", "error"):
            return None
        name = str(avro_type["name"])
        known = self._records.get(name)
        if known is not None:
            return known
        record = self._records[name] = _Record()
        env: dict[str, Any] = {"_bytes": _skip_bytes}
        steps: list[list[str]] = []
        for number, field in enumerate(avro_type["fields"]):
            field_type = field["type"]
            record.index[field["name"]] = number
            lines: list[str] = []
            self._inline(field_type, lines, 1, env)
            steps.append(lines)
            if isinstance(field_type, list):
                null = next((i for i, b in enumerate(field_type) if b == "null"), None)
                record.nulls.append(None if null is None else _zigzag(null))
                record.inner.append([self.record(branch) for branch in field_type])
            else:
                record.nulls.append(None)
                record.inner.append(self.record(field_type))
        starts = ["def starts(b, p, stop):", "    s = [p]"]
        skip = ["def skip_fields(b, p):"]
        for number, lines in enumerate(steps, start=1):
            starts += [*lines, "    s.append(p)", f"    if stop == {number}:", "        return s"]
            skip += lines
        starts.append("    return s")
        skip.append("    return p")
        # Numbers and our own names only: nothing of the schema's text is in the source.
        exec("\n".join(starts) + "\n" + "\n".join(skip), env)  # noqa: S102 - our own text
        record.starts = env["starts"]
        record.skip_fields = env["skip_fields"]
        return record

    def _inline(self, avro_type: Any, lines: list[str], depth: int, env: dict[str, Any]) -> None:
        """Lines that move ``p`` past a value of ``avro_type`` in ``b``."""
        pad = "    " * depth
        kind = self._inline_kind(avro_type)
        if kind == "union":
            lines.append(f"{pad}x = b[p]")
            # Indexes of one byte only (below 64): a byte of 0x80 or more starts a
            # longer varint, which the closure reads.
            for index, branch in enumerate(avro_type[:64]):
                lines.append(f"{pad}{'el' if index else ''}if x == {2 * index}:")
                lines.append(f"{pad}    p += 1")
                self._inline(branch, lines, depth + 1, env)
            name = f"_s{len(env)}"
            env[name] = self.skip(avro_type)  # a longer varint or an index out of range
            lines += [f"{pad}else:", f"{pad}    p = {name}(b, p)"]
        elif kind == "fixed":
            size = int(self._definition(avro_type)["size"])
            lines.append(f"{pad}p += {size}")
        elif kind in _WIDTHS:
            lines.append(f"{pad}p += {_WIDTHS[kind]}" if _WIDTHS[kind] else f"{pad}pass")
        elif kind in ("int", "long", "enum"):
            # Every byte of a varint but the last has its top bit set.
            lines += [f"{pad}while b[p] & 0x80:", f"{pad}    p += 1", f"{pad}p += 1"]
        elif kind in ("array", "map"):
            self._inline_blocks(avro_type, kind == "map", lines, depth, env)
        elif kind in ("string", "bytes"):
            lines += [f"{pad}x = b[p]", f"{pad}if x < 0x80 and not x & 1:"]
            lines += [f"{pad}    p += 1 + (x >> 1)", f"{pad}else:", f"{pad}    p = _bytes(b, p)"]
        else:
            name = f"_s{len(env)}"
            env[name] = self.skip(avro_type)
            lines.append(f"{pad}p = {name}(b, p)")

    def _inline_blocks(
        self, avro_type: Any, keyed: bool, lines: list[str], depth: int, env: dict[str, Any]
    ) -> None:
        """An array's or a map's blocks: those with a one-byte count inline, and from
        the first other block on (a longer or negative count) the closure, which
        starts at any block."""
        pad = "    " * depth
        name = f"_s{len(env)}"
        env[name] = self.skip(avro_type)
        lines += [f"{pad}while True:", f"{pad}    x = b[p]", f"{pad}    if x == 0:"]
        lines += [f"{pad}        p += 1", f"{pad}        break"]
        lines += [f"{pad}    if x >= 0x80 or x & 1:", f"{pad}        p = {name}(b, p)"]
        lines += [f"{pad}        break", f"{pad}    p += 1", f"{pad}    for _ in range(x >> 1):"]
        if keyed:
            self._inline("string", lines, depth + 2, env)
        self._inline(avro_type["values" if keyed else "items"], lines, depth + 2, env)

    def _definition(self, avro_type: Any) -> Any:
        """A named type's definition for its name; any other type as it is."""
        if isinstance(avro_type, str) and avro_type not in _PRIMITIVES:
            return self._named[avro_type]
        return avro_type

    def _inline_kind(self, avro_type: Any) -> str | None:
        """The kind of bytes ``avro_type`` is skipped inline as (a primitive's name,
        ``fixed``, ``enum``, or ``union`` of such), else None (a closure is called)."""
        if isinstance(avro_type, list):
            inlined = all(self._inline_kind(branch) not in (None, "union") for branch in avro_type)
            return "union" if inlined else None
        definition = self._definition(avro_type)
        if isinstance(definition, str):
            return definition
        base = definition.get("type") if isinstance(definition, dict) else None
        return str(base) if base in ("array", "map") or base in _INLINE_BASES else None


_WIDTHS = {"null": 0, "boolean": 1, "float": 4, "double": 8}
_INLINE_BASES = frozenset(
    ("null", "boolean", "int", "long", "float", "double", "bytes", "string", "enum", "fixed")
)


def _zigzag(index: int) -> bytes:
    """A non-negative int as Avro writes it (a union index)."""
    value = index << 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_FlatPlan = tuple[int, tuple[tuple[int, bytes], ...]]
"""Top-level fields only: how many fields to walk, and each emptied field's number and
null bytes, in order."""
_PLANS_KEPT = 256


class AvroPatcher:
    """The patch for one schema whose root is a record."""

    def __init__(self, parsed: Any, named: Mapping[str, Any]) -> None:
        root = _Compiler(named).record(parsed)
        if root is None:
            raise ValueError("the schema's root is not a record")
        self._root = root
        self._plans: dict[tuple[Sequence[str | int], ...], _FlatPlan | None] = {}

    def emptied(
        self,
        body: bytes,
        locations: Sequence[Sequence[str | int]],
        starts: list[int] | None = None,
    ) -> bytes:
        """``body`` with the field at each location set to null. Raises
        :class:`PatchError` for a location through a list or a body the walk does not
        understand (the caller writes the record again instead). ``starts``, where each
        top-level field of ``body`` starts and where the last ends (as the reader found
        them), spares the walk of top-level fields."""
        key = tuple(locations)
        try:
            plan = self._plans[key]
        except KeyError:
            plan = self._flat_plan(key)
        except TypeError:  # a location that is not a tuple
            plan = None
        edits: list[tuple[int, int, bytes]] = []
        try:
            if plan is None:
                end = _walk(self._root, body, 0, _targets(locations), edits, whole=False)
            else:
                if starts is None:
                    starts = self._root.starts(body, 0, plan[0])
                edits = [(starts[number], starts[number + 1], null) for number, null in plan[1]]
                end = starts[-1]
        except IndexError:
            raise PatchError("the walk ran past the body") from None
        if end > len(body):
            raise PatchError("the walk ran past the body")
        pieces: list[bytes] = []
        done = 0
        for start, stop, null in edits:
            pieces.append(body[done:start])
            pieces.append(null)
            done = stop
        pieces.append(body[done:])
        return b"".join(pieces)

    def _flat_plan(self, key: tuple[Sequence[str | int], ...]) -> _FlatPlan | None:
        """The plan of locations that are all top-level fields with a null, else None
        (walked the general way); remembered either way."""
        root = self._root
        numbers: set[int] = set()
        for location in key:
            if len(location) != 1 or location[0] not in root.index:
                numbers = set()
                break
            numbers.add(root.index[str(location[0])])
        nulls = [(number, root.nulls[number]) for number in sorted(numbers)]
        plan: _FlatPlan | None = None
        if nulls and all(null is not None for _, null in nulls):
            plan = (nulls[-1][0] + 1, tuple((n, null) for n, null in nulls if null is not None))
        if len(self._plans) >= _PLANS_KEPT:
            self._plans.clear()
        self._plans[key] = plan
        return plan


def _targets(locations: Sequence[Sequence[str | int]]) -> Targets:
    """The locations as a tree; an emptied field makes anything under it moot, as in
    ``emptied_copy``."""
    tree: Targets = {}
    for location in locations:
        if not location:
            raise PatchError("an empty location")
        node = tree
        for part in location[:-1]:
            if not isinstance(part, str):
                raise PatchError("a location through a list")
            child = node.get(part)
            if child is True:
                break
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        else:
            last = location[-1]
            if not isinstance(last, str):
                raise PatchError("a list item")
            node[last] = True
    return tree


def _walk(
    record: _Record,
    body: bytes,
    pos: int,
    targets: Targets,
    edits: list[tuple[int, int, bytes]],
    *,
    whole: bool,
) -> int:
    """Walk ``record``'s fields from ``pos``, noting the spans to replace; the position
    after the last field walked (every field when ``whole``, else the last target)."""
    try:
        wanted = sorted((record.index[name], what) for name, what in targets.items())
    except KeyError:
        raise PatchError("no such field") from None
    starts = record.starts(body, pos, len(record.nulls) if whole else wanted[-1][0] + 1)
    for target, what in wanted:
        if what is True:
            null = record.nulls[target]
            if null is None:
                raise PatchError("the field's type has no null")
            edits.append((starts[target], starts[target + 1], null))
            continue
        assert isinstance(what, dict)
        inner = record.inner[target]
        at = starts[target]
        if isinstance(inner, list):
            index, at = read_long(body, at)
            if not 0 <= index < len(inner):
                raise PatchError("union index out of range")
            inner = inner[index]
        if inner is None:
            raise PatchError("no record to descend into")
        if _walk(inner, body, at, what, edits, whole=True) != starts[target + 1]:
            raise PatchError("the record's walk and its field's disagree")
    return starts[-1]
