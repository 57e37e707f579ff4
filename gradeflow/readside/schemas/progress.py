"""A learner's progress as the API shows it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ProgressAssessment(BaseModel):
    assessment: str
    title: str
    category: str
    graded: bool = Field(description="Counted as graded (for a learner: published to them).")
    excused: bool
    earned: float | None
    possible: float
    percent: float | None
    dropped: bool
    due_at: datetime | None = Field(
        default=None, description="The learner's own due date (an extension's, else the assessment's; null: none)."
    )
    allowed_attempts: int = Field(default=1, description="Attempts the learner may take, extensions included.")


class ProgressCategory(BaseModel):
    name: str
    weight: float | None
    current_percent: float | None
    final_percent: float | None
    dropped: list[str]


class ProgressGrade(BaseModel):
    percent: float | None
    score: float | None
    possible: float | None
    grade: str | None
    passed: bool | None


class ProgressCutoff(BaseModel):
    grade: str
    min: float = Field(description="The cutoff as a fraction of the course grade.")
    reached: bool
    reachable: bool
    needed_share_of_remaining: float | None = Field(
        description="The share (0-1) of the points of every assessment not yet graded that reaches this "
        "cutoff, when it is not reached yet and still can be."
    )


class ProgressOut(BaseModel):
    learner: str
    published_only: bool = Field(description="True for the learner's own view: only published results count.")
    policy_version: int
    preset: str
    assessments: list[ProgressAssessment]
    categories: list[ProgressCategory]
    current: ProgressGrade
    final: ProgressGrade
    pass_mark: float | None
    cutoffs: list[ProgressCutoff]
