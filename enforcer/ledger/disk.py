"""The materialized ledger on disk, for more identifiers than memory holds.

Same layout, logic and results as the memory store (:class:`SlotLedger`): each
subject's blob of 40-byte slots is one RocksDB value keyed by the subject's 16-byte
digest; the interned type and purpose-set tables (a few entries) stay in memory.

The store is a working copy, never a source of truth: a worker restores its ledger
partitions from the topic each time it is given them, so :class:`DiskLedgerState`
starts empty (it wipes its directory on open) and :meth:`~DiskLedgerState.close`
removes the directory. Hence RocksDB is tuned for a rebuildable state written in bulk
and then read by key: no write-ahead log, no compression (MACs and digests are random
bytes), bloom filters and hash-indexed data blocks for point lookups.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from rocksdict import (
    BlockBasedOptions,
    Cache,
    DataBlockIndexType,
    DBCompressionType,
    Options,
    Rdict,
    WriteOptions,
)

from enforcer.ledger.slots import SlotLedger

MiB = 1024 * 1024
MARKER = ".enforcer-ledger"
"""The file that marks a directory as a disk ledger's, so opening one may wipe it."""


def _options(cache_bytes: int, write_buffer_bytes: int) -> Options:
    table = BlockBasedOptions()
    table.set_block_cache(Cache(cache_bytes))
    table.set_bloom_filter(10, False)  # ~1% false positives: most restore gets miss
    table.set_data_block_index_type(DataBlockIndexType.binary_and_hash())
    table.set_data_block_hash_ratio(0.75)
    table.set_format_version(5)
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_block_based_table_factory(table)
    options.set_compression_type(DBCompressionType.none())
    options.set_write_buffer_size(write_buffer_bytes)
    options.set_memtable_whole_key_filtering(True)  # a bloom filter in the memtable too
    options.set_memtable_prefix_bloom_ratio(0.1)
    options.set_max_write_buffer_number(3)
    options.set_target_file_size_base(64 * MiB)
    options.set_max_bytes_for_level_base(256 * MiB)
    options.set_level_compaction_dynamic_level_bytes(True)
    options.set_max_background_jobs(2)
    options.set_bytes_per_sync(MiB)
    options.set_keep_log_file_num(2)
    options.set_optimize_filters_for_hits(False)  # misses are the common case in restore
    return options


class DiskStoreError(RuntimeError):
    """The disk store cannot use its directory; the message is one line naming the
    path, why, and what to do."""


REMEDY = "set --data-dir (ENFORCER_DATA_DIR) to another directory"


def check_store_dir(path: Path, store: str = "disk ledger store") -> None:
    """Raise :class:`DiskStoreError` unless opening a store at ``path`` may wipe it: it is
    missing, empty, or a disk store's working copy (it holds :data:`MARKER`). ``store``
    names it in the message."""
    try:
        if not path.exists():
            return
        if not path.is_dir():
            raise DiskStoreError(
                f"cannot use {path} for the {store}: it is not a directory; "
                f"move it away, or {REMEDY}"
            )
        if any(path.iterdir()) and not (path / MARKER).exists():
            raise DiskStoreError(
                f"cannot use {path} for the {store}: it is not empty and holds no "
                f"{MARKER} file, so it is not a {store.removesuffix(' store')}'s working copy; "
                "move its contents "
                f"away, or {REMEDY}"
            )
    except OSError as exc:
        raise _os_failure(path, exc, store) from None


def _wipe(path: Path, store: str) -> None:
    """Empty ``path`` for a new store, refusing a directory that is not one."""
    check_store_dir(path, store)
    try:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        (path / MARKER).write_text("a disk ledger's working copy: removed on open and close\n")
    except OSError as exc:
        raise _os_failure(path, exc, store) from None


def _os_failure(path: Path, exc: OSError, store: str) -> DiskStoreError:
    return DiskStoreError(
        f"cannot use {path} for the {store}: {exc.strerror or type(exc).__name__}; {REMEDY}"
    )


def open_working_copy(
    path: Path, store: str, *, cache_bytes: int, write_buffer_bytes: int
) -> Rdict:
    """A RocksDB under ``path`` for a state rebuilt by every restore: ``path`` wiped
    first (refused unless it is a working copy, :func:`check_store_dir`), no
    write-ahead log. Raises :class:`DiskStoreError` naming ``store``."""
    _wipe(path, store)
    db = Rdict(str(path / "rocksdb"), _options(cache_bytes, write_buffer_bytes))
    write = WriteOptions()
    # Rebuilt by restore at every start: nothing to recover. (A property at run time;
    # rocksdict's stub declares it a method.)
    write.disable_wal = True  # type: ignore[method-assign,assignment]
    db.set_write_options(write)
    return db


class DiskLedgerState(SlotLedger):
    """The ledger's current grants, for the partitions one worker holds, in RocksDB
    under ``path``. Starts empty; :meth:`close` removes ``path``.

    Memory: about ``cache_bytes`` + up to 3 x ``write_buffer_bytes`` + the bloom filters
    and indexes of the files (about 2 bytes per subject), per store."""

    __slots__ = ("_db", "_path")

    def __init__(
        self, path: Path, *, cache_bytes: int = 64 * MiB, write_buffer_bytes: int = 32 * MiB
    ) -> None:
        self._path = path
        self._db = open_working_copy(
            path,
            "disk ledger store",
            cache_bytes=cache_bytes,
            write_buffer_bytes=write_buffer_bytes,
        )
        super().__init__(self._db)

    @property
    def path(self) -> Path:
        """The store's directory."""
        return self._path

    def flush(self) -> None:
        """Write the memtables out to files (for measuring size, or tests reading them)."""
        self._db.flush(wait=True)

    def disk_bytes(self) -> int:
        """The bytes the store's files take on disk."""
        return sum(f.stat().st_size for f in self._path.rglob("*") if f.is_file())

    def close(self) -> None:
        """Close the database and remove its directory. Safe to call twice."""
        if self._path.exists():
            self._db.close()
            shutil.rmtree(self._path)

    def _stored(self) -> Iterator[tuple[bytes, bytes]]:
        return cast(Iterator[tuple[bytes, bytes]], iter(self._db.items()))

    def __enter__(self) -> DiskLedgerState:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
