"""The `canvas` preset over all learners at once, with the reference (`canvas_reference.py`) for
every learner this path cannot decide with certainty.

Why it can be exact:
- Scores and points possible are short decimals (at most 6 places, checked cell by cell), so as
  integers scaled by 10**places every Big.js sum is an integer sum, and every display percent an
  integer division.
- Canvas's drop search is a bisection whose every step asks only whether F(mid) < 0, and F is
  strictly decreasing through 0 at the exact optimum q* when every kept set has points possible.
  So the bisection's path follows from comparing each midpoint with q* (found exactly with
  Dinkelbach's method on the integers); only the kept set at the last midpoint needs Canvas's own
  float ranking. A midpoint too close to q* for Canvas's float sums to be sure of the sign, ratios
  whose JavaScript string order is not their numeric order (negative, from 10, below 1e-6), groups
  where a kept set could be worth 0 of 0 points, a course score within a hair of a rounding tie,
  and numbers too large for the integer path go to the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from shared.grading import canvas_reference as reference
from shared.grading.canvas_drops import Entry, canvas_f, caps
from shared.grading.js_numbers import EXACT, big, big_sum
from shared.grading.policy import Category, Policy
from shared.grading.results import CategoryResult, GradeResult, LearnerResult, many_objects, names_per_row, nullable
from shared.grading.sheet import EXCUSED, F64, GRADED, MISSING, Sheet

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
MAX_PLACES = 6
EXACT_LIMIT = 2**45  # sums below it are exact in a double, and their percents exact in int64
GUARD = 2.0**62
EPS = 2.0**-52


@dataclass
class Group:
    """One group for one version, per learner: what counted and its totals."""

    present: B
    droppable: B
    kept: B
    score_units: I64  # scaled by 10**places
    possible_units: I64
    submission_count: I64
    percent: F64  # display percent, NaN without points possible


@dataclass
class Version:
    """Course results per learner for current or final: NaN where Canvas has null."""

    groups: list[Group]
    percent: F64
    score: F64
    possible: F64
    letter: I64  # index into the policy's cutoffs, -1 for none
    passed: B | None


@dataclass
class Bulk:
    current: Version
    final: Version
    places: int
    fallback: B  # learners the reference grades
    columns: list[list[int]] = field(default_factory=list)


def grade(policy: Policy, sheet: Sheet) -> list[LearnerResult]:
    bulk = evaluate(policy, sheet)
    rows = np.nonzero(bulk.fallback)[0].tolist()
    exact = dict(zip(rows, reference.reference_grade(policy, sheet, rows), strict=True))
    names = [
        (_Names(sheet, cols, cur, bulk.places), _Names(sheet, cols, fin, bulk.places))
        for cols, cur, fin in zip(bulk.columns, bulk.current.groups, bulk.final.groups, strict=True)
    ]
    with many_objects():
        current, final = _results(policy, bulk.current), _results(policy, bulk.final)
        results = []
        for i, learner_id in enumerate(sheet.learner_ids):
            if i in exact:
                results.append(exact[i])
                continue
            categories = [
                (c.name, cur.at(i), fin.at(i)) for c, (cur, fin) in zip(policy.categories, names, strict=True)
            ]
            results.append(LearnerResult(learner_id, current[i], final[i], categories))
    return results


def evaluate(policy: Policy, sheet: Sheet) -> Bulk:
    """Both versions for every learner the integer path can decide; `fallback` marks the others
    (their entries in the arrays are not meaningful)."""
    columns = [[j for j in sheet.columns(c.name) if not sheet.omit[j]] for c in policy.categories]
    state = sheet.state
    counts = (state != MISSING) & (state != EXCUSED)
    clean = np.nan_to_num  # parseScore: what is not a finite number counts as 0
    earned = np.where(state == GRADED, clean(sheet.earned, nan=0.0, posinf=0.0, neginf=0.0), 0.0) + 0.0
    possible = clean(sheet.possible, nan=0.0, posinf=0.0, neginf=0.0) + 0.0  # + 0.0: no -0
    used = np.zeros_like(counts)
    used[:, [j for cols in columns for j in cols]] = True
    used &= counts
    places = _places(np.concatenate([earned[used], possible[used]]))
    cells, exact = _cells(earned, possible, places)
    fallback = (used & ~exact).any(axis=1)
    versions = []
    for final in (False, True):
        present = counts if final else state == GRADED
        groups = [
            _group(c, sheet, cols, present, cells, fallback) for c, cols in zip(policy.categories, columns, strict=True)
        ]
        versions.append(_course(policy, groups, places, final, fallback))
    return Bulk(versions[0], versions[1], places, fallback, columns)


def _fits(x: F64, places: int) -> B:
    """x is the double of a decimal with at most `places` places, and that is the only decimal with
    so few places that rounds to x (so it is x's shortest decimal, what Big.js reads)."""
    scale = 10.0**places
    m = np.rint(x * scale)
    with np.errstate(invalid="ignore"):
        fits: B = (np.abs(m) < 2.0**50) & (m / scale == x)
    return fits


def _places(values: F64) -> int:
    """The fewest decimal places (up to MAX_PLACES) that hold every value that fits at all."""
    places = 0
    for p in range(MAX_PLACES + 1):
        fits = _fits(values, p)
        values = values[~fits]
        if fits.any():
            places = p
        if values.size == 0:
            break
    return places


def _cells(earned: F64, possible: F64, places: int) -> tuple[_Part, B]:
    """Scores and points possible as doubles (Canvas's search runs on them) and as integers in units
    of 10**-places (every Big.js sum of them is an integer sum); and which cells are exact so."""
    scale = 10.0**places
    exact_s, exact_t = _fits(earned, places), _fits(possible, places)
    su = np.where(exact_s, np.rint(earned * scale), 0).astype(np.int64)
    tu = np.where(exact_t, np.rint(possible * scale), 0).astype(np.int64)
    return _Part(earned, possible, su, tu, scale), exact_s & exact_t


def _group(c: Category, sheet: Sheet, cols: list[int], present_all: B, cells: _Part, fallback: B) -> Group:
    present = present_all[:, cols]
    never = np.array([sheet.assessment_ids[j] in c.never_drop for j in cols], dtype=bool)
    fixed = present & never[None, :]
    droppable = present & ~never[None, :]
    kept = present
    if (c.drop_lowest or c.drop_highest) and cols:
        part = cells.columns(cols)
        kept = _drops(c, part, droppable, fixed, fallback) | fixed
    score_units = np.where(kept, cells.su[:, cols], 0).sum(axis=1)
    possible_units = np.where(kept, cells.tu[:, cols], 0).sum(axis=1)
    fallback |= (np.abs(score_units) >= EXACT_LIMIT) | (possible_units >= EXACT_LIMIT)
    graded = ((sheet.state[:, cols] == GRADED) & present).sum(axis=1)
    percent = _percent(score_units, possible_units, fallback)
    return Group(present, droppable, kept, score_units, possible_units, graded, percent)


@dataclass
class _Part:
    """Some columns or rows of the cells: doubles and integer units side by side."""

    s: F64
    t: F64
    su: I64
    tu: I64
    scale: float

    def columns(self, cols: list[int]) -> _Part:
        return _Part(self.s[:, cols], self.t[:, cols], self.su[:, cols], self.tu[:, cols], self.scale)

    def rows(self, rows: npt.NDArray[np.intp]) -> _Part:
        return _Part(self.s[rows], self.t[rows], self.su[rows], self.tu[rows], self.scale)


def _drops(c: Category, part: _Part, droppable: B, fixed: B, fallback: B) -> B:
    """The droppable submissions kept (§2.2-§2.6)."""
    n = droppable.sum(axis=1)
    keep_high = np.zeros_like(n)
    keep_low = np.zeros_like(n)
    for count in np.unique(n):
        if count:
            same = n == count
            keep_high[same], keep_low[same] = caps(int(count), c.drop_lowest, c.drop_highest)
    pointed = (droppable & (part.t > 0)).any(axis=1)
    kept = droppable
    plain = ~pointed & (n > 0)  # no droppable submission has points possible: by raw score (§2.3)
    if plain.any():
        start = (n - keep_high)[:, None]
        rank = _rank(part.s, droppable, descending=False)
        kept = np.where(plain[:, None], droppable & (rank >= start) & (rank < start + keep_low[:, None]), kept)
    max_total = np.where(droppable, part.t, 0.0).max(axis=1, initial=0.0)
    for keep, ascending in ((keep_high, False), (keep_low, True)):
        keep = np.maximum(keep, 1)
        rows = np.nonzero(pointed & (kept.sum(axis=1) > keep) & ~fallback)[0]
        if rows.size:
            chosen, sure = _phase(kept[rows], keep[rows], fixed[rows], part.rows(rows), max_total[rows], ascending)
            kept = kept.copy()
            kept[rows] = chosen
            fallback[rows[~sure]] = True
    return kept


def _phase(cand: B, keep: I64, fixed: B, part: _Part, max_total: F64, ascending: bool) -> tuple[B, B]:
    """One phase of the pointed search: Canvas's kept set (§2.4), or the exact best where Canvas's
    is strictly worse (§2.6). Also which rows were decided with certainty."""
    s_fixed = np.where(fixed, part.su, 0).sum(axis=1)
    t_fixed = np.where(fixed, part.tu, 0).sum(axis=1)
    every = cand | fixed
    smallest = np.sort(np.where(cand, part.tu, np.iinfo(np.int64).max), axis=1)
    t_min = t_fixed + np.where(np.arange(cand.shape[1])[None, :] < keep[:, None], smallest, 0).sum(axis=1)
    s_abs = np.where(every, np.abs(part.su), 0).sum(axis=1).astype(np.float64)
    t_all = np.where(every, part.tu, 0).sum(axis=1).astype(np.float64)
    # Exact int64 products, and every kept set has points possible (F strictly decreasing).
    sure = ((s_abs + 1) * (t_all + 1) * (every.sum(axis=1) + 2) * 4 < GUARD) & (t_min > 0)
    best, num, den, settled = _dinkelbach(cand, keep, part.su, part.tu, s_fixed, t_fixed, not ascending, sure)
    sure &= settled
    q_star = num / np.where(den == 0, 1, den)
    lo, hi, plain = _bracket(every, part, s_fixed, t_fixed)
    sure &= plain
    # How far Canvas's float F(mid) can be from the exact one, as a distance in q.
    reach = np.maximum(np.maximum(np.abs(lo), np.abs(hi)), np.abs(q_star))
    error = (
        (every.sum(axis=1) + 8)
        * 8
        * EPS
        * (np.where(every, np.abs(part.s), 0.0).sum(axis=1) + reach * t_all / part.scale)
    )
    margin = error / np.maximum(t_min / part.scale, 1e-300) + reach * 8 * EPS
    threshold = 1 / (2 * keep * (max_total * max_total))

    def exact_below(rows: npt.NDArray[np.intp], mids: F64) -> B:
        """Canvas's own F(mid) < 0 for these rows, run as Canvas runs it."""
        out = np.zeros(len(rows), dtype=bool)
        for k, (r, q) in enumerate(zip(rows.tolist(), mids.tolist(), strict=True)):
            entries = [Entry(j, float(part.s[r, j]), float(part.t[r, j])) for j in np.nonzero(cand[r])[0].tolist()]
            held = [Entry(j, float(part.s[r, j]), float(part.t[r, j])) for j in np.nonzero(fixed[r])[0].tolist()]
            out[k] = canvas_f(q, entries, int(keep[r]), held, ascending)[0] < 0
        return out

    last = _bisect(lo, hi, threshold, q_star, margin, exact_below, sure)
    values = part.s - last[:, None] * part.t
    ranked = cand & (_rank(values, cand, descending=not ascending) < keep[:, None])
    n_k = np.where(ranked, part.su, 0).sum(axis=1) + s_fixed
    d_k = np.where(ranked, part.tu, 0).sum(axis=1) + t_fixed
    as_good = n_k * den == num * d_k
    return np.where(sure[:, None], np.where(as_good[:, None], ranked, best), cand), sure


def _dinkelbach(
    cand: B, keep: I64, su: I64, tu: I64, s_fixed: I64, t_fixed: I64, maximise: bool, sure: B
) -> tuple[B, I64, I64, B]:
    """Per row, the best ratio num/den over `keep`-subsets (maximum or minimum), exactly on the
    integers, and its set: at the optimum the top `keep` by (s - q*t), ties to the earlier."""
    sign = 1 if maximise else -1

    def top(rows: npt.NDArray[np.intp], num: I64, den: I64) -> B:
        w = den[:, None] * su[rows] - num[:, None] * tu[rows]
        return cand[rows] & (_rank(w, cand[rows], descending=maximise) < keep[rows, None])

    def ratio(rows: npt.NDArray[np.intp], chosen: B) -> tuple[I64, I64]:
        return (
            np.where(chosen, su[rows], 0).sum(axis=1) + s_fixed[rows],
            np.where(chosen, tu[rows], 0).sum(axis=1) + t_fixed[rows],
        )

    every = np.arange(len(keep))
    zero = np.zeros(len(keep), dtype=np.int64)
    best = top(every, zero, zero + 1)
    num, den = ratio(every, best)
    active = np.nonzero(sure)[0]
    for _ in range(64):
        if active.size == 0:
            break
        nxt = top(active, num[active], den[active])
        n2, d2 = ratio(active, nxt)
        # The value of nxt at the current q; 0 means nothing beats q.
        gain = sign * (n2 * den[active] - num[active] * d2)
        best[active] = nxt
        better = gain > 0
        num[active[better]], den[active[better]] = n2[better], d2[better]
        active = active[better]
    settled = np.ones(len(keep), dtype=bool)
    settled[active] = False
    return best, num, den, settled


def _bracket(every: B, part: _Part, s_fixed: I64, t_fixed: I64) -> tuple[F64, F64, B]:
    """Canvas's starting bracket (§2.4): the first and last per-item ratio in JavaScript's string
    order, which is numeric order only for ratios of 0 or in [1e-6, 10); with zero-point items the
    top is (max(P, S_pointed) + S_zero) / P. Also where the bracket is known."""
    pointed = every & (part.t != 0)
    zero = every & (part.t == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(pointed, part.s / np.where(pointed, part.t, 1.0), 0.0)
    plain = np.where(pointed, (ratios == 0) | ((ratios >= 1e-6) & (ratios < 10)), True).all(axis=1) & pointed.any(
        axis=1
    )
    lo = np.where(pointed, ratios, np.inf).min(axis=1)
    hi = np.where(pointed, ratios, -np.inf).max(axis=1)
    if zero.any():
        total = np.where(pointed, part.tu, 0).sum(axis=1) / part.scale
        s_pointed = np.where(pointed, part.su, 0).sum(axis=1) / part.scale
        s_zero = np.where(zero, part.su, 0).sum(axis=1) / part.scale
        with np.errstate(divide="ignore", invalid="ignore"):
            hi = np.where(zero.any(axis=1), (np.maximum(total, s_pointed) + s_zero) / total, hi)
    return np.where(plain, lo, 0.0), np.where(plain, hi, 0.0), plain


def _bisect(lo: F64, hi: F64, threshold: F64, q_star: F64, margin: F64, exact_below: _Exact, active: B) -> F64:
    """Canvas's bisection loop over the `active` rows; the last midpoint it evaluates. F(mid) < 0 is
    read as mid > q*, except within `margin` of q*, where Canvas's float sums decide, run as Canvas
    runs them."""
    mid = (lo + hi) / 2
    last = mid.copy()
    every = np.arange(len(mid))
    below = np.zeros(len(mid), dtype=bool)
    below[active] = _below(mid[active], q_star[active], margin[active], exact_below, every[active])
    active = active.copy()
    while True:
        active &= hi - lo >= threshold
        if not active.any():
            return last
        hi = np.where(active & below, mid, hi)
        lo = np.where(active & ~below, mid, lo)
        mid = np.where(active, (lo + hi) / 2, mid)
        active &= (mid != hi) & (mid != lo)
        last = np.where(active, mid, last)
        rows = every[active]
        below[rows] = _below(mid[rows], q_star[rows], margin[rows], exact_below, rows)


_Exact = Callable[[npt.NDArray[np.intp], F64], B]


def _below(mid: F64, q_star: F64, margin: F64, exact_below: _Exact, rows: npt.NDArray[np.intp]) -> B:
    below = mid > q_star
    close = np.abs(mid - q_star) <= margin
    if close.any():
        below[close] = exact_below(rows[close], mid[close])
    return below


def _course(policy: Policy, groups: list[Group], places: int, final: bool, fallback: B) -> Version:
    """`combineAssignmentGroupGrades` and the display percent (§3) on the group sums."""
    n_l = len(fallback)
    scale = 10.0**places
    if policy.weighting == "points":
        s_units = sum((g.score_units for g in groups), np.zeros(n_l, dtype=np.int64))
        p_units = sum((g.possible_units for g in groups), np.zeros(n_l, dtype=np.int64))
        fallback |= (np.abs(s_units) >= EXACT_LIMIT) | (p_units >= EXACT_LIMIT)
        percent = _percent(s_units, p_units, fallback)
        return _version(policy, groups, percent, s_units / scale + 0.0, p_units / scale + 0.0)
    relevant = np.stack([g.possible_units != 0 for g in groups], axis=1) if groups else np.zeros((n_l, 0), bool)
    weights = [reference.group_weight(c) for c in policy.categories]
    full_weight = _full_weights(relevant, weights)
    total = np.zeros(n_l)
    magnitude = np.zeros(n_l)  # of the terms: a double sum can lose digits to cancelling terms
    for k, g in enumerate(groups):
        counts = relevant[:, k] & (g.score_units != 0) & (weights[k] != 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(counts, g.score_units / np.where(counts, g.possible_units, 1) * weights[k], 0.0)
        total += term
        magnitude += np.abs(term)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where((full_weight < 100) & (full_weight > 0), 100 / full_weight, 1.0)
        up = np.where(full_weight < 100, total / full_weight * 100, total)
    hundredths = np.abs(up) * 100
    # How far the double can be from Canvas's exact value, in hundredths; closer to a rounding tie
    # than that (or 1e-6), the reference decides.
    error = (len(groups) + 4) * 4 * EPS * magnitude * factor * 100
    near_tie = np.abs(hundredths - np.floor(hundredths) - 0.5) < np.maximum(error, 1e-6)
    fallback |= (near_tie | (hundredths >= 1e9)) & (full_weight != 0)
    score = np.where(full_weight == 0, np.nan, np.sign(up) * np.floor(hundredths + 0.5) / 100 + 0.0)
    work = np.zeros(n_l, dtype=np.int64)
    for k, g in enumerate(groups):
        work += np.where(relevant[:, k], g.submission_count, 0)
    has_work = (work > 0) | final
    percent = np.where(has_work, np.nan_to_num(score, nan=0.0), np.nan)
    return _version(policy, groups, percent, score, np.where(has_work, 100.0, 0.0))


def _full_weights(relevant: B, weights: list[float]) -> F64:
    """Canvas's fullWeight (a Big.js sum) per learner, computed once per pattern of relevant groups."""
    if relevant.shape[1] == 0:
        return np.zeros(relevant.shape[0])
    patterns, inverse = np.unique(relevant, axis=0, return_inverse=True)
    sums = np.array([big_sum(w for w, on in zip(weights, row, strict=True) if on) for row in patterns])
    return sums[inverse.reshape(-1)]


def _percent(s_units: I64, p_units: I64, fallback: B) -> F64:
    """Big(score) / possible x 100, half up to 2 places, exactly on the integers; NaN without points.
    Past 2**53 hundredths the double of the hundredths would round before the division by 100 does:
    those learners go to the reference."""
    with np.errstate(divide="ignore", invalid="ignore"):
        safe = np.where(p_units > 0, p_units, 1)
        hundredths = (2 * np.abs(s_units) * 10_000 + safe) // (2 * safe)
        fallback |= hundredths >= 2**53
        return np.where(p_units > 0, np.sign(s_units) * hundredths / 100 + 0.0, np.nan)


def _version(policy: Policy, groups: list[Group], percent: F64, score: F64, possible: F64) -> Version:
    letter = np.full(len(percent), -1, dtype=np.int64)
    if policy.cutoffs:
        p = np.maximum(percent, 0.0)
        letter = np.where(np.isnan(percent), -1, len(policy.cutoffs) - 1)
        floors = reference.letter_floors(policy)
        for k in range(len(policy.cutoffs) - 1, -1, -1):  # the first row reached wins
            letter = np.where(~np.isnan(percent) & (p >= floors[k]), k, letter)
    mark = policy.pass_mark()
    passed = None if mark is None else percent >= float(EXACT.multiply(big(mark), Decimal(100)))
    return Version(groups, percent, score, possible, letter, passed)


def _results(policy: Policy, v: Version) -> list[GradeResult]:
    grades = [policy.cutoffs[k].grade if k >= 0 else None for k in v.letter.tolist()]
    percents = nullable(v.percent)
    passed = [None] * len(percents) if v.passed is None else v.passed.tolist()
    return [
        GradeResult(percent, score, possible, grade, None if percent is None else ok)
        for percent, score, possible, grade, ok in zip(
            percents, nullable(v.score), v.possible.tolist(), grades, passed, strict=True
        )
    ]


class _Names:
    """One group's per-learner category results as lookups (Python lists: indexing numpy arrays
    one element at a time is what would make building a million results slow)."""

    def __init__(self, sheet: Sheet, cols: list[int], g: Group, places: int) -> None:
        ids = [sheet.assessment_ids[j] for j in cols]
        self.kept = names_per_row(ids, g.kept)
        self.dropped = names_per_row(ids, g.droppable & ~g.kept)
        scale = 10.0**places
        self.score = (g.score_units / scale + 0.0).tolist()
        self.possible = (g.possible_units / scale + 0.0).tolist()
        self.percent = nullable(g.percent)
        self.count = g.submission_count.tolist()

    def at(self, i: int) -> CategoryResult:
        return CategoryResult(
            percent=self.percent[i],
            score=self.score[i],
            possible=self.possible[i],
            dropped=self.dropped[i],
            counted=self.kept[i],
            extra={"submission_count": self.count[i]},
        )


def _rank(values: F64 | I64, candidates: B, descending: bool) -> I64:
    """Each candidate's place when ranked by value (descending or ascending), ties to the earlier
    position, as Canvas's comparators break them."""
    if values.dtype.kind == "f":
        key = np.where(candidates, -values if descending else values, np.inf)
    else:
        key = np.where(candidates, -values if descending else values, np.iinfo(np.int64).max)
    order = np.argsort(key, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(order.shape[1]), order.shape), axis=1)
    return rank
