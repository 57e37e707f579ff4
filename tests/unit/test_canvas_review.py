"""Review regressions for the `canvas` preset (issue #18): evaluate bodies where the service's answer
differed from Canvas's own arithmetic. Each expected value is what Canvas's gradebook code gives for
the same input (exact Big.js sums and quotients), checked outside the repository.

Both paths are asserted: the bulk path (`canvas.grade`) and the per-learner reference, because a
learner must get Canvas's answer whichever path grades them.
"""

from __future__ import annotations

import math
from typing import Any

from gradeflow.grading import canvas
from gradeflow.grading.policy import EvaluateRequest
from gradeflow.grading.sheet import build_sheet


def grade_both(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(bulk, reference) result of the body's only learner, as the API would return it."""
    request = EvaluateRequest.model_validate(body)
    sheet = build_sheet(request)
    (bulk,) = [r.as_dict() for r in canvas.grade(request.policy, sheet)]
    (reference,) = [r.as_dict() for r in canvas.reference_grade(request.policy, sheet)]
    return bulk, reference


def three_groups(middle_score: float, middle_possible: float) -> dict[str, Any]:
    """Weighted course of three groups at 100 % each: a huge extra-credit group, a normal one, and a
    huge negative group that cancels the first exactly. Canvas's course score is the middle group's
    percent, rounded to 2 places (its Big.js sum is exact)."""
    return {
        "policy": {
            "preset": "canvas",
            "weighting": "categories",
            "categories": [{"name": n, "weight": 1.0} for n in ("A", "C", "B")],
            "assessments": [
                {"id": "a", "category": "A", "possible": 0.001},
                {"id": "c", "category": "C", "possible": middle_possible},
                {"id": "b", "category": "B", "possible": 0.001},
            ],
        },
        "learners": [
            {
                "learner_id": "x",
                "scores": [
                    {"assessment_id": "a", "earned": 1e10},
                    {"assessment_id": "c", "earned": middle_score},
                    {"assessment_id": "b", "earned": -1e10},
                ],
            }
        ],
    }


def test_weighted_score_next_to_cancelling_huge_groups_bulk() -> None:
    # Catches: the bulk path adds the groups' weighted percents as doubles (1e15 + 33.31 - 1e15 gives
    # 33.25) and only checks the final value for closeness to a rounding tie, not the size of the terms.
    bulk, reference = grade_both(three_groups(33.31, 100))
    assert reference["current"]["score"] == 33.31
    assert bulk["current"]["score"] == 33.31
    assert bulk["current"]["percent"] == 33.31


def test_weighted_score_next_to_cancelling_huge_groups_reference() -> None:
    # Catches: the reference multiplies and adds Big.js quotients in Decimal's default 28-digit
    # context, so 1e15 + 33.334999999999996667 is rounded to ...33.335 before the 2-place rounding.
    # Canvas's exact sum is 33.334999999999996667, which rounds to 33.33.
    score = math.nextafter(1.00005, 0)  # 1.0000499999999999; / 3 * 100 is just below 33.335
    bulk, reference = grade_both(three_groups(score, 3))
    assert reference["current"]["score"] == 33.33
    assert bulk["current"]["score"] == 33.33


def test_points_percent_beyond_two_to_the_53_hundredths() -> None:
    # Catches: the bulk path's exact integer percent is turned into a double and then divided by 100
    # (two roundings) once it has more than 2**53 hundredths; Canvas rounds Big(score) / possible x 100
    # to 2 places and reads that decimal once (255243207792866.67 -> 255243207792866.66).
    scores = [1e12] * 15 + [314592467572.0]  # 15,314,592,467,572 points over 6 points possible
    body = {
        "policy": {
            "preset": "canvas",
            "weighting": "points",
            "categories": [{"name": "g", "weight": 1.0}],
            "assessments": [{"id": f"a{k}", "category": "g", "possible": 6 if k == 0 else 0} for k in range(16)],
        },
        "learners": [
            {"learner_id": "x", "scores": [{"assessment_id": f"a{k}", "earned": s} for k, s in enumerate(scores)]}
        ],
    }
    bulk, reference = grade_both(body)
    for result in (bulk, reference):
        assert result["current"]["percent"] == 255243207792866.66
        assert result["categories"][0]["current"]["percent"] == 255243207792866.66
