"""The `openedx` preset: Open edX's grader, bit for bit (IEEE doubles in Open edX's order).

Per assignment percent rounded half-even to 4 decimals on the double (numpy.around); per category
min_count placeholders of 0, drop the lowest percents (ties: later slots first), average over
slots - drops (0 when nothing is left); course total = sum of average * weight in policy order,
unnormalised; final percent = round_away_from_zero(raw * 100 + 0.05) / 100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gradeflow.grading import letters
from gradeflow.grading.policy import Policy
from gradeflow.grading.results import CategoryResult, GradeResult, LearnerResult, scale100
from gradeflow.grading.sheet import F64, GRADED, MISSING, UNGRADED, Sheet


def grade(policy: Policy, sheet: Sheet) -> list[LearnerResult]:
    n = len(sheet.learner_ids)
    raw = np.zeros(n)
    per_category = []
    # A subsection counts when its possible is > 0; not attempted (no row, or not graded yet) is 0.
    attempted = np.isin(sheet.state, (GRADED, UNGRADED, MISSING))
    earned = np.where(sheet.state == GRADED, sheet.earned, 0.0)
    valid_all = attempted & (sheet.possible > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct_all = np.where(valid_all, np.around(earned / np.where(valid_all, sheet.possible, 1.0), 4), 0.0)

    for category in policy.categories:
        cols = sheet.columns(category.name)
        slots = _category(pct_all[:, cols], valid_all[:, cols], category.min_count, category.drop_lowest)
        raw = raw + slots.average * category.weight
        per_category.append((category.name, cols, slots))

    # round_away_from_zero(raw * 100 + 0.05) / 100, operation by operation as Open edX does it
    percent = np.floor((raw * 100 + 0.05) * 1.0 + 0.5) / 1.0 / 100
    # the first cutoff (highest first) the rounded percent reaches, compared as fractions
    grades = letters.names(letters.letter_index(percent, policy.cutoffs, letters.fraction), policy.cutoffs)
    pass_mark = policy.pass_mark()
    results = []
    for i, learner_id in enumerate(sheet.learner_ids):
        p = float(percent[i])
        letter = grades[i]
        passed = None if pass_mark is None else p >= pass_mark
        grade_result = GradeResult(scale100(p), scale100(p), 100.0, letter, passed)
        categories = []
        for name, cols, slots in per_category:
            ids = [sheet.assessment_ids[cols[j]] for j in slots.order[i] if j >= 0]
            counted = [a for a, k in zip(ids, slots.kept[i], strict=False) if k]
            dropped_ids = [a for a, d in zip(ids, slots.dropped[i], strict=False) if d]
            e = float(earned[i, cols][valid_all[i, cols]].sum())
            t = float(sheet.possible[i, cols][valid_all[i, cols]].sum())
            extra = {"placeholders": int(slots.placeholders[i])}
            result = CategoryResult(scale100(float(slots.average[i])), e, t, dropped_ids, counted, extra)
            categories.append((name, result, result))
        results.append(LearnerResult(learner_id, grade_result, grade_result, categories))
    return results


def applied_weights(policy: Policy, counts: Sequence[bool]) -> list[float | None]:
    """The weight each category's average gets in the course total: the policy's own, never
    normalised (Open edX sums average x weight); None with points weighting."""
    del counts  # every category weighs, whatever it holds
    if policy.weighting == "points":
        return [None] * len(policy.categories)
    return [c.weight for c in policy.categories]


@dataclass
class Slots:
    """One category for every learner: the average, and per slot its source column (-1 for a
    placeholder), whether it was kept or dropped; and how many placeholders were added."""

    average: F64
    order: npt.NDArray[np.int64]
    kept: npt.NDArray[np.bool_]
    dropped: npt.NDArray[np.bool_]
    placeholders: npt.NDArray[np.int64]


def _category(pct: F64, valid: npt.NDArray[np.bool_], min_count: int, drop_count: int) -> Slots:
    n_l, n_c = pct.shape
    width = max(min_count, n_c, 1)
    n_real = valid.sum(axis=1)
    slots = np.maximum(min_count, n_real)
    # Real scores fill the first slots in course order; placeholders (0.0) follow.
    left = np.argsort(~valid, axis=1, kind="stable")
    order = np.full((n_l, width), -1, dtype=np.int64)
    values = np.zeros((n_l, width))
    if n_c:
        real_slot = np.arange(n_c)[None, :] < n_real[:, None]
        order[:, :n_c] = np.where(real_slot, left, -1)
        values[:, :n_c] = np.where(real_slot, np.take_along_axis(pct, left, axis=1), 0.0)
    exists = np.arange(width)[None, :] < slots[:, None]
    # Stable sort by -percent; the last drop_count existing slots are dropped.
    key = np.where(exists, -values, np.inf)
    rank = np.empty_like(order)
    np.put_along_axis(rank, np.argsort(key, axis=1, kind="stable"), np.arange(width)[None, :].repeat(n_l, 0), axis=1)
    dropped = exists & (rank >= (slots - drop_count)[:, None])
    kept = exists & ~dropped
    total = np.zeros(n_l)
    for k in range(width):  # in slot order, as Open edX sums
        total = total + np.where(kept[:, k], values[:, k], 0.0)
    divisor = slots - drop_count
    with np.errstate(divide="ignore", invalid="ignore"):
        average = np.where(divisor > 0, total / np.where(divisor > 0, divisor, 1), 0.0)
    return Slots(average, order, kept, dropped, slots - n_real)
