"""The gradebook's page as the API shows it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gradeflow.http.schemas import LateStatus, PageOut


class GradebookGrade(BaseModel):
    percent: float | None
    grade: str | None
    passed: bool | None


class GradebookCell(BaseModel):
    assessment: str
    status: str = Field(
        description="The attempt's status, `not_attempted` without one, `unconfirmed` while "
        "graded results wait for confirmation, `excused` when the learner is excused (shown as `Excused`)."
    )
    score: float | None = Field(description="Percent (view=percent) or points earned (view=absolute), once graded.")
    possible: float
    display: str = Field(description='As a gradebook shows it: "71.43%", "10 out of 14", or "-".')
    dropped: bool = Field(description="Dropped from the final grade by the category's drop rules.")
    late_status: LateStatus = None


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
    current: GradebookGrade
    final: GradebookGrade


class GradebookColumn(BaseModel):
    assessment: str
    title: str
    category: str
    points_possible: float


class GradebookPage(PageOut[GradebookRow]):
    columns: list[GradebookColumn]
