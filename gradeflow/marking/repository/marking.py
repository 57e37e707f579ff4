"""Manual marking's SQL: workgroups, allocations, graders' marks, the marking locks, the item scores marks give,
and confirmation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.repository.access import IN_SCOPE
from gradeflow.anonymity.repository import HIDDEN
from gradeflow.core.statuses import AWAITING_MARKS_STATUSES, sql_in

# --- workgroups -----------------------------------------------------------------------------------


async def workgroups_of(session: AsyncSession, course_id: int, user: str) -> list[str]:
    """The course's workgroups the user is a member of, by name."""
    groups = await session.scalars(
        text("SELECT name FROM workgroups WHERE course_id = :c AND :u = ANY(members) ORDER BY name"),
        {"c": course_id, "u": user},
    )
    return list(groups)


async def workgroup_members(session: AsyncSession, course_id: int, name: str) -> list[str] | None:
    """A workgroup's members (None: no such workgroup)."""
    members = await session.scalar(
        text("SELECT members FROM workgroups WHERE course_id = :c AND name = :n"), {"c": course_id, "n": name}
    )
    return None if members is None else list(members)


async def put_workgroup(session: AsyncSession, course_id: int, name: str, members: list[str]) -> None:
    await session.execute(
        text(
            """
            INSERT INTO workgroups (course_id, name, members) VALUES (:c, :n, :m)
            ON CONFLICT (course_id, name) DO UPDATE SET members = excluded.members
            """
        ),
        {"c": course_id, "n": name, "m": members},
    )


@dataclass(frozen=True, slots=True)
class Workgroup:
    name: str
    members: list[str]


async def workgroups(session: AsyncSession, course_id: int) -> list[Workgroup]:
    rows = await session.execute(
        text("SELECT name, members FROM workgroups WHERE course_id = :c ORDER BY name"), {"c": course_id}
    )
    return [Workgroup(n, list(m)) for n, m in rows]


# --- allocation -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttemptOf:
    """An attempt and its learner (external id)."""

    attempt: int
    learner: str


_ATTEMPTS_TO_MARK = f"""
    SELECT t.id, e.external_id FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id
    WHERE t.assessment_id = :a AND {sql_in("t.status", AWAITING_MARKS_STATUSES)} ORDER BY t.id
"""  # noqa: S608 (constant SQL)


async def attempts_to_mark(session: AsyncSession, assessment_id: int) -> list[AttemptOf]:
    """The assessment's submitted or pending-grading attempts, in course order."""
    rows = await session.execute(text(_ATTEMPTS_TO_MARK), {"a": assessment_id})
    return [AttemptOf(*r) for r in rows]


@dataclass(frozen=True, slots=True)
class Mark:
    """A mark as reconciliation reads it."""

    attempt: int
    item: int
    grader: str
    role: str
    points: Decimal
    comment: str | None


async def marks_of_assessment(session: AsyncSession, assessment_id: int) -> list[Mark]:
    """Every mark of the assessment, oldest first."""
    rows = await session.execute(
        text(
            """
            SELECT m.attempt_id, m.item_id, m.grader, m.role, m.points, m.comment FROM marks m
            JOIN attempts t ON t.id = m.attempt_id WHERE t.assessment_id = :a ORDER BY m.id
            """
        ),
        {"a": assessment_id},
    )
    return [Mark(*r) for r in rows]


@dataclass(frozen=True, slots=True)
class Allocation:
    """A unit of work given to a grader: the attempt, the item (None: all its manual items), the role."""

    attempt: int
    item: int | None
    grader: str
    role: str


async def allocations_in_role(session: AsyncSession, assessment_id: int, role: str) -> list[Allocation]:
    rows = await session.execute(
        text(
            """
            SELECT l.attempt_id, l.item_id, l.grader FROM allocations l
            JOIN attempts t ON t.id = l.attempt_id WHERE t.assessment_id = :a AND l.role = :role
            """
        ),
        {"a": assessment_id, "role": role},
    )
    return [Allocation(attempt, item, grader, role) for attempt, item, grader in rows]


async def add_allocations(session: AsyncSession, allocations: list[Allocation]) -> None:
    await session.execute(
        text(
            """
            INSERT INTO allocations (attempt_id, item_id, grader, role)
            VALUES (:attempt, :item, :grader, :role)
            """
        ),
        [{"attempt": a.attempt, "item": a.item, "grader": a.grader, "role": a.role} for a in allocations],
    )


async def release_unmarked(session: AsyncSession, assessment_id: int, grader: str) -> list[Allocation]:
    """Take the grader's allocations they have not marked yet off the assessment; those taken."""
    rows = await session.execute(
        text(
            """
            DELETE FROM allocations l USING attempts t
            WHERE t.id = l.attempt_id AND t.assessment_id = :a AND l.grader = :g
              AND NOT EXISTS (SELECT 1 FROM marks m WHERE m.attempt_id = l.attempt_id AND m.grader = l.grader
                              AND (l.item_id IS NULL OR m.item_id = l.item_id))
            RETURNING l.attempt_id, l.item_id, l.role
            """
        ),
        {"a": assessment_id, "g": grader},
    )
    return [Allocation(attempt, item, grader, role) for attempt, item, role in rows]


async def other_graders_by_load(session: AsyncSession, assessment_id: int, grader: str) -> list[str]:
    """The assessment's other graders, least allocated first."""
    graders = await session.scalars(
        text(
            """
            SELECT l.grader FROM allocations l JOIN attempts t ON t.id = l.attempt_id
            WHERE t.assessment_id = :a AND l.grader <> :g GROUP BY l.grader ORDER BY count(*), l.grader
            """
        ),
        {"a": assessment_id, "g": grader},
    )
    return list(graders)


async def graders_on(session: AsyncSession, attempts: list[int]) -> list[tuple[int, str]]:
    """(attempt, grader) of every allocation of these attempts."""
    rows = await session.execute(
        text("SELECT attempt_id, grader FROM allocations WHERE attempt_id = ANY(:ids)"), {"ids": attempts}
    )
    return [(int(attempt), str(grader)) for attempt, grader in rows]


@dataclass(frozen=True, slots=True)
class AllocationView:
    learner: str
    item: str | None
    grader: str
    role: str


async def allocations_of(session: AsyncSession, assessment_id: int) -> list[AllocationView]:
    """Who marks what in the assessment, by attempt and item."""
    rows = await session.execute(
        text(
            """
            SELECT e.external_id AS learner, i.external_id AS item, l.grader, l.role
            FROM allocations l JOIN attempts t ON t.id = l.attempt_id
            JOIN enrollments e ON e.id = t.enrollment_id LEFT JOIN items i ON i.id = l.item_id
            WHERE t.assessment_id = :a ORDER BY t.id, i.position NULLS FIRST, l.grader
            """
        ),
        {"a": assessment_id},
    )
    return [AllocationView(*r) for r in rows]


@dataclass(frozen=True, slots=True)
class QueueRow:
    """An allocated item not marked yet; `hidden` and `number` say how a concealed grader names the learner."""

    assessment: str
    learner: str
    item: str
    role: str
    marking_as: str
    hidden: bool
    number: int | None


_QUEUE = text(
    f"""
    SELECT a.external_id AS assessment, e.external_id AS learner, i.external_id AS item, l.role,
           l.grader AS marking_as, {HIDDEN} AS hidden, n.number
    FROM allocations l
    JOIN attempts t ON t.id = l.attempt_id
    JOIN assessments a ON a.id = t.assessment_id
    JOIN enrollments e ON e.id = t.enrollment_id
    LEFT JOIN candidate_numbers n ON n.assessment_id = a.id AND n.enrollment_id = t.enrollment_id
    JOIN items i ON i.assessment_id = a.id AND i.marking = 'manual'
                  AND (l.item_id IS NULL OR i.id = l.item_id)
    WHERE a.course_id = :c AND l.grader = ANY(:names) AND t.status <> 'cancelled'
      AND NOT EXISTS (SELECT 1 FROM marks m WHERE m.attempt_id = t.id AND m.item_id = i.id
                      AND m.grader = l.grader)
    ORDER BY a.position, a.id, CASE WHEN CAST(:hide AS boolean) AND {HIDDEN} THEN n.number END,
             t.id, i.position
    """  # noqa: S608  (constant SQL)
)


async def unmarked_allocated(session: AsyncSession, course_id: int, names: list[str], hide: bool) -> list[QueueRow]:
    """Items allocated to these names and not marked by them, in course order (hidden assessments' by candidate
    number when `hide`)."""
    rows = await session.execute(_QUEUE, {"c": course_id, "names": names, "hide": hide})
    return [QueueRow(*r) for r in rows]


# --- marks ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttemptState:
    id: int
    status: str


async def attempt_of(session: AsyncSession, course_id: int, assessment_id: int, learner: str) -> AttemptState | None:
    """The learner's attempt at the assessment, and its status."""
    row = (
        await session.execute(
            text(
                """
                SELECT t.id, t.status FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id
                WHERE t.assessment_id = :a AND e.course_id = :c AND e.external_id = :l
                """
            ),
            {"a": assessment_id, "c": course_id, "l": learner},
        )
    ).first()
    return None if row is None else AttemptState(int(row.id), str(row.status))


async def allocation_for(
    session: AsyncSession, attempt: int | None, item_id: int, names: list[str]
) -> tuple[str, str] | None:
    """Under which name and role one of `names` has the item of the attempt allocated (marker before third)."""
    row = (
        await session.execute(
            text(
                """
                SELECT grader, role FROM allocations WHERE attempt_id = :t AND grader = ANY(:names)
                  AND (item_id IS NULL OR item_id = :i) ORDER BY role = 'marker', grader LIMIT 1
                """
            ),
            {"t": attempt, "i": item_id, "names": names},
        )
    ).first()
    return None if row is None else (str(row[0]), str(row[1]))


@dataclass(frozen=True, slots=True)
class GivenMark:
    points: Decimal
    comment: str | None


async def mark_of(session: AsyncSession, attempt: int, item_id: int, grader: str) -> GivenMark | None:
    row = (
        await session.execute(
            text("SELECT points, comment FROM marks WHERE attempt_id = :t AND item_id = :i AND grader = :g"),
            {"t": attempt, "i": item_id, "g": grader},
        )
    ).first()
    return None if row is None else GivenMark(*row)


async def put_mark(
    session: AsyncSession, attempt: int, item_id: int, grader: str, role: str, points: Decimal, comment: str | None
) -> None:
    await session.execute(
        text(
            """
            INSERT INTO marks (attempt_id, item_id, grader, role, points, comment) VALUES (:t, :i, :g, :r, :p, :c)
            ON CONFLICT (attempt_id, item_id, grader) DO UPDATE SET
              points = excluded.points, comment = excluded.comment, role = excluded.role, updated_at = now()
            """
        ),
        {"t": attempt, "i": item_id, "g": grader, "r": role, "p": points, "c": comment},
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """A moderator's decision on an attempt, as it was."""

    status: str
    moderator: str | None
    decided_at: datetime | None
    note: str | None


async def reopen_sample(session: AsyncSession, attempt: int) -> Decision | None:
    """Send the attempt back to pending in the moderation sample; the decision it had (None: none)."""
    row = (
        await session.execute(
            text(
                """
                UPDATE moderation_samples s SET status = 'pending', moderator = NULL, decided_at = NULL, note = NULL
                FROM moderation_samples o
                WHERE s.id = o.id AND s.attempt_id = :t AND s.status <> 'pending'
                RETURNING o.status, o.moderator, o.decided_at, o.note
                """
            ),
            {"t": attempt},
        )
    ).first()
    return None if row is None else Decision(*row)


async def scalings(session: AsyncSession, assessment_id: int) -> dict[str, Decimal]:
    """The moderator's scalings of graders' marks on the assessment: grader -> factor."""
    rows = await session.execute(
        text("SELECT grader, factor FROM moderation_scalings WHERE assessment_id = :a"), {"a": assessment_id}
    )
    return {str(g): Decimal(f) for g, f in rows}


@dataclass(frozen=True, slots=True)
class MarkView:
    """A mark as the list shows it (`reconciled`: the item's score is the one marking gave)."""

    learner: str
    item: str
    grader: str
    role: str
    points: Decimal
    comment: str | None
    updated_at: datetime
    reconciled: bool


_MARKS = text(
    f"""
    SELECT learner, item, grader, role, points, comment, updated_at, reconciled FROM (
      SELECT e.external_id AS learner, i.external_id AS item, m.grader, m.role, m.points, m.comment,
             m.updated_at, sc.attempt_id IS NOT NULL AND sc.source = 'manual' AS reconciled,
             {IN_SCOPE} AS in_scope, t.id AS attempt, i.position, m.id, n.number
      FROM marks m JOIN attempts t ON t.id = m.attempt_id JOIN enrollments e ON e.id = t.enrollment_id
      LEFT JOIN candidate_numbers n
        ON n.assessment_id = t.assessment_id AND n.enrollment_id = t.enrollment_id
      JOIN items i ON i.id = m.item_id
      LEFT JOIN item_scores sc ON sc.attempt_id = m.attempt_id AND sc.item_id = m.item_id
      WHERE t.assessment_id = :a
    ) x
    WHERE CAST(:mine AS text[]) IS NULL OR grader = ANY(CAST(:mine AS text[])) OR (reconciled AND in_scope)
    ORDER BY CASE WHEN CAST(:hidden AS boolean) THEN number END, attempt, position, id
    """  # noqa: S608  (constant SQL)
)


async def marks_seen(
    session: AsyncSession, assessment_id: int, mine: list[str] | None, scope: list[str] | None, hidden: bool
) -> list[MarkView]:
    """The assessment's marks a viewer sees: all (`mine` None), or those of `mine` and the others' on reconciled
    items of attempts in `scope`; by candidate number first when `hidden`."""
    rows = await session.execute(_MARKS, {"a": assessment_id, "mine": mine, "scope": scope, "hidden": hidden})
    return [MarkView(*r) for r in rows]


# --- the one path from marks to item scores --------------------------------------------------------


async def lock_assessment(session: AsyncSession, assessment_id: int, *, exclusive: bool) -> None:
    which = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await session.execute(
        text(f"SELECT {which}(hashtext('marking.assessment'), CAST(:a % 2147483647 AS int))"),
        {"a": assessment_id},
    )


async def lock_attempts(session: AsyncSession, attempts: list[int]) -> None:
    """Each attempt exclusive, in key order."""
    await session.execute(
        text(
            """
            SELECT pg_advisory_xact_lock(hashtext('marking.attempt'), k) FROM (
              SELECT DISTINCT CAST(x % 2147483647 AS int) AS k FROM unnest(CAST(:ids AS bigint[])) AS x
              ORDER BY k OFFSET 0
            ) keys
            """
        ),
        {"ids": attempts},
    )


async def marks_of_attempts(session: AsyncSession, attempts: list[int], items: list[int] | None) -> list[Mark]:
    """The marks of these attempts (of these items, or all), oldest first."""
    rows = await session.execute(
        text(
            "SELECT attempt_id, item_id, grader, role, points, comment FROM marks WHERE attempt_id = ANY(:ids)"
            " AND (CAST(:items AS bigint[]) IS NULL OR item_id = ANY(:items)) ORDER BY id"
        ),
        {"ids": attempts, "items": items},
    )
    return [Mark(*r) for r in rows]


@dataclass(frozen=True, slots=True)
class ItemScore:
    earned: Decimal | None
    source: str


async def item_scores_of(session: AsyncSession, attempts: list[int]) -> dict[tuple[int, int], ItemScore]:
    """(attempt, item) -> its score now."""
    rows = await session.execute(
        text("SELECT attempt_id, item_id, earned, source FROM item_scores WHERE attempt_id = ANY(:ids)"),
        {"ids": attempts},
    )
    return {(attempt, item_id): ItemScore(earned, source) for attempt, item_id, earned, source in rows}


async def learners_of_live_attempts(session: AsyncSession, attempts: list[int]) -> dict[int, str]:
    """Attempt -> learner (external id), for those of these attempts not cancelled."""
    rows = await session.execute(
        text(
            "SELECT t.id, e.external_id FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id"
            " WHERE t.id = ANY(:ids) AND t.status <> 'cancelled'"
        ),
        {"ids": attempts},
    )
    return {int(attempt): str(learner) for attempt, learner in rows}


@dataclass(frozen=True, slots=True)
class RemovedScore:
    attempt: int
    item: int
    earned: Decimal | None
    possible: Decimal | None
    scored_by: str | None


async def remove_marking_scores(session: AsyncSession, pairs: list[tuple[int, int]]) -> list[RemovedScore]:
    """Delete the scores marking gave to these (attempt, item) pairs; those deleted."""
    rows = await session.execute(
        text(
            """
            DELETE FROM item_scores sc USING unnest(CAST(:t AS bigint[]), CAST(:i AS bigint[])) AS x(t, i)
            WHERE sc.attempt_id = x.t AND sc.item_id = x.i AND sc.source = 'manual'
            RETURNING sc.attempt_id, sc.item_id, trim_scale(sc.earned), trim_scale(sc.possible), sc.scored_by
            """
        ),
        {"t": [t for t, _ in pairs], "i": [i for _, i in pairs]},
    )
    return [RemovedScore(*r) for r in rows]


async def enrollments_of(session: AsyncSession, attempts: list[int]) -> list[int]:
    ids = await session.scalars(
        text("SELECT DISTINCT enrollment_id FROM attempts WHERE id = ANY(:ids)"), {"ids": attempts}
    )
    return list(ids)


# --- confirmation ---------------------------------------------------------------------------------


async def moderation_progress(session: AsyncSession, assessment_id: int) -> tuple[int, int, int]:
    """Attempts graders marked (cancelled ones aside), attempts in the sample, and those not decided yet."""
    row = (
        await session.execute(
            text(
                """
                SELECT (SELECT count(DISTINCT m.attempt_id) FROM marks m JOIN attempts t ON t.id = m.attempt_id
                        WHERE t.assessment_id = :a AND m.role <> 'moderator' AND t.status <> 'cancelled'),
                       count(*), count(*) FILTER (WHERE status = 'pending')
                FROM moderation_samples WHERE assessment_id = :a
                """
            ),
            {"a": assessment_id},
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


@dataclass(frozen=True, slots=True)
class ToConfirm:
    """A learner of the course and their attempt at the assessment (if any), as confirmation judges it."""

    learner: str
    enrollment: int
    attempt: int | None
    status: str | None
    confirmed: bool | None
    allocated: bool


_TO_CONFIRM = text(
    f"""
    SELECT e.external_id, e.id, t.id, t.status, t.confirmed_at IS NOT NULL, {IN_SCOPE}
    FROM enrollments e
    LEFT JOIN attempts t ON t.enrollment_id = e.id AND t.assessment_id = :a
    WHERE e.course_id = :c AND (CAST(:learners AS text[]) IS NULL OR e.external_id = ANY(:learners))
    ORDER BY e.id
    """  # noqa: S608  (constant SQL)
)


async def to_confirm(
    session: AsyncSession, course_id: int, assessment_id: int, scope: list[str] | None, learners: list[str] | None
) -> list[ToConfirm]:
    """The course's learners (or these), by enrollment, with their attempt and whether it is in `scope`."""
    rows = await session.execute(
        _TO_CONFIRM, {"a": assessment_id, "c": course_id, "scope": scope, "learners": learners}
    )
    return [ToConfirm(*r) for r in rows]


async def confirm_attempts(session: AsyncSession, attempts: list[int], by: str) -> None:
    await session.execute(
        text("UPDATE attempts SET confirmed_at = now(), confirmed_by = :who WHERE id = ANY(:ids)"),
        {"who": by, "ids": attempts},
    )


@dataclass(frozen=True, slots=True)
class ManualScore:
    learner: str
    item: str
    earned: Decimal | None
    source: str


async def manual_item_scores(session: AsyncSession, assessment_id: int) -> list[ManualScore]:
    """The scores of the assessment's manual items, by learner and item."""
    rows = await session.execute(
        text(
            """
            SELECT e.external_id, i.external_id, trim_scale(sc.earned), sc.source
            FROM item_scores sc JOIN attempts t ON t.id = sc.attempt_id
            JOIN enrollments e ON e.id = t.enrollment_id JOIN items i ON i.id = sc.item_id
            WHERE t.assessment_id = :a AND i.marking = 'manual'
            """
        ),
        {"a": assessment_id},
    )
    return [ManualScore(*r) for r in rows]
