"""Reports commands: what the API accepts as request bodies and the use cases take."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    RootModel,
    StringConstraints,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails

from gradeflow.core.commands import (
    AttemptStatus,
    Command,
    Email,
    ExternalId,
    Moment,
    ShortText,
    check_unique,
    window_ends_after_start,
)
from gradeflow.core.errors import FieldError, ValidationFailed, json_pointer
from gradeflow.core.time_zones import TimeZone
from gradeflow.courses.commands import IncludeArchived, SessionFilter

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
            check_unique(self.learners, "params/learners", None)
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
