"""Learner groups: the groups enrollments name, and archiving them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from gradeflow.core.validation import CleanStr
from gradeflow.courses.commands import GroupState
from gradeflow.courses.schemas.sessions import GroupOut
from gradeflow.courses.service import groups
from gradeflow.http.deps import Cursor, EnrollmentRead, EnrollmentWrite, Limit, PrincipalDep, SessionDep, actor
from gradeflow.http.schemas import PageOut

router = APIRouter(prefix="/v1/courses/{course}/groups", tags=["enrollments"])

GroupName = Annotated[CleanStr, Path(min_length=1, max_length=255, description="A group as enrollments name it.")]


@router.get("")
async def list_groups(
    session: SessionDep, ref: EnrollmentRead, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[GroupOut]:
    """Every group the course's enrollments name (and every archived one), by name, with its number of
    learners and whether it is archived."""
    page = await groups.list_groups(session, ref, limit, cursor)
    return PageOut(items=[GroupOut.model_validate(g) for g in page.items], next_cursor=page.next_cursor)


# `:path`: a group's name may hold a slash ("2024/25"), which arrives decoded from its %2F before routing.
@router.put("/{group:path}")
async def set_group(
    session: SessionDep, principal: PrincipalDep, ref: EnrollmentWrite, group: GroupName, body: GroupState
) -> GroupOut:
    """Archive a group, or bring it back. Learners whose every group is archived are left out of the
    results table, the dashboard and the reports unless a filter includes archived groups (a learner
    in no group, or in one live group, is always shown). 404 for a group no enrollment names.
    Audited as `group.archived` / `group.unarchived` when the state changes."""
    return GroupOut.model_validate(await groups.set_archived(session, ref, group, body.archived, actor(principal)))
