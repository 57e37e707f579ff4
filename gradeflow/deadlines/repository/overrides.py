"""Assessment overrides (`assessment_overrides`): a learner's or a group's own due date and extra attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.anonymity.repository import HIDDEN


@dataclass(frozen=True, slots=True)
class Override:
    """An override as staff see it: the learner (external id) or the group it is for."""

    id: int
    learner: str | None
    group: str | None
    due_at: datetime | None
    extra_attempts: int
    reason: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OverrideKey:
    """Which override: the assessment's for one learner (enrollment) or for one group."""

    assessment_id: int
    enrollment_id: int | None = None
    group: str | None = None

    @property
    def where(self) -> str:
        return "o.enrollment_id = :e" if self.group is None else "o.group_name = :g"

    @property
    def params(self) -> dict[str, int | str | None]:
        return {"a": self.assessment_id, "e": self.enrollment_id, "g": self.group}


_SELECT = """
    SELECT o.id, e.external_id AS learner, o.group_name AS "group", o.due_at, o.extra_attempts, o.reason,
           o.created_by, o.created_at, o.updated_at
    FROM assessment_overrides o LEFT JOIN enrollments e ON e.id = o.enrollment_id
    WHERE o.assessment_id = :a
"""

_HIDDEN = text(f"SELECT {HIDDEN} FROM assessments a WHERE a.id = :a")  # noqa: S608 (constant SQL)


async def hides_identities(session: AsyncSession, assessment_id: int) -> bool:
    """The assessment is anonymous and its anonymity not lifted."""
    return bool(await session.scalar(_HIDDEN, {"a": assessment_id}))


async def overrides_after(
    session: AsyncSession, assessment_id: int, *, only_groups: bool, after: int, limit: int
) -> list[Override]:
    """Up to `limit` of the assessment's overrides after id `after` (`only_groups`: the groups' only), in the order
    they were made."""
    rows = await session.execute(
        text(
            _SELECT
            + (" AND o.group_name IS NOT NULL" if only_groups else "")
            + " AND o.id > :after ORDER BY o.id LIMIT :lim"
        ),
        {"a": assessment_id, "after": after, "lim": limit},
    )
    return [Override(*r) for r in rows]


async def group_named(session: AsyncSession, course_id: int, group: str) -> bool:
    """Some enrollment of the course is in the group."""
    named = await session.scalar(
        text("SELECT EXISTS (SELECT 1 FROM enrollments WHERE course_id = :c AND CAST(:g AS text) = ANY(groups))"),
        {"c": course_id, "g": group},
    )
    return bool(named)


async def override_of(session: AsyncSession, key: OverrideKey, *, lock: bool = False) -> Override | None:
    """The override (`lock`: locked for update), or None."""
    sql = _SELECT + f" AND {key.where}" + (" FOR UPDATE OF o" if lock else "")
    row = (await session.execute(text(sql), key.params)).first()
    return None if row is None else Override(*row)


_UPSERT = """
    INSERT INTO assessment_overrides AS o (assessment_id, enrollment_id, group_name, due_at, extra_attempts, reason,
                                           created_by)
    VALUES (:a, :e, :g, :due_at, :extra_attempts, :reason, :actor)
    ON CONFLICT {conflict} DO UPDATE SET
      due_at = excluded.due_at, extra_attempts = excluded.extra_attempts, reason = excluded.reason, updated_at = now()
"""
_CONFLICT_LEARNER = "(assessment_id, enrollment_id) WHERE enrollment_id IS NOT NULL"
_CONFLICT_GROUP = "(assessment_id, group_name) WHERE group_name IS NOT NULL"


async def put_override(
    session: AsyncSession,
    key: OverrideKey,
    *,
    due_at: datetime | None,
    extra_attempts: int,
    reason: str | None,
    actor: str,
) -> None:
    """Insert or replace the override."""
    conflict = _CONFLICT_LEARNER if key.group is None else _CONFLICT_GROUP
    await session.execute(
        text(_UPSERT.format(conflict=conflict)),
        {**key.params, "due_at": due_at, "extra_attempts": extra_attempts, "reason": reason, "actor": actor},
    )


async def delete_override(session: AsyncSession, override_id: int) -> None:
    await session.execute(text("DELETE FROM assessment_overrides WHERE id = :id"), {"id": override_id})
