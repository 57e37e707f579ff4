"""The weight each category's percent gets in a course grade, as the stored explanation shows it:
each preset's documented rule (docs/grading.md), the same one its grade applies."""

from __future__ import annotations

from typing import Any

import pytest

from gradeflow.grades.service.explanations import explanation
from gradeflow.grading import engine, letters
from gradeflow.grading.policy import Cutoff, EvaluateRequest


def explain(preset: str, weights: list[float], earned: list[float]) -> tuple[float | None, list[Any]]:
    """One learner, one 100-point assessment per category: (final percent, applied weights)."""
    names = [f"c{k}" for k in range(len(weights))]
    request = EvaluateRequest.model_validate(
        {
            "policy": {
                "preset": preset,
                "categories": [{"name": n, "weight": w} for n, w in zip(names, weights, strict=True)],
                "assessments": [{"id": n, "category": n, "possible": 100} for n in names],
            },
            "learners": [
                {
                    "learner_id": "ann",
                    "scores": [{"assessment_id": n, "earned": e} for n, e in zip(names, earned, strict=True)],
                }
            ],
        }
    )
    (result,) = engine.evaluate(request)
    shown = explanation(request.policy, result)["final"]
    return result.final.percent, [c["applied_weight"] for c in shown]


def test_canvas_weights_summing_to_100_are_applied_as_given() -> None:
    # 0.7 + 0.2 + 0.1 is 100 % (Canvas sums the percents exactly) but 0.9999999999999999 in doubles:
    # the grade is not scaled, and the explanation said 0.7000000000000001, 0.2..., 0.1....
    percent, applied = explain("canvas", [0.7, 0.2, 0.1], [100, 50, 0])
    assert percent == 80.0
    assert applied == [0.7, 0.2, 0.1]


def test_canvas_weights_below_100_are_scaled_up_as_the_grade_is() -> None:
    percent, applied = explain("canvas", [0.3, 0.2], [100, 50])
    assert percent == 80.0  # (30 + 10) / 50 %
    assert applied == [0.6, 0.4]


def test_canvas_weights_above_100_are_never_scaled_down() -> None:
    percent, applied = explain("canvas", [1.0, 1.0], [60, 80])
    assert percent == 140.0
    assert applied == [1.0, 1.0]


def test_standard_renormalises_in_exact_decimals() -> None:
    # 0.6 + 0.3 + 0.1 is exactly 1: the weights stay as written (it said 0.6000000000000001).
    percent, applied = explain("standard", [0.6, 0.3, 0.1], [100, 50, 0])
    assert percent == 75.0
    assert applied == [0.6, 0.3, 0.1]


@pytest.mark.parametrize("preset", ["standard", "canvas"])
def test_categories_without_points_weigh_nothing_and_the_rest_are_renormalised(preset: str) -> None:
    request = EvaluateRequest.model_validate(
        {
            "policy": {
                "preset": preset,
                "categories": [{"name": "hw", "weight": 0.25}, {"name": "exam", "weight": 0.25}],
                "assessments": [
                    {"id": "hw", "category": "hw", "possible": 10},
                    {"id": "exam", "category": "exam", "possible": 10},
                ],
            },
            "learners": [{"learner_id": "ann", "scores": [{"assessment_id": "hw", "earned": 7}]}],
        }
    )
    (result,) = engine.evaluate(request)
    current = explanation(request.policy, result)["current"]
    assert [c["applied_weight"] for c in current] == [1.0, 0.0]
    assert result.current.percent == 70.0


def test_openedx_weights_are_never_normalised() -> None:
    percent, applied = explain("openedx", [0.3, 0.3], [100, 50])
    assert percent == 45.0
    assert applied == [0.3, 0.3]


CUTOFFS = [Cutoff(grade="A", min=0.9), Cutoff(grade="B", min=0.8), Cutoff(grade="F", min=0)]


def test_the_letter_is_the_first_cutoff_reached_highest_first() -> None:
    assert letters.letter(89.99, CUTOFFS, letters.exact_percent) == "B"
    assert letters.letter(90.0, CUTOFFS, letters.exact_percent) == "A"
    assert letters.letter(-1.0, CUTOFFS, letters.exact_percent) is None
    assert letters.letter(-1.0, CUTOFFS, letters.exact_percent, last_below=True) == "F"
    assert letters.letter(None, CUTOFFS, letters.exact_percent) is None
    assert letters.letter(0.85, CUTOFFS, letters.fraction) == "B"


def test_the_letter_of_many_percents_is_the_letter_of_each() -> None:
    import numpy as np

    percents = np.array([95.0, 85.0, 10.0, -5.0, np.nan])
    for last_below in (False, True):
        index = letters.letter_index(percents, CUTOFFS, letters.exact_percent, last_below)
        expected = [
            None if p != p else letters.letter(float(p), CUTOFFS, letters.exact_percent, last_below) for p in percents
        ]
        assert letters.names(index, CUTOFFS) == expected


def test_cutoffs_are_sorted_highest_first_keeping_the_listed_order_of_equals() -> None:
    cutoffs = [Cutoff(grade="F", min=0), Cutoff(grade="A", min=0.9), Cutoff(grade="A+", min=0.9)]
    assert [c.grade for c in letters.high_first(cutoffs)] == ["A", "A+", "F"]


@pytest.mark.parametrize("preset", ["standard", "canvas", "openedx"])
def test_a_policy_evaluated_for_no_learner_answers_no_learner(preset: str) -> None:
    body = {"policy": {"preset": preset, "categories": [{"name": "H", "weight": 1}], "assessments": []}, "learners": []}
    assert engine.evaluate_response(EvaluateRequest.model_validate(body))["learners"] == []
