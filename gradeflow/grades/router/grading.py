"""Grading computations that store nothing."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gradeflow.grades.schemas import EvaluateResponse
from gradeflow.grades.service import evaluation
from gradeflow.grading.policy import EvaluateRequest
from gradeflow.http.deps import PrincipalDep, SettingsDep

router = APIRouter(prefix="/v1/grading", tags=["grading"])


@router.post("/evaluate", response_model=EvaluateResponse)
async def evaluate(principal: PrincipalDep, settings: SettingsDep, body: EvaluateRequest) -> Response:
    """Grade up to 10,000 learners under a policy without storing anything: the what-if tool and
    the contract the presets are checked through. Every `percent` is on a 0-100 scale; for
    `openedx` current and final are equal.

    One request grades at most `GRADEFLOW_LIMITS__EVALUATE_MAX_CELLS` cells (learners x assessments,
    or score rows if more; 1,000,000 by default) with an API key, and
    `GRADEFLOW_LIMITS__EVALUATE_MAX_CELLS_USER` (100,000) with a user token: more is 413, naming
    the limit and the request's size, before any grading."""
    content = await evaluation.evaluate(principal, body, settings.limits)
    return Response(content, media_type="application/json")
