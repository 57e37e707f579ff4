"""Grading speed on one core, each figure with a baseline timed in the same run.

standard (default): the standard preset's bulk path over 1,000,000 learners x 20 assessments (4 categories,
drops) against a plain-Python loop over a sample.

canvas: a Canvas-like course (bench.common.CANVAS_GROUPS: 4 groups, 20 assessments, every drop rule,
weighted groups), 200,000 learners. Timed: the vectorised bulk path (`canvas.evaluate`, current and final as
arrays) and the per-learner results the API and the recompute serve (`canvas.grade`); baseline: the
per-learner scalar path (`canvas.reference_grade`) on a sample, extrapolated. On that sample both must give
identical results: the mismatches are counted (the goal is 0) and the run fails if there are any.

    .venv/bin/python -m bench.grading [--preset standard|canvas] [--learners N] [--baseline-sample N]

Last line: evaluate_seconds=<n> (canvas adds grade_seconds, reference_seconds, mismatches).
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the goal says
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import orjson

from bench.common import CANVAS_GROUPS, canvas_rules
from gradeflow.grading import canvas, standard
from gradeflow.grading.policy import Policy
from gradeflow.grading.sheet import EXCUSED, GRADED, UNGRADED, Sheet

CATEGORIES = [("Homework", 0.25, 8, 2), ("Quiz", 0.25, 6, 1), ("Midterm", 0.2, 3, 0), ("Final", 0.3, 3, 0)]
DEFAULT_LEARNERS = {"standard": 1_000_000, "canvas": 200_000}


def make(learners: int, seed: int = 7) -> tuple[Policy, Sheet]:
    """The standard preset's course: 4 categories with drop_lowest, 10 % of the scores not graded yet."""
    rng = np.random.default_rng(seed)
    catalogue = []
    for name, _, count, _ in CATEGORIES:
        catalogue += [
            {"id": f"{name[:2]}{k}", "category": name, "possible": float(rng.integers(5, 50))} for k in range(count)
        ]
    policy = Policy.model_validate(
        {
            "preset": "standard",
            "categories": [{"name": n, "weight": w, "drop_lowest": d} for n, w, _, d in CATEGORIES],
            "cutoffs": [{"grade": g, "min": m} for g, m in (("A", 0.9), ("B", 0.8), ("C", 0.7), ("D", 0.6), ("F", 0))],
            "assessments": catalogue,
        }
    )
    return policy, _sheet(rng, catalogue, learners, excused=0.0)


def make_canvas(learners: int, seed: int = 7) -> tuple[Policy, Sheet]:
    """The Canvas-like course: integer points possible 5..50, 2-decimal scores, 10 % not graded yet and
    about 1 % excused, so both versions (current, final) and every drop rule have work to do."""
    rng = np.random.default_rng(seed)
    catalogue = [
        {"id": f"{name[:2]}{k}", "category": name, "possible": float(rng.integers(5, 51))}
        for name, _, count, _ in CANVAS_GROUPS
        for k in range(count)
    ]
    policy = Policy.model_validate({**canvas_rules(), "assessments": catalogue})
    return policy, _sheet(rng, catalogue, learners, excused=0.01)


def _sheet(rng: np.random.Generator, catalogue: list[dict[str, Any]], learners: int, excused: float) -> Sheet:
    """Random 2-decimal scores within each assessment's points; 10 % UNGRADED and an `excused` share
    EXCUSED, drawn from one uniform per score so the standard course is the same with or without it."""
    possible = np.array([a["possible"] for a in catalogue])
    n_a = len(catalogue)
    earned = np.round(rng.random((learners, n_a)) * possible, 2)
    u = rng.random((learners, n_a))
    state = np.where(u < 0.1, UNGRADED, np.where(u >= 1 - excused, EXCUSED, GRADED)).astype(np.int8)
    earned[state != GRADED] = np.nan
    return Sheet(
        learner_ids=[str(i) for i in range(learners)],
        assessment_ids=[a["id"] for a in catalogue],
        categories=[a["category"] for a in catalogue],
        omit=np.zeros(n_a, dtype=bool),
        earned=earned,
        possible=np.broadcast_to(possible, (learners, n_a)).copy(),
        state=state,
    )


def head(sheet: Sheet, n: int) -> Sheet:
    """The first n learners of a sheet (the sample that the scalar path grades)."""
    return Sheet(
        learner_ids=sheet.learner_ids[:n],
        assessment_ids=sheet.assessment_ids,
        categories=sheet.categories,
        omit=sheet.omit,
        earned=sheet.earned[:n],
        possible=sheet.possible[:n],
        state=sheet.state[:n],
    )


def python_loop(policy: Policy, sheet: Sheet) -> None:
    """Baseline: the same arithmetic (no drops search, simple drop-lowest by percent) learner by learner."""
    for i in range(len(sheet.learner_ids)):
        total = weight_sum = 0.0
        for cat in policy.categories:
            cols = sheet.columns(cat.name)
            items = [(sheet.earned[i, j], sheet.possible[i, j]) for j in cols if sheet.state[i, j] == GRADED]
            items.sort(key=lambda it: it[0] / it[1])
            items = items[cat.drop_lowest :]
            p = sum(t for _, t in items)
            if p:
                total += cat.weight * sum(e for e, _ in items) / p
                weight_sum += cat.weight
        _ = round(total / weight_sum * 100, 2) if weight_sum else None


def run_standard(learners: int, sample: int) -> None:
    policy, sheet = make(learners)
    t0 = time.perf_counter()
    _current, final = standard.evaluate(policy, sheet)
    engine_s = time.perf_counter() - t0
    small_policy, small = make(sample)
    t0 = time.perf_counter()
    python_loop(small_policy, small)
    loop_s = (time.perf_counter() - t0) * learners / sample
    print(f"learners={learners} assessments={len(sheet.assessment_ids)} categories={len(CATEGORIES)}")
    print(f"vectorised engine (current + final, best-outcome drops): {engine_s:6.2f} s")
    print(f"plain Python loop, simpler drops (extrapolated from {sample}): {loop_s:6.2f} s")
    print(f"mean final percent {np.nanmean(final.percent):.2f}; letters {np.bincount(final.letter + 1).tolist()}")
    print(f"evaluate_seconds={engine_s:.2f}")


def fallback_share(bulk: Any, learners: int) -> str | None:
    """How many learners the vectorised path handed to the scalar path, if it says so (a `fallback`
    mask or count on its result); None when it does not."""
    marks = getattr(bulk, "fallback", None)
    if marks is None:
        return None
    n = int(np.count_nonzero(marks)) if isinstance(marks, np.ndarray) else int(marks)
    return f"{n:,} of {learners:,} ({100 * n / learners:.3f} %)"


class Sent:
    """Results as the API sends them (orjson). A value plain JSON cannot carry (a numpy scalar: the
    API would fail on it) is counted, and compared by its number, so it shows besides the mismatches."""

    def __init__(self) -> None:
        self.not_json = 0

    def __call__(self, result: Any) -> bytes:
        try:
            return orjson.dumps(result.as_dict())
        except TypeError:
            self.not_json += 1
            return orjson.dumps(result.as_dict(), default=lambda v: v.item() if isinstance(v, np.generic) else v)


def mismatches(fast: list[Any], reference: list[Any]) -> tuple[int, str, Sent, Sent]:
    """Learners whose full results (course and every group, both versions) differ as the API would send
    them (so 100 against 100.0 differs, as a client sees it), the first one, and both sides' JSON counts."""
    count, first, sent_fast, sent_reference = 0, "", Sent(), Sent()
    for a, b in zip(fast, reference, strict=True):
        ja, jb = sent_fast(a), sent_reference(b)
        if ja != jb:
            count += 1
            first = first or f"learner {a.learner_id}:\n  grade:     {ja.decode()}\n  reference: {jb.decode()}"
    return count, first, sent_fast, sent_reference


def run_canvas(learners: int, sample: int) -> int:
    policy, sheet = make_canvas(learners)
    # The baseline first: timed after canvas.grade, its garbage collections would also walk the
    # 200,000 results held for the comparison (about 1.5x slower).
    sample = min(sample, learners)
    t0 = time.perf_counter()
    reference = canvas.reference_grade(policy, head(sheet, sample))
    reference_s = (time.perf_counter() - t0) * learners / sample
    t0 = time.perf_counter()
    bulk = canvas.evaluate(policy, sheet)  # current and final, as arrays
    evaluate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = canvas.grade(policy, sheet)
    grade_s = time.perf_counter() - t0
    wrong, first, sent_fast, sent_reference = mismatches(results[:sample], reference)
    ungraded = np.mean(sheet.state == UNGRADED) * 100
    excused = np.mean(sheet.state == EXCUSED) * 100
    print(
        f"learners={learners} assessments={len(sheet.assessment_ids)} groups={len(CANVAS_GROUPS)} "
        f"ungraded={ungraded:.1f}% excused={excused:.1f}%"
    )
    print(f"canvas.evaluate, vectorised (current + final arrays): {evaluate_s:6.2f} s")
    print(f"canvas.grade, per-learner results as served:          {grade_s:6.2f} s")
    print(f"canvas.reference_grade, scalar (extrapolated from {sample:,}): {reference_s:6.2f} s")
    share = fallback_share(bulk, learners)
    print(f"handed to the scalar fallback: {share if share is not None else 'not reported by canvas.evaluate'}")
    print(f"same results on the first {sample:,} learners: {wrong} mismatches")
    if first:
        print(first)
    if sent_fast.not_json or sent_reference.not_json:
        print(f"NOT JSON (numpy scalars): grade {sent_fast.not_json:,}, reference_grade {sent_reference.not_json:,}")
    letters = Counter(r.final.grade for r in results)
    mean = np.mean([r.final.percent for r in results if r.final.percent is not None])
    print(f"mean final percent {mean:.2f} (served); letters {sorted(letters.items(), key=str)}")
    print(
        f"evaluate_seconds={evaluate_s:.2f} grade_seconds={grade_s:.2f} reference_seconds={reference_s:.2f} "
        f"mismatches={wrong}"
    )
    return 1 if wrong or sent_fast.not_json or sent_reference.not_json else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("standard", "canvas"), default="standard")
    parser.add_argument("--learners", type=int, help="1,000,000 for standard, 200,000 for canvas")
    parser.add_argument("--baseline-sample", type=int, default=20_000, help="learners the baseline is timed on")
    args = parser.parse_args()
    learners = args.learners or DEFAULT_LEARNERS[args.preset]
    if args.preset == "standard":
        run_standard(learners, args.baseline_sample)
    else:
        raise SystemExit(run_canvas(learners, args.baseline_sample))


if __name__ == "__main__":
    main()
