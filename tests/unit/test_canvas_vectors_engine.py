"""The `canvas` preset in-process: the public sample vectors, and the bulk path against the reference.

`canvas.grade` is vectorised and hands the learners it cannot decide with certainty to
`canvas.reference_grade`, which grades one learner at a time as the spec reads. A learner must never
be able to tell which path graded them, so the two are compared on everything the API returns.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import orjson
import pytest

from gradeflow.grading import canvas, canvas_bulk
from gradeflow.grading.policy import EvaluateRequest
from gradeflow.grading.sheet import build_sheet
from tests.canvas_vectors import CANVAS, assert_matches_canvas, canvas_request

SEED = 20240611
LEARNERS = 2_000
LEARNERS_PER_POLICY = 25


def both(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(bulk, reference) results for one evaluate body, as the API would return them."""
    request = EvaluateRequest.model_validate(body)
    sheet = build_sheet(request)
    bulk = [r.as_dict() for r in canvas.grade(request.policy, sheet)]
    reference = [r.as_dict() for r in canvas.reference_grade(request.policy, sheet)]
    # As the API sends them: the same JSON, so no numpy scalar hides in either (one did: a 500).
    assert orjson.dumps(bulk) == orjson.dumps(reference)
    return bulk, reference


# --- the sample vectors ----------------------------------------------------------------------


@pytest.mark.parametrize("case", CANVAS, ids=[c["id"] for c in CANVAS])
def test_canvas_vectors_in_process(case: dict[str, Any]) -> None:
    bulk, reference = both(canvas_request(case))
    assert bulk == reference
    assert_matches_canvas(case, bulk)


# --- random courses: bulk == reference -------------------------------------------------------

WEIGHTS = [0.0, 0.1, 0.2, 0.25, 0.3333, 0.5, 1.0]
SCHEMES: list[list[dict[str, Any]]] = [
    [],
    [{"grade": "A", "min": 0.9}, {"grade": "B", "min": 0.8}, {"grade": "C", "min": 0.7}, {"grade": "F", "min": 0}],
    [{"grade": "Pass", "min": 0.545}, {"grade": "Fail", "min": 0.1}],  # no row at 0: the last row wins below
    [
        {"grade": "H", "min": 1.0},
        {"grade": "M", "min": 0.6667},
        {"grade": "L", "min": 0.3333},
        {"grade": "Z", "min": 0},
    ],
]


def random_possible(rng: random.Random) -> float:
    pick = rng.random()
    if pick < 0.15:
        return 0.0  # extra credit
    if pick < 0.75:
        return float(rng.randint(1, 100))
    if pick < 0.9:
        return round(rng.uniform(0.5, 60), rng.choice([1, 2, 3]))
    return float(rng.choice([1000, 250, 3, 7]))


def random_policy(rng: random.Random) -> dict[str, Any]:
    n_groups = rng.randint(1, 4)
    names = [f"g{k}" for k in range(n_groups)]
    assessments = []
    for k in range(rng.randint(n_groups, 12)):
        category = names[k % n_groups] if k < n_groups else rng.choice(names)
        assessments.append(
            {
                "id": f"a{k}",
                "category": category,
                "possible": random_possible(rng),
                "omit_from_final": rng.random() < 0.05,
            }
        )
    rng.shuffle(assessments)  # course order interleaves the groups
    categories = []
    for name in names:
        mine = [a["id"] for a in assessments if a["category"] == name]
        categories.append(
            {
                "name": name,
                "weight": rng.choice([*WEIGHTS, rng.randint(0, 80) / 100]),
                "drop_lowest": rng.choice([0, 0, 1, 1, 2, 3, len(mine), len(mine) + 1]),
                "drop_highest": rng.choice([0, 0, 0, 1, 2, len(mine)]),
                "never_drop": rng.sample(mine, rng.randint(0, min(2, len(mine)))) if rng.random() < 0.3 else [],
            }
        )
    policy: dict[str, Any] = {
        "preset": "canvas",
        "weighting": "categories" if rng.random() < 0.7 else "points",
        "categories": categories,
        "cutoffs": rng.choice(SCHEMES),
        "assessments": assessments,
    }
    if rng.random() < 0.2:
        policy["pass_min"] = rng.choice([0.5, 0.6, 0.545])
    return policy


def random_score(rng: random.Random, possible: float, odd: bool) -> float:
    """A score with 0-3 decimals, sometimes negative or above the points possible; for `odd`
    learners, sometimes a float no short decimal writes (1/3, 0.1 + 0.2)."""
    top = possible if possible > 0 else 10.0
    pick = rng.random()
    if odd and pick < 0.2:
        return rng.choice([1 / 3, 2 / 3, 0.1 + 0.2, top / 3, 1e-7, 123.456789])
    if pick < 0.08:
        return round(rng.uniform(-top / 4, 0), rng.randint(0, 2))
    if pick < 0.15:
        return rng.choice([0.0, top, 2 * top])
    return round(rng.uniform(0, top * 1.1), rng.choice([0, 0, 1, 2, 3]))


def random_learner(rng: random.Random, policy: dict[str, Any], k: int) -> dict[str, Any]:
    odd = rng.random() < 0.1
    scores = []
    for a in policy["assessments"]:
        pick = rng.random()
        if pick < 0.08:
            continue  # no row: not assigned to this learner
        row: dict[str, Any] = {"assessment_id": a["id"], "earned": None}
        if pick < 0.15:
            row["excused"] = True
        elif pick > 0.25:  # otherwise ungraded
            row["earned"] = random_score(rng, a["possible"], odd)
        if rng.random() < 0.03:
            row["possible"] = random_possible(rng)  # this learner's own points possible
        scores.append(row)
        if rng.random() < 0.03:
            scores.append({**row, "earned": random_score(rng, a["possible"], odd)})  # a duplicate: ignored
    rng.shuffle(scores)
    return {"learner_id": f"l{k}", "scores": scores}


def random_bodies() -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    bodies = []
    for _ in range(LEARNERS // LEARNERS_PER_POLICY):
        policy = random_policy(rng)
        learners = [random_learner(rng, policy, k) for k in range(LEARNERS_PER_POLICY)]
        bodies.append({"policy": policy, "learners": learners})
    return bodies


BODIES = random_bodies()


@pytest.mark.parametrize("index", range(len(BODIES)))
def test_bulk_equals_reference_on_random_courses(index: int) -> None:
    bulk, reference = both(BODIES[index])
    for got, want in zip(bulk, reference, strict=True):
        assert got == want, (index, got["learner_id"])


def test_random_courses_reach_the_bulk_path() -> None:
    """The equivalence above means little if the bulk path hands everyone to the reference: a good
    share of the random learners must be decided by the bulk path itself."""
    decided = total = 0
    for body in BODIES:
        request = EvaluateRequest.model_validate(body)
        fallback = canvas_bulk.evaluate(request.policy, build_sheet(request)).fallback
        decided += int(np.count_nonzero(~fallback))
        total += len(fallback)
    assert total == LEARNERS
    assert decided > total // 3, (decided, total)  # 1,137 of 2,000 when written


def test_random_courses_cover_the_features() -> None:
    policies = [b["policy"] for b in BODIES]
    categories = [c for p in policies for c in p["categories"]]
    rows = [s for b in BODIES for learner in b["learners"] for s in learner["scores"]]
    assert {p["weighting"] for p in policies} == {"categories", "points"}
    assert any(sum(c["weight"] for c in p["categories"]) < 1 for p in policies)
    assert any(sum(c["weight"] for c in p["categories"]) > 1 for p in policies)
    assert any(c["drop_lowest"] and c["drop_highest"] for c in categories)
    assert any(c["never_drop"] for c in categories)
    assert any(a["possible"] == 0 for p in policies for a in p["assessments"])
    assert any(s.get("excused") for s in rows) and any(s["earned"] is None for s in rows)
    assert any(s["earned"] is not None and s["earned"] < 0 for s in rows)
    assert any(s["earned"] == 1 / 3 for s in rows)
