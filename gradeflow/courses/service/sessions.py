"""Course sessions: the test platform's test sessions, sittings of a course's assessments (the morning
sitting, the resit) that attempts belong to. Attempts are put in a session and taken out in batches of
(assessment, learner) pairs, each batch one set-based statement; a learner without an attempt gets one
(`to_be_taken`), as excusing does, so a session can be planned before anyone sits it. An attempt is in
at most one session: putting it in another moves it. Taking attempts out of a session keeps them.

Every read that takes a `session` filter (a session's external id) follows one rule. Figures of
assessments keep the attempts in the session (`t.session_id = ...`): the results table and its counts,
the dashboard, `results_xlsx`, `skills_xlsx`, an assessment's statistics and the course statistics' line
per assessment, the group report's results. Views of learners keep the learners with an attempt in it
(`with_attempt_in`) and show all of theirs: gradebook rows, the course grade's statistics, individual
reports, progression; a view of one assessment's learners (its certificates) keeps those whose attempt
at that assessment is in it (`attempt_at_in`). So one assessment in one session counts the same attempts
everywhere.

Every change is audited: `session.created` / `updated` / `deleted`, and for a batch one
`session.attempts_added` / `session.attempts_removed` entry with its counts beside one
`session.attempt_added` / `session.attempt_removed` entry per attempt it changed (the learner's own
history shows it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.courses.commands import SessionAttempts, SessionCreate, SessionPatch
from gradeflow.courses.repository import sessions as repository
from gradeflow.courses.repository.sessions import SessionRow

_FIELDS = ("title", "starts_at", "ends_at")


async def session_id(session: AsyncSession, course_id: int, external_id: str, lock: bool = False) -> int:
    """The id of the course's session `external_id` (404 naming it, as an unknown assessment is); with
    `lock`, the row is held (FOR KEY SHARE) until the commit."""
    found = await repository.find_id(session, course_id, external_id, lock)
    if found is None:
        raise NotFound(f"Session {external_id!r} not found in this course.")
    return found


async def unknown(session: AsyncSession, course_id: int, external_id: str) -> bool:
    """Whether the course has no session `external_id` (for the reports' checks of what they name)."""
    return await repository.find_id(session, course_id, external_id) is None


# --- the sessions ---------------------------------------------------------------------------------


async def list_sessions(
    session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None, scope: list[str] | None = None
) -> Page[SessionRow]:
    """The course's sessions in the order they were made, each with its number of attempts (within a
    grader's `scope`)."""
    rows = await repository.sessions_page(session, ref.id, last_id_after(cursor), limit + 1, scope)
    return page_of(rows, limit, lambda r: r.id)


async def get(session: AsyncSession, ref: CourseRef, external_id: str, scope: list[str] | None = None) -> SessionRow:
    """One session with its number of attempts (within a grader's `scope`)."""
    row = await repository.session_row(session, ref.id, external_id, scope)
    if row is None:
        raise NotFound(f"Session {external_id!r} not found in this course.")
    return row


async def create(session: AsyncSession, ref: CourseRef, body: SessionCreate, actor: str) -> SessionRow:
    """Create a session; its external id must be new in the course (409)."""
    if not await repository.add_session(session, ref.id, body.model_dump()):
        raise Conflict(f"Session {body.external_id!r} already exists in this course.")
    await audit.record(session, ref.organization_id, ref.id, actor, "session.created", new=body.model_dump())
    await session.commit()
    return await get(session, ref, body.external_id)


async def update(session: AsyncSession, ref: CourseRef, external_id: str, body: SessionPatch, actor: str) -> SessionRow:
    """Change a session's title or window (null clears one); the window stays ends_at > starts_at."""
    row = await repository.lock_session(session, ref.id, external_id)
    if row is None:
        raise NotFound(f"Session {external_id!r} not found in this course.")
    before = {f: getattr(row, f) for f in _FIELDS}
    new = {**before, **body.model_dump(exclude_unset=True)}
    if new["starts_at"] is not None and new["ends_at"] is not None and new["ends_at"] <= new["starts_at"]:
        pointer = "/ends_at" if "ends_at" in body.model_fields_set else "/starts_at"
        raise ValidationFailed.one(pointer, "The session must end after it starts.")
    changed = {f: new[f] for f in _FIELDS if new[f] != before[f]}
    if changed:
        await repository.update_session(session, row.id, new["title"], new["starts_at"], new["ends_at"])
        old = {f: before[f] for f in changed}
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            actor,
            "session.updated",
            old={"session": external_id, **old},
            new={"session": external_id, **changed},
        )
    await session.commit()
    return await get(session, ref, external_id)


async def delete(session: AsyncSession, ref: CourseRef, external_id: str, actor: str) -> None:
    """Delete a session; its attempts stay, in no session."""
    found = await get(session, ref, external_id)
    await repository.delete_session(session, found.id)
    old = {k: getattr(found, k) for k in ("external_id", *_FIELDS, "attempts")}
    await audit.record(session, ref.organization_id, ref.id, actor, "session.deleted", old=old)
    await session.commit()


# --- attempts in and out --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttemptsAdded:
    """What a batch put in a session did (as answered and audited)."""

    session: str
    asked: int  # pairs in the request
    added: int  # attempts put in the session (moved from another one, or new)
    created: int  # of those, attempts that did not exist
    unchanged: int  # attempts that were in the session already


@dataclass(frozen=True, slots=True)
class AttemptsRemoved:
    """What a batch taken out of a session did (as answered and audited)."""

    session: str
    asked: int
    removed: int
    unchanged: int  # pairs without an attempt in the session


async def move_attempts(
    session: AsyncSession, ref: CourseRef, external_id: str, body: SessionAttempts, actor: str, into: bool
) -> AttemptsAdded | AttemptsRemoved:
    """Put the learners' attempts at the assessments in the session (`into`: creating the attempts
    that do not exist yet, `to_be_taken`), or take them out of it (they stay, in no session; pairs
    whose attempt is not in it are counted as unchanged). One statement; unknown assessments and
    learners are a 422 naming each.

    The course's batches run one at a time (until the commit): under READ COMMITTED the batch's
    statement then starts after the other's commit and sees its attempts, so an attempt is created
    once and its move names the session it left."""
    await repository.serialise_batches(session, ref.id)
    # Held until the commit: a concurrent delete of the session waits instead of failing our insert.
    target = await session_id(session, ref.id, external_id, lock=True)
    pairs = [(p.assessment, p.learner) for p in body.attempts]
    stamp = audit.stamp(ref.organization_id, ref.id, actor)
    counts = await repository.move_attempts(session, stamp, target, external_id, pairs, into)
    if counts.bad:
        raise ValidationFailed(_unknown(body, counts.bad))
    unchanged = counts.asked - counts.changed
    summary: AttemptsAdded | AttemptsRemoved = (
        AttemptsAdded(external_id, counts.asked, counts.changed, counts.created, unchanged)
        if into
        else AttemptsRemoved(external_id, counts.asked, counts.changed, unchanged)
    )
    action = "session.attempts_added" if into else "session.attempts_removed"
    await audit.record(session, ref.organization_id, ref.id, actor, action, new=summary)
    await session.commit()
    return summary


def _unknown(body: SessionAttempts, bad: list[list[Any]]) -> list[FieldError]:
    errors = []
    for i, no_assessment, no_learner in bad:
        pair = body.attempts[i]
        if no_assessment:
            errors.append(FieldError(f"/attempts/{i}/assessment", f"The course has no assessment {pair.assessment!r}."))
        if no_learner:
            errors.append(FieldError(f"/attempts/{i}/learner", f"{pair.learner!r} is not enrolled in this course."))
    return errors
