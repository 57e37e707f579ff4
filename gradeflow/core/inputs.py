"""Validated commands the services accept. The API uses them as request bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    ModelWrapValidatorHandler,
    RootModel,
    StringConstraints,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails

from gradeflow.core.errors import FieldError, ValidationFailed, json_pointer
from gradeflow.core.time_zones import TimeZone
from gradeflow.core.validation import TITLE_MAX, Input, clean_text

ExternalId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=r"^[^/\x00-\x1f]+$"),
    AfterValidator(clean_text),
    Field(description="The LMS's own identifier (no slashes)."),
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=TITLE_MAX)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Email = Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Points = Annotated[
    Decimal,
    Field(ge=0, allow_inf_nan=False, max_digits=18, decimal_places=6, description="Points, at most 6 decimals."),
]
_MOMENT_MIN = datetime(2, 1, 1, tzinfo=UTC)
_MOMENT_MAX = datetime(9998, 12, 31, tzinfo=UTC)


def _in_calendar(at: datetime) -> datetime:
    # The database reads a time in UTC and reports print bounds (an end at midnight as the day before):
    # a time a day from the calendar's ends would overflow either, so it is refused here.
    if not _MOMENT_MIN <= at <= _MOMENT_MAX:
        raise ValueError("Must be between 0002-01-01 and 9998-12-31 (UTC).")
    return at


Moment = Annotated[AwareDatetime, AfterValidator(_in_calendar)]
CourseRole = Literal["planner", "grader", "publisher", "viewer", "moderator"]
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
        _check_unique([e.external_id for e in self.enrollments], "enrollments", "external_id")
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


ResultShow = Literal["total_only", "with_items"]


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
            _check_unique([i.external_id for i in self.items], "items", "external_id")
            repeats: list[FieldError] = []
            for n, item in enumerate(self.items):
                try:
                    _check_unique([s.skill for s in item.skills or []], f"items/{n}/skills", "skill")
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


class AttemptIn(Command):
    status: AttemptStatus
    started_at: Moment | None = None
    submitted_at: Moment | None = None


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


def _check_unique(values: list[str], array: str, field: str | None) -> None:
    # Raised as a domain error (not ValueError) so it keeps the exact pointer of the repeated field.
    seen: dict[str, int] = {}
    errors = []
    tail = f"/{field}" if field else ""
    for i, v in enumerate(values):
        if v in seen:
            errors.append(FieldError(f"/{array}/{i}{tail}", f"{v!r} repeats /{array}/{seen[v]}{tail}"))
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


FEEDBACK_MAX = 5000


class FeedbackIn(Command):
    """What the learner is to read about their work (apart from the markers' marks and comments)."""

    text: Annotated[str, StringConstraints(max_length=FEEDBACK_MAX)] | None = Field(
        description=f"At most {FEEDBACK_MAX} characters; null (or only white space) removes the feedback."
    )


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


class Audience(Command):
    """Whose results: exactly one of the fields (`all` or `unpublished` set to true, or a list)."""

    all: bool = False
    unpublished: bool = Field(
        default=False, description="Every result not yet published, or changed since it was published."
    )
    learners: list[ExternalId] | None = Field(default=None, min_length=1, max_length=10_000)
    cohorts: list[ShortText] | None = Field(default=None, min_length=1, max_length=1000)
    groups: list[ShortText] | None = Field(default=None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one(self) -> Audience:
        chosen = [self.all, self.unpublished, *(x is not None for x in (self.learners, self.cohorts, self.groups))]
        if sum(chosen) != 1:
            raise ValidationFailed.one(
                "/audience", "Choose exactly one of all, unpublished, learners, cohorts or groups."
            )
        return self


class PublicationRequest(Command):
    action: Literal["publish", "retract"] = "publish"
    assessments: list[ExternalId] = Field(default_factory=list, max_length=1000)
    course_grade: bool = Field(default=False, description="The course grade, alone or with assessments.")
    audience: Audience
    show: ResultShow = Field(default="total_only", description="with_items: item scores and item feedback are visible.")
    notify_email: bool = False
    publish_at: Moment | None = Field(default=None, description="In the future: publish then, from the worker.")

    @model_validator(mode="after")
    def _what(self) -> PublicationRequest:
        if not self.assessments and not self.course_grade:
            raise ValidationFailed.one("/assessments", "Name assessments, the course grade, or both.")
        _check_unique(self.assessments, "assessments", None)
        if self.action == "retract" and (self.notify_email or self.publish_at is not None):
            pointer = "/notify_email" if self.notify_email else "/publish_at"
            raise ValidationFailed.one(pointer, "A retraction takes effect at once and sends no e-mail.")
        return self


# --- candidate review sessions ---------------------------------------------------------------------


def window_ends_after_start(
    starts_at: datetime | None, ends_at: datetime | None, pointer: str = "/ends_at", start_name: str = "starts_at"
) -> None:
    """A window (review session, course session, report period) closes after it opens: 422 at the end's
    pointer otherwise."""
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValidationFailed.one(pointer, f"Must be later than {start_name}.")


class ReviewAudience(Command):
    """Who may review: a learner named, or in a group or cohort named; every list empty: every learner
    with a published result of the assessment."""

    learners: list[ExternalId] = Field(default_factory=list, max_length=10_000)
    groups: list[ShortText] = Field(default_factory=list, max_length=1000)
    cohorts: list[ShortText] = Field(default_factory=list, max_length=1000)


class ReviewSessionIn(Command):
    external_id: ExternalId
    title: Text | None = None
    starts_at: Moment = Field(description="The window opens at this time (included).")
    ends_at: Moment = Field(description="... and closes at this time (excluded); later than starts_at.")
    audience: ReviewAudience = Field(default_factory=ReviewAudience)

    @model_validator(mode="after")
    def _window(self) -> ReviewSessionIn:
        window_ends_after_start(self.starts_at, self.ends_at)
        return self


class ReviewSessionPatch(Command):
    """The fields to change (the audience is replaced as a whole); null clears the title."""

    title: Text | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    audience: ReviewAudience | None = None

    @model_validator(mode="after")
    def _not_null(self) -> ReviewSessionPatch:
        given = self.model_fields_set
        nulls = [f for f in ("starts_at", "ends_at", "audience") if f in given and getattr(self, f) is None]
        if nulls:
            raise ValidationFailed([FieldError(f"/{f}", "Must not be null.") for f in nulls])
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


# --- reports ----------------------------------------------------------------------------------------


class CsvParams(Command):
    bom: bool = Field(default=False, description="Start with a UTF-8 byte order mark (for spreadsheet programs).")


class GradeReportParams(CsvParams):
    pass


class ProblemGradeReportParams(CsvParams):
    pass


class MarksAndGradesParams(CsvParams):
    assessment: ExternalId


class _ResultsFilterParams(Command):
    """The results table's filters that choose learners and attempts."""

    assessment: ExternalId | None = None
    group: ShortText | None = None
    cohort: ShortText | None = None
    search: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description="Case-insensitive, in learner id, username, name and e-mail."
    )
    since: Moment | None = Field(default=None, description="Attempts last changed at or after this time.")
    until: Moment | None = Field(default=None, description="... and before this time.")
    session: SessionFilter = None
    include_archived: IncludeArchived = False


class ResultsXlsxParams(_ResultsFilterParams):
    """The results table's filters."""

    status: list[AttemptStatus] | None = Field(default=None, min_length=1, max_length=6)
    time_zone: TimeZone = Field(default="UTC", description="The IANA time zone the file's date-times are in.")


class SkillsXlsxParams(_ResultsFilterParams):
    """The results table's filters that choose learners and attempts (a skill level counts graded results only)."""


# A BCP 47 tag (en, pt-BR). Whether the label catalogue has it is checked when the report is requested
# (gradeflow.reports.service.report_references), not here: a stored request stays readable after a school removes
# a language (its report then prints in English).
ReportLanguage = Annotated[
    str,
    StringConstraints(max_length=35, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$"),
    Field(description="Language of the labels: a language of the label catalogue (en, fr, nb and the school's own)."),
]


class GroupReportParams(Command):
    assessment: ExternalId
    group: ShortText | None = None
    cohort: ShortText | None = None
    language: ReportLanguage = "en"
    since: Moment | None = Field(
        default=None, description="The period: attempts taken (submitted, else started) at or after this time."
    )
    until: Moment | None = Field(default=None, description="... and before this time (later than since).")
    session: SessionFilter = None
    include_archived: IncludeArchived = False

    @model_validator(mode="after")
    def _one(self) -> GroupReportParams:
        if self.group is not None and self.cohort is not None:
            raise ValidationFailed.one("/params/cohort", "Give a group or a cohort, not both.")
        window_ends_after_start(self.since, self.until, "/params/until", "since")
        return self


class _LearnersParams(Command):
    """Which learners a report of one document per learner covers: a group, a cohort or a list (or
    everyone), of those with an attempt in a session, archived groups' learners only if asked."""

    group: ShortText | None = None
    cohort: ShortText | None = None
    learners: list[ExternalId] | None = Field(default=None, min_length=1, max_length=10_000)
    session: SessionFilter = None
    include_archived: IncludeArchived = False

    @model_validator(mode="after")
    def _one(self) -> _LearnersParams:
        if sum(x is not None for x in (self.group, self.cohort, self.learners)) > 1:
            pointer = "/params/learners" if self.learners is not None else "/params/cohort"
            raise ValidationFailed.one(pointer, "Give one of group, cohort or learners.")
        if self.learners:
            _check_unique(self.learners, "params/learners", None)
        return self


class IndividualReportsParams(_LearnersParams):
    language: ReportLanguage = "en"


class GroupProgressionParams(GroupReportParams):
    assessment: ExternalId = Field(description="The final test; it names its initial test (`initial_assessment`).")
    since: Moment | None = Field(
        default=None, description="The period: both tests taken (submitted, else started) at or after this time."
    )


class IndividualProgressionParams(IndividualReportsParams):
    assessment: ExternalId = Field(description="The final test; it names its initial test (`initial_assessment`).")
    since: Moment | None = Field(
        default=None, description="The period: both tests taken (submitted, else started) at or after this time."
    )
    until: Moment | None = Field(default=None, description="... and before this time (later than since).")

    @model_validator(mode="after")
    def _period(self) -> IndividualProgressionParams:
        window_ends_after_start(self.since, self.until, "/params/until", "since")
        return self


class CertificatesZipParams(_LearnersParams):
    """Which valid certificates' diplomas: one certification's (the course's, or an assessment's), of the
    learners the filters choose, issued in the period. Each diploma prints in its certification's language."""

    assessment: ExternalId | None = Field(
        default=None, description="The assessment whose certificates (absent: the course certificates)."
    )
    since: Moment | None = Field(default=None, description="Certificates issued at or after this time.")
    until: Moment | None = Field(default=None, description="... and before this time (later than since).")

    @model_validator(mode="after")
    def _period(self) -> CertificatesZipParams:
        window_ends_after_start(self.since, self.until, "/params/until", "since")
        return self


class _ReportRequestBase(Command):
    notify_email: Email | None = Field(default=None, description="Who to e-mail (a link to the LMS) when it ends.")


class GradeReportRequest(_ReportRequestBase):
    """The Open edX grade report (CSV): a row per learner (enrolled or not) with the course grade, a column
    per assessment (`HW 1`), an `(Avg)` per category of several, cohort, experiment groups, team, track,
    verification status, certificate eligible / delivered / type and enrollment status."""

    kind: Literal["grade_report"]
    params: GradeReportParams = Field(default_factory=GradeReportParams)


class ProblemGradeReportRequest(_ReportRequestBase):
    """The Open edX problem grade report (CSV): earned and possible points per item (per assessment
    without items); `Not Available` while a result waits for grading or confirmation."""

    kind: Literal["problem_grade_report"]
    params: ProblemGradeReportParams = Field(default_factory=ProblemGradeReportParams)


class MarksAndGradesRequest(_ReportRequestBase):
    """Inspera's marks and grades CSV for one assessment: a row per candidate per question."""

    kind: Literal["marks_and_grades"]
    params: MarksAndGradesParams


class ResultsXlsxRequest(_ReportRequestBase):
    """The results table (XLSX) with its filters."""

    kind: Literal["results_xlsx"]
    params: ResultsXlsxParams = Field(default_factory=ResultsXlsxParams)


class SkillsXlsxRequest(_ReportRequestBase):
    """The skills file (XLSX): per learner, the percent of each skill's weighted points earned, per
    assessment and overall, under the results table's filters."""

    kind: Literal["skills_xlsx"]
    params: SkillsXlsxParams = Field(default_factory=SkillsXlsxParams)


class GroupReportRequest(_ReportRequestBase):
    """A group's (or cohort's) results on one assessment (PDF): ranking, statistics, distribution."""

    kind: Literal["group_report_pdf"]
    params: GroupReportParams


class IndividualReportsRequest(_ReportRequestBase):
    """One PDF per learner (ZIP): scores per category and assessment, the course grade."""

    kind: Literal["individual_reports_zip"]
    params: IndividualReportsParams = Field(default_factory=IndividualReportsParams)


class GroupProgressionRequest(_ReportRequestBase):
    """A group's progression between an initial and a final test (PDF): before/after statistics and
    distributions, each learner's change, the change per question (or per skill)."""

    kind: Literal["group_progression_pdf"]
    params: GroupProgressionParams


class IndividualProgressionRequest(_ReportRequestBase):
    """One progression report per learner with both results published (ZIP): before, after, change."""

    kind: Literal["individual_progression_zip"]
    params: IndividualProgressionParams


class CertificatesZipRequest(_ReportRequestBase):
    """Download all certificates (ZIP): the diploma PDF of each valid certificate of the course's (or an
    assessment's) certification that the filters select, named by the learner's name and the code."""

    kind: Literal["certificates_zip"]
    params: CertificatesZipParams = Field(default_factory=CertificatesZipParams)


# The one list of report kinds: each kind's request names it and types its params.
AnyReportRequest = Annotated[
    GradeReportRequest
    | ProblemGradeReportRequest
    | MarksAndGradesRequest
    | ResultsXlsxRequest
    | SkillsXlsxRequest
    | GroupReportRequest
    | IndividualReportsRequest
    | GroupProgressionRequest
    | IndividualProgressionRequest
    | CertificatesZipRequest,
    Field(discriminator="kind"),
]


def _params_by_kind() -> dict[str, type[Command]]:
    table: dict[str, type[Command]] = {}
    for request in get_args(get_args(AnyReportRequest)[0]):
        (kind,) = get_args(request.model_fields["kind"].annotation)
        table[kind] = request.model_fields["params"].annotation
    return table


REPORT_PARAMS = _params_by_kind()


class ReportRequest(RootModel[AnyReportRequest]):
    """A report to build: its `kind`, the kind's `params` and who to tell when it ends."""

    @model_validator(mode="wrap")
    @classmethod
    def _pointers(cls, data: Any, handler: ModelWrapValidatorHandler[ReportRequest]) -> ReportRequest:
        # Pydantic locates an error in a tagged union under the tag (/grade_report/params/bom); the
        # client wrote /params/bom, and an unknown or missing tag is the /kind field's error.
        try:
            return handler(data)
        except PydanticValidationError as exc:
            raise ValidationFailed([_report_field_error(e) for e in exc.errors()]) from None

    @property
    def kind(self) -> str:
        return self.root.kind

    @property
    def params(self) -> Command:
        return self.root.params

    @property
    def notify_email(self) -> str | None:
        return self.root.notify_email


def _report_field_error(error: ErrorDetails) -> FieldError:
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return FieldError("/kind", error["msg"])
    loc = error["loc"][1:] if error["loc"] and error["loc"][0] in REPORT_PARAMS else error["loc"]
    return FieldError(json_pointer(loc), error["msg"])


# --- certifications -------------------------------------------------------------------------------

# An organization's certificate image (logo, signature): a name of its choosing, usable in a path.
ImageName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"),
    Field(description="An image's name: letters, digits, '.', '_' and '-', at most 100 characters."),
]
CertificationRule = Literal["course_passing", "course_percent", "assessment_percent"]
# A line a diploma prints: never blank (spaces around it are dropped, so one of spaces alone is refused).
DiplomaLine = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(clean_text)
]


class CertificationIn(Command):
    """What a course or an assessment certifies: who passes (the rule), and what the diploma says."""

    rule: CertificationRule | None = Field(
        default=None,
        description="course_passing: a passing course grade (Open edX's rule); course_percent: a course grade of"
        " at least `threshold` percent; assessment_percent (an assessment's certification, and only there): a"
        " final result of at least `threshold` percent. Absent: assessment_percent for an assessment, else"
        " course_percent with a threshold and course_passing without.",
    )
    threshold: Decimal | None = Field(
        default=None, ge=0, le=100, max_digits=7, decimal_places=4, description="The pass mark in percent (0-100)."
    )
    title: DiplomaLine = Field(description='The diploma\'s title ("Certificate of achievement").')
    body: (
        Annotated[
            str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), AfterValidator(clean_text)
        ]
        | None
    ) = Field(default=None, description="The text under the learner's name.")
    language: ReportLanguage = "en"
    signatory_name: DiplomaLine | None = None
    signatory_title: DiplomaLine | None = None
    logo_image: ImageName | None = Field(default=None, description="An image of the organization (its name).")
    signature_image: ImageName | None = Field(default=None, description="An image of the organization (its name).")

    @model_validator(mode="after")
    def _coherent(self) -> CertificationIn:
        if self.rule == "course_passing" and self.threshold is not None:
            raise ValidationFailed.one("/threshold", "The rule course_passing takes no threshold.")
        if self.rule in ("course_percent", "assessment_percent") and self.threshold is None:
            raise ValidationFailed.one("/threshold", f"The rule {self.rule} needs a threshold (0-100).")
        return self


class RevokeIn(Command):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(clean_text)] = Field(
        description="Why the certificate is revoked (on the record and in the event)."
    )
    assessment: ExternalId | None = Field(
        default=None, description="The assessment's certificate (absent: the course's)."
    )


class ReinstateIn(Command):
    assessment: ExternalId | None = Field(
        default=None, description="The assessment's certificate (absent: the course's)."
    )


class GenerateIn(Command):
    assessment: ExternalId | None = Field(
        default=None, description="Generate the assessment's certification (absent: the course's)."
    )


# --- candidate mailings ---------------------------------------------------------------------------


class MailingRequest(Command):
    """Send each candidate their individual report of an assessment (with their certificate of it,
    where they hold a valid one), or their certificate; the filters choose the candidates."""

    kind: Literal["reports", "certificates"] = Field(
        description="reports: each candidate's individual report (results as published to them); certificates:"
        " each holder of a valid certificate, their certificate."
    )
    assessment: ExternalId | None = Field(
        default=None,
        description="reports: required, the assessment whose published results are sent; certificates: the"
        " assessment's certificate (absent: the course certificate).",
    )
    group: ShortText | None = None
    cohort: ShortText | None = None
    learners: list[ExternalId] | None = Field(default=None, min_length=1, max_length=10_000)
    session: SessionFilter = None
    include_archived: IncludeArchived = False
    since: Moment | None = Field(
        default=None,
        description="reports: attempts taken (submitted, else started) at or after this time; certificates:"
        " certificates issued at or after it.",
    )
    until: Moment | None = Field(default=None, description="... and before this time (later than since).")
    language: ReportLanguage = "en"

    @model_validator(mode="after")
    def _consistent(self) -> MailingRequest:
        if self.kind == "reports" and self.assessment is None:
            raise ValidationFailed.one("/assessment", "Name the assessment whose reports are sent.")
        if sum(x is not None for x in (self.group, self.cohort, self.learners)) > 1:
            pointer = "/learners" if self.learners is not None else "/cohort"
            raise ValidationFailed.one(pointer, "Give one of group, cohort or learners.")
        if self.learners:
            _check_unique(self.learners, "learners", None)
        window_ends_after_start(self.since, self.until, "/until", "since")
        return self


# --- webhooks -------------------------------------------------------------------------------------

EventType = Literal[
    "grade.changed",
    "results.published",
    "results.unpublished",
    "grading.confirmed",
    "policy.changed",
    "import.completed",
    "report.succeeded",
    "report.failed",
    "certificates.generated",
    "certificate.revoked",
    "certificate.reinstated",
]
Url = Annotated[str, StringConstraints(min_length=8, max_length=2000, pattern=r"^https?://[^\s]+$")]


class WebhookIn(Command):
    url: Url
    events: list[EventType] = Field(min_length=1, max_length=20)
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    active: bool = True


class WebhookPatch(Command):
    url: Url | None = None
    events: list[EventType] | None = Field(default=None, min_length=1, max_length=20)
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    active: bool | None = Field(default=None, description="true re-enables a disabled endpoint.")
    rotate_secret: bool = Field(
        default=False, description="Issue a new secret (in the answer); the old one keeps signing for a grace period."
    )


class ReplayRequest(Command):
    since: Moment


# --- moderation -----------------------------------------------------------------------------------

ModerationNote = Annotated[str, StringConstraints(max_length=5000)]


class ModerationSampleRequest(Command):
    """What to add to an assessment's moderation sample: a percentage of each grader's marked attempts,
    chosen at random, and/or the attempts of listed learners."""

    percent: Annotated[Decimal, Field(gt=0, le=100, allow_inf_nan=False, max_digits=9, decimal_places=6)] | None = (
        Field(
            default=None,
            description="Of each grader's marked attempts (an attempt is its first marker's), this percentage "
            "rounded up, at least one per grader; attempts already sampled count towards it.",
        )
    )
    learners: list[ExternalId] | None = Field(
        default=None, min_length=1, max_length=10_000, description="These learners' marked attempts."
    )

    @model_validator(mode="after")
    def _some(self) -> ModerationSampleRequest:
        if self.percent is None and self.learners is None:
            raise ValidationFailed.one("/percent", "Give a percent, a list of learners, or both.")
        if self.learners is not None:
            _check_unique(list(self.learners), "learners", "")
        return self


class ModerationAgreement(Command):
    note: ModerationNote | None = Field(default=None, description="At most 5000 characters.")


class ModeratorMark(Command):
    item: ExternalId
    points: Points


class ModerationAdjustment(Command):
    """The moderator's marks for the listed manual items; each becomes the item's score (the graders'
    marks stay as they were)."""

    items: list[ModeratorMark] = Field(min_length=1, max_length=1000)
    note: ModerationNote | None = Field(default=None, description="At most 5000 characters.")

    @model_validator(mode="after")
    def _unique_items(self) -> ModerationAdjustment:
        _check_unique([m.item for m in self.items], "items", "item")
        return self


class ScalingIn(Command):
    factor: Annotated[Decimal, Field(gt=0, le=10, allow_inf_nan=False, max_digits=9, decimal_places=6)] = Field(
        description="The grader's marks count times this (capped at each item's points, 6 decimals)."
    )
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="Why (kept in the audit trail)."
    )


# --- extensions and extra attempts --------------------------------------------------------------------


class OverrideIn(Command):
    """A learner's or a group's own due date and extra attempts at an assessment (PUT replaces the override)."""

    due_at: Moment | None = Field(
        default=None,
        description="Their own due date (null: the assessment's, unless another override of theirs moves it).",
    )
    extra_attempts: Annotated[int, Field(ge=0, le=1000)] = Field(
        default=0, description="Attempts on top of the assessment's allowed_attempts."
    )
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = Field(
        default=None, description="Why (at most 1000 characters; shown to staff and in the audit log)."
    )

    @model_validator(mode="after")
    def _something(self) -> OverrideIn:
        if self.due_at is None and self.extra_attempts == 0:
            raise ValidationFailed.one("/due_at", "An override gives a due date, extra attempts or both.")
        return self
