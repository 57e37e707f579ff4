"""Scores: one set-based path for a single PUT and for batches of 10,000 rows.

Rows are resolved against the course's assessments, learners and items in one statement; every bad
row is reported with its index; only when all rows are good are they written (all or nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow import jobs
from gradeflow.access.service.access import IN_SCOPE, CourseRef
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.courses.service.assessments import get_assessment
from gradeflow.deadlines.service import late_results
from gradeflow.grades.service import followup, grades
from gradeflow.marking.service import anonymity
from gradeflow.publishing.service import visibility as published
from gradeflow.scores.commands import ScoreIn, ScoreRow

MAX_REPORTED_ERRORS = 100


@dataclass
class RowError:
    row: int
    field: str
    detail: str
    code: str  # unknown | mismatch | duplicate | cancelled


# score_in is a per-connection scratch table (gradeflow/db/engine.py), emptied by each commit.
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
    INSERT INTO audit_log (organization_id, course_id, at, actor, request_id, action, learner, assessment, item,
                           old, new, import_id)
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

# Overrides (the same rule in both upserts below): an override replaces the score and keeps the
# automatic value it replaced in computed_earned; a later automatic score updates computed_earned and
# leaves the override standing, and who gave it (scored_by: who decided the score, as the marks and
# grades report names them). Any score change reopens a confirmed attempt for confirmation.

# Assessment-level scores create or update the attempt directly.
_WRITE_TOTALS = text(
    """
    INSERT INTO attempts AS t (assessment_id, enrollment_id, status, entered, possible, source, scored_by, scored_at)
    SELECT assessment_id, enrollment_id, 'graded', earned, coalesce(possible, a_possible), source, scored_by, :now
    FROM score_in WHERE item_ext IS NULL
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


async def stage(session: AsyncSession, ref: CourseRef, rows: list[ScoreRow], actor: str) -> list[RowError]:
    """Resolve rows against the course into the scratch table; return every bad row (nothing written).

    Once per transaction: the scratch table empties on commit.
    """
    cols: dict[str, list[Any]] = {
        "rn": list(range(len(rows))),
        "assessment": [r.assessment for r in rows],
        "learner": [r.learner for r in rows],
        "item": [r.item for r in rows],
        "earned": [r.earned for r in rows],
        "possible": [r.possible for r in rows],
        "source": [r.source for r in rows],
        "scored_by": [r.graded_by or actor for r in rows],
    }
    await session.execute(_RESOLVE, {"course": ref.id, **cols})
    problems = (await session.execute(_PROBLEMS, {"max": MAX_REPORTED_ERRORS})).all()
    return [RowError(p.rn, p.field, p.detail, p.code) for p in problems]


async def staged_diff(session: AsyncSession) -> list[dict[str, Any]]:
    """What applying the staged rows would change: create, change or unchanged, with old and new."""
    return [dict(r) for r in (await session.execute(_DIFF)).mappings()]


async def apply_staged(
    session: AsyncSession, ref: CourseRef, actor: str, any_items: bool, defer_grades: bool = False
) -> None:
    """Write the staged rows: audit entries, scores, derived totals, and the learners' stored grades
    (refreshed here, or with `defer_grades` marked stale for the worker or the next grade read)."""
    now = clock.now()
    await session.execute(_AUDIT, audit.stamp(ref.organization_id, ref.id, actor))
    await session.execute(_WRITE_TOTALS, {"now": now})
    if any_items:
        await session.execute(_ENSURE_ATTEMPTS)
        await session.execute(_WRITE_ITEMS, {"now": now})
        touched = await session.scalars(
            text(
                "SELECT DISTINCT t.id FROM score_in s JOIN attempts t"
                " ON t.assessment_id = s.assessment_id AND t.enrollment_id = s.enrollment_id"
                " WHERE s.item_ext IS NOT NULL"
            )
        )
        await derive_totals(session, list(touched))
    # A new score can end a missing result or be a late one: the course's late policy, on these attempts only.
    written = await session.scalars(
        text(
            "SELECT DISTINCT t.id FROM score_in s JOIN attempts t"
            " ON t.assessment_id = s.assessment_id AND t.enrollment_id = s.enrollment_id"
        )
    )
    await late_results.apply(session, ref.id, attempt_ids=list(written), actor=actor)
    if defer_grades:
        await session.execute(grades.MARK_STALE_FROM_SCRATCH, {"c": ref.id})
        return
    learners = (await session.execute(text("SELECT DISTINCT enrollment_id FROM score_in"))).scalars().all()
    await grades.refresh_learners(session, ref.id, list(learners))


async def derive_totals(session: AsyncSession, attempt_ids: list[int]) -> None:
    """Recompute these attempts' totals and status from their item scores."""
    await session.execute(_DERIVE_TOTALS, {"now": clock.now(), "ids": attempt_ids})


async def write_rows(
    session: AsyncSession, ref: CourseRef, rows: list[ScoreRow], actor: str, defer_grades: bool = False
) -> list[RowError]:
    """Stage and, when every row is good, write. Returns the row errors (nothing written then)."""
    errors = await stage(session, ref, rows, actor)
    if not errors:
        await apply_staged(session, ref, actor, any(r.item is not None for r in rows), defer_grades)
    return errors


async def write_batch(session: AsyncSession, ref: CourseRef, rows: list[ScoreRow], actor: str) -> dict[str, Any]:
    """Write a batch (does not commit: the caller commits it with its idempotency record)."""
    errors = await write_rows(session, ref, rows, actor)
    if errors:
        await session.rollback()
        raise ValidationFailed([FieldError(f"/scores/{e.row}/{e.field}", e.detail) for e in errors])
    return {"written": len(rows)}


async def put_score(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    assessment: str,
    learner: str,
    body: ScoreIn,
    actor: str,
) -> dict[str, Any]:
    """Set one learner's score for an assessment (idempotent) and return it. The learner's course
    grade is refreshed a moment later (and before any read of it)."""
    base = {"assessment": assessment, "learner": learner, "source": body.source, "graded_by": body.graded_by}
    if body.items is not None:
        rows = [ScoreRow(item=i.item, earned=i.earned, possible=i.possible, **base) for i in body.items]
    else:
        assert body.earned is not None
        rows = [ScoreRow(earned=body.earned, possible=body.possible, **base)]
    errors = await write_rows(session, ref, rows, actor, defer_grades=True)
    if errors:
        await session.rollback()
        _raise_for_single(errors, body)
    score = await get_score(session, ref, assessment, learner)
    await session.commit()
    await followup.ask(queue, ref.id)
    return score


def _raise_for_single(errors: list[RowError], body: ScoreIn) -> None:
    first = errors[0]
    if first.code == "unknown" and first.field in ("assessment", "learner"):
        raise NotFound(f"{first.field.capitalize()}: {first.detail}.")
    if first.code == "cancelled":
        raise Conflict("The attempt is cancelled and takes no score.")
    if first.code == "mismatch":
        pointer = "/earned" if body.items is None else "/items"
        raise ValidationFailed.one(pointer, first.detail)
    raise ValidationFailed([FieldError(f"/items/{e.row}/item", e.detail) for e in errors])


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


async def get_score(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    learner: str,
    scope: list[str] | None = None,
    hide: bool = False,
) -> dict[str, Any]:
    """The learner's attempt at the assessment with its total and item scores (within `scope`, the
    names of a grader who sees only allocated work; a concealed caller, `hide`, names and sees the
    learner of an anonymous assessment by candidate label)."""
    labels = await anonymity.learner(session, ref, hide, assessment, learner)
    row = (
        (
            await session.execute(
                _GET_SCORE,
                {"c": ref.id, "a": assessment, "l": anonymity.real(labels, learner), "scope": scope},
            )
        )
        .mappings()
        .one()
    )
    if row["a_id"] is None:
        raise NotFound(f"Assessment {assessment!r} not found in this course.")
    if row["e_id"] is None:
        raise NotFound(f"Learner {learner!r} is not enrolled in this course.")
    if row["id"] is None or not row["in_scope"]:
        raise NotFound(
            f"Learner {learner!r} has no attempt at {assessment!r}" + (" allocated to you." if scope else ".")
        )
    items = None
    if row["has_items"]:
        result = await session.execute(
            text(
                """
                SELECT i.external_id AS item, i.number, sc.earned, sc.computed_earned,
                       coalesce(sc.possible, i.points_possible) AS possible,
                       sc.source, sc.scored_by, sc.scored_at, sc.item_revision, i.revision
                FROM items i LEFT JOIN item_scores sc ON sc.item_id = i.id AND sc.attempt_id = :attempt
                WHERE i.assessment_id = :a ORDER BY i.position
                """
            ),
            {"attempt": row["id"], "a": row["a_id"]},
        )
        items = [dict(i) for i in result.mappings()]
    return _score_view(assessment, learner, row, items)


def _score_view(assessment: str, learner: str, attempt: Any, items: list[dict[str, Any]] | None) -> dict[str, Any]:
    confirmed = attempt["confirmed_at"] is not None
    final_ready = attempt["status"] == "graded" and (confirmed or not attempt["needs_confirmation"])
    view = {
        "assessment": assessment,
        "learner": learner,
        "status": attempt["status"],
        "earned": attempt["earned"],
        "possible": attempt["possible"],
        "entered": attempt["entered"],
        "points_deducted": attempt["points_deducted"],
        "late_status": attempt["late_status"],
        "source": attempt["source"],
        "computed": attempt["computed_earned"],
        "confirmed": confirmed,
        "confirmed_by": attempt["confirmed_by"],
        # Marks are visible to staff at once; the result is final only once grading is confirmed.
        "final": attempt["earned"] if final_ready else None,
        "excused": attempt["excused"],
        "graded_by": attempt["scored_by"],
        "graded_at": attempt["scored_at"],
        "publication": published.state(attempt["published_at"], attempt["changed_since_published"]),
        "items": [
            {
                "item": i["item"],
                "number": i["number"],
                "earned": i["earned"],
                "computed": i["computed_earned"],
                "possible": i["possible"],
                "source": i["source"],
                "graded_by": i["scored_by"],
                "graded_at": i["scored_at"],
                "stale": i["item_revision"] is not None and i["item_revision"] != i["revision"],
            }
            for i in items
        ]
        if items is not None
        else None,
    }
    return view


async def list_scores(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    limit: int,
    cursor: str | None,
    scope: list[str] | None = None,
    hide: bool = False,
) -> Page[dict[str, Any]]:
    """Assessment-level scores of every attempt at the assessment (candidate labels for a concealed
    caller on an anonymous one)."""
    view = await get_assessment(session, ref, assessment)
    labels = await anonymity.mask(session, ref, hide, assessment)
    rows = (
        (
            await session.execute(
                _LIST_SCORES_BY[labels.hidden],
                {"a": view.assessment.id, "after": last_id_after(cursor), "lim": limit + 1, "scope": scope},
            )
        )
        .mappings()
        .all()
    )
    page = page_of(list(rows), limit, lambda r: r["number"] if labels.hidden else r["id"])
    return Page([_score_view(assessment, labels.show(r["learner"]), r, None) for r in page.items], page.next_cursor)
