"""What the engine returns, shaped as the evaluate API answers."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass
class CategoryResult:
    percent: float | None
    score: float | None
    possible: float | None
    dropped: list[str] = field(default_factory=list)
    counted: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "percent": self.percent,
            "score": self.score,
            "possible": self.possible,
            "dropped": self.dropped,
            "counted": self.counted,
            **self.extra,
        }


@dataclass
class GradeResult:
    percent: float | None
    score: float | None
    possible: float | None
    grade: str | None
    passed: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "percent": self.percent,
            "score": self.score,
            "possible": self.possible,
            "grade": self.grade,
            "passed": self.passed,
        }


@dataclass
class LearnerResult:
    learner_id: str
    current: GradeResult
    final: GradeResult
    categories: list[tuple[str, CategoryResult, CategoryResult]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "learner_id": self.learner_id,
            "current": self.current.as_dict(),
            "final": self.final.as_dict(),
            "categories": [
                {"name": name, "current": cur.as_dict(), "final": fin.as_dict()} for name, cur, fin in self.categories
            ],
        }


def scale100(fraction: float) -> float:
    """A fraction as a 0-100 percent, scaled in decimal (0.29 -> 29, not 28.999999999999996)."""
    return float(Decimal(repr(fraction)) * 100)


def half_up(value: Decimal, places: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = max(28, value.adjusted() + places + 2)  # room for every digit kept
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def number(value: Decimal | None) -> float | None:
    """Decimals leave as JSON numbers (their shortest double)."""
    return None if value is None else float(value)


@contextmanager
def many_objects() -> Iterator[None]:
    """Pause the cyclic garbage collector while results are built: a result per learner is millions
    of small objects and no cycles, and the collector would walk them all again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def names_per_row(ids: list[str], mask: npt.NDArray[np.bool_]) -> list[list[str]]:
    """Per row of a [learners, len(ids)] mask, the ids it marks. Learners share a handful of
    patterns, so each is named once (and rows of one pattern share its list: never mutate it)."""
    bits = 1 << np.arange(len(ids), dtype=np.int64) if ids else np.zeros(0, dtype=np.int64)
    codes = mask.astype(np.int64) @ bits
    names = {code: [ids[k] for k in range(len(ids)) if code >> k & 1] for code in np.unique(codes).tolist()}
    return [names[code] for code in codes.tolist()]


def nullable(values: npt.NDArray[np.float64]) -> list[float | None]:
    """An array with NaN for null, as Python values (indexing numpy one element at a time is slow)."""
    return [None if v != v else v for v in values.tolist()]


def patterns(mask: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.intp]]:
    """The distinct rows of a [learners, k] mask, and per row the index of its pattern among them.
    Learners share a handful of patterns, so whatever depends on the pattern alone is computed once
    per pattern; rows are compared as bit codes (a sort of integers) when k allows."""
    if mask.shape[1] <= 62:
        codes = mask.astype(np.int64) @ (1 << np.arange(mask.shape[1], dtype=np.int64))
        _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        return mask[first], inverse.reshape(-1)
    unique, inverse = np.unique(mask, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)
