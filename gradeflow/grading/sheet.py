"""Scores as dense learner x assessment arrays: the one input every preset grades from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gradeflow.core.errors import FieldError, ValidationFailed
from gradeflow.grading.policy import EvaluateRequest, Policy

MISSING, GRADED, UNGRADED, EXCUSED = 0, 1, 2, 3

F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]


@dataclass
class Sheet:
    """`earned`/`possible`/`state` are [learners, assessments] in course order."""

    learner_ids: list[str]
    assessment_ids: list[str]
    categories: list[str]  # per assessment
    omit: npt.NDArray[np.bool_]  # per assessment
    earned: F64  # NaN unless graded
    possible: F64  # the learner's points possible (override or catalogue)
    state: I8

    def columns(self, category: str) -> list[int]:
        return [j for j, c in enumerate(self.categories) if c == category]


def build_sheet(request: EvaluateRequest) -> Sheet:
    """Dense arrays from the request. A learner's repeated rows for one assessment: the first counts."""
    policy: Policy = request.policy
    index = {a.id: j for j, a in enumerate(policy.assessments)}
    n_l, n_a = len(request.learners), len(policy.assessments)
    catalogue = np.array([a.possible for a in policy.assessments], dtype=np.float64)
    earned = np.full((n_l, n_a), np.nan)
    possible = np.broadcast_to(catalogue, (n_l, n_a)).copy()
    state = np.zeros((n_l, n_a), dtype=np.int8)
    errors: list[FieldError] = []
    for i, learner in enumerate(request.learners):
        for k, score in enumerate(learner.scores):
            j = index.get(score.assessment_id)
            if j is None:
                pointer = f"/learners/{i}/scores/{k}/assessment_id"
                errors.append(FieldError(pointer, "not in /policy/assessments"))
                continue
            if state[i, j] != MISSING:
                continue
            if score.excused:
                state[i, j] = EXCUSED
            elif score.earned is None:
                state[i, j] = UNGRADED
            else:
                state[i, j] = GRADED
                earned[i, j] = score.earned
            if score.possible is not None:
                possible[i, j] = score.possible
    if errors:
        raise ValidationFailed(errors[:100])
    return Sheet(
        learner_ids=[learner.learner_id for learner in request.learners],
        assessment_ids=[a.id for a in policy.assessments],
        categories=[a.category for a in policy.assessments],
        omit=np.array([a.omit_from_final for a in policy.assessments], dtype=bool),
        earned=earned,
        possible=possible,
        state=state,
    )
