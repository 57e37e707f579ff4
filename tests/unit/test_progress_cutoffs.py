"""The cutoffs a learner's progress says are reached, or what share of the remaining points reaches
them: the letters the preset gives, at the boundaries too."""

from __future__ import annotations

from typing import Any

import pytest

from gradeflow.grading import engine
from gradeflow.grading.policy import EvaluateRequest
from gradeflow.grading.sheet import build_sheet
from gradeflow.readside.service.progress import Cutoff, still_needed


def progress_cutoffs(preset: str, cutoffs: list[tuple[str, float]], earned: list[float | None]) -> list[Cutoff]:
    """One learner, one 100-point assessment per entry of `earned` (None: not graded yet)."""
    names = [f"a{k}" for k in range(len(earned))]
    scores: list[dict[str, Any]] = [
        {"assessment_id": n, "earned": e} for n, e in zip(names, earned, strict=True) if e is not None
    ]
    request = EvaluateRequest.model_validate(
        {
            "policy": {
                "preset": preset,
                "categories": [{"name": "all", "weight": 1}],
                "assessments": [{"id": n, "category": "all", "possible": 100} for n in names],
                "cutoffs": [{"grade": g, "min": m} for g, m in cutoffs],
            },
            "learners": [{"learner_id": "ann", "scores": scores}],
        }
    )
    (result,) = engine.evaluate(request)
    return still_needed(request.policy, build_sheet(request), result.final)


# 0.07 * 100, 0.55 * 100 and 0.56 * 100 are each a hair above the whole percent in doubles.
@pytest.mark.parametrize("preset", ["standard", "openedx", "canvas"])
@pytest.mark.parametrize("boundary", [0.07, 0.29, 0.55, 0.56])
def test_a_score_on_a_cutoff_reaches_it_as_its_letter_does(preset: str, boundary: float) -> None:
    whole = round(boundary * 100)
    reached = progress_cutoffs(preset, [("A", boundary), ("F", 0.0)], [whole])
    assert [(c.grade, c.reached, c.reachable, c.needed_share_of_remaining) for c in reached] == [
        ("A", True, True, None),
        ("F", True, True, None),
    ]
    below = progress_cutoffs(preset, [("A", boundary), ("F", 0.0)], [whole - 1])
    assert [(c.grade, c.reached, c.reachable) for c in below] == [("A", False, False), ("F", True, True)]


def test_the_share_still_needed_is_the_first_step_graded_with_the_letter() -> None:
    # 55 of 100 graded and 100 to come: 55 + 100 x share >= 0.56 x 200 = 112 needs a share of 0.57.
    cutoffs = progress_cutoffs("standard", [("A", 0.56), ("B", 0.275), ("F", 0.0)], [55, None])
    assert [(c.grade, c.reached, c.reachable, c.needed_share_of_remaining) for c in cutoffs] == [
        ("A", False, True, pytest.approx(0.57)),
        ("B", True, True, None),
        ("F", True, True, None),
    ]


def test_a_cutoff_no_share_reaches_is_out_of_reach() -> None:
    cutoffs = progress_cutoffs("standard", [("A", 0.9), ("F", 0.0)], [0, None])
    assert [(c.grade, c.reached, c.reachable, c.needed_share_of_remaining) for c in cutoffs] == [
        ("A", False, False, None),
        ("F", True, True, None),
    ]
