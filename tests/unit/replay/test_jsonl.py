"""A JSON Lines file read a block at a time gives the records and the hash a line-by-line
read gives, wherever the blocks end."""

from __future__ import annotations

import hashlib
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.replay.sources.jsonl import HashedLines, HashedRecords, read_jsonl

# Bytes that matter to line splitting: newlines, carriage returns, other whitespace.
content = st.lists(
    st.sampled_from([b"\n", b"\r", b"\r\n", b" ", b"\t", b"\x0b", b"{}", b"x", b"\xff", b"ab"]),
    max_size=60,
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(content, st.integers(1, 12))
def test_block_reads_give_the_records_and_hash_of_line_reads(data: bytes, block: int) -> None:
    """Same values, offsets and topic as read_jsonl over the file's lines, for any block
    size (lines cut across blocks, longer than a block, a last line without newline)."""
    lines = HashedLines(io.BytesIO(data))
    expected = list(read_jsonl(lines, "in.jsonl"))
    records = HashedRecords(io.BytesIO(data), "in.jsonl", block)
    assert list(records) == expected
    assert records.hexdigest() == lines.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_line_longer_than_many_blocks_is_one_record() -> None:
    """A 100 kB line read 1 kB at a time is one value, then the next line follows."""
    long = b'{"pad":"' + b"x" * 100_000 + b'"}'
    records = list(HashedRecords(io.BytesIO(long + b"\r\n\n{}"), "f", 1024))
    assert [(r.value, r.source.offset) for r in records] == [(long, 0), (b"{}", 2)]
