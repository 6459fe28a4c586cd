"""Exposure's subjects on disk, for more than memory holds (docs/exposure.md, "Stores").

One partition's subjects in RocksDB: key = the subject key's bytes, value = its blob of
55-byte slots, exactly what :class:`~enforcer.exposure.state.MemoryTable` keeps; the
state's small tables (sinks, types, key ids, purpose sets, policy versions) stay in
memory. Like the ledger's disk store it is a working copy, never a source of truth: a
worker restores exposure from its topic at every assignment, so a table starts empty
(its directory wiped on open) and :meth:`DiskTable.close` removes it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import cast

from enforcer.ledger.disk import MiB, open_working_copy

STORE = "disk exposure store"
"""How messages name this store."""


class DiskTable:
    """One partition's subjects in RocksDB under ``path``; starts empty."""

    __slots__ = ("_closed", "_count", "_db", "_path")

    def __init__(
        self, path: Path, *, cache_bytes: int = 32 * MiB, write_buffer_bytes: int = 16 * MiB
    ) -> None:
        self._path = path
        self._db = open_working_copy(
            path, STORE, cache_bytes=cache_bytes, write_buffer_bytes=write_buffer_bytes
        )
        self._count = 0
        self._closed = False

    @property
    def path(self) -> Path:
        """The table's directory."""
        return self._path

    def get(self, key: bytes) -> bytes | None:
        """The subject's blob, or ``None``."""
        return cast("bytes | None", self._db.get(key))

    def __setitem__(self, key: bytes, blob: bytes) -> None:
        if self._db.get(key) is None:
            self._count += 1
        self._db[key] = blob

    def __delitem__(self, key: bytes) -> None:
        if self._db.get(key) is not None:
            self._count -= 1
            del self._db[key]

    def __iter__(self) -> Iterator[bytes]:
        return cast(Iterator[bytes], iter(self._db.keys()))

    def __len__(self) -> int:
        return self._count

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        """Every (subject key, blob)."""
        return cast(Iterable[tuple[bytes, bytes]], self._db.items())

    def close(self) -> None:
        """Close the database and remove its directory. Safe to call twice; a
        directory already gone, or one that cannot be removed, is left as it is (the
        next open of a store there wipes it)."""
        if self._closed:
            return
        self._closed = True
        self._db.close()
        shutil.rmtree(self._path, ignore_errors=True)
