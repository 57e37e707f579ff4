"""The `standard` preset: Gradeflow's own semantics (docs/grading.md), vectorised over learners.

Sums and ratios run in float64 across all learners at once; a learner whose percent lands within
1e-6 of a rounding tie is recomputed in exact fractions, so every rounded result equals exact
decimal arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from gradeflow.grading import letters
from gradeflow.grading.policy import Category, Cutoff, Policy
from gradeflow.grading.results import (
    CategoryResult,
    GradeResult,
    LearnerResult,
    half_up,
    many_objects,
    names_per_row,
    patterns,
)
from gradeflow.grading.sheet import EXCUSED, F64, GRADED, Sheet

B = npt.NDArray[np.bool_]


class _Category:
    """One category for one version (current or final): kept masks and totals per learner."""

    def __init__(self, category: Category, sheet: Sheet, final: bool) -> None:
        cols = [j for j in sheet.columns(category.name) if not sheet.omit[j]]
        self.cols = cols
        state = sheet.state[:, cols]
        present = state == GRADED if not final else state != EXCUSED
        e = np.where(state == GRADED, sheet.earned[:, cols], 0.0)
        t = sheet.possible[:, cols]
        n_l = len(sheet.learner_ids)
        # Final grade: fewer assessments than min_count are made up with zeros worth the mean points.
        n_place = category.min_count if final else 0
        if n_place:
            mean_t = float(np.mean(t[0])) if cols else 0.0
            fill = np.maximum(category.min_count - present.sum(axis=1), 0)
            slot = np.arange(n_place)[None, :] < fill[:, None]
            present = np.hstack([present, slot])
            e = np.hstack([e, np.zeros((n_l, n_place))])
            t = np.hstack([t, np.full((n_l, n_place), mean_t)])
        never = np.array([sheet.assessment_ids[j] in category.never_drop for j in cols] + [False] * n_place, dtype=bool)
        self.present = present
        self.e, self.t = e, t
        self.kept = _drops(e, t, present, never, category.drop_lowest, category.drop_highest)
        self.score = np.where(self.kept, e, 0.0).sum(axis=1)
        self.possible = np.where(self.kept, t, 0.0).sum(axis=1)


def _drops(e: F64, t: F64, present: B, never: B, drop_lowest: int, drop_highest: int) -> B:
    fixed = present & never[None, :]
    droppable = present & ~never[None, :]
    if not (drop_lowest or drop_highest):
        return present.copy()
    n = droppable.sum(axis=1)
    d_low = np.minimum(drop_lowest, np.maximum(n - 1, 0))
    d_high = np.minimum(drop_highest, np.maximum(n - 1 - d_low, 0))
    keep_high = _best(e, t, droppable, fixed, n - d_low, maximise=True)
    keep_low = _best(e, t, keep_high, fixed, n - d_low - d_high, maximise=False)
    return keep_low | fixed


def _best(e: F64, t: F64, candidates: B, fixed: B, keep: npt.NDArray[np.int64], maximise: bool) -> B:
    """Per row, the `keep` candidates maximising (minimising) the kept ratio, by Dinkelbach iterations.

    Only rows with more candidates than places are searched, and each iteration only revisits the
    rows whose ratio still improved.
    """
    chosen = candidates.copy()
    rows = np.nonzero(candidates.sum(axis=1) > keep)[0]
    if rows.size == 0:
        return chosen
    sign = 1.0 if maximise else -1.0
    e, t, cand, keep = e[rows], t[rows], candidates[rows], keep[rows]
    s_fixed = np.where(fixed[rows], e, 0.0).sum(axis=1)
    t_fixed = np.where(fixed[rows], t, 0.0).sum(axis=1)

    def top(idx: npt.NDArray[np.intp], q: F64) -> B:
        c = cand[idx]
        value = np.where(c, sign * (e[idx] - q[:, None] * t[idx]), -np.inf)
        order = np.argsort(-value, axis=1, kind="stable")  # ties: earlier assessment first
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.broadcast_to(np.arange(order.shape[1]), order.shape), axis=1)
        return c & (rank < keep[idx, None])

    def ratio(idx: npt.NDArray[np.intp], sel: B) -> F64:
        num = np.where(sel, e[idx], 0.0).sum(axis=1) + s_fixed[idx]
        den = np.where(sel, t[idx], 0.0).sum(axis=1) + t_fixed[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 0.0))

    active = np.arange(rows.size)
    sel = top(active, np.zeros(rows.size))
    chosen[rows] = sel
    q = ratio(active, sel)
    for _ in range(50):
        finite = np.isfinite(q)  # an infinite ratio (points on zero possible) cannot improve
        active, q = active[finite], q[finite]
        if active.size == 0:
            break
        nxt = top(active, q)  # at least as good as the current set; at the optimum it settles ties
        chosen[rows[active]] = nxt
        q_next = ratio(active, nxt)
        improve = sign * (q_next - q) > 1e-12
        active, q = active[improve], q_next[improve]
    return chosen


class Version:
    """Course results of every learner for one version (current or final), as arrays."""

    def __init__(self, policy: Policy, sheet: Sheet, final: bool) -> None:
        n_l = len(sheet.learner_ids)
        self.cats = [_Category(c, sheet, final) for c in policy.categories]
        self.fraction, self.score, self.possible = _course(policy, self.cats, n_l)
        self.percent = _rounded_percent(policy, self.cats, self.fraction)
        self.letter = letters.letter_index(self.percent, policy.cutoffs, letters.exact_percent)
        mark = policy.pass_mark()
        self.passed = None if mark is None else self.percent >= letters.exact_percent(mark)


def evaluate(policy: Policy, sheet: Sheet) -> tuple[Version, Version]:
    """The bulk path: current and final results for all learners, no per-learner objects."""
    return Version(policy, sheet, final=False), Version(policy, sheet, final=True)


def grade(policy: Policy, sheet: Sheet) -> list[LearnerResult]:
    current, final = evaluate(policy, sheet)
    columns = [
        (_CategoryColumns(c, sheet), _CategoryColumns(f, sheet)) for c, f in zip(current.cats, final.cats, strict=True)
    ]
    ordered = letters.high_first(policy.cutoffs)
    results = []
    with many_objects():
        for i, learner_id in enumerate(sheet.learner_ids):
            cats = [(c.name, cur.at(i), fin.at(i)) for c, (cur, fin) in zip(policy.categories, columns, strict=True)]
            grades = _grade(policy, ordered, current, i), _grade(policy, ordered, final, i)
            results.append(LearnerResult(learner_id, *grades, cats))
    return results


def _course(policy: Policy, cats: list[_Category], n_l: int) -> tuple[F64, F64, F64]:
    """Per learner: the course fraction (NaN when nothing counts), its score and its possible."""
    if policy.weighting == "points":
        score = sum((c.score for c in cats), np.zeros(n_l))
        possible = sum((c.possible for c in cats), np.zeros(n_l))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(possible > 0, score / possible, np.nan), score, possible
    counts = np.stack([c.possible > 0 for c in cats], axis=1) if cats else np.zeros((n_l, 0), dtype=bool)
    applied = _applied_per_learner(policy, counts)
    weighted = np.zeros(n_l)
    for k, c in enumerate(cats):
        with np.errstate(divide="ignore", invalid="ignore"):
            weighted += np.where(counts[:, k], applied[:, k] * c.score / np.where(counts[:, k], c.possible, 1.0), 0.0)
    weighs = (counts & (np.array([c.weight for c in policy.categories]) > 0)[None, :]).any(axis=1)
    fraction = np.where(weighs, weighted, np.nan)
    return fraction, fraction * 100, np.where(weighs, 100.0, np.nan)


def applied_weights(policy: Policy, counts: Sequence[bool]) -> list[float | None]:
    """The weight each category's percent gets in the course percent (step 5): the policy's weight
    renormalised, in exact decimals, over the categories that count (have points possible); 0 for
    the others and when no counting category has weight; None with points weighting."""
    if policy.weighting == "points":
        return [None] * len(policy.categories)
    # Through Decimal, whose division rounds the exact quotient once (as float() of a Decimal does next).
    return [float(Decimal(w.numerator) / Decimal(w.denominator)) for w in _exact_weights(policy, counts)]


def _exact_weights(policy: Policy, counts: Sequence[bool]) -> list[Fraction]:
    """applied_weights as exact fractions: the one renormalisation rule, for the near-tie path too."""
    weights = [Fraction(Decimal(repr(c.weight))) for c in policy.categories]
    total = sum((w for w, on in zip(weights, counts, strict=True) if on), Fraction(0))
    return [w / total if on and total else Fraction(0) for w, on in zip(weights, counts, strict=True)]


def _applied_per_learner(policy: Policy, counts: B) -> F64:
    """`applied_weights` per learner, computed once per pattern of counting categories."""
    if 0 in counts.shape:  # no category, or no learner
        return np.zeros(counts.shape)
    unique, inverse = patterns(counts)
    applied = np.array([applied_weights(policy, row.tolist()) for row in unique], dtype=np.float64)
    return applied[inverse]


def _rounded_percent(policy: Policy, cats: list[_Category], fraction: F64) -> F64:
    """Half-up to `decimals` on the 0-100 scale; learners near a tie are redone in exact fractions."""
    unit = 10.0**policy.decimals
    scaled = fraction * 100 * unit
    percent = np.floor(scaled + 0.5) / unit
    near_tie = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
    for i in np.nonzero(near_tie)[0]:
        exact = _exact_fraction(policy, cats, int(i))
        value = Decimal(exact.numerator * 100) / Decimal(exact.denominator)
        percent[i] = float(half_up(value, policy.decimals))
    return percent


def _grade(policy: Policy, ordered: list[Cutoff], v: Version, i: int) -> GradeResult:
    if v.fraction[i] != v.fraction[i]:  # NaN: nothing counts yet
        return GradeResult(None, None, None, None, None)
    letter = ordered[v.letter[i]].grade if v.letter[i] >= 0 else None
    passed = None if v.passed is None else bool(v.passed[i])
    percent = float(v.percent[i])
    if policy.weighting == "points":
        return GradeResult(percent, _round6(v.score[i]), _round6(v.possible[i]), letter, passed)
    return GradeResult(percent, percent, 100.0, letter, passed)


def _exact_fraction(policy: Policy, cats: list[_Category], i: int) -> Fraction:
    def f(x: float) -> Fraction:
        return Fraction(Decimal(repr(float(x))))

    totals = [
        (
            sum((f(c.e[i, k]) for k in np.nonzero(c.kept[i])[0]), Fraction(0)),
            sum((f(c.t[i, k]) for k in np.nonzero(c.kept[i])[0]), Fraction(0)),
        )
        for c in cats
    ]
    if policy.weighting == "points":
        return sum((s for s, _ in totals), Fraction(0)) / sum((p for _, p in totals), Fraction(0))
    weights = _exact_weights(policy, [p > 0 for _, p in totals])
    return sum((w * s / p for w, (s, p) in zip(weights, totals, strict=True) if p > 0), Fraction(0))


def _round6(x: float) -> float:
    return float(round(Decimal(repr(float(x))), 6))


class _CategoryColumns:
    """One category's per-learner outputs as arrays, so building each learner's result is lookups.

    Kept and dropped sets are named once per pattern (learners share a handful).
    """

    def __init__(self, c: _Category, sheet: Sheet) -> None:
        ids = [sheet.assessment_ids[j] for j in c.cols]
        n = len(ids)
        self.kept = names_per_row(ids, c.kept[:, :n])
        self.dropped = names_per_row(ids, c.present[:, :n] & ~c.kept[:, :n])
        counts = c.possible > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.where(counts, c.score / np.where(counts, c.possible, 1.0), np.nan) * 100 * 100
        self.percent = np.floor(scaled + 0.5) / 100
        for i in np.nonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)[0]:
            exact = Fraction(Decimal(repr(float(c.score[i])))) / Fraction(Decimal(repr(float(c.possible[i]))))
            self.percent[i] = float(half_up(Decimal(exact.numerator * 100) / Decimal(exact.denominator), 2))
        self.score = np.round(c.score, 6)
        self.possible = np.round(c.possible, 6)
        self.placeholders = c.kept[:, n:].sum(axis=1)  # min_count zeros that were counted

    def at(self, i: int) -> CategoryResult:
        percent = self.percent[i]
        return CategoryResult(
            percent=None if percent != percent else float(percent),
            score=float(self.score[i]),
            possible=float(self.possible[i]),
            dropped=self.dropped[i],
            counted=self.kept[i],
            extra={"placeholders": int(self.placeholders[i])},
        )
