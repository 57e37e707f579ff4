"""Reports: ask for one (planners), follow its progress, download it through a five-minute link."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import RedirectResponse

from gradeflow.anonymity import service as anonymity
from gradeflow.http.deps import (
    NO_STORE,
    Cursor,
    Limit,
    PrincipalDep,
    ReadableReport,
    RecordId,
    RedisDep,
    ReportRead,
    ReportWrite,
    SessionDep,
    SettingsDep,
    StoreDep,
    WritableReport,
    actor,
)
from gradeflow.http.errors import CONFLICT
from gradeflow.http.schemas import PageOut
from gradeflow.reports.kinds import KINDS, ReportRequest
from gradeflow.reports.schemas import ReportOut
from gradeflow.reports.service import reports

router = APIRouter(tags=["reports"])


@router.post("/v1/courses/{course}/reports", status_code=status.HTTP_202_ACCEPTED)
async def create_report(
    session: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: ReportWrite,
    body: ReportRequest,
    response: Response,
) -> ReportOut:
    """Ask for a report; a worker builds it. Kinds: `grade_report` and `problem_grade_report` (Open edX
    CSV layouts), `marks_and_grades` (Inspera's CSV, one assessment), `results_xlsx` (the results table
    with filters), `skills_xlsx` (skill levels per learner, per assessment and overall, same filters),
    `group_report_pdf` (one assessment, a group or cohort), `individual_reports_zip` (one PDF per learner),
    `certificates_zip` (download all certificates: one diploma PDF per valid certificate); each kind's
    `params` are in its schema. What the params name (assessment, learners, group, cohort) must be in
    the course: otherwise 422 naming the field, and nothing is queued. Follow it at the `Location`:
    `progress` and `message` say how far it is (CSV: rows written; XLSX: rows written of the total;
    ZIP: learners done of those it covers, certificates for `certificates_zip`)."""
    kind = KINDS[body.kind]
    view = await reports.create(
        session, queue, ref, body.kind, body.params, body.notify_email, actor(principal), kind.check
    )
    response.headers["Location"] = f"/v1/reports/{view.id}"
    return ReportOut.model_validate(view)


@router.get("/v1/courses/{course}/reports")
async def list_reports(
    session: SessionDep, ref: ReportRead, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[ReportOut]:
    """The course's reports, most recent first, queued and running ones with their progress (no
    download links here: read one report to get its link)."""
    page = await reports.list_reports(session, ref, limit, cursor)
    return PageOut(items=[ReportOut.model_validate(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/v1/reports/{report_id}")
async def get_report(
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    ref: ReadableReport,
    report_id: RecordId,
    response: Response,
) -> ReportOut:
    """A report's state; once succeeded, with a download link minted now and valid for five minutes
    (each issuance is in the audit log). Never cached. Those who mark an anonymous assessment of the
    course (grader or moderator, not planner) get 403 until its anonymity is lifted."""
    await anonymity.refuse_course_files(session, principal, ref)
    view = await reports.get(session, store, ref, report_id, actor(principal), settings.reports.link_seconds)
    response.headers.update(NO_STORE)
    return ReportOut.model_validate(view)


@router.get(
    "/v1/reports/{report_id}/download",
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    responses={303: {"description": "To a fresh signed link (five minutes)."}, **CONFLICT},
)
async def download_report(
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    ref: ReadableReport,
    report_id: RecordId,
) -> RedirectResponse:
    """Redirect to a fresh signed link to the file (409 while there is no file; 403 as for reading it)."""
    await anonymity.refuse_course_files(session, principal, ref)
    url = await reports.download_link(session, store, ref, report_id, actor(principal), settings.reports.link_seconds)
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER, headers=NO_STORE)


@router.post("/v1/reports/{report_id}:cancel", responses=CONFLICT)
async def cancel_report(
    session: SessionDep, principal: PrincipalDep, ref: WritableReport, report_id: RecordId
) -> ReportOut:
    """Stop a queued or running report (409 once it has ended)."""
    return ReportOut.model_validate(await reports.cancel(session, ref, report_id, actor(principal)))
