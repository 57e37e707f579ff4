"""Courses, members, enrollments, assessments, attempts and scores as the API shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from gradeflow.courses.commands import MarkingSettings, ReleaseSettings
from gradeflow.http.schemas import Entered, LateStatus, Num, Out, PointsDeducted, PublicationState


class CourseOut(Out):
    external_id: str
    title: str
    archived: bool
    created_at: datetime
    updated_at: datetime


class MemberOut(Out):
    user_id: str
    roles: list[str]
    publish_assessments: list[str] | None = Field(
        default=None, description="The assessments the publisher role covers; null: the whole course."
    )


class EnrollmentOut(Out):
    external_id: str
    username: str | None
    email: str | None
    full_name: str | None
    given_name: str | None
    family_name: str | None
    track: str
    id_verified: bool
    status: str
    cohort: str | None
    team: str | None
    groups: list[str]
    experiment_groups: dict[str, str] = Field(description="{group configuration name: group name}")
    is_course_team: bool
    created_at: datetime
    updated_at: datetime


class BatchResult(BaseModel):
    written: int


class SkillOut(BaseModel):
    skill: str
    weight: Num


class ItemOut(Out):
    external_id: str
    number: str | None
    title: str | None
    points_possible: Num
    marking: str
    skills: list[SkillOut] = Field(description="The skills the item measures, with their weights.")
    position: int
    revision: int


class AssessmentOut(Out):
    external_id: str
    title: str
    category: str
    points_possible: Num
    position: int
    due_at: datetime | None
    items: list[ItemOut]
    marking: MarkingSettings
    release: ReleaseSettings
    initial_assessment: str | None = None  # a final test: the initial test progression reports compare it with
    allowed_attempts: int = Field(description="How many times a learner may take it (overrides grant extra ones).")
    anonymous: bool = Field(description="Anonymous marking: graders see candidate numbers, not identities.")
    anonymity_lifted_at: datetime | None = Field(description="When a planner lifted anonymity (null: not lifted).")
    moderation_required: bool = Field(description="Confirmation waits for moderation of a sample.")


class AttemptOut(Out):
    learner: str = Field(description="The learner's id; a candidate label for graders on an anonymous assessment.")
    candidate: str | None = Field(
        default=None,
        description="On an anonymous assessment: the candidate label graders know the learner by (`candidate-4821`).",
    )
    assessment: str
    status: str
    earned: Num | None
    possible: Num | None
    entered: Entered = None
    points_deducted: PointsDeducted = None
    late_status: LateStatus = None
    excused: bool = Field(
        description="The learner is excused from the assessment: left out of the course grade, shown as Excused."
    )
    started_at: datetime | None
    submitted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    attempt_number: int = Field(description="Which of the learner's attempts this is (1 for the first).")
    allowed_attempts: int = Field(
        description="How many attempts the learner may take: the assessment's plus their overrides' extra ones."
        " Another try (`status: in_progress` on a handed-in attempt) is possible while attempt_number is lower."
    )


class ItemScoreOut(BaseModel):
    item: str
    number: str | None
    earned: Num | None
    computed: Num | None = None
    possible: Num
    source: str | None
    graded_by: str | None
    graded_at: datetime | None
    stale: bool


class ScoreOut(BaseModel):
    assessment: str
    learner: str
    status: str
    earned: Num | None = Field(description="The result: the entered score less the late policy's deduction.")
    possible: Num | None
    entered: Entered = None
    points_deducted: PointsDeducted = None
    late_status: LateStatus = None
    source: str | None
    computed: Num | None = Field(default=None, description="The automatic score an override replaced.")
    confirmed: bool
    confirmed_by: str | None
    final: Num | None = Field(description="The result once grading is confirmed (null before).")
    excused: bool = Field(
        description="The learner is excused from the assessment (the score, if any, is kept but not counted)."
    )
    graded_by: str | None
    graded_at: datetime | None
    publication: PublicationState
    items: list[ItemScoreOut] | None = None
