"""Evaluate a policy over learners' scores: dispatch to the preset, shape the answer."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from gradeflow.grading import canvas, openedx, standard
from gradeflow.grading.policy import EvaluateRequest, Policy
from gradeflow.grading.results import LearnerResult
from gradeflow.grading.sheet import build_sheet

PRESETS = {"standard": standard.grade, "openedx": openedx.grade, "canvas": canvas.grade}

# Each preset's documented rule for the weight a category's percent gets in the course grade, given
# which categories count (have points possible): the grade and its explanation both use it.
APPLIED_WEIGHTS = {
    "standard": standard.applied_weights,
    "openedx": openedx.applied_weights,
    "canvas": canvas.applied_weights,
}


def applied_weights(policy: Policy) -> Callable[[Sequence[bool]], list[float | None]]:
    """The policy's applied weights by which categories count, remembered per pattern (learners
    share a handful)."""
    rule = APPLIED_WEIGHTS[policy.preset]
    known: dict[tuple[bool, ...], list[float | None]] = {}

    def of(counts: Sequence[bool]) -> list[float | None]:
        key = tuple(counts)
        if key not in known:
            known[key] = rule(policy, key)
        return known[key]

    return of


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
