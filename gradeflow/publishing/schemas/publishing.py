"""Publications, the publication summary and a learner's own results, as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from gradeflow.core.commands import ResultShow
from gradeflow.core.statuses import PublicationStatus
from gradeflow.courses.commands import ReleaseSettings
from gradeflow.http.schemas import MyLateStatus, MyPointsDeducted, Num
from gradeflow.publishing.commands import PublicationAction
from gradeflow.publishing.service.publishing import SkipReason


class PublicationSkipped(BaseModel):
    learner: str
    assessment: str | None = Field(description="Null for the course grade, or for the learner as a whole.")
    reason: SkipReason
    detail: str


class EmailCounts(BaseModel):
    pending: int
    sent: int
    failed: int


class PublicationOut(BaseModel):
    id: int
    action: PublicationAction
    assessments: list[str]
    course_grade: bool
    audience: dict[str, Any]
    show: ResultShow
    notify_email: bool
    publish_at: datetime | None
    status: PublicationStatus
    trigger: Literal["request", "automatic", "scheduled"] = Field(
        description="request: a publisher asked; automatic/scheduled: the assessment's release mode."
    )
    created_by: str
    created_at: datetime
    done_at: datetime | None
    changed: int = Field(description="Results published (or retracted) by this publication.")
    skipped: int = Field(description="Requested results not published, all reasons together.")
    skipped_detail: list[PublicationSkipped] = Field(description="The first 1,000 skipped results with the reason.")
    emails: EmailCounts


class AssessmentPublication(BaseModel):
    assessment: str
    release: ReleaseSettings
    participants: int = Field(description="Learners with an attempt that is not cancelled.")
    published: int
    graded_unpublished: int = Field(description="Graded results not yet published.")
    fully_published: bool


class CourseGradePublication(BaseModel):
    participants: int
    published: int
    fully_published: bool


class PublicationSummary(BaseModel):
    assessments: list[AssessmentPublication]
    course_grade: CourseGradePublication


class PublishedItem(BaseModel):
    item: str
    number: str | None
    title: str | None
    earned: Num | None
    possible: Num
    feedback: str | None = Field(default=None, description="Feedback on this item written for you.")


class MyResult(BaseModel):
    assessment: str
    title: str
    category: str
    earned: Num | None = Field(description="Null when you are excused.")
    possible: Num
    excused: bool = Field(default=False, description="You are excused from this assessment (shown as Excused).")
    points_deducted: MyPointsDeducted = None
    late_status: MyLateStatus = None
    published_at: datetime
    feedback: str | None = Field(default=None, description="Feedback on the assessment written for you.")
    items: list[PublishedItem] | None = Field(default=None, description="Only when published with item detail.")


class MyCourseGrade(BaseModel):
    percent: Num | None
    grade: str | None
    passed: bool | None
    published_at: datetime


class MyReviewSession(BaseModel):
    review: str = Field(description="The review session's external id.")
    assessment: str
    title: str | None
    starts_at: datetime
    ends_at: datetime
    open: bool = Field(description="Open now: GET /v1/me/courses/{course}/assessments/{assessment}/review answers.")


class MyResults(BaseModel):
    course: str
    learner: str
    results: list[MyResult]
    course_grade: MyCourseGrade | None = Field(description="Null until the course grade is published to you.")
    review_sessions: list[MyReviewSession] = Field(
        default_factory=list,
        description="Review sessions of your published results that are open now or still to come, in the order "
        "they open.",
    )
