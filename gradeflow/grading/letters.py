"""The letter for a percent: the first cutoff, highest first, whose floor the percent reaches.

One rule for every preset and for the reports; what differs between presets is passed in:
- `floor`: a cutoff's `min` (a fraction) as the number the percent is compared with, on the
  percent's own scale and with the preset's own rounding (`exact_percent` for `standard`, `fraction`
  for `openedx` and the reports' fractions, Canvas's `toPrecision(4)` in `canvas_reference.py`);
- `last_below`: what a percent below every floor gets: no letter, or (Canvas) the last row.
The percent itself arrives already rounded the preset's way. NaN and None get no letter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt


class HasMin(Protocol):
    @property
    def grade(self) -> str: ...

    @property
    def min(self) -> float: ...


C = TypeVar("C", bound=HasMin)
Floor = Callable[[float], float]


def high_first(cutoffs: Iterable[C]) -> list[C]:
    """The cutoffs from the highest minimum down; equal minimums keep their listed order (a policy
    lists them so already, and this is the one place that sorts them)."""
    return sorted(cutoffs, key=lambda c: -c.min)


def fraction(minimum: float) -> float:
    """The cutoff as it is written: for percents given as fractions (Open edX compares so)."""
    return minimum


def exact_percent(minimum: float) -> float:
    """The cutoff on the 0-100 scale, scaled in decimal (0.29 -> 29.0, not 28.999999999999996)."""
    return float(Decimal(repr(minimum)) * 100)


def floors(cutoffs: Iterable[HasMin], floor: Floor) -> list[float]:
    """Each cutoff's floor, highest cutoff first."""
    return [floor(c.min) for c in high_first(cutoffs)]


def letter(percent: float | None, cutoffs: Sequence[HasMin], floor: Floor, last_below: bool = False) -> str | None:
    """The letter of one percent (see the module)."""
    ordered = high_first(cutoffs)
    if percent is None or percent != percent or not ordered:
        return None
    for cutoff in ordered:
        if percent >= floor(cutoff.min):
            return cutoff.grade
    return ordered[-1].grade if last_below else None


def letter_index(
    percent: npt.NDArray[np.float64], cutoffs: Sequence[HasMin], floor: Floor, last_below: bool = False
) -> npt.NDArray[np.int64]:
    """`letter` for many percents at once: per percent the index of its cutoff in
    `high_first(cutoffs)`, -1 for no letter."""
    index = np.full(len(percent), -1, dtype=np.int64)
    bounds = floors(cutoffs, floor)
    if not bounds:
        return index
    known = ~np.isnan(percent)
    if last_below:
        index = np.where(known, len(bounds) - 1, index)
    for k in range(len(bounds) - 1, -1, -1):  # the first cutoff reached wins
        index = np.where(known & (percent >= bounds[k]), k, index)
    return index


def names(index: npt.NDArray[np.int64], cutoffs: Sequence[HasMin]) -> list[str | None]:
    """The letters of `letter_index`'s answer."""
    ordered = [c.grade for c in high_first(cutoffs)]
    return [ordered[k] if k >= 0 else None for k in index.tolist()]
