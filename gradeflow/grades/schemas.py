"""Shapes of grading answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gradeflow.grading.policy import PolicyRules
from gradeflow.http.schemas import Out, PublicationState


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


class RecomputeOut(Out):
    id: int
    policy_version: int
    status: str
    progress: int
    message: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class PolicyVersionOut(Out):
    version: int
    policy: PolicyRules
    fingerprint: str
    created_by: str
    created_at: datetime


class PolicyOut(PolicyVersionOut):
    grades_version: int | None
    recompute: RecomputeOut | None


class Distribution(Out):
    letters: dict[str, int]
    histogram: dict[str, list[Any]]
    mean: float | None


class LetterChange(Out):
    model_config = ConfigDict(populate_by_name=True)

    learner: str
    from_: str | None = Field(alias="from")
    to: str | None
    percent_from: float | None
    percent_to: float | None


class PreviewOut(Out):
    learners: int
    before: Distribution
    after: Distribution
    changed: list[LetterChange]
    changed_count: int


class StoredGrade(Out):
    percent: float | None
    grade: str | None
    passed: bool | None


class CourseGradeOut(Out):
    learner: str
    policy_version: int
    current: StoredGrade
    final: StoredGrade
    computed_at: datetime
    publication: PublicationState


class CourseGradeExplained(CourseGradeOut):
    explanation: dict[str, Any]
