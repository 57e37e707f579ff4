"""The shared Open edX and Canvas vectors in-process, through the engine's entry point: the request
validated as the API validates it, graded, and read back as the JSON the API sends (every vector; the
API's route is proved on a few of them in tests/api/test_grading_vectors.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gradeflow.grading.engine import evaluate_response
from gradeflow.grading.policy import EvaluateRequest
from tests.canvas_vectors import CANVAS, assert_matches_canvas, canvas_request
from tests.openedx_vectors import OPENEDX, REJECTED, assert_matches_openedx, openedx_request


def evaluate(body: dict[str, Any]) -> dict[str, Any]:
    """What POST /v1/grading/evaluate answers for `body` (it sends this same orjson encoding)."""
    answer: dict[str, Any] = orjson.loads(orjson.dumps(evaluate_response(EvaluateRequest.model_validate(body))))
    return answer


@pytest.mark.parametrize("case", OPENEDX, ids=[c["id"] for c in OPENEDX])
def test_openedx_vectors(case: dict[str, Any]) -> None:
    if REJECTED in case["tags"]:
        pytest.skip("two GRADER entries of one type: a policy Gradeflow rejects (duplicate category names)")
    for learner, expected in zip(case["input"]["learners"], case["expected"], strict=True):
        [got] = evaluate(openedx_request(case, learner))["learners"]
        assert_matches_openedx(got, expected)


@pytest.mark.parametrize("case", CANVAS, ids=[c["id"] for c in CANVAS])
def test_canvas_vectors(case: dict[str, Any]) -> None:
    assert_matches_canvas(case, evaluate(canvas_request(case))["learners"])
