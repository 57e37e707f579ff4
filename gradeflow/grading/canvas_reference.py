"""The `canvas` preset one learner at a time, as the spec (canvas-grading.md) reads: the reference
the bulk path (`canvas_bulk.py`) is held to, and what it hands every learner it cannot decide with
certainty.

The arithmetic is Canvas's: group sums are Big.js sums of the doubles' shortest decimals, turned
back into doubles; quotients are Big.js's (20 places, half up); the up-scaling of weights below
100 % goes through a double; three things are rounded (course score, display percent, letter
lookup). Drops follow §2.6 (`canvas_drops.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from gradeflow.grading import canvas_drops, letters
from gradeflow.grading.canvas_drops import Entry
from gradeflow.grading.js_numbers import EXACT, big, big_sum
from gradeflow.grading.policy import Category, Policy
from gradeflow.grading.results import CategoryResult, GradeResult, LearnerResult, half_up, number
from gradeflow.grading.sheet import EXCUSED, GRADED, MISSING, UNGRADED, Sheet

VERSIONS = ("current", "final")
HUNDRED = Decimal(100)


@dataclass
class GroupTotal:
    score: float
    possible: float
    submission_count: int
    kept: list[int]  # columns, course order
    dropped: list[int]


def reference_grade(policy: Policy, sheet: Sheet, rows: list[int] | None = None) -> list[LearnerResult]:
    """Learner by learner (all of them, or `rows`)."""
    columns = {c.name: [j for j in sheet.columns(c.name) if not sheet.omit[j]] for c in policy.categories}
    results = []
    for i in range(len(sheet.learner_ids)) if rows is None else rows:
        versions = {}
        groups: dict[str, dict[str, GroupTotal]] = {c.name: {} for c in policy.categories}
        for version in VERSIONS:
            for c in policy.categories:
                groups[c.name][version] = group_total(c, sheet, i, columns[c.name], final=version == "final")
            totals = [groups[c.name][version] for c in policy.categories]
            versions[version] = course_result(policy, totals, final=version == "final")
        categories = [
            (c.name, category_result(sheet, groups[c.name]["current"]), category_result(sheet, groups[c.name]["final"]))
            for c in policy.categories
        ]
        results.append(LearnerResult(sheet.learner_ids[i], versions["current"], versions["final"], categories))
    return results


def parse_score(x: float) -> float:
    """Canvas's parseScore: NaN, infinities and -0 count as 0."""
    return x if x == x and abs(x) != float("inf") and x != 0 else 0.0


def group_total(category: Category, sheet: Sheet, i: int, cols: list[int], final: bool) -> GroupTotal:
    """One group for one learner and version (§1, §2)."""
    entries, graded = [], 0
    for j in cols:
        state = sheet.state[i, j]
        if state in (MISSING, EXCUSED) or (state == UNGRADED and not final):
            continue
        graded += int(state == GRADED)
        score = parse_score(float(sheet.earned[i, j])) if state == GRADED else 0.0
        entries.append(Entry(j, score, parse_score(float(sheet.possible[i, j]))))
    never = set(category.never_drop)
    fixed = [e for e in entries if sheet.assessment_ids[e.position] in never]
    droppable = [e for e in entries if sheet.assessment_ids[e.position] not in never]
    keep = canvas_drops.kept(droppable, fixed, category.drop_lowest, category.drop_highest)
    kept_ids = {e.position for e in keep} | {e.position for e in fixed}
    kept = [e for e in entries if e.position in kept_ids]
    return GroupTotal(
        score=big_sum(e.score for e in kept),
        possible=big_sum(e.possible for e in kept),
        submission_count=graded,
        kept=[e.position for e in kept],
        dropped=[e.position for e in droppable if e.position not in kept_ids],
    )


def big_div(a: Decimal, b: Decimal) -> Decimal:
    """Big.js division: 20 decimal places, half up."""
    with localcontext() as ctx:
        ctx.prec = max(80, a.adjusted() - b.adjusted() + 30)  # Big.js keeps every digit above the 20th place
        return (a / b).quantize(Decimal("1e-20"), rounding=ROUND_HALF_UP)


def percent_of(score: float, possible: float) -> Decimal | None:
    """Display percent (§3.3): Big(score) / possible x 100, half up to 2 places."""
    return half_up(EXACT.multiply(big_div(big(score), big(possible)), HUNDRED), 2) if possible > 0 else None


def category_result(sheet: Sheet, g: GroupTotal) -> CategoryResult:
    return CategoryResult(
        percent=number(percent_of(g.score, g.possible)),
        score=g.score,
        possible=g.possible,
        dropped=[sheet.assessment_ids[j] for j in g.dropped],
        counted=[sheet.assessment_ids[j] for j in g.kept],
        extra={"submission_count": g.submission_count},
    )


def group_weight(category: Category) -> float:
    """Canvas's group weight (a percent, 50 for half) of the policy's fraction."""
    return float(EXACT.multiply(big(category.weight), HUNDRED))


def course_result(policy: Policy, groups: list[GroupTotal], final: bool) -> GradeResult:
    """`combineAssignmentGroupGrades` and the display percent (§3)."""
    if policy.weighting == "points":
        score = big_sum(g.score for g in groups)
        possible = big_sum(g.possible for g in groups)
        return finish(policy, score, possible, percent_of(score, possible))
    relevant = [(c, g) for c, g in zip(policy.categories, groups, strict=True) if g.possible != 0]
    full = full_weight(policy, [g.possible != 0 for g in groups])
    total = Decimal(0)
    for c, g in relevant:
        if g.score != 0 and c.weight:
            total = EXACT.add(total, EXACT.multiply(big_div(big(g.score), big(g.possible)), big(group_weight(c))))
    w_score = weighted_score(total, full)
    has_work = final or sum(g.submission_count for _, g in relevant) > 0
    possible_w = 100.0 if has_work else 0.0
    percent = (Decimal(0) if w_score is None else big(w_score)) if has_work else None
    return finish(policy, w_score, possible_w, percent)


def full_weight(policy: Policy, relevant: Sequence[bool]) -> float:
    """fullWeight (§3.2 step 2): the Big.js sum of the weights (percents) of the relevant groups,
    those with points possible."""
    return big_sum(group_weight(c) for c, on in zip(policy.categories, relevant, strict=True) if on)


def scales_up(full: float) -> bool:
    """Canvas's one normalising rule (§3.2 step 4): weights that sum below 100 % are scaled up to
    100 %, never down; without weight there is nothing to scale."""
    return 0 < full < 100


def applied_weights(policy: Policy, relevant: Sequence[bool]) -> list[float | None]:
    """The weight each group's percent gets in the course score, as a fraction: its own, or scaled
    up as the score is (0 for a group that is not relevant; None in points mode)."""
    if policy.weighting == "points":
        return [None] * len(policy.categories)
    full = full_weight(policy, relevant)
    return [
        (float(big(group_weight(c)) / big(full)) if scales_up(full) else c.weight) if on and full else 0.0
        for c, on in zip(policy.categories, relevant, strict=True)
    ]


def weighted_score(total: Decimal, full: float) -> float | None:
    """The weighted course score (§3.2 steps 4-5): up-scaled through a double (`scales_up`), half up
    to 2 places; None without weight."""
    if full == 0:
        return None
    if scales_up(full):
        up = float(EXACT.multiply(big_div(total, big(full)), HUNDRED))
        return float(half_up(big(up), 2)) if up else 0.0
    return float(half_up(total, 2))


def finish(policy: Policy, score: float | None, possible: float, percent: Decimal | None) -> GradeResult:
    return GradeResult(
        percent=number(percent),
        score=score,
        possible=possible,
        grade=letter(policy, percent),
        passed=passed(policy, percent),
    )


def floor(minimum: float) -> float:
    """A scheme row's floor as Canvas compares it: parseFloat((value * 100).toPrecision(4))."""
    exact = Decimal(minimum * 100)  # the double's exact value; toPrecision rounds ties up
    if exact == 0:
        return 0.0
    quantum = Decimal(1).scaleb(exact.adjusted() - 3)
    return float(exact.quantize(quantum, rounding=ROUND_HALF_UP))


def letter(policy: Policy, percent: Decimal | None) -> str | None:
    """scoreToGrade (§3.5): the first row in scheme order whose floor the percent reaches, else the last."""
    if percent is None:
        return None
    return letters.letter(max(float(half_up(percent, 4)), 0.0), policy.cutoffs, floor, last_below=True)


def passed(policy: Policy, percent: Decimal | None) -> bool | None:
    mark = policy.pass_mark()
    if percent is None or mark is None:
        return None
    return percent >= EXACT.multiply(big(mark), HUNDRED)
