"""Validated commands the services accept. The API uses them as request bodies."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints, model_validator

from shared.errors import FieldError, ValidationFailed
from shared.validation import Input, clean_text

ExternalId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=r"^[^/\x00-\x1f]+$"),
    AfterValidator(clean_text),
    Field(description="The LMS's own identifier (no slashes)."),
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Email = Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Points = Annotated[
    Decimal,
    Field(ge=0, allow_inf_nan=False, max_digits=18, decimal_places=6, description="Points, at most 6 decimals."),
]
CourseRole = Literal["planner", "grader", "publisher", "viewer"]
AttemptStatus = Literal["to_be_taken", "in_progress", "submitted", "pending_grading", "graded", "cancelled"]
ScoreSource = Literal["auto", "manual", "override"]


class Command(Input):
    pass


class CourseCreate(Command):
    external_id: ExternalId
    title: Text
    archived: bool = False


class CoursePatch(Command):
    title: Text | None = None
    archived: bool | None = None


class EnrollmentFields(Command):
    username: ShortText | None = None
    email: Email | None = None
    full_name: Text | None = None
    track: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "audit"
    status: Literal["enrolled", "unenrolled"] = "enrolled"
    cohort: ShortText | None = None
    team: ShortText | None = None
    groups: list[ShortText] = Field(default_factory=list, max_length=100)
    is_course_team: bool = False


class EnrollmentIn(EnrollmentFields):
    external_id: ExternalId


class EnrollmentBatch(Command):
    enrollments: list[EnrollmentIn] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _unique(self) -> EnrollmentBatch:
        _check_unique([e.external_id for e in self.enrollments], "enrollments", "external_id")
        return self


class EnrollmentPatch(Command):
    username: ShortText | None = None
    email: Email | None = None
    full_name: Text | None = None
    track: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    status: Literal["enrolled", "unenrolled"] | None = None
    cohort: ShortText | None = None
    team: ShortText | None = None
    groups: list[ShortText] | None = Field(default=None, max_length=100)
    is_course_team: bool | None = None


class MemberRoles(Command):
    roles: list[CourseRole] = Field(min_length=1, max_length=4)


class ItemIn(Command):
    external_id: ExternalId
    number: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        default=None, description='Number label shown to people, such as "1a".'
    )
    title: Text | None = None
    points_possible: Points
    marking: Literal["auto", "manual"] = "auto"


class MarkingSettings(Command):
    """How manual items of an assessment are marked and reconciled."""

    workflow: Literal["individual", "shared"] = "individual"
    graders_per_item: Annotated[int, Field(ge=1, le=5)] = 1
    reconciliation: Literal["average", "max", "min", "final_grader"] = "average"
    discrepancy_points: Points | None = Field(
        default=None, description="Marks further apart than this go to a third marker instead."
    )
    discrepancy_fraction: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = Field(
        default=None, description="The same threshold as a fraction of the item's points."
    )
    final_grader: ExternalId | None = Field(default=None, description="Who sets the mark under final_grader.")
    graders_confirm: bool = Field(default=False, description="Graders may confirm the attempts allocated to them.")

    @model_validator(mode="after")
    def _final_grader(self) -> MarkingSettings:
        if self.reconciliation == "final_grader" and self.final_grader is None:
            raise ValidationFailed.one("/marking/final_grader", "Required when reconciliation is final_grader.")
        return self


class AssessmentFields(Command):
    title: Text | None = None
    category: ShortText | None = None
    points_possible: Points | None = Field(
        default=None, description="Required without items; with items it is the sum of theirs."
    )
    position: Annotated[int, Field(ge=0, le=1_000_000)] | None = Field(
        default=None, description="Order in the course; new assessments go last by default."
    )
    due_at: AwareDatetime | None = None
    items: list[ItemIn] | None = Field(default=None, max_length=1000)
    marking: MarkingSettings | None = None

    @model_validator(mode="after")
    def _unique_items(self) -> AssessmentFields:
        if self.items:
            _check_unique([i.external_id for i in self.items], "items", "external_id")
        return self


class AssessmentCreate(AssessmentFields):
    external_id: ExternalId
    title: Text
    category: ShortText

    @model_validator(mode="after")
    def _points(self) -> AssessmentCreate:
        if not self.items and self.points_possible is None:
            raise ValidationFailed.one("/points_possible", "Required for an assessment without items.")
        return self


class AttemptIn(Command):
    status: AttemptStatus
    started_at: AwareDatetime | None = None
    submitted_at: AwareDatetime | None = None


class ItemScoreIn(Command):
    item: ExternalId
    earned: Points
    possible: Points | None = None


class ScoreIn(Command):
    """An assessment's score for one learner: `earned` directly, or `items` for an assessment with items."""

    earned: Points | None = None
    possible: Points | None = Field(default=None, description="Defaults to the assessment's points possible.")
    items: list[ItemScoreIn] | None = Field(default=None, min_length=1, max_length=1000)
    source: ScoreSource = "auto"
    graded_by: ShortText | None = Field(default=None, description="Who scored it (defaults to the caller).")

    @model_validator(mode="after")
    def _one_of(self) -> ScoreIn:
        if (self.earned is None) == (self.items is None):
            detail = "Give either earned (an assessment without items) or items, not both."
            raise ValidationFailed.one("/earned" if self.earned is None else "/items", detail)
        if self.items:
            _check_unique([i.item for i in self.items], "items", "item")
        return self


class ScoreRow(Command):
    assessment: ExternalId
    learner: ExternalId
    item: ExternalId | None = Field(default=None, description="Set for an item score; omit for an assessment score.")
    earned: Points
    possible: Points | None = None
    source: ScoreSource = "auto"
    graded_by: ShortText | None = None


class ScoreBatch(Command):
    scores: list[ScoreRow] = Field(min_length=1, max_length=10_000)


def _check_unique(values: list[str], array: str, field: str) -> None:
    # Raised as a domain error (not ValueError) so it keeps the exact pointer of the repeated field.
    seen: dict[str, int] = {}
    errors = []
    for i, v in enumerate(values):
        if v in seen:
            at = f"/{array}/{i}/{field}".rstrip("/")
            errors.append(FieldError(at, f"{v!r} repeats /{array}/{seen[v]}/{field}".rstrip("/")))
        else:
            seen[v] = i
    if errors:
        raise ValidationFailed(errors)


class AllocationRequest(Command):
    graders: list[ExternalId] = Field(min_length=1, max_length=500)
    mode: Literal["even", "random"] = "even"
    seed: int | None = Field(default=None, description="For mode random: the same seed gives the same allocation.")
    by: Literal["candidate", "item"] = "candidate"
    role: Literal["marker", "third"] = Field(
        default="marker", description="third: allocate the items whose marks differ by more than the threshold."
    )

    @model_validator(mode="after")
    def _unique_graders(self) -> AllocationRequest:
        _check_unique(list(self.graders), "graders", "")
        return self


class MarkIn(Command):
    points: Points
    comment: Annotated[str, StringConstraints(max_length=10_000)] | None = None


class ConfirmRequest(Command):
    learners: list[ExternalId] | None = Field(
        default=None, max_length=10_000, description="Default: every graded attempt not confirmed yet."
    )


class RescoreRequest(Command):
    points_possible: Points | None = Field(default=None, description="The item's new points (default: unchanged).")
    mode: Literal["scale", "full_credit", "keep"] = Field(
        default="scale",
        description="scale: earned points scale with the new points; full_credit: everyone scored gets full "
        "points (a faulty question); keep: earned points stay, only points possible change.",
    )


class WorkgroupIn(Command):
    members: list[ExternalId] = Field(min_length=1, max_length=100)
