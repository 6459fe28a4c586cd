"""Counts written for people: ``1 record``, ``2 records``."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` with thousands separators and ``noun``, in the plural (``plural``, else
    ``noun`` + ``s``) unless ``n`` is one."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
