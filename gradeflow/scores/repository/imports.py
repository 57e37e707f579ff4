"""Score imports' SQL: the import records, the rows out of range, and what a revert reads and puts back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class ImportRecord:
    id: int
    status: str
    dry_run: bool
    file_name: str | None
    mapping: dict[str, str]
    result: dict[str, Any] | None
    error: str | None
    requested_by: str
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClaimedImport:
    """A queued import the worker took on: what it needs to run it."""

    organization_id: int
    course_id: int
    course: str  # its external id ("" when the course is gone)
    dry_run: bool
    mapping: dict[str, str]
    content: bytes
    requested_by: str


@dataclass(frozen=True, slots=True)
class Revertable:
    """A score an import set (its audit entry), with the attempt, item and enrollment it is on and the value
    the score has now."""

    action: str
    learner: str
    assessment: str
    item: str | None
    old: dict[str, Any] | None
    new: dict[str, Any]
    attempt_id: int
    item_id: int | None
    enrollment_id: int
    now_value: dict[str, Any]


_CREATE = text(
    """
    INSERT INTO score_imports (organization_id, course_id, dry_run, file_name, mapping, content, requested_by)
    VALUES (:org, :c, :dry, :name, CAST(:mapping AS jsonb), :content, :by) RETURNING id
    """
)

_GET = text(
    """
    SELECT id, status, dry_run, file_name, mapping, result, error, requested_by, created_at, finished_at
    FROM score_imports WHERE id = :id AND course_id = :c
    """
)

_CLAIM = text(
    """
    UPDATE score_imports SET status = 'running' WHERE id = :id AND status = 'queued'
    RETURNING organization_id, course_id, dry_run, mapping, content, requested_by
    """
)

_COURSE = text("SELECT external_id FROM courses WHERE id = :c")

_OUT_OF_RANGE = text(
    """
    SELECT rn FROM score_in
    WHERE earned > coalesce(possible, CASE WHEN item_ext IS NULL THEN a_possible ELSE i_possible END)
    ORDER BY rn
    """
)

_FINISH = text(
    """
    UPDATE score_imports SET status = :s, result = CAST(:r AS jsonb), error = :e, finished_at = :now
    WHERE id = :id
    """
)

_REVERTABLE = text(
    """
    SELECT l.action, l.learner, l.assessment, l.item, l.old, l.new,
           t.id AS attempt_id, i.id AS item_id, e.id AS enrollment_id,
           CASE WHEN l.item IS NULL THEN jsonb_build_object('earned', trim_scale(t.entered), 'source', t.source)
                ELSE jsonb_build_object('earned', trim_scale(sc.earned), 'source', sc.source) END AS now_value
    FROM audit_log l
    JOIN assessments a ON a.course_id = l.course_id AND a.external_id = l.assessment
    JOIN enrollments e ON e.course_id = l.course_id AND e.external_id = l.learner
    JOIN attempts t ON t.assessment_id = a.id AND t.enrollment_id = e.id
    LEFT JOIN items i ON i.assessment_id = a.id AND i.external_id = l.item
    LEFT JOIN item_scores sc ON sc.attempt_id = t.id AND sc.item_id = i.id
    WHERE l.course_id = :c AND l.import_id = :i AND l.action IN ('score.set', 'item_score.set')
    ORDER BY l.id
    """
)

_REVERTED = text("UPDATE score_imports SET status = 'reverted' WHERE id = :id")

# The old values to put back, one row per score: unnest of the parameters below.
_OLD = """unnest(CAST(:attempt AS bigint[]), CAST(:item AS bigint[]), CAST(:had AS bool[]),
                       CAST(:earned AS numeric[]), CAST(:possible AS numeric[]), CAST(:source AS text[]),
                       CAST(:by AS text[])) AS o(attempt, item, had, earned, possible, source, by)"""

_REMOVE_ITEM_SCORES = text(
    f"DELETE FROM item_scores sc USING {_OLD} WHERE NOT o.had AND sc.attempt_id = o.attempt"  # noqa: S608
    " AND sc.item_id = o.item"
)

_RESTORE_ITEM_SCORES = text(
    f"UPDATE item_scores sc SET earned = o.earned, possible = o.possible, source = o.source,"  # noqa: S608
    f" scored_by = o.by FROM {_OLD} WHERE o.had AND sc.attempt_id = o.attempt AND sc.item_id = o.item"
)

# An attempt that had no score goes back to the status its own times give (handed in, started, or still to be
# taken).
_RESTORE_TOTALS = text(
    f"UPDATE attempts t SET entered = o.earned, possible = o.possible, source = o.source,"  # noqa: S608
    " scored_by = o.by, confirmed_at = NULL, confirmed_by = NULL,"
    " status = CASE WHEN o.had THEN 'graded' WHEN t.submitted_at IS NOT NULL THEN 'submitted'"
    " WHEN t.started_at IS NOT NULL THEN 'in_progress' ELSE 'to_be_taken' END"
    f" FROM {_OLD} WHERE t.id = o.attempt"
)


async def create(
    session: AsyncSession,
    organization_id: int,
    course_id: int,
    dry_run: bool,
    file_name: str | None,
    mapping: str,
    content: bytes,
    requested_by: str,
) -> int:
    """Record a queued import (`mapping`: JSON text); its id."""
    import_id = await session.scalar(
        _CREATE,
        {
            "org": organization_id,
            "c": course_id,
            "dry": dry_run,
            "name": file_name,
            "mapping": mapping,
            "content": content,
            "by": requested_by,
        },
    )
    return int(import_id)


async def get(session: AsyncSession, course_id: int, import_id: int) -> ImportRecord | None:
    row = (await session.execute(_GET, {"id": import_id, "c": course_id})).mappings().first()
    return None if row is None else ImportRecord(**row)


async def claim(session: AsyncSession, import_id: int) -> ClaimedImport | None:
    """Take a queued import on (None: it is not queued: taken already, or gone), with its course's external id."""
    row = (await session.execute(_CLAIM, {"id": import_id})).first()
    if row is None:
        return None
    org, course_id, dry_run, mapping, content, requested_by = row
    course = await session.scalar(_COURSE, {"c": course_id})
    return ClaimedImport(org, course_id, course or "", dry_run, mapping, content, requested_by)


async def staged_out_of_range(session: AsyncSession) -> list[int]:
    """The staged rows (scratch table) with more points than possible."""
    return [rn for (rn,) in (await session.execute(_OUT_OF_RANGE)).all()]


async def finish(
    session: AsyncSession, import_id: int, status: str, result: str | None, error: str | None, now: datetime
) -> None:
    """Record how an import ended (`result`: JSON text)."""
    await session.execute(_FINISH, {"id": import_id, "s": status, "r": result, "e": error, "now": now})


async def revertable(session: AsyncSession, course_id: int, import_id: int) -> list[Revertable]:
    """Every score the import set, in the order it set them."""
    rows = (await session.execute(_REVERTABLE, {"c": course_id, "i": import_id})).mappings()
    return [Revertable(**r) for r in rows]


async def mark_reverted(session: AsyncSession, import_id: int) -> None:
    await session.execute(_REVERTED, {"id": import_id})


def _old_values(entries: list[Revertable]) -> dict[str, list[Any]]:
    return {
        "attempt": [e.attempt_id for e in entries],
        "item": [e.item_id for e in entries],
        "had": [e.old is not None for e in entries],
        "earned": [None if e.old is None else str(e.old["earned"]) for e in entries],
        "possible": [None if e.old is None else str(e.old["possible"]) for e in entries],
        "source": [None if e.old is None else e.old["source"] for e in entries],
        "by": [None if e.old is None else e.old["graded_by"] for e in entries],
    }


async def restore_item_scores(session: AsyncSession, entries: list[Revertable]) -> None:
    """Put the item scores' old values back (removing those that did not exist before), set-based."""
    params = _old_values(entries)
    await session.execute(_REMOVE_ITEM_SCORES, params)
    await session.execute(_RESTORE_ITEM_SCORES, params)


async def restore_totals(session: AsyncSession, entries: list[Revertable]) -> None:
    """Put the assessment-level scores' old values back, set-based (an attempt that had none goes back to
    the status its own times give)."""
    await session.execute(_RESTORE_TOTALS, _old_values(entries))
