"""The report kinds, registered once: a kind is a name, its params (a command), what it says in the
API, and how the worker builds it (its builder reads the data and writes the file), with the file's
type and how many sessions read its snapshot at once.

Everything that lists the kinds is made from `KINDS`: the API's request body (`ReportRequest`, one
request model per kind under its own schema name), the worker's table of builders, and the content
types. A new kind is its params class (gradeflow/reports/commands.py), its builder
(gradeflow/reports/builders.py, with what it reads in service/ and writes with writers/), and one
entry here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar, Union

from pydantic import (
    BaseModel,
    Field,
    ModelWrapValidatorHandler,
    RootModel,
    create_model,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core.commands import Command
from gradeflow.core.errors import FieldError, ValidationFailed, json_pointer
from gradeflow.readside.service.course_data import CourseInfo
from gradeflow.reports import builders
from gradeflow.reports.builders import Built, Counter, Output, Snapshot
from gradeflow.reports.commands import (
    CertificatesZipParams,
    GradeReportParams,
    GroupProgressionParams,
    GroupReportParams,
    IndividualProgressionParams,
    IndividualReportsParams,
    MarksAndGradesParams,
    ProblemGradeReportParams,
    ReportRequestBase,
    ResultsXlsxParams,
    SkillsXlsxParams,
)
from gradeflow.reports.service import report_references

P = TypeVar("P", bound=Command)

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "zip": "application/zip",
}
FileType = Literal["csv", "xlsx", "pdf", "zip"]


@dataclass(frozen=True)
class ReportKind(Generic[P]):
    """One kind of report.

    `request`: the name of its request's schema in the API, `about` its description there;
    `params_required`: a request must give params (else they default to the params' defaults);
    `readers`: sessions reading the snapshot at once (the grade report reads its chunks in parallel);
    `check`: what the kind checks when it is asked for, beyond the references every kind's params make
    (reports/service/report_references.py checks those)."""

    name: str
    params: type[P]
    request: str
    about: str
    build: Callable[[Snapshot, CourseInfo, P, Output, Counter], Awaitable[Built]]
    file: FileType
    params_required: bool = False
    readers: int = 1
    check: Callable[[AsyncSession, int, P], Awaitable[list[FieldError]]] | None = None  # at request time

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.file]

    def request_model(self) -> type[BaseModel]:
        params: Any = (self.params, ...) if self.params_required else (self.params, Field(default_factory=self.params))
        model: type[BaseModel] = create_model(
            self.request,
            __base__=ReportRequestBase,
            __doc__=self.about,
            __module__=__name__,
            kind=(Literal[self.name], ...),  # type: ignore[arg-type]
            params=params,
        )
        return model


# The order is the API's (its request body lists the kinds in this order).
_ALL: tuple[ReportKind[Any], ...] = (
    ReportKind(
        "grade_report",
        GradeReportParams,
        "GradeReportRequest",
        """The Open edX grade report (CSV): a row per learner (enrolled or not) with the course grade, a column
    per assessment (`HW 1`), an `(Avg)` per category of several, cohort, experiment groups, team, track,
    verification status, certificate eligible / delivered / type and enrollment status.""",
        builders.grade_report,
        "csv",
        readers=2,
    ),
    ReportKind(
        "problem_grade_report",
        ProblemGradeReportParams,
        "ProblemGradeReportRequest",
        """The Open edX problem grade report (CSV): earned and possible points per item (per assessment
    without items); `Not Available` while a result waits for grading or confirmation.""",
        builders.problem_grade_report,
        "csv",
    ),
    ReportKind(
        "marks_and_grades",
        MarksAndGradesParams,
        "MarksAndGradesRequest",
        "Inspera's marks and grades CSV for one assessment: a row per candidate per question.",
        builders.marks_and_grades,
        "csv",
        params_required=True,
    ),
    ReportKind(
        "results_xlsx",
        ResultsXlsxParams,
        "ResultsXlsxRequest",
        "The results table (XLSX) with its filters.",
        builders.results_xlsx,
        "xlsx",
    ),
    ReportKind(
        "skills_xlsx",
        SkillsXlsxParams,
        "SkillsXlsxRequest",
        """The skills file (XLSX): per learner, the percent of each skill's weighted points earned, per
    assessment and overall, under the results table's filters.""",
        builders.skills_xlsx,
        "xlsx",
        check=report_references.skills_fit,
    ),
    ReportKind(
        "group_report_pdf",
        GroupReportParams,
        "GroupReportRequest",
        "A group's (or cohort's) results on one assessment (PDF): ranking, statistics, distribution.",
        builders.group_report_pdf,
        "pdf",
        params_required=True,
    ),
    ReportKind(
        "individual_reports_zip",
        IndividualReportsParams,
        "IndividualReportsRequest",
        "One PDF per learner (ZIP): scores per category and assessment, the course grade.",
        builders.individual_reports_zip,
        "zip",
    ),
    ReportKind(
        "group_progression_pdf",
        GroupProgressionParams,
        "GroupProgressionRequest",
        """A group's progression between an initial and a final test (PDF): before/after statistics and
    distributions, each learner's change, the change per question (or per skill).""",
        builders.group_progression_pdf,
        "pdf",
        params_required=True,
        check=report_references.has_initial,
    ),
    ReportKind(
        "individual_progression_zip",
        IndividualProgressionParams,
        "IndividualProgressionRequest",
        "One progression report per learner with both results published (ZIP): before, after, change.",
        builders.individual_progression_zip,
        "zip",
        params_required=True,
        check=report_references.has_initial,
    ),
    ReportKind(
        "certificates_zip",
        CertificatesZipParams,
        "CertificatesZipRequest",
        """Download all certificates (ZIP): the diploma PDF of each valid certificate of the course's (or an
    assessment's) certification that the filters select, named by the learner's name and the code.""",
        builders.certificates_zip,
        "zip",
        check=report_references.certified,
    ),
)

KINDS: dict[str, ReportKind[Any]] = {k.name: k for k in _ALL}
# Each kind's params by its name.
REPORT_PARAMS: dict[str, type[Command]] = {k.name: k.params for k in _ALL}

_REQUESTS = tuple(k.request_model() for k in _ALL)
if TYPE_CHECKING:
    AnyReportRequest = BaseModel
else:  # one request model per kind, told apart by `kind`
    AnyReportRequest = Annotated[Union[_REQUESTS], Field(discriminator="kind")]  # noqa: UP007


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
        return str(self.root.kind)  # type: ignore[attr-defined]

    @property
    def params(self) -> Command:
        params: Command = self.root.params  # type: ignore[attr-defined]
        return params

    @property
    def notify_email(self) -> str | None:
        email: str | None = self.root.notify_email  # type: ignore[attr-defined]
        return email


def _report_field_error(error: ErrorDetails) -> FieldError:
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return FieldError("/kind", error["msg"])
    loc = error["loc"][1:] if error["loc"] and error["loc"][0] in KINDS else error["loc"]
    return FieldError(json_pointer(loc), error["msg"])
