"""Which submissions a Canvas assignment group keeps under its drop rules (spec §2), one learner at a
time. This is the reference: the vectorised path in `canvas_bulk.py` must agree with it, and hands
it every learner it cannot decide with certainty.

Two answers per group:
- `canvas_kept`: Canvas's own search exactly as Canvas runs it (§2.4): doubles, the starting bracket
  from the ratios sorted as JavaScript strings, Big.js sums, ties broken by position.
- `kept`: the preset's decision (§2.6): Canvas's set, unless it has points possible and an exact
  search finds a strictly better ratio; then the best set (the first by position among equals).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from gradeflow.grading.js_numbers import big, big_sum, js_sorted


@dataclass(frozen=True)
class Entry:
    """One submission in a drop decision. `position` is the assessment's place in course order
    (Canvas breaks ties by assignment id; a course brought over from Canvas keeps id order)."""

    position: int
    score: float
    possible: float


def canvas_kept(droppable: Sequence[Entry], fixed: Sequence[Entry], drop_lowest: int, drop_highest: int) -> list[Entry]:
    """The droppable entries Canvas keeps (the `fixed`, never-drop ones are always kept besides)."""
    return _drop(droppable, fixed, drop_lowest, drop_highest, correct=False)


def kept(droppable: Sequence[Entry], fixed: Sequence[Entry], drop_lowest: int, drop_highest: int) -> list[Entry]:
    """The droppable entries the `canvas` preset keeps (§2.6)."""
    return _drop(droppable, fixed, drop_lowest, drop_highest, correct=True)


def caps(n: int, drop_lowest: int, drop_highest: int) -> tuple[int, int]:
    """(keep_highest, keep_lowest) for n droppable submissions (§2.2): at least one survives
    drop_lowest, and drop_highest is ignored outright when the two rules together reach n."""
    d_low = min(drop_lowest, n - 1)
    d_high = 0 if d_low + drop_highest >= n else drop_highest
    return n - d_low, n - d_low - d_high


def _drop(droppable: Sequence[Entry], fixed: Sequence[Entry], d_low: int, d_high: int, correct: bool) -> list[Entry]:
    if not (d_low or d_high) or not droppable:
        return list(droppable)
    keep_highest, keep_lowest = caps(len(droppable), d_low, d_high)
    if not any(e.possible > 0 for e in droppable):
        ordered = sorted(droppable, key=lambda e: (e.score, e.position))
        return ordered[len(ordered) - keep_highest :][:keep_lowest]
    max_total = max(e.possible for e in droppable)
    first = _phase(droppable, keep_highest, fixed, max_total, ascending=False, correct=correct)
    return _phase(first, keep_lowest, fixed, max_total, ascending=True, correct=correct)


def _phase(
    entries: Sequence[Entry], keep: int, fixed: Sequence[Entry], max_total: float, ascending: bool, correct: bool
) -> list[Entry]:
    chosen = search(entries, keep, fixed, max_total, ascending)
    if not correct:
        return chosen
    units = _Units([*entries, *fixed])
    num, den = units.total([*chosen, *fixed])
    if den == 0:  # worth 0 of 0 points: Canvas's set stands
        return chosen
    best = best_set(entries, max(1, keep), fixed, maximise=not ascending, start=chosen, units=units)
    n2, d2 = units.total([*best, *fixed])
    gain = n2 * den - num * d2  # best's ratio minus Canvas's, times both (positive) points
    return best if d2 > 0 and (gain > 0 if not ascending else gain < 0) else chosen


def search(
    entries: Sequence[Entry], keep: int, fixed: Sequence[Entry], max_total: float, ascending: bool
) -> list[Entry]:
    """Canvas's `keepHelper`: bisection on q for the `keep` entries with the best (s - q*t) values.

    Kept in Canvas's order (the ranking of the last q evaluated), which is the next phase's input.
    """
    keep = max(1, keep)
    if len(entries) <= keep:
        return list(entries)
    every = [*entries, *fixed]
    pointed = [e for e in every if e.possible != 0]
    unpointed = [e for e in every if e.possible == 0]
    if not pointed:
        # Canvas's bracket is undefined here, so q is NaN: every comparison ties and the first
        # `keep` in input order stay.
        return list(entries[:keep])
    grades = js_sorted([e.score / e.possible for e in pointed])
    q_low = grades[0]
    q_high = grades[-1]
    if unpointed:
        possible = big_sum(e.possible for e in pointed)
        best_pointed = max(possible, big_sum(e.score for e in pointed))
        q_high = (best_pointed + big_sum(e.score for e in unpointed)) / possible
    q_mid = (q_low + q_high) / 2
    x, chosen = canvas_f(q_mid, entries, keep, fixed, ascending)
    threshold = 1 / (2 * keep * (max_total * max_total))
    while q_high - q_low >= threshold:
        if x < 0:
            q_high = q_mid
        else:
            q_low = q_mid
        q_mid = (q_low + q_high) / 2
        if q_mid in (q_high, q_low):
            break
        x, chosen = canvas_f(q_mid, entries, keep, fixed, ascending)
    return chosen


def canvas_f(
    q: float, entries: Sequence[Entry], keep: int, fixed: Sequence[Entry], ascending: bool
) -> tuple[float, list[Entry]]:
    """Canvas's F(q) (`bigF`): the sum of the `keep` best (s - q*t), ranked in doubles with ties to
    the earlier position, plus the never-drop ones' (each a Big.js sum, back to a double), and the
    kept. Only F's sign steers the search: where the doubles' exact sum is far enough from 0 for no
    decimal reading to change its sign, that sum stands in for Canvas's (same sign, cheaper)."""
    rated = [(e.score - q * e.possible, e) for e in entries]
    rated.sort(key=lambda r: (r[0] if ascending else -r[0], r[1].position))
    ranked = rated[:keep]
    values = [v for v, _ in ranked] + [e.score - q * e.possible for e in fixed]
    total = math.fsum(values)
    if abs(total) > 2.0**-48 * math.fsum(abs(v) for v in values):
        return total, [e for _, e in ranked]
    q_kept = big_sum(v for v, _ in ranked)
    q_fixed = big_sum(values[len(ranked) :])
    return q_kept + q_fixed, [e for _, e in ranked]


def ratio(entries: Sequence[Entry]) -> Fraction | None:
    """Sum of scores over sum of points possible, exactly; None when there are no points possible."""
    den = sum((Fraction(big(e.possible)) for e in entries), Fraction(0))
    if den == 0:
        return None
    return sum((Fraction(big(e.score)) for e in entries), Fraction(0)) / den


def best_set(
    entries: Sequence[Entry],
    keep: int,
    fixed: Sequence[Entry],
    maximise: bool,
    start: Sequence[Entry] = (),
    units: _Units | None = None,
) -> list[Entry]:
    """Among `keep`-sized subsets with points possible (with `fixed`), the one with the best exact
    ratio; of equals, the first by position (lexicographically smallest positions). `start`, a
    subset to begin the search from (Canvas's, usually already the best), and `units`, the entries'
    integers when the caller has them, only save work."""
    if len(entries) <= keep:
        return list(entries)
    units = units or _Units([*entries, *fixed])
    smallest = sorted(units.t[id(e)] for e in entries)[:keep]
    if units.total(fixed)[1] + sum(smallest) > 0:  # every subset has points possible
        return _dinkelbach(units, entries, keep, fixed, maximise, start)
    # Some subsets are worth 0 of 0 points: force in each pointed entry in turn.
    sign = 1 if maximise else -1
    best: tuple[list[Entry], int, int] | None = None
    for forced in (e for e in entries if e.possible > 0):
        rest = [e for e in entries if e is not forced]
        chosen = sorted([forced, *_dinkelbach(units, rest, keep - 1, [*fixed, forced], maximise)], key=_pos)
        num, den = units.total([*chosen, *fixed])
        if best is None:
            best = chosen, num, den
            continue
        gain = sign * (num * best[2] - best[1] * den)
        if gain > 0 or (gain == 0 and [e.position for e in chosen] < [e.position for e in best[0]]):
            best = chosen, num, den
    return list(entries[:keep]) if best is None else best[0]


class _Units:
    """Scores and points possible as integers at one decimal scale: exact sums and comparisons
    without fractions."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        pairs = {id(e): (big(e.score), big(e.possible)) for e in entries}
        exponents = [d.as_tuple().exponent for pair in pairs.values() for d in pair]
        self.places = max((-x for x in exponents if isinstance(x, int)), default=0)
        self.s = {k: self._int(a) for k, (a, _) in pairs.items()}
        self.t = {k: self._int(b) for k, (_, b) in pairs.items()}

    def _int(self, d: Decimal) -> int:
        sign, digits, exponent = d.as_tuple()
        assert isinstance(exponent, int)
        value: int = int("".join(map(str, digits)) or "0") * pow(10, exponent + self.places)
        return -value if sign else value

    def total(self, entries: Sequence[Entry]) -> tuple[int, int]:
        return sum(self.s[id(e)] for e in entries), sum(self.t[id(e)] for e in entries)


def _dinkelbach(
    units: _Units,
    entries: Sequence[Entry],
    keep: int,
    fixed: Sequence[Entry],
    maximise: bool,
    start: Sequence[Entry] = (),
) -> list[Entry]:
    """Exact Dinkelbach iterations on the integers; every `keep`-subset (with `fixed`) must have
    points possible. At the optimum q the best `keep` by s - q*t, ties to the earlier position."""
    if keep <= 0:
        return []
    if len(entries) <= keep:
        return list(entries)
    sign = 1 if maximise else -1
    s, t = units.s, units.t

    def top(num: int, den: int) -> list[Entry]:
        return sorted(entries, key=lambda e: (-sign * (den * s[id(e)] - num * t[id(e)]), e.position))[:keep]

    chosen = list(start) if len(start) == keep else top(0, 1)
    while True:
        num, den = units.total([*chosen, *fixed])
        nxt = top(num, den)
        n2, d2 = units.total([*nxt, *fixed])
        if sign * (n2 * den - num * d2) <= 0:  # nothing beats q: nxt is optimal and first by position
            return sorted(nxt, key=_pos)
        chosen = nxt


def _pos(e: Entry) -> int:
    return e.position
