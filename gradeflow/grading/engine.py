"""Evaluate a policy over learners' scores: dispatch to the preset, shape the answer."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from gradeflow.grading import canvas, openedx, standard
from gradeflow.grading.policy import EvaluateRequest, Policy
from gradeflow.grading.results import LearnerResult
from gradeflow.grading.sheet import build_sheet

PRESETS = {"standard": standard.grade, "openedx": openedx.grade, "canvas": canvas.grade}


def fingerprint(policy: Policy) -> str:
    """Identifies the policy's content (same policy, same fingerprint)."""
    canonical = orjson.dumps(policy.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def evaluate(request: EvaluateRequest) -> list[LearnerResult]:
    return PRESETS[request.policy.preset](request.policy, build_sheet(request))


def evaluate_response(request: EvaluateRequest) -> dict[str, Any]:
    return {
        "policy_fingerprint": fingerprint(request.policy),
        "learners": [r.as_dict() for r in evaluate(request)],
    }
