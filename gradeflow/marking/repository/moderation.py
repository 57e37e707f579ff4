"""Moderation's SQL: the sample (strata, picks), the moderator's decisions and marks, and scalings of graders'
marks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core.statuses import SampleStatus

# Each marked attempt of the assessment with its stratum: the grader of its first mark (moderators' marks
# are not marking). Cancelled attempts take no score and are not moderated.
_STRATA = """
    SELECT DISTINCT ON (m.attempt_id) m.attempt_id, m.grader
    FROM marks m JOIN attempts t ON t.id = m.attempt_id
    WHERE t.assessment_id = :a AND m.role <> 'moderator' AND t.status <> 'cancelled'
    ORDER BY m.attempt_id, m.id
"""

# The listed learners' attempts, in the order given, with what stops one being sampled.
_LISTED = text(
    f"""
    SELECT r.ord, r.learner, e.id AS enrollment, f.attempt_id, f.grader
    FROM unnest(CAST(:learners AS text[])) WITH ORDINALITY AS r(learner, ord)
    LEFT JOIN enrollments e ON e.course_id = :c AND e.external_id = r.learner
    LEFT JOIN attempts t ON t.assessment_id = :a AND t.enrollment_id = e.id
    LEFT JOIN ({_STRATA}) f ON f.attempt_id = t.id
    ORDER BY r.ord
    """  # noqa: S608  (constant SQL)
)

_ADD_LISTED = text(
    """
    INSERT INTO moderation_samples (assessment_id, attempt_id, grader, picked_by)
    SELECT :a, attempt, grader, :by
    FROM unnest(CAST(:attempts AS bigint[]), CAST(:graders AS text[])) AS x(attempt, grader)
    ON CONFLICT (assessment_id, attempt_id) DO NOTHING
    RETURNING attempt_id
    """
)

# Per grader: ceil(percent of their marked attempts), at least one, less what is sampled already in their
# stratum; chosen at random among their attempts not sampled yet. One statement.
_ADD_PERCENT = text(
    f"""
    WITH strata AS ({_STRATA}),
    marked AS (SELECT grader, count(*) AS n FROM strata GROUP BY grader),
    have AS (SELECT grader, count(*) AS n FROM moderation_samples WHERE assessment_id = :a GROUP BY grader),
    candidates AS (
      SELECT s.attempt_id, s.grader, row_number() OVER (PARTITION BY s.grader ORDER BY random()) AS rn
      FROM strata s
      WHERE NOT EXISTS (SELECT 1 FROM moderation_samples x WHERE x.assessment_id = :a AND x.attempt_id = s.attempt_id)
    )
    INSERT INTO moderation_samples (assessment_id, attempt_id, grader, picked_by)
    SELECT :a, c.attempt_id, c.grader, :by
    FROM candidates c JOIN marked m ON m.grader = c.grader LEFT JOIN have h ON h.grader = c.grader
    WHERE c.rn <= GREATEST(ceil(m.n * CAST(:percent AS numeric) / 100), 1) - coalesce(h.n, 0)
    ON CONFLICT (assessment_id, attempt_id) DO NOTHING
    RETURNING attempt_id
    """  # noqa: S608  (constant SQL)
)

_GRADER_COUNTS = text(
    f"""
    WITH strata AS ({_STRATA}),
    marked AS (SELECT grader, count(*) AS n FROM strata GROUP BY grader),
    sampled AS (
      SELECT grader, count(*) AS n,
             count(*) FILTER (WHERE status = 'pending') AS pending,
             count(*) FILTER (WHERE status = 'agreed') AS agreed,
             count(*) FILTER (WHERE status = 'adjusted') AS adjusted
      FROM moderation_samples WHERE assessment_id = :a GROUP BY grader
    )
    SELECT coalesce(m.grader, s.grader) AS grader, coalesce(m.n, 0) AS marked, coalesce(s.n, 0) AS sampled,
           coalesce(s.pending, 0) AS pending, coalesce(s.agreed, 0) AS agreed,
           coalesce(s.adjusted, 0) AS adjusted
    FROM marked m FULL JOIN sampled s ON s.grader = m.grader
    ORDER BY 1
    """  # noqa: S608  (constant SQL)
)

# --- the sample -----------------------------------------------------------------------------------


async def lock_sampling(session: AsyncSession, assessment_id: int) -> None:
    """One sampling of the assessment at a time, until the transaction ends."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('moderation_sample:' || :a))"), {"a": str(assessment_id)}
    )


@dataclass(frozen=True, slots=True)
class Listed:
    """A learner listed for the sample (`ord` from 1, in the order given) and their marked attempt, if any."""

    ord: int
    learner: str
    enrollment: int | None
    attempt_id: int | None
    grader: str | None


async def listed_attempts(
    session: AsyncSession, course_id: int, assessment_id: int, learners: list[str]
) -> list[Listed]:
    rows = await session.execute(_LISTED, {"learners": learners, "c": course_id, "a": assessment_id})
    return [Listed(*r) for r in rows]


async def add_listed(
    session: AsyncSession, assessment_id: int, by: str, attempts: list[int | None], graders: list[str | None]
) -> list[int]:
    """Put these attempts (each in its grader's stratum) in the sample; the attempts added."""
    added = await session.scalars(_ADD_LISTED, {"a": assessment_id, "by": by, "attempts": attempts, "graders": graders})
    return list(added)


async def add_percent(session: AsyncSession, assessment_id: int, by: str, percent: Decimal) -> list[int]:
    """Put a percentage of each stratum in the sample, at random; the attempts added."""
    added = await session.scalars(_ADD_PERCENT, {"a": assessment_id, "by": by, "percent": percent})
    return list(added)


@dataclass(frozen=True, slots=True)
class Picked:
    learner: str
    grader: str


async def picked(session: AsyncSession, assessment_id: int, attempts: list[int]) -> list[Picked]:
    """These sampled attempts' learners and strata, by grader then learner."""
    rows = await session.execute(
        text(
            """
            SELECT e.external_id, s.grader FROM moderation_samples s JOIN attempts t ON t.id = s.attempt_id
            JOIN enrollments e ON e.id = t.enrollment_id
            WHERE s.assessment_id = :a AND s.attempt_id = ANY(:ids) ORDER BY s.grader, e.external_id
            """
        ),
        {"a": assessment_id, "ids": attempts},
    )
    return [Picked(*r) for r in rows]


@dataclass(frozen=True, slots=True)
class GraderCounts:
    """A stratum's counts: attempts the grader marked first, and their sample by status."""

    grader: str
    marked: int
    sampled: int
    pending: int
    agreed: int
    adjusted: int


async def grader_counts(session: AsyncSession, assessment_id: int) -> list[GraderCounts]:
    rows = await session.execute(_GRADER_COUNTS, {"a": assessment_id})
    return [GraderCounts(*r) for r in rows]


@dataclass(frozen=True, slots=True)
class Sample:
    """A sampled attempt and its decision, with the attempt's result now."""

    id: int
    attempt_id: int
    learner: str
    grader: str | None
    status: SampleStatus
    moderator: str | None
    decided_at: datetime | None
    note: str | None
    picked_by: str
    picked_at: datetime
    earned: Decimal | None
    possible: Decimal | None


async def samples_after(
    session: AsyncSession, assessment_id: int, after: int, state: str | None, limit: int
) -> list[Sample]:
    """Up to `limit` sampled attempts after the sample id `after`, in the order picked (of one status, or all)."""
    rows = await session.execute(
        text(
            """
            SELECT s.id, s.attempt_id, e.external_id AS learner, s.grader, s.status, s.moderator,
                   s.decided_at, s.note, s.picked_by, s.created_at AS picked_at,
                   trim_scale(t.earned) AS earned, trim_scale(t.possible) AS possible
            FROM moderation_samples s JOIN attempts t ON t.id = s.attempt_id
            JOIN enrollments e ON e.id = t.enrollment_id
            WHERE s.assessment_id = :a AND s.id > :after AND (CAST(:state AS text) IS NULL OR s.status = :state)
            ORDER BY s.id LIMIT :lim
            """
        ),
        {"a": assessment_id, "after": after, "state": state, "lim": limit},
    )
    return [Sample(*r) for r in rows]


async def sample(session: AsyncSession, sample_id: int) -> Sample:
    row = (
        await session.execute(
            text(
                """
                SELECT s.attempt_id, e.external_id AS learner, s.grader, s.status, s.moderator, s.decided_at,
                       s.note, s.picked_by, s.created_at AS picked_at,
                       trim_scale(t.earned) AS earned, trim_scale(t.possible) AS possible
                FROM moderation_samples s JOIN attempts t ON t.id = s.attempt_id
                JOIN enrollments e ON e.id = t.enrollment_id WHERE s.id = :id
                """
            ),
            {"id": sample_id},
        )
    ).one()
    return Sample(sample_id, *row)


# --- decisions ------------------------------------------------------------------------------------


async def attempt_of(session: AsyncSession, course_id: int, assessment_id: int, learner: str) -> int | None:
    """The learner's attempt at the assessment."""
    attempt = await session.scalar(
        text(
            """
            SELECT t.id FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id
            WHERE t.assessment_id = :a AND e.course_id = :c AND e.external_id = :l
            """
        ),
        {"a": assessment_id, "c": course_id, "l": learner},
    )
    return None if attempt is None else int(attempt)


@dataclass(frozen=True, slots=True)
class SampledAttempt:
    """A sampled attempt as a decision reads it (its row locked)."""

    id: int
    attempt_id: int
    status: str
    note: str | None


async def lock_sampled(session: AsyncSession, assessment_id: int, attempt: int) -> SampledAttempt | None:
    """The attempt's place in the sample, locked until the transaction ends (None: not sampled)."""
    row = (
        await session.execute(
            text(
                "SELECT id, attempt_id, status, note FROM moderation_samples"
                " WHERE assessment_id = :a AND attempt_id = :t FOR UPDATE"
            ),
            {"a": assessment_id, "t": attempt},
        )
    ).first()
    return None if row is None else SampledAttempt(*row)


async def marked_by_any(session: AsyncSession, attempt: int, names: list[str]) -> bool:
    """Whether one of these names (a user and their workgroups) marked the attempt as a grader."""
    marked = await session.scalar(
        text("SELECT EXISTS (SELECT 1 FROM marks WHERE attempt_id = :t AND role <> 'moderator' AND grader = ANY(:n))"),
        {"t": attempt, "n": names},
    )
    return bool(marked)


async def moderator_marks(session: AsyncSession, attempt: int) -> dict[str, Decimal]:
    """The moderator's marks of the attempt: item external id -> points, in item order."""
    rows = await session.execute(
        text(
            """
            SELECT i.external_id, m.points FROM marks m JOIN items i ON i.id = m.item_id
            WHERE m.attempt_id = :t AND m.role = 'moderator' ORDER BY i.position
            """
        ),
        {"t": attempt},
    )
    return {str(item): points for item, points in rows}


async def withdraw_moderator_marks(session: AsyncSession, attempt: int) -> None:
    await session.execute(text("DELETE FROM marks WHERE attempt_id = :t AND role = 'moderator'"), {"t": attempt})


async def graders_marked_items(session: AsyncSession, attempt: int) -> set[int]:
    """The attempt's items some grader marked (ids)."""
    items = await session.scalars(
        text("SELECT item_id FROM marks WHERE attempt_id = :t AND role <> 'moderator'"), {"t": attempt}
    )
    return set(items)


async def replace_moderator_marks(
    session: AsyncSession, attempt: int, moderator: str, note: str | None, items: list[int], points: list[Decimal]
) -> None:
    """The moderator's marks of these items of the attempt, replacing any earlier moderator's mark on them."""
    await session.execute(
        text("DELETE FROM marks WHERE attempt_id = :t AND role = 'moderator' AND item_id = ANY(:i)"),
        {"t": attempt, "i": items},
    )
    await session.execute(
        text(
            """
            INSERT INTO marks (attempt_id, item_id, grader, role, points, comment)
            SELECT :t, i, :g, 'moderator', p, :c FROM unnest(CAST(:i AS bigint[]), CAST(:p AS numeric[])) AS x(i, p)
            """
        ),
        {"t": attempt, "g": moderator, "c": note, "i": items, "p": points},
    )


async def decide(
    session: AsyncSession, sample_id: int, state: str, moderator: str, at: datetime, note: str | None
) -> None:
    await session.execute(
        text(
            """
            UPDATE moderation_samples SET status = :s, moderator = :m, decided_at = :now, note = :note
            WHERE id = :id
            """
        ),
        {"s": state, "m": moderator, "now": at, "note": note, "id": sample_id},
    )


# --- scaling --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scaling:
    grader: str
    factor: Decimal
    reason: str | None
    scaled_by: str
    updated_at: datetime


async def scalings_of(session: AsyncSession, assessment_id: int) -> list[Scaling]:
    """The assessment's scalings, by grader."""
    rows = await session.execute(
        text(
            """
            SELECT grader, factor, reason, scaled_by, updated_at FROM moderation_scalings
            WHERE assessment_id = :a ORDER BY grader
            """
        ),
        {"a": assessment_id},
    )
    return [Scaling(*r) for r in rows]


@dataclass(frozen=True, slots=True)
class Factor:
    """A scaling as its audit entry names it."""

    factor: Decimal
    reason: str | None


async def lock_scaling(session: AsyncSession, assessment_id: int, grader: str) -> Factor | None:
    row = (
        await session.execute(
            text("SELECT factor, reason FROM moderation_scalings WHERE assessment_id = :a AND grader = :g FOR UPDATE"),
            {"a": assessment_id, "g": grader},
        )
    ).first()
    return None if row is None else Factor(*row)


async def put_scaling(
    session: AsyncSession,
    assessment_id: int,
    grader: str,
    factor: Decimal,
    by: str,
    reason: str | None,
    at: datetime,
) -> Scaling:
    row = (
        await session.execute(
            text(
                """
                INSERT INTO moderation_scalings (assessment_id, grader, factor, scaled_by, reason, updated_at)
                VALUES (:a, :g, :f, :by, :r, :now)
                ON CONFLICT (assessment_id, grader) DO UPDATE SET
                  factor = excluded.factor, scaled_by = excluded.scaled_by, reason = excluded.reason,
                  updated_at = excluded.updated_at
                RETURNING grader, factor, reason, scaled_by, updated_at
                """
            ),
            {"a": assessment_id, "g": grader, "f": factor, "by": by, "r": reason, "now": at},
        )
    ).one()
    return Scaling(*row)


async def remove_scaling(session: AsyncSession, assessment_id: int, grader: str) -> Factor | None:
    """Take the grader's scaling away; what it was (None: there was none)."""
    row = (
        await session.execute(
            text("DELETE FROM moderation_scalings WHERE assessment_id = :a AND grader = :g RETURNING factor, reason"),
            {"a": assessment_id, "g": grader},
        )
    ).first()
    return None if row is None else Factor(*row)


async def attempts_marked_by(session: AsyncSession, assessment_id: int, grader: str) -> list[int]:
    """The attempts of the assessment the grader marked (as a grader), by id."""
    attempts = await session.scalars(
        text(
            """
            SELECT DISTINCT m.attempt_id FROM marks m JOIN attempts t ON t.id = m.attempt_id
            WHERE t.assessment_id = :a AND m.grader = :g AND m.role <> 'moderator' ORDER BY 1
            """
        ),
        {"a": assessment_id, "g": grader},
    )
    return list(attempts)
