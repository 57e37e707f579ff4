"""The results table's rows as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from gradeflow.core.statuses import AttemptStatus
from gradeflow.http.schemas import Entered, LateStatus, Num, PageOut, PointsDeducted


class ResultRow(BaseModel):
    """A row of the results table; the results XLSX has these columns in this order (readside/repository/
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
