"""The read side for LMS screens: the results table, the gradebook, learner progress, statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from gradeflow.core.commands import AttemptStatus
from gradeflow.http.schemas import Entered, LateStatus, Num, PageOut, PointsDeducted


class ResultRow(BaseModel):
    """A row of the results table; the results XLSX has these columns in this order (shared/services/
    results_table.COLUMNS). Times are in the requested zone, with its offset."""

    learner: str = Field(description="The learner's id in the LMS (the export's external identifier).")
    groups: list[str]
    cohort: str | None
    family_name: str | None = Field(description="Last name, where the LMS gave it.")
    given_name: str | None = Field(description="First name, where the LMS gave it.")
    full_name: str | None
    username: str | None
    assessment: str
    assessment_title: str
    status: AttemptStatus
    result: Num | str = Field(
        description='The score once graded; else "Excused", "Cancelled" (the attempt was cancelled) or "No result yet".'
    )
    possible: Num | None
    percent: float | None = Field(description="The score in percent of possible, once graded.")
    grader: str | None = Field(
        description="While the attempt waits for grading: who is allocated the work (usernames where the staff "
        "directory knows them, else user ids)."
    )
    publication: Literal["unpublished", "published", "changed"] = Field(
        description="Whether learners see the result; changed: published, but it has changed since "
        "(learners still see the published one)."
    )
    published_at: datetime | None
    submitted_at: datetime | None
    updated_at: datetime = Field(description="The attempt's last change.")
    email: str | None
    comments: str | None = Field(
        description='Graders\' comments on their marks, each after its grader: "g1: text | g2: text" (staff only).'
    )
    # Not columns of the XLSX: the learner's own due date and attempts (their overrides applied).
    due_at: datetime | None = Field(
        default=None, description="The learner's own due date: their overrides' latest, else the assessment's."
    )
    extra_attempts: int = Field(default=0, description="Extra attempts the learner's overrides grant (the most).")
    allowed_attempts: int = Field(default=1, description="Attempts the learner may take, extra ones included.")
    attempt_number: int = Field(default=1, description="Which of the learner's attempts this row shows.")
    # Nor the late policy's figures (the result above is the final one: entered less the deduction).
    entered: Entered = None
    points_deducted: PointsDeducted = None
    late_status: LateStatus = None


class ResultsPage(PageOut[ResultRow]):
    counts: dict[str, int] = Field(
        description="Attempts per status under every filter but the status filter (the dashboard's tabs)."
    )


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


class Histogram(BaseModel):
    edges: list[float]
    counts: list[int]


class Distribution(BaseModel):
    count: int
    mean: float | None
    median: float | None
    std: float | None = Field(description="Sample standard deviation (n - 1).")
    min: float | None
    max: float | None
    q1: float | None
    q3: float | None
    pass_rate: float | None
    histogram: Histogram
    letters: dict[str, int]


class AssessmentSummary(BaseModel):
    assessment: str
    title: str
    category: str
    count: int
    mean: float | None


class ItemStatistics(BaseModel):
    item: str
    number: str | None
    title: str | None
    points_possible: float
    count: int
    mean: float | None
    facility: float | None = Field(description="Mean score / points possible.")
    discrimination: float | None = Field(description="Correlation of the item's score with the rest of the test.")


class StatisticsOut(Distribution):
    of: str = Field(description='"course grade" or the assessment.')
    title: str | None = None
    assessments: list[AssessmentSummary] | None = None
    items: list[ItemStatistics] | None = None
