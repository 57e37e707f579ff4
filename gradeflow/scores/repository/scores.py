"""Scores' SQL: the scratch table rows are resolved into, the set-based writes from it, the reads of a
score, and the single score write as one statement.

score_in is a per-connection scratch table (gradeflow/db/engine.py), emptied by each commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.repository.access import IN_SCOPE
from gradeflow.audit.repository import COLUMNS as AUDIT_COLUMNS
from gradeflow.core.statuses import AttemptStatus, LateStatus
from gradeflow.db import grouped
from gradeflow.publishing.repository import visibility as published


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    field: str
    detail: str
    code: str  # unknown | mismatch | duplicate | cancelled


@dataclass(frozen=True, slots=True)
class StagedChange:
    """What writing one staged row would do: create, change or leave unchanged, with the old and new value."""

    rn: int
    learner: str
    assessment: str
    item: str | None
    old: dict[str, Any] | None
    new: dict[str, Any]
    effect: str  # create | change | unchanged


@dataclass(frozen=True, slots=True)
class AttemptScore:
    """An attempt's assessment-level score as staff see it (with its publication state)."""

    id: int
    status: AttemptStatus
    earned: Decimal | None
    possible: Decimal | None
    entered: Decimal | None
    points_deducted: Decimal | None
    late_status: LateStatus | None
    source: str | None
    computed_earned: Decimal | None
    confirmed_at: datetime | None
    confirmed_by: str | None
    excused: bool
    scored_by: str | None
    scored_at: datetime | None
    needs_confirmation: bool
    published_at: datetime | None
    changed_since_published: bool | None
    learner: str | None = None  # in lists
    number: int | None = None  # in lists: the candidate number


_ATTEMPT_SCORE_FIELDS = tuple(f for f in AttemptScore.__dataclass_fields__ if f not in ("learner", "number"))
# The attempt's own columns among them (the rest are computed beside it).
_ATTEMPT_COLUMNS = tuple(
    f for f in _ATTEMPT_SCORE_FIELDS if f not in ("needs_confirmation", "published_at", "changed_since_published")
)


def _attempt_score(row: Mapping[Any, Any], **extra: Any) -> AttemptScore:
    return AttemptScore(**{f: row[f] for f in _ATTEMPT_SCORE_FIELDS}, **extra)


@dataclass(frozen=True, slots=True)
class ScoreLookup:
    """A learner's score at an assessment as a path names them: which of the three exists, and whether the
    caller's scope covers the attempt."""

    assessment_id: int | None
    enrollment_id: int | None
    in_scope: bool
    has_items: bool
    score: AttemptScore | None  # None: no attempt


@dataclass(frozen=True, slots=True)
class ItemScore:
    """An item of the assessment with the attempt's score for it (if any), as staff see it."""

    item: str
    number: str | None
    earned: Decimal | None
    computed: Decimal | None  # the automatic score an override replaced
    possible: Decimal | None
    source: str | None
    graded_by: str | None
    graded_at: datetime | None
    stale: bool  # scored before the item last changed (its points or answer key)


_RESOLVE = text(
    """
    INSERT INTO score_in (rn, earned, possible, source, scored_by, item_ext, assessment_id, a_possible,
                          enrollment_id, item_id, i_possible, item_revision, has_items, assessment_ext, learner_ext)
    SELECT r.rn, r.earned, r.possible, r.source, r.scored_by, r.item,
           a.id, a.points_possible, e.id, i.id, i.points_possible, i.revision,
           (a.id IS NOT NULL AND EXISTS (SELECT 1 FROM items x WHERE x.assessment_id = a.id)),
           r.assessment, r.learner
    FROM unnest(CAST(:rn AS int[]), CAST(:assessment AS text[]), CAST(:learner AS text[]),
                CAST(:item AS text[]), CAST(:earned AS numeric[]), CAST(:possible AS numeric[]),
                CAST(:source AS text[]), CAST(:scored_by AS text[]))
         AS r(rn, assessment, learner, item, earned, possible, source, scored_by)
    LEFT JOIN assessments a ON a.course_id = :course AND a.external_id = r.assessment
    LEFT JOIN enrollments e ON e.course_id = :course AND e.external_id = r.learner
    LEFT JOIN items i ON i.assessment_id = a.id AND i.external_id = r.item
    """
)

_PROBLEMS = text(
    """
    SELECT rn, field, detail, code FROM (
      SELECT rn, 'assessment' AS field, 'no such assessment in this course' AS detail, 'unknown' AS code
        FROM score_in WHERE assessment_id IS NULL
      UNION ALL
      SELECT rn, 'learner', 'learner is not enrolled in this course', 'unknown'
        FROM score_in WHERE enrollment_id IS NULL
      UNION ALL
      SELECT rn, 'item', 'no such item in this assessment', 'unknown'
        FROM score_in WHERE has_items AND item_ext IS NOT NULL AND item_id IS NULL
      UNION ALL
      SELECT rn, 'item', 'this assessment has items: score each item', 'mismatch'
        FROM score_in WHERE has_items AND item_ext IS NULL
      UNION ALL
      SELECT rn, 'item', 'this assessment has no items: give no item', 'mismatch'
        FROM score_in WHERE assessment_id IS NOT NULL AND NOT has_items AND item_ext IS NOT NULL
      UNION ALL
      SELECT rn, 'learner', 'the same score appears in row ' || first_rn, 'duplicate' FROM (
        SELECT rn, min(rn) OVER w AS first_rn FROM score_in
        WHERE assessment_id IS NOT NULL AND enrollment_id IS NOT NULL
        WINDOW w AS (PARTITION BY assessment_id, enrollment_id, item_id)
      ) d WHERE rn <> first_rn
      UNION ALL
      SELECT s.rn, 'learner', 'the attempt is cancelled and takes no score', 'cancelled'
        FROM score_in s JOIN attempts t
          ON t.assessment_id = s.assessment_id AND t.enrollment_id = s.enrollment_id
        WHERE t.status = 'cancelled'
    ) p ORDER BY rn, field LIMIT :max
    """
)

# Each staged row with the value it would replace (read before any write) and the value it sets.
_CHANGES = """
    SELECT s.rn, s.learner_ext, s.assessment_ext, s.item_ext,
           CASE WHEN s.item_ext IS NULL THEN 'score.set' ELSE 'item_score.set' END AS action,
           CASE WHEN s.item_ext IS NULL AND t.entered IS NOT NULL THEN
                  jsonb_build_object('earned', trim_scale(t.entered), 'possible', trim_scale(t.possible),
                                     'source', t.source, 'graded_by', t.scored_by)
                WHEN s.item_ext IS NOT NULL AND sc.attempt_id IS NOT NULL THEN
                  jsonb_build_object('earned', trim_scale(sc.earned), 'possible', trim_scale(sc.possible),
                                     'source', sc.source, 'graded_by', sc.scored_by)
           END AS old,
           jsonb_build_object(
             'earned', trim_scale(s.earned),
             'possible', trim_scale(coalesce(s.possible, CASE WHEN s.item_ext IS NULL THEN s.a_possible
                                                              ELSE s.i_possible END)),
             'source', s.source, 'graded_by', s.scored_by) AS new
    FROM score_in s
    LEFT JOIN attempts t ON t.assessment_id = s.assessment_id AND t.enrollment_id = s.enrollment_id
    LEFT JOIN item_scores sc ON sc.attempt_id = t.id AND sc.item_id = s.item_id
"""

# One audit entry per row that changes something.
_AUDIT = text(
    f"""
    INSERT INTO audit_log ({AUDIT_COLUMNS}, import_id)
    SELECT :org, :course, :at, :actor, :rid, action, learner_ext, assessment_ext, item_ext, old, new,
           CAST(:import_id AS bigint)
    FROM ({_CHANGES}) changes WHERE old IS DISTINCT FROM new ORDER BY rn
    """  # noqa: S608  (constant SQL)
)

# What a staged batch would do, row by row (for dry runs). Comparing earned, possible and source.
_DIFF = text(
    f"""
    SELECT rn, learner_ext AS learner, assessment_ext AS assessment, item_ext AS item, old, new,
           CASE WHEN old IS NULL THEN 'create'
                WHEN old - 'graded_by' = new - 'graded_by' THEN 'unchanged' ELSE 'change' END AS effect
    FROM ({_CHANGES}) changes ORDER BY rn
    """  # noqa: S608
)

# Overrides (the same rule in both upserts below and in the single write): an override replaces the score
# and keeps the automatic value it replaced in computed_earned; a later automatic score updates
# computed_earned and leaves the override standing, and who gave it (scored_by: who decided the score, as
# the marks and grades report names them). Any score change reopens a confirmed attempt for confirmation.
TOTALS_CONFLICT = """
    ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET
      status = 'graded',
      entered = CASE WHEN excluded.source = 'auto' AND t.source = 'override' THEN t.entered ELSE excluded.entered END,
      computed_earned = CASE WHEN excluded.source = 'auto' THEN excluded.entered
                             WHEN excluded.source = 'override' AND t.source = 'auto' THEN t.entered
                             WHEN excluded.source = 'override' THEN t.computed_earned END,
      source = CASE WHEN excluded.source = 'auto' AND t.source = 'override' THEN 'override' ELSE excluded.source END,
      scored_by = CASE WHEN excluded.source = 'auto' AND t.source = 'override' THEN t.scored_by
                       ELSE excluded.scored_by END,
      possible = excluded.possible, scored_at = excluded.scored_at,
      confirmed_at = NULL, confirmed_by = NULL, updated_at = :now
"""

# Assessment-level scores create or update the attempt directly.
_WRITE_TOTALS = text(
    """
    INSERT INTO attempts AS t (assessment_id, enrollment_id, status, entered, possible, source, scored_by, scored_at)
    SELECT assessment_id, enrollment_id, 'graded', earned, coalesce(possible, a_possible), source, scored_by, :now
    FROM score_in WHERE item_ext IS NULL
    """  # noqa: S608  (constant SQL)
    + TOTALS_CONFLICT
)

_ENSURE_ATTEMPTS = text(
    """
    INSERT INTO attempts (assessment_id, enrollment_id, status)
    SELECT DISTINCT assessment_id, enrollment_id, 'pending_grading' FROM score_in WHERE item_ext IS NOT NULL
    ON CONFLICT (assessment_id, enrollment_id) DO NOTHING
    """
)

_WRITE_ITEMS = text(
    """
    INSERT INTO item_scores AS sc
      (attempt_id, item_id, earned, possible, source, scored_by, scored_at, item_revision)
    SELECT t.id, s.item_id, s.earned, coalesce(s.possible, s.i_possible), s.source, s.scored_by, :now,
           s.item_revision
    FROM score_in s JOIN attempts t ON t.assessment_id = s.assessment_id AND t.enrollment_id = s.enrollment_id
    WHERE s.item_ext IS NOT NULL
    ON CONFLICT (attempt_id, item_id) DO UPDATE SET
      earned = CASE WHEN excluded.source = 'auto' AND sc.source = 'override' THEN sc.earned ELSE excluded.earned END,
      computed_earned = CASE WHEN excluded.source = 'auto' THEN excluded.earned
                             WHEN excluded.source = 'override' AND sc.source = 'auto' THEN sc.earned
                             WHEN excluded.source = 'override' THEN sc.computed_earned END,
      source = CASE WHEN excluded.source = 'auto' AND sc.source = 'override' THEN 'override' ELSE excluded.source END,
      scored_by = CASE WHEN excluded.source = 'auto' AND sc.source = 'override' THEN sc.scored_by
                       ELSE excluded.scored_by END,
      possible = excluded.possible, scored_at = excluded.scored_at, item_revision = excluded.item_revision
    """
)

_ITEM_ATTEMPTS = text(
    "SELECT DISTINCT t.id FROM score_in s JOIN attempts t"
    " ON t.assessment_id = s.assessment_id AND t.enrollment_id = s.enrollment_id"
    " WHERE s.item_ext IS NOT NULL"
)

# The staged rows' attempts, and whether the course has a late policy (read with them: no round trip of its own).
_WRITTEN = text(
    """
    SELECT array(SELECT DISTINCT t.id FROM score_in s JOIN attempts t
                 ON t.assessment_id = s.assessment_id AND t.enrollment_id = s.enrollment_id) AS ids,
           EXISTS (SELECT 1 FROM late_policies p WHERE p.course_id = :c) AS late_policy
    """
)

_LEARNERS = text("SELECT DISTINCT enrollment_id FROM score_in")

_MARK_STALE = text(
    """
    INSERT INTO stale_grades (enrollment_id, course_id)
    SELECT DISTINCT enrollment_id, CAST(:c AS bigint) FROM score_in ON CONFLICT DO NOTHING
    """
)

# The assessment total of an attempt with items is derived from its item scores; unscored items
# count their points possible and keep the attempt pending grading.
_DERIVE_TOTALS = text(
    """
    UPDATE attempts t SET
      entered = d.earned, possible = d.possible, source = d.source, scored_at = :now, updated_at = :now,
      scored_by = d.scored_by, confirmed_at = NULL, confirmed_by = NULL,
      status = CASE WHEN d.scored = d.n THEN 'graded' ELSE 'pending_grading' END
    FROM (
      SELECT t.id,
             coalesce(sum(sc.earned), 0) AS earned,
             sum(coalesce(sc.possible, i.points_possible)) AS possible,
             count(sc.item_id) AS scored, count(*) AS n,
             CASE WHEN bool_or(sc.source = 'override') THEN 'override'
                  WHEN bool_or(sc.source = 'manual') THEN 'manual' ELSE 'auto' END AS source,
             (array_agg(sc.scored_by ORDER BY sc.scored_at DESC NULLS LAST))[1] AS scored_by
      FROM attempts t
      JOIN items i ON i.assessment_id = t.assessment_id
      LEFT JOIN item_scores sc ON sc.attempt_id = t.id AND sc.item_id = i.id
      WHERE t.id = ANY(:ids)
      GROUP BY t.id
    ) d
    WHERE t.id = d.id
    """
)


async def stage(session: AsyncSession, course_id: int, columns: Mapping[str, list[Any]]) -> None:
    """Resolve rows (given column by column: rn, assessment, learner, item, earned, possible, source,
    scored_by) against the course's assessments, learners and items into the scratch table."""
    await session.execute(_RESOLVE, {"course": course_id, **columns})


async def staged_problems(session: AsyncSession, limit: int) -> list[RowError]:
    """The staged rows that cannot be written (at most `limit`), by row."""
    problems = (await session.execute(_PROBLEMS, {"max": limit})).all()
    return [RowError(p.rn, p.field, p.detail, p.code) for p in problems]


async def staged_changes(session: AsyncSession) -> list[StagedChange]:
    """What writing the staged rows would change, row by row."""
    return [StagedChange(**r) for r in (await session.execute(_DIFF)).mappings()]


async def audit_staged(session: AsyncSession, stamp: Mapping[str, Any]) -> None:
    """An audit entry per staged row that changes something (`audit.stamp` gives the shared figures)."""
    await session.execute(_AUDIT, stamp)


async def write_staged_totals(session: AsyncSession, now: datetime) -> None:
    """Write the staged assessment-level scores onto their attempts (creating them)."""
    await session.execute(_WRITE_TOTALS, {"now": now})


async def write_staged_items(session: AsyncSession, now: datetime) -> list[int]:
    """Write the staged item scores (creating attempts pending grading where needed); their attempts."""
    await session.execute(_ENSURE_ATTEMPTS)
    await session.execute(_WRITE_ITEMS, {"now": now})
    return list((await session.scalars(_ITEM_ATTEMPTS)).all())


async def staged_attempts(session: AsyncSession, course_id: int) -> tuple[list[int], bool]:
    """The attempts the staged rows were written to, and whether the course has a late policy."""
    row = (await session.execute(_WRITTEN, {"c": course_id})).one()
    return list(row.ids), bool(row.late_policy)


async def staged_learners(session: AsyncSession) -> list[int]:
    """The enrollments the staged rows belong to."""
    return list((await session.scalars(_LEARNERS)).all())


async def mark_staged_stale(session: AsyncSession, course_id: int) -> None:
    """Mark the staged rows' learners' stored grades stale (refreshed by the follow-up or the next read)."""
    await session.execute(_MARK_STALE, {"c": course_id})


async def derive_totals(session: AsyncSession, attempt_ids: list[int], now: datetime) -> None:
    """Recompute these attempts' totals and status from their item scores."""
    await session.execute(_DERIVE_TOTALS, {"now": now, "ids": attempt_ids})


# What learners see of the result (published_results `pr`): since when, and whether it has changed since.
_PUBLISHED = f"pr.published_at, {published.CHANGED} AS changed_since_published"

_GET_SCORE = text(
    f"""
    SELECT a.id AS a_id, e.id AS e_id, t.*, {IN_SCOPE} AS in_scope, {_PUBLISHED},
           EXISTS (SELECT 1 FROM items i WHERE i.assessment_id = a.id) AS has_items,
           EXISTS (SELECT 1 FROM items i WHERE i.assessment_id = a.id AND i.marking = 'manual') AS needs_confirmation
    FROM (SELECT 1) one
    LEFT JOIN assessments a ON a.course_id = :c AND a.external_id = :a
    LEFT JOIN enrollments e ON e.course_id = :c AND e.external_id = :l
    LEFT JOIN attempts t ON t.assessment_id = a.id AND t.enrollment_id = e.id
    LEFT JOIN published_results pr ON pr.enrollment_id = e.id AND pr.assessment_id = a.id
    """  # noqa: S608  (constant SQL)
)

_ITEM_SCORES = text(
    """
    SELECT i.external_id AS item, i.number, sc.earned, sc.computed_earned AS computed,
           coalesce(sc.possible, i.points_possible) AS possible,
           sc.source, sc.scored_by AS graded_by, sc.scored_at AS graded_at,
           (sc.item_revision IS NOT NULL AND sc.item_revision <> i.revision) AS stale
    FROM items i LEFT JOIN item_scores sc ON sc.item_id = i.id AND sc.attempt_id = :attempt
    WHERE i.assessment_id = :a ORDER BY i.position
    """
)

_LIST_SCORES = f"""
    SELECT t.id, e.external_id AS learner, n.number, t.status, t.earned, t.possible, t.source,
           t.entered, t.points_deducted, t.late_status,
           t.scored_by, t.scored_at, t.computed_earned, t.confirmed_at, t.confirmed_by, t.excused,
           EXISTS (SELECT 1 FROM items i WHERE i.assessment_id = t.assessment_id AND i.marking = 'manual')
             AS needs_confirmation, {_PUBLISHED}
    FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id
    LEFT JOIN published_results pr ON pr.enrollment_id = t.enrollment_id AND pr.assessment_id = t.assessment_id
    LEFT JOIN candidate_numbers n ON n.assessment_id = t.assessment_id AND n.enrollment_id = t.enrollment_id
    WHERE t.assessment_id = :a AND $key > :after AND {IN_SCOPE}
    ORDER BY $key LIMIT :lim
    """  # noqa: S608  (constant SQL)
# Listed and paged by attempt, or by candidate number for a caller the assessment hides learners from
# (attempt ids follow the order the LMS started attempts in, often the roster's).
_LIST_SCORES_BY = {
    hidden: text(_LIST_SCORES.replace("$key", "n.number" if hidden else "t.id")) for hidden in (False, True)
}


async def score_of(
    session: AsyncSession, course_id: int, assessment: str, learner: str, scope: list[str] | None
) -> ScoreLookup:
    """The learner's score at the assessment (by external ids), whether each exists, and whether the attempt
    is within `scope` (a grader's names; None: every attempt)."""
    row = (
        (await session.execute(_GET_SCORE, {"c": course_id, "a": assessment, "l": learner, "scope": scope}))
        .mappings()
        .one()
    )
    return ScoreLookup(
        row["a_id"],
        row["e_id"],
        bool(row["in_scope"]),
        bool(row["has_items"]),
        None if row["id"] is None else _attempt_score(row),
    )


async def item_scores_of(session: AsyncSession, attempt_id: int, assessment_id: int) -> list[ItemScore]:
    """Every item of the assessment with the attempt's score for it (if any), in the items' order."""
    result = await session.execute(_ITEM_SCORES, {"attempt": attempt_id, "a": assessment_id})
    return [ItemScore(**i) for i in result.mappings()]


async def scores_at(
    session: AsyncSession, assessment_id: int, after: int, limit: int, scope: list[str] | None, by_number: bool
) -> list[AttemptScore]:
    """A page of the assessment's attempts' scores after `after`: by attempt id, or by candidate number."""
    rows = (
        await session.execute(
            _LIST_SCORES_BY[by_number], {"a": assessment_id, "after": after, "lim": limit, "scope": scope}
        )
    ).mappings()
    return [_attempt_score(r, learner=r["learner"], number=r["number"]) for r in rows]


# --- the single score write -----------------------------------------------------------------------

# Learners' assessment-level scores (of assessments without items) in one statement, on the pool's
# connection outside any transaction (the statement is one), one row per score with its own course, caller
# and times: the course checked against what the caller resolved, the assessment and the learner resolved,
# the audit entry, the write (the upsert above), the learner's grade marked stale, and the score as staff see
# it with the row's number (`rn`, from 1). Only the common case: an assessment without items, an attempt not
# cancelled, a course without a late policy (whose deduction the general path applies); a row that is not
# writes nothing and returns nothing, and its caller takes the general path. No two rows may name the same
# score (an upsert cannot change a row twice). Rows are written in key order, so that two statements writing
# the same scores lock them in the same order and never wait for each other in a circle (a deadlock).
_PUT_SCORES = f"""
    WITH given AS (
      SELECT * FROM unnest(CAST($1 AS bigint[]), CAST($2 AS bigint[]), CAST($3 AS text[]), CAST($4 AS text[]),
                           CAST($5 AS text[]), CAST($6 AS numeric[]), CAST($7 AS numeric[]), CAST($8 AS text[]),
                           CAST($9 AS text[]), CAST($10 AS timestamptz[]), CAST($11 AS text[]), CAST($12 AS text[]),
                           CAST($13 AS bigint[]), CAST($14 AS timestamptz[]))
        WITH ORDINALITY AS g(course_id, organization_id, course, assessment, learner, earned, possible, source,
                             scored_by, at, actor, request_id, import_id, now, rn)
    ), target AS (
      SELECT g.*, a.id AS assessment_id, e.id AS enrollment_id, coalesce(g.possible, a.points_possible) AS a_possible,
             CASE WHEN t.entered IS NOT NULL THEN
                    jsonb_build_object('earned', trim_scale(t.entered), 'possible', trim_scale(t.possible),
                                       'source', t.source, 'graded_by', t.scored_by)
             END AS old,
             jsonb_build_object('earned', trim_scale(g.earned),
                                'possible', trim_scale(coalesce(g.possible, a.points_possible)),
                                'source', g.source, 'graded_by', g.scored_by) AS new
      FROM given g
      JOIN courses c ON c.id = g.course_id AND c.organization_id = g.organization_id AND c.external_id = g.course
      JOIN assessments a ON a.course_id = c.id AND a.external_id = g.assessment
      JOIN enrollments e ON e.course_id = c.id AND e.external_id = g.learner
      LEFT JOIN attempts t ON t.assessment_id = a.id AND t.enrollment_id = e.id
      WHERE NOT EXISTS (SELECT 1 FROM items x WHERE x.assessment_id = a.id)
        AND NOT EXISTS (SELECT 1 FROM late_policies p WHERE p.course_id = c.id)
        AND t.status IS DISTINCT FROM 'cancelled'
    ), audited AS (
      INSERT INTO audit_log ({AUDIT_COLUMNS}, import_id)
      SELECT organization_id, course_id, at, actor, request_id, 'score.set', learner, assessment, NULL, old, new,
             import_id
      FROM target WHERE old IS DISTINCT FROM new
    ), stale AS (
      INSERT INTO stale_grades (enrollment_id, course_id)
      SELECT enrollment_id, course_id FROM target ORDER BY enrollment_id ON CONFLICT DO NOTHING
    ), written AS (
      INSERT INTO attempts AS t (assessment_id, enrollment_id, status, entered, possible, source, scored_by, scored_at)
      SELECT assessment_id, enrollment_id, 'graded', earned, a_possible, source, scored_by, now
      FROM target ORDER BY assessment_id, enrollment_id
      {TOTALS_CONFLICT.replace(":now", "excluded.scored_at")}
      RETURNING t.assessment_id, t.enrollment_id, {", ".join(f"t.{column}" for column in _ATTEMPT_COLUMNS)}
    )
    SELECT target.rn, t.*, false AS needs_confirmation, {_PUBLISHED}
    FROM written t
    JOIN target ON target.assessment_id = t.assessment_id AND target.enrollment_id = t.enrollment_id
    LEFT JOIN published_results pr ON pr.enrollment_id = t.enrollment_id AND pr.assessment_id = t.assessment_id
"""  # noqa: S608  (constant SQL)


@dataclass(frozen=True, slots=True)
class SingleScore:
    """One assessment-level score to write: the course as the caller resolved it, who, and what; the audit
    entry's stamp (`audit.stamp(...)`) and the time of the write."""

    course_id: int
    organization_id: int
    course: str
    assessment: str
    learner: str
    earned: Decimal
    possible: Decimal | None
    source: str
    scored_by: str
    stamp: Mapping[str, Any]
    now: datetime

    def key(self) -> tuple[int, str, str]:
        """The score it writes (no two in one statement)."""
        return self.course_id, self.assessment, self.learner

    def row(self) -> tuple[Any, ...]:
        """Its values in _PUT_SCORES's column order."""
        stamp = self.stamp
        return (
            self.course_id,
            self.organization_id,
            self.course,
            self.assessment,
            self.learner,
            self.earned,
            self.possible,
            self.source,
            self.scored_by,
            stamp["at"],
            stamp["actor"],
            stamp["rid"],
            stamp["import_id"],
            self.now,
        )


async def put_scores(driver: Any, scores: Sequence[SingleScore]) -> list[AttemptScore | None]:
    """Write the scores in the common case as one statement on `driver`, an asyncpg connection outside any
    transaction (the statement is its own): each score as staff see it, or None for one that is not the common
    case (not written). No two may name the same score."""
    rows = await driver.fetch(_PUT_SCORES, *grouped.columns([score.row() for score in scores]))
    return _by_number(rows, len(scores))


async def put_single(session: AsyncSession, score: SingleScore) -> AttemptScore | None:
    """put_scores for one score, with the request's session (grouped.fetch_in)."""
    return _by_number(await grouped.fetch_in(session, _PUT_SCORES, [score.row()]), 1)[0]


def _by_number(rows: Sequence[Mapping[Any, Any]], count: int) -> list[AttemptScore | None]:
    found = {row["rn"]: _attempt_score(row) for row in rows}
    return [found.get(number) for number in range(1, count + 1)]
