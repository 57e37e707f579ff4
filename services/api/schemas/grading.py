"""Shapes of grading answers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class GradeOut(BaseModel):
    percent: float | None
    score: float | None
    possible: float | None
    grade: str | None
    passed: bool | None


class CategoryVersionOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # preset-specific detail (placeholders, submission_count)

    percent: float | None
    score: float | None
    possible: float | None
    dropped: list[str]
    counted: list[str]


class CategoryOut(BaseModel):
    name: str
    current: CategoryVersionOut
    final: CategoryVersionOut


class LearnerGradeOut(BaseModel):
    learner_id: str
    current: GradeOut
    final: GradeOut
    categories: list[CategoryOut]


class EvaluateResponse(BaseModel):
    policy_fingerprint: str
    learners: list[LearnerGradeOut]
