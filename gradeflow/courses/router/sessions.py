"""Course sessions (the test platform's test sessions): sittings that attempts belong to."""

from __future__ import annotations

from fastapi import APIRouter, status

from gradeflow.core.commands import ExternalId
from gradeflow.courses.commands import SessionAttempts, SessionCreate, SessionPatch
from gradeflow.courses.schemas.sessions import SessionAttemptsAdded, SessionAttemptsRemoved, SessionOut
from gradeflow.courses.service import sessions
from gradeflow.http.deps import (
    AttemptWrite,
    CourseWrite,
    Cursor,
    Limit,
    PrincipalDep,
    ResultScope,
    ScoreRead,
    SessionDep,
    actor,
)
from gradeflow.http.errors import CONFLICT
from gradeflow.http.schemas import PageOut

router = APIRouter(prefix="/v1/courses/{course}/sessions", tags=["sessions"])


@router.get("")
async def list_sessions(
    db: SessionDep, ref: ScoreRead, scope: ResultScope, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[SessionOut]:
    """The course's sessions in the order they were made, each with its number of attempts (a grader's:
    the attempts allocated to them, as in their results table)."""
    page = await sessions.list_sessions(db, ref, limit, cursor, scope)
    return PageOut(items=[SessionOut.model_validate(s) for s in page.items], next_cursor=page.next_cursor)


@router.post("", status_code=status.HTTP_201_CREATED, responses=CONFLICT)
async def create_session(db: SessionDep, principal: PrincipalDep, ref: CourseWrite, body: SessionCreate) -> SessionOut:
    """Create a session (409 if the course has one with this external id). The results table, the
    dashboard and the reports filter by its external id. Audited as `session.created`."""
    return SessionOut.model_validate(await sessions.create(db, ref, body, actor(principal)))


@router.get("/{session}")
async def get_session(db: SessionDep, ref: ScoreRead, scope: ResultScope, session: ExternalId) -> SessionOut:
    """One session (a grader counts the attempts allocated to them)."""
    return SessionOut.model_validate(await sessions.get(db, ref, session, scope))


@router.patch("/{session}")
async def update_session(
    db: SessionDep, principal: PrincipalDep, ref: CourseWrite, session: ExternalId, body: SessionPatch
) -> SessionOut:
    """Change a session's title or window (null clears one; it must end after it starts). Audited as
    `session.updated` when something changed."""
    return SessionOut.model_validate(await sessions.update(db, ref, session, body, actor(principal)))


@router.delete("/{session}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_session(db: SessionDep, principal: PrincipalDep, ref: CourseWrite, session: ExternalId) -> None:
    """Delete a session: its attempts stay, in no session. Audited as `session.deleted`."""
    await sessions.delete(db, ref, session, actor(principal))


@router.put("/{session}/attempts")
async def add_attempts(
    db: SessionDep, principal: PrincipalDep, ref: AttemptWrite, session: ExternalId, body: SessionAttempts
) -> SessionAttemptsAdded:
    """Put attempts in the session, given as (assessment, learner) pairs: a learner without an attempt
    at the assessment gets one (`to_be_taken`); an attempt in another session moves to this one. All or
    nothing: an unknown assessment or learner is a 422 naming each. Audited: `session.attempts_added`
    with the counts, `session.attempt_added` per attempt put in."""
    return SessionAttemptsAdded.model_validate(
        await sessions.move_attempts(db, ref, session, body, actor(principal), into=True)
    )


@router.delete("/{session}/attempts")
async def remove_attempts(
    db: SessionDep, principal: PrincipalDep, ref: AttemptWrite, session: ExternalId, body: SessionAttempts
) -> SessionAttemptsRemoved:
    """Take attempts out of the session, given as (assessment, learner) pairs; they stay, in no session
    (pairs whose attempt is not in this session are counted as unchanged). An unknown assessment or
    learner is a 422 naming each. Audited: `session.attempts_removed` with the counts,
    `session.attempt_removed` per attempt taken out."""
    return SessionAttemptsRemoved.model_validate(
        await sessions.move_attempts(db, ref, session, body, actor(principal), into=False)
    )
