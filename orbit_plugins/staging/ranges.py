"""Byte-range arithmetic of staging, one copy for both sides.

The endpoint keeps the confirmed ranges of an upload (:func:`add_range`) and checks them
at commit (:func:`missing_ranges`); the client keeps the confirmed ranges of a download,
and cuts what is still missing, of either, into chunks (:func:`chunks`). A range is
``(start, end)``, half-open ``[start, end)``; a list of them is sorted and merged.
"""

from __future__ import annotations

from collections.abc import Iterator

from .schema import Range


def add_range(ranges: list[Range], start: int, end: int) -> list[Range]:
    """``ranges`` plus ``[start, end)``, merged and sorted."""
    merged: list[Range] = []
    for lo, hi in sorted([*ranges, (start, end)]):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def missing_ranges(ranges: list[Range], size: int) -> list[Range]:
    """The parts of ``[0, size)`` not covered by the merged ``ranges``."""
    gaps: list[Range] = []
    pos = 0
    for lo, hi in ranges:
        if lo > pos:
            gaps.append((pos, lo))
        pos = max(pos, hi)
    if pos < size:
        gaps.append((pos, size))
    return gaps


def covered(ranges: list[Range]) -> int:
    """Bytes in the merged ``ranges``."""
    return sum(hi - lo for lo, hi in ranges)


def chunks(gaps: list[Range], size: int) -> Iterator[Range]:
    """``(offset, length)`` pieces of at most ``size`` bytes covering ``gaps``."""
    for lo, hi in gaps:
        for offset in range(lo, hi, size):
            yield offset, min(size, hi - offset)


__all__ = ["Range", "add_range", "chunks", "covered", "missing_ranges"]
