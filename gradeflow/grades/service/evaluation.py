"""The what-if evaluation (`POST /v1/grading/evaluate`): bounded per request, graded and serialised
off the event loop."""

from __future__ import annotations

import asyncio

import orjson

from gradeflow.access.service.auth import Principal
from gradeflow.core.errors import TooLarge
from gradeflow.core.settings import Limits
from gradeflow.grading.engine import evaluate_response
from gradeflow.grading.policy import EvaluateRequest


def cells(request: EvaluateRequest) -> int:
    """The request's size: learners x assessments of the sheet it grades (what both the work and the
    answer grow with), or its score rows when there are more of them (repeated rows)."""
    rows = sum(len(learner.scores) for learner in request.learners)
    return max(len(request.learners) * len(request.policy.assessments), rows)


def check_size(principal: Principal, request: EvaluateRequest, limits: Limits) -> None:
    """413 before any grading when the request is over the caller's limit: an API key's, or the lower
    one of a user token (an LMS user's browser should not hold a core for seconds)."""
    limit = limits.evaluate_max_cells if principal.is_key else limits.evaluate_max_cells_user
    size = cells(request)
    if size > limit:
        who = "an API key" if principal.is_key else "a user token"
        raise TooLarge(
            f"This request has {size:,} cells ({len(request.learners):,} learners x "
            f"{len(request.policy.assessments):,} assessments, or its score rows if more); the limit for "
            f"{who} is {limit:,} cells per request. Split the learners over several requests.",
            extra={"limit": limit, "cells": size},
        )


def _graded_json(request: EvaluateRequest) -> bytes:
    return orjson.dumps(evaluate_response(request))


async def evaluate(principal: Principal, request: EvaluateRequest, limits: Limits) -> bytes:
    """The graded learners as the JSON answer (EvaluateResponse). Grading and encoding are CPU work
    in a thread: encoding a large answer on the event loop would stall every other request."""
    check_size(principal, request, limits)
    return await asyncio.to_thread(_graded_json, request)
