"""Grading computations that store nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from services.api.deps import PrincipalDep
from services.api.schemas.grading import EvaluateResponse
from shared.grading.engine import evaluate_response
from shared.grading.policy import EvaluateRequest

router = APIRouter(prefix="/v1/grading", tags=["grading"])


@router.post("/evaluate", response_model=EvaluateResponse)
async def evaluate(principal: PrincipalDep, body: EvaluateRequest) -> dict[str, Any]:
    """Grade up to 10,000 learners under a policy without storing anything: the what-if tool and
    the contract the presets are checked through. Every `percent` is on a 0-100 scale; for
    `openedx` current and final are equal."""
    return await asyncio.to_thread(evaluate_response, body)
