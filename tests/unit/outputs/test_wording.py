"""Counts written for people."""

from __future__ import annotations

from enforcer.outputs.wording import counted


def test_one_is_singular_and_every_other_count_plural() -> None:
    assert counted(1, "record") == "1 record"
    assert counted(0, "record") == "0 records"
    assert counted(2, "account") == "2 accounts"
    assert counted(12_345, "violation") == "12,345 violations"
    assert counted(3, "entry", "entries") == "3 entries"
    assert counted(1, "entry", "entries") == "1 entry"
