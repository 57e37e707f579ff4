"""The read side for LMS screens: the results table, the gradebook, learner progress, statistics."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.api.schemas.common import Num, PageOut, PublicationState


class ResultRow(BaseModel):
    learner: str
    username: str | None
    full_name: str | None
    email: str | None
    cohort: str | None
    groups: list[str]
    assessment: str
    assessment_title: str
    status: str
    earned: Num | None = Field(description="The score, once graded.")
    possible: Num | None
    percent: float | None
    result: str | None = Field(description='"No result yet" until graded, else null.')
    grader: str | None = Field(description="Who is allocated the work while it waits for grading.")
    publication: PublicationState
    submitted_at: datetime | None
    updated_at: datetime
    comments: str | None


class ResultsPage(PageOut[ResultRow]):
    counts: dict[str, int] = Field(
        description="Attempts per status under every filter but the status filter (the dashboard's tabs)."
    )


class GradeOut(BaseModel):
    percent: float | None
    grade: str | None
    passed: bool | None


class GradebookCell(BaseModel):
    assessment: str
    status: str = Field(
        description="The attempt's status, `not_attempted` without one, `unconfirmed` while "
        "graded results wait for confirmation."
    )
    score: float | None = Field(description="Percent (view=percent) or points earned (view=absolute), once graded.")
    possible: float
    display: str = Field(description='As a gradebook shows it: "71.43%", "10 out of 14", or "-".')
    dropped: bool = Field(description="Dropped from the final grade by the category's drop rules.")


class GradebookCategory(BaseModel):
    name: str
    current_percent: float | None
    final_percent: float | None
    dropped: list[str]


class GradebookRow(BaseModel):
    learner: str
    username: str | None
    full_name: str | None
    email: str | None
    track: str
    cohort: str | None
    groups: list[str]
    status: str
    course_team: bool
    assessments: list[GradebookCell]
    categories: list[GradebookCategory]
    current: GradeOut
    final: GradeOut


class GradebookColumn(BaseModel):
    assessment: str
    title: str
    category: str
    points_possible: float


class GradebookPage(PageOut[GradebookRow]):
    columns: list[GradebookColumn]
