"""Manual marking: allocations, graders' queues and marks."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gradeflow.access.service.access import marker_identity, sees_all_marks
from gradeflow.anonymity import service as anonymity
from gradeflow.core.commands import ExternalId
from gradeflow.http.deps import (
    Allocate,
    Confirm,
    MarkRead,
    MarkWrite,
    PrincipalDep,
    RecordId,
    RedisDep,
    ResultScope,
    SessionDep,
    actor,
)
from gradeflow.http.errors import CONFLICT
from gradeflow.marking.commands import AllocationRequest, ConfirmRequest, MarkIn, WorkgroupIn
from gradeflow.marking.schemas.marking import (
    AllocationOut,
    AllocationResult,
    ConfirmResult,
    MarkOut,
    MarkResult,
    QueueOut,
    RescoreOut,
    WorkgroupOut,
)
from gradeflow.marking.service import marking
from gradeflow.scores.commands import RescoreRequest
from gradeflow.scores.service import rescoring

router = APIRouter(prefix="/v1/courses/{course}", tags=["marking"])

GraderParam = Annotated[ExternalId | None, Query(description="For API keys: the grader acted for.")]


@router.post("/assessments/{assessment}/allocations")
async def allocate(
    session: SessionDep, principal: PrincipalDep, ref: Allocate, assessment: ExternalId, body: AllocationRequest
) -> AllocationResult:
    """Allocate unallocated work (submitted or pending-grading attempts) to graders: `even` or
    seeded `random`, by candidate (all manual items of an attempt) or by item. Each unit gets the
    assessment's graders_per_item; `role: third` allocates items whose marks disagree."""
    return AllocationResult.model_validate(await marking.allocate(session, ref, assessment, body, actor(principal)))


@router.get("/assessments/{assessment}/allocations")
async def list_allocations(session: SessionDep, ref: Allocate, assessment: ExternalId) -> list[AllocationOut]:
    """Who marks what in the assessment."""
    allocations = await marking.list_allocations(session, ref, assessment)
    return [AllocationOut.model_validate(a, from_attributes=True) for a in allocations]


@router.delete("/assessments/{assessment}/allocations/{grader}")
async def remove_grader(
    session: SessionDep, principal: PrincipalDep, ref: Allocate, assessment: ExternalId, grader: ExternalId
) -> dict[str, Any]:
    """Take a grader off the assessment; their unmarked work is re-allocated evenly to the others."""
    return asdict(await marking.remove_grader(session, ref, assessment, grader, actor(principal)))


@router.get("/marking/queue")
async def my_queue(
    session: SessionDep, principal: PrincipalDep, ref: MarkWrite, grader: GraderParam = None
) -> QueueOut:
    """The calling grader's items still to mark, with counts per assessment. On an anonymous assessment
    a grader sees each learner as a candidate label (`candidate-4821`) and marks by it."""
    who = marker_identity(principal, ref, grader)
    return QueueOut.model_validate(await marking.queue(session, ref, who, anonymity.concealed(principal, ref)))


@router.put("/assessments/{assessment}/marks/{learner}/{item}", responses=CONFLICT)
async def put_mark(
    session: SessionDep,
    principal: PrincipalDep,
    ref: MarkWrite,
    assessment: ExternalId,
    learner: ExternalId,
    item: ExternalId,
    body: MarkIn,
    grader: GraderParam = None,
) -> MarkResult:
    """Mark one manual item allocated to you. When the item has all its marks they are reconciled
    (average, max, min; a third marker when they differ by more than the threshold; or the final
    grader's mark) into the item's score; a score the marks no longer give is removed, and a changed mark of
    an attempt a moderator already decided sends it back to the moderator. 409 on a cancelled attempt. On an
    anonymous assessment a grader names the learner by candidate label; a learner id from them is 404, as an
    unknown label is."""
    who = marker_identity(principal, ref, grader)
    hide = anonymity.concealed(principal, ref)
    return MarkResult.model_validate(
        await marking.put_mark(session, ref, assessment, learner, item, who, body, hide=hide)
    )


@router.get("/assessments/{assessment}/marks")
async def list_marks(
    session: SessionDep, principal: PrincipalDep, ref: MarkRead, scope: ResultScope, assessment: ExternalId
) -> list[MarkOut]:
    """Marks of the assessment: planners see all; a grader sees their own, and others' once an
    item is reconciled - only on work allocated to them (the same attempts whose results they see).
    On an anonymous assessment graders see candidate labels."""
    viewer = None if sees_all_marks(principal, ref) else principal.subject
    hide = anonymity.concealed(principal, ref)
    marks = await marking.list_marks(session, ref, assessment, viewer, scope, hide=hide)
    return [MarkOut.model_validate(m) for m in marks]


@router.post("/assessments/{assessment}/confirmations", responses=CONFLICT)
async def confirm(
    session: SessionDep,
    principal: PrincipalDep,
    ref: Confirm,
    assessment: ExternalId,
    body: ConfirmRequest,
    grader: GraderParam = None,
) -> ConfirmResult:
    """Confirm grading of graded attempts (all, or the listed learners). Until confirmed, an
    attempt with manual items has no final result and does not count in the final course grade.
    When the assessment requires moderation, 409 until a sample is picked and every sampled attempt
    is decided. On an anonymous assessment a grader lists and is answered candidate labels."""
    full = sees_all_marks(principal, ref)
    who = actor(principal) if full else marker_identity(principal, ref, grader)
    hide = anonymity.concealed(principal, ref)
    return ConfirmResult.model_validate(
        await marking.confirm(session, ref, assessment, body.learners, who, full_access=full, hide=hide)
    )


@router.post("/assessments/{assessment}/items/{item}:rescore", status_code=202)
async def rescore_item(
    session: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: Allocate,
    assessment: ExternalId,
    item: ExternalId,
    body: RescoreRequest,
) -> RescoreOut:
    """Change an item's points and rescore it in the worker for every handed-in attempt (submitted,
    pending grading or graded; unfinished and cancelled attempts are left as they are). The item's
    revision goes up; totals and stored grades follow; each changed score and attempt status is
    audited; progress on the returned record."""
    record = await rescoring.start(session, queue, ref, assessment, item, body, actor(principal))
    return RescoreOut.model_validate(record, from_attributes=True)


@router.get("/rescores/{rescore_id}")
async def get_rescore(session: SessionDep, ref: Allocate, rescore_id: RecordId) -> RescoreOut:
    """A rescore's progress and outcome."""
    return RescoreOut.model_validate(await rescoring.get(session, ref, rescore_id), from_attributes=True)


@router.put("/workgroups/{name}")
async def put_workgroup(
    session: SessionDep, principal: PrincipalDep, ref: Allocate, name: ExternalId, body: WorkgroupIn
) -> WorkgroupOut:
    """Create or replace a workgroup. Under the shared workflow, work is allocated to workgroups;
    any member marks for the group, and the mark is the group's."""
    return WorkgroupOut.model_validate(
        await marking.put_workgroup(session, ref, name, list(body.members), actor(principal))
    )


@router.get("/workgroups")
async def list_workgroups(session: SessionDep, ref: Allocate) -> list[WorkgroupOut]:
    """The course's workgroups."""
    return [WorkgroupOut.model_validate(w, from_attributes=True) for w in await marking.list_workgroups(session, ref)]


@router.get(
    "/assessments/{assessment}/marks.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}}
)
async def export_marks(session: SessionDep, ref: Allocate, assessment: ExternalId) -> Response:
    """The marks as CSV, one column per grader (individual workflow) or workgroup (shared). A text
    cell that a spreadsheet would run as a formula (starting with =, +, -, @, tab or CR) is prefixed
    with an apostrophe."""
    content = await marking.marks_csv(session, ref, assessment)
    return Response(
        content,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{quote(assessment, safe="")}-marks.csv"'},
    )
