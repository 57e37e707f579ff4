"""Canvas's drop search (spec §2.4-§2.6) for all learners of one group at once: the bulk path's
half of `canvas_drops.py`, which it must agree with.

Canvas's bisection only asks whether F(mid) < 0, and F falls strictly through 0 at the exact
optimum q* when every kept set has points possible. So each learner's bisection is replayed by
comparing midpoints with q* (Dinkelbach's method on the integer units finds it for all learners at
once), Canvas's own F is evaluated only within float error of q*, and only the last midpoint's
ranking is computed, in doubles, as Canvas computes it. Learners this cannot decide with certainty
are marked in `fallback` for the per-learner reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gradeflow.grading.canvas_drops import Entry, canvas_f, caps
from gradeflow.grading.policy import Category
from gradeflow.grading.sheet import F64

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
GUARD = 2.0**62  # int64 products of sums stay below it
EPS = 2.0**-52


@dataclass
class Part:
    """Some columns or rows of the cells: doubles and integer units side by side."""

    s: F64
    t: F64
    su: I64
    tu: I64
    scale: float

    def columns(self, cols: list[int]) -> Part:
        return Part(self.s[:, cols], self.t[:, cols], self.su[:, cols], self.tu[:, cols], self.scale)

    def rows(self, rows: npt.NDArray[np.intp]) -> Part:
        return Part(self.s[rows], self.t[rows], self.su[rows], self.tu[rows], self.scale)


def kept_after_drops(c: Category, part: Part, droppable: B, fixed: B, fallback: B) -> B:
    """The droppable submissions kept (§2.2-§2.6); learners it cannot decide are set in `fallback`."""
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
        place = rank(part.s, droppable, descending=False)
        kept = np.where(plain[:, None], droppable & (place >= start) & (place < start + keep_low[:, None]), kept)
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


def _phase(cand: B, keep: I64, fixed: B, part: Part, max_total: F64, ascending: bool) -> tuple[B, B]:
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
    ranked = cand & (rank(values, cand, descending=not ascending) < keep[:, None])
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
        return cand[rows] & (rank(w, cand[rows], descending=maximise) < keep[rows, None])

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


def _bracket(every: B, part: Part, s_fixed: I64, t_fixed: I64) -> tuple[F64, F64, B]:
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


def rank(values: F64 | I64, candidates: B, descending: bool) -> I64:
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
