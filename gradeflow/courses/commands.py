"""Courses commands: what the API accepts as request bodies and the use cases take."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from gradeflow.core.commands import (
    Command,
    CourseRole,
    Email,
    ExternalId,
    Moment,
    Points,
    ResultShow,
    ShortText,
    Text,
    check_unique,
    window_ends_after_start,
)
from gradeflow.core.errors import FieldError, ValidationFailed


class CourseCreate(Command):
    external_id: ExternalId
    title: Text
    archived: bool = False


class CoursePatch(Command):
    title: Text | None = None
    archived: bool | None = None


ExperimentGroups = Annotated[
    dict[ShortText, ShortText],
    Field(
        max_length=20,
        description="Content experiments: the learner's group in each group configuration, "
        "{configuration name: group name} (the grade report has one column per configuration).",
    ),
]
ID_VERIFIED_DESCRIPTION = (
    "Whether the learner's identity was verified (the grade report shows it on the verified and professional tracks)."
)


class EnrollmentFields(Command):
    username: ShortText | None = None
    email: Email | None = None
    full_name: Text | None = None
    given_name: ShortText | None = None
    family_name: ShortText | None = None
    track: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "audit"
    id_verified: bool = Field(default=False, description=ID_VERIFIED_DESCRIPTION)
    status: Literal["enrolled", "unenrolled"] = "enrolled"
    cohort: ShortText | None = None
    team: ShortText | None = None
    groups: list[ShortText] = Field(default_factory=list, max_length=100)
    experiment_groups: ExperimentGroups = Field(default_factory=dict)
    is_course_team: bool = False


class EnrollmentIn(EnrollmentFields):
    external_id: ExternalId


class EnrollmentBatch(Command):
    enrollments: list[EnrollmentIn] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _unique(self) -> EnrollmentBatch:
        check_unique([e.external_id for e in self.enrollments], "enrollments", "external_id")
        return self


class EnrollmentPatch(Command):
    username: ShortText | None = None
    email: Email | None = None
    full_name: Text | None = None
    given_name: ShortText | None = None
    family_name: ShortText | None = None
    track: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    id_verified: bool | None = Field(default=None, description=ID_VERIFIED_DESCRIPTION)
    status: Literal["enrolled", "unenrolled"] | None = None
    cohort: ShortText | None = None
    team: ShortText | None = None
    groups: list[ShortText] | None = Field(default=None, max_length=100)
    experiment_groups: ExperimentGroups | None = None
    is_course_team: bool | None = None


class AllowanceIn(Command):
    notes: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        default=None, description="Why the learner is on the allow list (at most 1000 characters)."
    )


class MemberRoles(Command):
    roles: list[CourseRole] = Field(min_length=1, max_length=5)
    publish_assessments: list[ExternalId] | None = Field(
        default=None,
        max_length=1000,
        description="Limits the publisher role to these assessments (and not the course grade); "
        "omitted: the whole course.",
    )

    @model_validator(mode="after")
    def _scope(self) -> MemberRoles:
        if self.publish_assessments is not None and "publisher" not in self.roles:
            raise ValidationFailed.one("/publish_assessments", "Only the publisher role can be limited.")
        return self


class ReleaseSettings(Command):
    """How an assessment's results reach learners."""

    mode: Literal["manual", "automatic", "scheduled"] = Field(
        default="manual",
        description="manual: a publisher publishes; automatic: fully auto-scored assessments only; "
        "scheduled: every publishable result from `at` on.",
    )
    after: Literal["each_attempt", "last_attempt"] = Field(
        default="each_attempt",
        description="For automatic: publish each graded attempt, or all at once when no attempt is still to be "
        "taken or in progress and every learner's own due date (if any; extensions included) has passed.",
    )
    at: Moment | None = Field(default=None, description="For scheduled: when results become visible.")
    show: ResultShow = "total_only"
    notify_email: bool = False

    @model_validator(mode="after")
    def _at(self) -> ReleaseSettings:
        if self.mode == "scheduled" and self.at is None:
            raise ValidationFailed.one("/release/at", "Required when mode is scheduled.")
        return self


class SkillIn(Command):
    """A skill an item measures: its points count towards the skill's level, times the weight."""

    skill: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    weight: Annotated[Decimal, Field(gt=0, le=1000, allow_inf_nan=False, max_digits=10, decimal_places=6)] = Field(
        default=Decimal(1), description="How much the item's points count towards the skill (0 < weight <= 1000)."
    )


class ItemIn(Command):
    external_id: ExternalId
    number: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        default=None, description='Number label shown to people, such as "1a".'
    )
    title: Text | None = None
    points_possible: Points
    marking: Literal["auto", "manual"] = "auto"
    skills: list[SkillIn] | None = Field(
        default=None,
        max_length=50,
        description="Skills the item measures (each named once), for the skills file. Omitted on a change: kept.",
    )


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
    due_at: Moment | None = None
    items: list[ItemIn] | None = Field(default=None, max_length=1000)
    marking: MarkingSettings | None = None
    release: ReleaseSettings | None = None
    initial_assessment: ExternalId | None = Field(
        default=None,
        description="A final test: the initial test on the same subject that progression reports compare it"
        " with (null: none).",
    )
    allowed_attempts: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        default=None,
        description="How many times a learner may take it (default 1); overrides grant a learner or group extra ones.",
    )
    anonymous: bool | None = Field(
        default=None,
        description="Anonymous marking: graders and moderators see candidate numbers instead of learners' identities"
        " until a planner lifts anonymity.",
    )
    moderation_required: bool | None = Field(
        default=None,
        description="Confirmation waits for moderation: a sample picked and every sampled attempt agreed or adjusted.",
    )

    @model_validator(mode="after")
    def _unique_items(self) -> AssessmentFields:
        if self.items:
            check_unique([i.external_id for i in self.items], "items", "external_id")
            repeats: list[FieldError] = []
            for n, item in enumerate(self.items):
                try:
                    check_unique([s.skill for s in item.skills or []], f"items/{n}/skills", "skill")
                except ValidationFailed as exc:
                    repeats += exc.errors
            if repeats:
                raise ValidationFailed(repeats)
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


# --- course sessions and learner groups -----------------------------------------------------------


class SessionCreate(Command):
    external_id: ExternalId
    title: Text | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = Field(default=None, description="Later than starts_at.")

    @model_validator(mode="after")
    def _window(self) -> SessionCreate:
        window_ends_after_start(self.starts_at, self.ends_at)
        return self


class SessionPatch(Command):
    """The fields to change; null clears a title or a time."""

    title: Text | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None


class SessionAttempt(Command):
    assessment: ExternalId
    learner: ExternalId


class SessionAttempts(Command):
    attempts: list[SessionAttempt] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _unique(self) -> SessionAttempts:
        # One statement writes them all: a pair twice would be one row written twice.
        seen: dict[tuple[str, str], int] = {}
        errors = []
        for i, a in enumerate(self.attempts):
            first = seen.setdefault((a.assessment, a.learner), i)
            if first != i:
                errors.append(FieldError(f"/attempts/{i}", f"Repeats /attempts/{first}."))
        if errors:
            raise ValidationFailed(errors)
        return self


# The results filter's two fields, on every report kind that selects learners by group or cohort.
SessionFilter = Annotated[
    ExternalId | None, Field(description="A course session: only the attempts in it (its learners, for a report).")
]
IncludeArchived = Annotated[
    bool, Field(description="Also the learners whose every group is archived (hidden by default).")
]


class GroupState(Command):
    archived: bool = Field(description="true hides the group's learners from the results table and reports.")
