"""Reports commands: what the API accepts as request bodies and the use cases take."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from gradeflow.core.commands import (
    Command,
    Email,
    ExternalId,
    Moment,
    ShortText,
    check_unique,
    window_ends_after_start,
)
from gradeflow.core.errors import ValidationFailed
from gradeflow.core.statuses import AttemptStatus
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


class ReportRequestBase(Command):
    """What every report request has besides its kind and params (each kind's request is made from it in
    gradeflow/reports/kinds.py)."""

    notify_email: Email | None = Field(default=None, description="Who to e-mail (a link to the LMS) when it ends.")
