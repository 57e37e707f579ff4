"""The `canvas` preset: Canvas LMS's gradebook arithmetic (Big.js decimals, half-up rounding).

One deliberate difference: the kept set after drops is the true optimum of Canvas's own objective
(found exactly with Dinkelbach's method on fractions), where Canvas's bisection sometimes misses it.
Ties between assessments are broken by course order, as Canvas breaks them by assignment id.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

from shared.grading.policy import Category, Policy
from shared.grading.results import CategoryResult, GradeResult, LearnerResult, half_up, number
from shared.grading.sheet import EXCUSED, GRADED, MISSING, UNGRADED, Sheet


@dataclass
class Item:
    position: int
    id: str
    score: Decimal
    possible: Decimal
    graded: bool


@dataclass
class GroupTotal:
    score: Decimal
    possible: Decimal
    submission_count: int
    kept: list[Item]
    dropped: list[Item]


def grade(policy: Policy, sheet: Sheet) -> list[LearnerResult]:
    columns = {c.name: [j for j in sheet.columns(c.name) if not sheet.omit[j]] for c in policy.categories}
    results = []
    for i, learner_id in enumerate(sheet.learner_ids):
        versions = {}
        groups: dict[str, dict[str, GroupTotal]] = {c.name: {} for c in policy.categories}
        for version in ("current", "final"):
            for c in policy.categories:
                items = _items(sheet, i, columns[c.name], final=version == "final")
                groups[c.name][version] = _group(c, items)
            versions[version] = _course(policy, [(c, groups[c.name][version]) for c in policy.categories], version)
        categories = [
            (c.name, _category_result(groups[c.name]["current"]), _category_result(groups[c.name]["final"]))
            for c in policy.categories
        ]
        results.append(LearnerResult(learner_id, versions["current"], versions["final"], categories))
    return results


def _dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def _items(sheet: Sheet, i: int, cols: list[int], final: bool) -> list[Item]:
    items = []
    for j in cols:
        state = sheet.state[i, j]
        if state in (MISSING, EXCUSED) or (state == UNGRADED and not final):
            continue
        score = _dec(sheet.earned[i, j]) if state == GRADED else Decimal(0)
        items.append(Item(j, sheet.assessment_ids[j], score, _dec(sheet.possible[i, j]), state == GRADED))
    return items


def _group(category: Category, items: list[Item]) -> GroupTotal:
    kept, dropped = _drop(category, items)
    return GroupTotal(
        score=sum((it.score for it in kept), Decimal(0)),
        possible=sum((it.possible for it in kept), Decimal(0)),
        submission_count=sum(1 for it in items if it.graded),
        kept=kept,
        dropped=dropped,
    )


def _drop(category: Category, items: list[Item]) -> tuple[list[Item], list[Item]]:
    d_low, d_high = category.drop_lowest, category.drop_highest
    if d_low == 0 and d_high == 0:
        return items, []
    never = set(category.never_drop)
    fixed = [it for it in items if it.id in never]
    droppable = [it for it in items if it.id not in never]
    n = len(droppable)
    if n == 0:
        return items, []
    d_low = min(d_low, n - 1)
    d_high = 0 if d_low + d_high >= n else d_high
    keep_highest = n - d_low
    keep_lowest = keep_highest - d_high
    if not any(it.possible > 0 for it in droppable):
        ordered = sorted(droppable, key=lambda it: (it.score, it.position))
        keep = ordered[len(ordered) - keep_highest :][:keep_lowest]
    else:
        keep = _best(droppable, fixed, keep_highest, maximise=True)
        keep = _best(keep, fixed, keep_lowest, maximise=False)
    kept_ids = {id(it) for it in keep}
    kept = [it for it in items if id(it) in kept_ids or it.id in never]
    return kept, [it for it in droppable if id(it) not in kept_ids]


def _best(candidates: list[Item], fixed: list[Item], keep: int, maximise: bool) -> list[Item]:
    """The `keep` candidates that maximise (or minimise) (sum s + fixed s) / (sum t + fixed t).

    Dinkelbach's method, exact: scores are decimals, so scaled to integers every comparison is an
    integer one. Take the best `keep` by s - q*t at the current ratio q, move q to that set's ratio,
    and stop when it no longer improves; ties go to the earlier assessment.
    """
    keep = max(1, keep)
    if len(candidates) <= keep:
        return list(candidates)
    places = max(
        -min(it.score.as_tuple().exponent, it.possible.as_tuple().exponent, 0)  # type: ignore[operator]
        for it in candidates + fixed
    )
    scale = Decimal(10) ** places
    s = {id(it): int(it.score * scale) for it in candidates + fixed}
    t = {id(it): int(it.possible * scale) for it in candidates + fixed}
    s_fixed = sum(s[id(it)] for it in fixed)
    t_fixed = sum(t[id(it)] for it in fixed)
    sign = 1 if maximise else -1

    def ratio(chosen: list[Item]) -> tuple[int, int]:
        return sum(s[id(it)] for it in chosen) + s_fixed, sum(t[id(it)] for it in chosen) + t_fixed

    def top(num: int, den: int) -> list[Item]:
        return sorted(candidates, key=lambda it: (-sign * (s[id(it)] * den - num * t[id(it)]), it.position))[:keep]

    chosen = top(0, 1)
    num, den = ratio(chosen)
    while den > 0:
        nxt = top(num, den)
        n2, d2 = ratio(nxt)
        if d2 <= 0:
            # A kept set worth 0 of 0 points scores s - q*t = 0 at every q, so Canvas's search runs to
            # the top of its bracket and keeps what ranks first there.
            if maximise:
                q = _upper_bracket(candidates + fixed)
                chosen = top(q.numerator, q.denominator)
            break
        if sign * (n2 * den - num * d2) <= 0:  # no improvement: q is optimal
            chosen = nxt
            break
        num, den = n2, d2
    return sorted(chosen, key=lambda it: it.position)


def _upper_bracket(items: list[Item]) -> Fraction:
    """Canvas's initial upper bound of the ratio search (§2.4 of the spec)."""
    pointed = [it for it in items if it.possible > 0]
    total = sum((Fraction(it.possible) for it in pointed), Fraction(0))
    if len(pointed) < len(items):
        s_pointed = sum((Fraction(it.score) for it in pointed), Fraction(0))
        s_unpointed = sum((Fraction(it.score) for it in items if it.possible <= 0), Fraction(0))
        return (max(total, s_pointed) + s_unpointed) / total
    return max(Fraction(it.score) / Fraction(it.possible) for it in pointed)


def _category_result(g: GroupTotal) -> CategoryResult:
    percent = None
    if g.possible > 0:
        percent = number(half_up(_div(g.score, g.possible) * 100, 2))
    return CategoryResult(
        percent=percent,
        score=number(g.score),
        possible=number(g.possible),
        dropped=[it.id for it in g.dropped],
        counted=[it.id for it in g.kept],
        extra={"submission_count": g.submission_count},
    )


def _div(a: Decimal, b: Decimal) -> Decimal:
    """Big.js division: 20 decimal places, half up."""
    with localcontext() as ctx:
        ctx.prec = 60
        return (a / b).quantize(Decimal("1e-20"), rounding=ROUND_HALF_UP)


def _course(policy: Policy, groups: list[tuple[Category, GroupTotal]], version: str) -> GradeResult:
    if policy.weighting == "points":
        score = sum((g.score for _, g in groups), Decimal(0))
        possible = sum((g.possible for _, g in groups), Decimal(0))
        percent = half_up(_div(score, possible) * 100, 2) if possible > 0 else None
        return _finish(policy, score, possible, percent)
    relevant = [(c, g) for c, g in groups if g.possible != 0]
    full_weight = sum((_dec(c.weight) * 100 for c, _ in relevant), Decimal(0))
    g_sum = Decimal(0)
    for c, g in relevant:
        if g.score != 0 and c.weight:
            g_sum += _div(g.score, g.possible) * (_dec(c.weight) * 100)
    w_score: Decimal | None
    if full_weight == 0:
        w_score = None
    elif full_weight < 100:
        w_score = half_up(_div(g_sum * 100, full_weight), 2)
    else:
        w_score = half_up(g_sum, 2)
    has_work = version == "final" or any(g.submission_count > 0 for _, g in relevant)
    possible_w = Decimal(100) if has_work else Decimal(0)
    percent = None
    if possible_w > 0:
        percent = w_score if w_score is not None else Decimal(0)
    return _finish(policy, w_score, possible_w, percent)


def _finish(policy: Policy, score: Decimal | None, possible: Decimal, percent: Decimal | None) -> GradeResult:
    return GradeResult(
        percent=number(percent),
        score=number(score),
        possible=number(possible),
        grade=_letter(policy, percent),
        passed=_passed(policy, percent),
    )


def _letter(policy: Policy, percent: Decimal | None) -> str | None:
    if percent is None or not policy.cutoffs:
        return None
    p = max(half_up(percent, 4), Decimal(0))
    for cutoff in policy.cutoffs:
        if p >= Decimal(float(f"{cutoff.min * 100:.4g}").__repr__()):
            return cutoff.grade
    return policy.cutoffs[-1].grade


def _passed(policy: Policy, percent: Decimal | None) -> bool | None:
    mark = policy.pass_mark()
    if percent is None or mark is None:
        return None
    return percent >= _dec(mark) * 100
