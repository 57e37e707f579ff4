"""Grading speed: the standard preset's bulk path over 1,000,000 learners x 20 assessments
(4 categories, drops), on one core, against a plain-Python loop over a sample timed in the same run.

    .venv/bin/python -m bench.grading [--learners 1000000]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the goal says
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from shared.grading import standard
from shared.grading.policy import Policy
from shared.grading.sheet import GRADED, UNGRADED, Sheet

CATEGORIES = [("Homework", 0.25, 8, 2), ("Quiz", 0.25, 6, 1), ("Midterm", 0.2, 3, 0), ("Final", 0.3, 3, 0)]


def make(learners: int, seed: int = 7) -> tuple[Policy, Sheet]:
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
    possible = np.array([a["possible"] for a in catalogue])
    n_a = len(catalogue)
    earned = np.round(rng.random((learners, n_a)) * possible, 2)
    state = np.where(rng.random((learners, n_a)) < 0.1, UNGRADED, GRADED).astype(np.int8)
    earned[state != GRADED] = np.nan
    sheet = Sheet(
        learner_ids=[str(i) for i in range(learners)],
        assessment_ids=[a["id"] for a in catalogue],
        categories=[a["category"] for a in catalogue],
        omit=np.zeros(n_a, dtype=bool),
        earned=earned,
        possible=np.broadcast_to(possible, (learners, n_a)).copy(),
        state=state,
    )
    return policy, sheet


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=1_000_000)
    parser.add_argument("--baseline-sample", type=int, default=20_000)
    args = parser.parse_args()
    policy, sheet = make(args.learners)
    t0 = time.perf_counter()
    _current, final = standard.evaluate(policy, sheet)
    engine_s = time.perf_counter() - t0
    small_policy, small = make(args.baseline_sample)
    t0 = time.perf_counter()
    python_loop(small_policy, small)
    loop_s = (time.perf_counter() - t0) * args.learners / args.baseline_sample
    print(f"learners={args.learners} assessments={len(sheet.assessment_ids)} categories={len(CATEGORIES)}")
    print(f"vectorised engine (current + final, best-outcome drops): {engine_s:6.2f} s")
    print(f"plain Python loop, simpler drops (extrapolated from {args.baseline_sample}): {loop_s:6.2f} s")
    print(f"mean final percent {np.nanmean(final.percent):.2f}; letters {np.bincount(final.letter + 1).tolist()}")
    print(f"evaluate_seconds={engine_s:.2f}")


if __name__ == "__main__":
    main()
