"""Dependencies as Annotated aliases, so routers stay thin and tests can override them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow.access.identity import CourseRef, Principal
from gradeflow.access.service import access
from gradeflow.access.service.access import Action
from gradeflow.access.service.auth import CREDENTIAL_NOT_ACCEPTED, authenticate
from gradeflow.core.errors import Unauthenticated
from gradeflow.core.settings import Settings
from gradeflow.jobs import Queue
from gradeflow.marking.service import marking
from gradeflow.reports.service import reports
from gradeflow.storage import ObjectStore


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    session: AsyncSession = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        # A connection lost mid-request fails again on close; the request has already been answered
        # (503), and the pool replaces the connection.
        with contextlib.suppress(DBAPIError, OSError):
            await session.close()


SessionDep = Annotated[AsyncSession, Depends(_session)]


async def _sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return factory


# For work that outlives the request's own session, such as a streamed response body.
SessionFactoryDep = Annotated[async_sessionmaker[AsyncSession], Depends(_sessionmaker)]

# Ids of our own records in paths: positive and within PostgreSQL's bigint.
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1)]


async def _redis(request: Request) -> Queue:
    redis: Queue = request.app.state.redis
    return redis


RedisDep = Annotated[Queue, Depends(_redis)]


async def _store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.store
    return store


StoreDep = Annotated[ObjectStore, Depends(_store)]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key (`gfk_...`) or a user token (JWT) minted by the LMS.",
)


async def _principal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated(CREDENTIAL_NOT_ACCEPTED)
    principal = await authenticate(
        session,
        credentials.credentials,
        settings.token_leeway_seconds,
        max_lifetime=settings.token_max_lifetime_seconds,
        max_length=settings.limits.max_credential_bytes,
    )
    await request.app.state.limiter.check(principal)
    return principal


PrincipalDep = Annotated[Principal, Depends(_principal)]


def _course(action: Action) -> Callable[..., Coroutine[Any, Any, CourseRef]]:
    async def resolve(course: str, session: SessionDep, principal: PrincipalDep) -> CourseRef:
        return await access.course_access(session, principal, course, action)

    return resolve


CourseRead = Annotated[CourseRef, Depends(_course(Action.COURSE_READ))]
CourseWrite = Annotated[CourseRef, Depends(_course(Action.COURSE_WRITE))]
MemberRead = Annotated[CourseRef, Depends(_course(Action.MEMBER_READ))]
MemberWrite = Annotated[CourseRef, Depends(_course(Action.MEMBER_WRITE))]
EnrollmentRead = Annotated[CourseRef, Depends(_course(Action.ENROLLMENT_READ))]
EnrollmentWrite = Annotated[CourseRef, Depends(_course(Action.ENROLLMENT_WRITE))]
AssessmentRead = Annotated[CourseRef, Depends(_course(Action.ASSESSMENT_READ))]
AssessmentWrite = Annotated[CourseRef, Depends(_course(Action.ASSESSMENT_WRITE))]
AttemptWrite = Annotated[CourseRef, Depends(_course(Action.ATTEMPT_WRITE))]
ScoreRead = Annotated[CourseRef, Depends(_course(Action.SCORE_READ))]
ScoreWrite = Annotated[CourseRef, Depends(_course(Action.SCORE_WRITE))]
PolicyRead = Annotated[CourseRef, Depends(_course(Action.POLICY_READ))]
PolicyWrite = Annotated[CourseRef, Depends(_course(Action.POLICY_WRITE))]
GradeRead = Annotated[CourseRef, Depends(_course(Action.GRADE_READ))]
AuditRead = Annotated[CourseRef, Depends(_course(Action.AUDIT_READ))]
Allocate = Annotated[CourseRef, Depends(_course(Action.ALLOCATE))]
MarkRead = Annotated[CourseRef, Depends(_course(Action.MARK_READ))]
MarkWrite = Annotated[CourseRef, Depends(_course(Action.MARK_WRITE))]
Confirm = Annotated[CourseRef, Depends(_course(Action.CONFIRM))]
ImportWrite = Annotated[CourseRef, Depends(_course(Action.IMPORT))]
Publish = Annotated[CourseRef, Depends(_course(Action.PUBLISH))]
PublicationRead = Annotated[CourseRef, Depends(_course(Action.PUBLICATION_READ))]
ReportWrite = Annotated[CourseRef, Depends(_course(Action.REPORT_WRITE))]
ReportRead = Annotated[CourseRef, Depends(_course(Action.REPORT_READ))]
Certificates = Annotated[CourseRef, Depends(_course(Action.CERTIFICATES))]
CertificateRead = Annotated[CourseRef, Depends(_course(Action.CERTIFICATE_READ))]


def _report_course(action: Action) -> Callable[..., Coroutine[Any, Any, CourseRef]]:
    async def resolve(report_id: RecordId, session: SessionDep, principal: PrincipalDep) -> CourseRef:
        return await reports.report_access(session, principal, report_id, action)

    return resolve


# The course of the report in the path, checked for the action.
ReadableReport = Annotated[CourseRef, Depends(_report_course(Action.REPORT_READ))]
WritableReport = Annotated[CourseRef, Depends(_report_course(Action.REPORT_WRITE))]

Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (at most 1000).")]
Cursor = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page.")]


def actor(principal: Principal) -> str:
    """How a caller is recorded as the author of a change."""
    return f"key:{principal.subject}" if principal.is_key else principal.subject


async def _result_scope(session: SessionDep, principal: PrincipalDep, ref: ScoreRead) -> list[str] | None:
    if access.sees_all_results(principal, ref):
        return None
    return await marking.identities(session, ref, principal.subject)


# None, or the names (user, workgroups) of a grader who sees only the attempts allocated to them.
ResultScope = Annotated[list[str] | None, Depends(_result_scope)]


async def _mark_scope(session: SessionDep, principal: PrincipalDep, ref: MarkWrite) -> list[str] | None:
    if access.sees_all_marks(principal, ref):
        return None
    return await marking.identities(session, ref, principal.subject)


# None for those who write on every attempt (API keys, planners); else the names (user, workgroups) of a grader
# who writes only on the attempts allocated to them.
MarkScope = Annotated[list[str] | None, Depends(_mark_scope)]

# Signed links are credentials: answers carrying one are never cached (ARCHITECTURE, convention 7).
NO_STORE = {"Cache-Control": "no-store"}
