"""The `canvas` preset over all learners at once, with the reference (`canvas_reference.py`) for
every learner this path cannot decide with certainty.

Why it can be exact: scores and points possible are short decimals (at most 6 places, checked cell
by cell; stored scores never have more), so as integers in units of 10**-places every Big.js sum is
an integer sum and every display percent an integer division. The drop search is in
`canvas_drops_bulk.py`. Learners go to the reference when that search cannot decide them, when a
course score lies within float error of a rounding tie, or when their numbers are too large or too
fine for the integer path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from gradeflow.grading import canvas_reference as reference
from gradeflow.grading import letters
from gradeflow.grading.canvas_drops_bulk import EPS, Part, kept_after_drops
from gradeflow.grading.js_numbers import EXACT, big
from gradeflow.grading.policy import Category, Policy
from gradeflow.grading.results import (
    CategoryResult,
    GradeResult,
    LearnerResult,
    many_objects,
    names_per_row,
    nullable,
    patterns,
)
from gradeflow.grading.sheet import EXCUSED, F64, GRADED, MISSING, Sheet

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
MAX_PLACES = 6
EXACT_LIMIT = 2**45  # sums below it are exact in a double, and their percents exact in int64


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
    letter: I64  # index into the policy's cutoffs (highest first), -1 for none
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


def _cells(earned: F64, possible: F64, places: int) -> tuple[Part, B]:
    """Scores and points possible as doubles (Canvas's search runs on them) and as integers in units
    of 10**-places (every Big.js sum of them is an integer sum); and which cells are exact so."""
    scale = 10.0**places
    exact_s, exact_t = _fits(earned, places), _fits(possible, places)
    su = np.where(exact_s, np.rint(earned * scale), 0).astype(np.int64)
    tu = np.where(exact_t, np.rint(possible * scale), 0).astype(np.int64)
    return Part(earned, possible, su, tu, scale), exact_s & exact_t


def _group(c: Category, sheet: Sheet, cols: list[int], present_all: B, cells: Part, fallback: B) -> Group:
    present = present_all[:, cols]
    never = np.array([sheet.assessment_ids[j] in c.never_drop for j in cols], dtype=bool)
    fixed = present & never[None, :]
    droppable = present & ~never[None, :]
    kept = present
    if (c.drop_lowest or c.drop_highest) and cols:
        part = cells.columns(cols)
        kept = kept_after_drops(c, part, droppable, fixed, fallback) | fixed
    score_units = np.where(kept, cells.su[:, cols], 0).sum(axis=1)
    possible_units = np.where(kept, cells.tu[:, cols], 0).sum(axis=1)
    fallback |= (np.abs(score_units) >= EXACT_LIMIT) | (possible_units >= EXACT_LIMIT)
    graded = ((sheet.state[:, cols] == GRADED) & present).sum(axis=1)
    percent = _percent(score_units, possible_units, fallback)
    return Group(present, droppable, kept, score_units, possible_units, graded, percent)


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
    full_weight, scaled = _full_weights(policy, relevant)
    total = np.zeros(n_l)
    magnitude = np.zeros(n_l)  # of the terms: a double sum can lose digits to cancelling terms
    for k, g in enumerate(groups):
        counts = relevant[:, k] & (g.score_units != 0) & (weights[k] != 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(counts, g.score_units / np.where(counts, g.possible_units, 1) * weights[k], 0.0)
        total += term
        magnitude += np.abs(term)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(scaled, 100 / full_weight, 1.0)
        up = np.where(scaled, total / full_weight * 100, total)
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


def _full_weights(policy: Policy, relevant: B) -> tuple[F64, B]:
    """Canvas's fullWeight per learner, and whether it scales the score up (`reference.scales_up`),
    computed once per pattern of relevant groups."""
    if relevant.shape[1] == 0:
        return np.zeros(relevant.shape[0]), np.zeros(relevant.shape[0], dtype=bool)
    unique, inverse = patterns(relevant)
    sums = [reference.full_weight(policy, row.tolist()) for row in unique]
    scaled = np.array([reference.scales_up(w) for w in sums], dtype=bool)
    return np.array(sums)[inverse], scaled[inverse]


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
    # scoreToGrade (§3.5): a percent below every row gets the last row; a negative one counts as 0
    letter = letters.letter_index(np.maximum(percent, 0.0), policy.cutoffs, reference.floor, last_below=True)
    mark = policy.pass_mark()
    passed = None if mark is None else percent >= float(EXACT.multiply(big(mark), Decimal(100)))
    return Version(groups, percent, score, possible, letter, passed)


def _results(policy: Policy, v: Version) -> list[GradeResult]:
    grades = letters.names(v.letter, policy.cutoffs)
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
