"""Publications and what they write (`publications`, `published_results`, `published_grades`, `notifications`):
one statement per target (assessments, course grade) classifies the candidates, writes the snapshots, the audit
entries and the e-mails owed; and the reads of what is published."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, get_args

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.audit.repository import COLUMNS as AUDIT_COLUMNS
from gradeflow.core.paging import Page
from gradeflow.core.statuses import UNGRADED_STATUSES, LateStatus, PublicationStatus, sql_in
from gradeflow.db.paging import newest_first
from gradeflow.deadlines.repository import due_dates
from gradeflow.publishing.repository import visibility as published

MAX_SKIPPED_DETAIL = 1000

# Why a requested result was not published: the `reason` the statements below give a candidate, and the use
# case's own two (not_enrolled, not_published).
SkipReason = Literal[
    "not_enrolled",
    "no_attempt",
    "cancelled",
    "not_graded",
    "not_confirmed",
    "already_published",
    "no_grade",
    "not_published",
]
SKIP_REASONS: dict[SkipReason, str] = {
    "not_enrolled": "the learner is not enrolled in this course",
    "no_attempt": "the learner has no attempt: there is no result to publish",
    "cancelled": "the attempt is cancelled",
    "not_graded": "the attempt is not graded yet",
    "not_confirmed": "the result awaits confirmation of its manual marking (for the course grade: a result "
    "counted in it is not final yet)",
    "already_published": "this result is already published as it stands",
    "no_grade": "the course has no grading policy, so there is no course grade",
    "not_published": "nothing of this is published",
}
assert tuple(SKIP_REASONS) == get_args(SkipReason)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A requested result not published, and why (assessment None: the course grade, or the learner as a whole)."""

    learner: str
    assessment: str | None
    reason: SkipReason

    @property
    def detail(self) -> str:
        """The reason in words."""
        return SKIP_REASONS[self.reason]


def audience_sql(audience: dict[str, Any]) -> str:
    """SQL condition on enrollment `e` for an audience (its lists are bound as :learners, :cohorts, :groups)."""
    if audience.get("learners") is not None:
        return "e.external_id = ANY(CAST(:learners AS text[]))"
    if audience.get("cohorts") is not None:
        return "e.cohort = ANY(CAST(:cohorts AS text[]))"
    if audience.get("groups") is not None:
        return "e.groups && CAST(:groups AS text[])"
    return "TRUE"


def audience_params(audience: dict[str, Any]) -> dict[str, list[str] | None]:
    return {k: audience.get(k) for k in ("learners", "cohorts", "groups")}


# The learner's published result says what this publication would: staff's `changed` rule (published.CHANGED),
# one rule for both, and the same item detail (none, or the items as this publication shows them).
_SAME_AS_PUBLISHED = f"""(pr.enrollment_id IS NOT NULL AND NOT {published.CHANGED}
    AND pr.items IS NOT DISTINCT FROM CASE WHEN t.excused THEN NULL ELSE x.items END)"""

# Per learner x assessment: the current result, its snapshot as it would be published, and why it
# cannot be published (null when it can). Learners are shown feedback (gradeflow/scores/service/feedback.py),
# never the markers' marks or comments: those are internal to marking.
_RESULT_CANDIDATES = f"""
    SELECT e.id AS enrollment_id, e.external_id AS learner, a.id AS assessment_id, a.external_id AS assessment,
           CASE WHEN t.excused THEN NULL ELSE t.earned END AS earned,
           coalesce(t.possible, a.points_possible) AS possible, coalesce(t.excused, false) AS excused,
           CASE WHEN t.excused THEN NULL ELSE t.points_deducted END AS points_deducted,
           CASE WHEN t.excused THEN NULL ELSE t.late_status END AS late_status,
           CASE WHEN t.excused THEN NULL ELSE x.items END AS items,
           fb.text AS feedback, fb.digest AS feedback_digest,
           CASE WHEN t.id IS NULL THEN 'no_attempt'
                -- an excused result is published as "Excused", whatever its status and scores
                WHEN t.excused THEN CASE WHEN {_SAME_AS_PUBLISHED} THEN 'already_published' END
                WHEN t.status = 'cancelled' THEN 'cancelled'
                WHEN t.status <> 'graded' OR t.earned IS NULL THEN 'not_graded'
                WHEN {published.AWAITS_CONFIRMATION} THEN 'not_confirmed'
                WHEN {_SAME_AS_PUBLISHED} THEN 'already_published'
           END AS reason,
           pr.enrollment_id IS NOT NULL AS was_published
    FROM enrollments e
    JOIN assessments a ON a.course_id = e.course_id AND a.id = ANY(CAST(:assessment_ids AS bigint[]))
    LEFT JOIN attempts t ON t.assessment_id = a.id AND t.enrollment_id = e.id
    LEFT JOIN published_results pr ON pr.enrollment_id = e.id AND pr.assessment_id = a.id
    LEFT JOIN LATERAL (SELECT CASE WHEN :show = 'with_items' THEN {published.ITEMS_JSON} END AS items) x ON TRUE
    LEFT JOIN LATERAL (
      SELECT (SELECT f.text FROM feedback f WHERE f.attempt_id = t.id AND f.item_id IS NULL) AS text,
             {published.feedback_digest_sql("t.id", ":show = 'with_items' AND NOT coalesce(t.excused, false)")}
               AS digest  -- of the feedback published: item feedback only with the items
    ) fb ON TRUE
    WHERE e.course_id = :c AND {{audience}}
"""  # noqa: S608  (constant SQL)

# Attempt `t` at assessment `a` has a result that is not final yet: it is still to be taken, being
# taken or graded, or it awaits confirmation. A cancelled attempt counts as none, an excused one as
# excused: neither waits for anything.
_NOT_FINAL = f"""t.status <> 'cancelled' AND NOT t.excused
    AND (t.status <> 'graded' OR t.earned IS NULL OR ({published.AWAITS_CONFIRMATION}))"""
# Assessment `a` counts in course :c's served course grade: its category is in the policy (with a
# weight, unless the policy weighs by points). Uncorrelated: the policy is read once per statement.
_COUNTED = """a.id IN (
    SELECT ca.id FROM assessments ca JOIN courses cc ON cc.id = ca.course_id
    JOIN grading_policies gp ON gp.course_id = cc.id AND gp.version = cc.grades_version
    CROSS JOIN jsonb_array_elements(gp.body->'categories') cat
    WHERE ca.course_id = :c AND cat->>'name' = ca.category
      AND (gp.body->>'weighting' = 'points' OR CAST(cat->>'weight' AS numeric) > 0))"""

# Per learner: the course grade as it would be published, and why it cannot be (null when it can).
# A course grade is published only when every result counted in it is final for the learner:
# otherwise the learner would see a grade that disagrees with their results (reason not_confirmed).
_GRADE_CANDIDATES = f"""
    SELECT e.id AS enrollment_id, e.external_id AS learner, NULL::bigint AS assessment_id, NULL::text AS assessment,
           g.final_percent AS percent, g.final_grade AS grade, g.final_passed AS passed,
           CASE WHEN NOT EXISTS (SELECT 1 FROM attempts t WHERE t.enrollment_id = e.id AND t.status <> 'cancelled')
                  THEN 'no_attempt'
                WHEN g.enrollment_id IS NULL THEN 'no_grade'
                WHEN EXISTS (SELECT 1 FROM attempts t JOIN assessments a ON a.id = t.assessment_id
                             WHERE t.enrollment_id = e.id AND {_NOT_FINAL} AND {_COUNTED}) THEN 'not_confirmed'
                WHEN pg.enrollment_id IS NOT NULL AND pg.percent IS NOT DISTINCT FROM g.final_percent
                     AND pg.grade IS NOT DISTINCT FROM g.final_grade THEN 'already_published'
           END AS reason,
           pg.enrollment_id IS NOT NULL AS was_published
    FROM enrollments e
    JOIN courses c ON c.id = e.course_id
    LEFT JOIN course_grades g ON g.enrollment_id = e.id AND g.policy_version = c.grades_version
    LEFT JOIN published_grades pg ON pg.enrollment_id = e.id
    WHERE e.course_id = :c AND {{audience}}
"""  # noqa: S608  (constant SQL)

# The statement tail shared by both targets: the e-mails owed to learners with a newly published
# result, and the skipped candidates (the whole count, and the first few for the response).
_OWED_AND_SKIPPED = """
    notified AS (
      INSERT INTO notifications (publication_id, enrollment_id, next_try_at)
      SELECT DISTINCT :pub, w.enrollment_id, :now FROM written w JOIN enrollments e ON e.id = w.enrollment_id
      WHERE :notify AND e.email IS NOT NULL
      ON CONFLICT DO NOTHING RETURNING 1
    ),
    skipped AS (SELECT * FROM cand WHERE reason IS NOT NULL AND NOT (:only_unpublished AND was_published))
    SELECT (SELECT count(*) FROM written) AS changed, (SELECT count(*) FROM skipped) AS skipped,
           (SELECT coalesce(jsonb_agg(e.external_id ORDER BY e.id), '[]') FROM enrollments e
            WHERE e.id IN (SELECT DISTINCT enrollment_id FROM written LIMIT 1000)) AS learners,
           (SELECT count(DISTINCT enrollment_id) FROM written) AS learner_count,
           (SELECT coalesce(jsonb_agg(jsonb_build_object('learner', learner, 'assessment', assessment,
                                                         'reason', reason) ORDER BY learner, assessment), '[]')
            FROM (SELECT * FROM skipped ORDER BY learner, assessment LIMIT :max_detail) s) AS detail
"""

_PUBLISH_RESULTS = f"""
    WITH cand AS ({_RESULT_CANDIDATES}),
    written AS (
      INSERT INTO published_results AS pr
        (enrollment_id, assessment_id, publication_id, earned, possible, excused, items, feedback, feedback_digest,
         published_at, points_deducted, late_status)
      SELECT enrollment_id, assessment_id, :pub, earned, possible, excused, items, feedback, feedback_digest, :now,
             points_deducted, late_status
      FROM cand WHERE reason IS NULL
      ON CONFLICT (enrollment_id, assessment_id) DO UPDATE SET
        publication_id = excluded.publication_id, earned = excluded.earned, possible = excluded.possible,
        points_deducted = excluded.points_deducted, late_status = excluded.late_status,
        excused = excluded.excused, items = excluded.items, feedback = excluded.feedback,
        feedback_digest = excluded.feedback_digest, published_at = excluded.published_at
      RETURNING enrollment_id, assessment_id, earned, possible, excused
    ),
    audited AS (
      INSERT INTO audit_log ({AUDIT_COLUMNS})
      SELECT :org, :course, :at, :actor, :rid, 'result.published', cand.learner, cand.assessment, NULL, NULL,
             jsonb_build_object('earned', trim_scale(w.earned), 'possible', trim_scale(w.possible),
                                'excused', w.excused, 'show', CAST(:show AS text), 'publication', CAST(:pub AS bigint))
      FROM written w JOIN cand USING (enrollment_id, assessment_id)
    ),
    {_OWED_AND_SKIPPED}
"""  # noqa: S608  (constant SQL)

_PUBLISH_GRADES = f"""
    WITH cand AS ({_GRADE_CANDIDATES}),
    written AS (
      INSERT INTO published_grades AS pg (enrollment_id, publication_id, percent, grade, passed, published_at)
      SELECT enrollment_id, :pub, percent, grade, passed, :now FROM cand WHERE reason IS NULL
      ON CONFLICT (enrollment_id) DO UPDATE SET
        publication_id = excluded.publication_id, percent = excluded.percent, grade = excluded.grade,
        passed = excluded.passed, published_at = excluded.published_at
      RETURNING enrollment_id, percent, grade, passed
    ),
    audited AS (
      INSERT INTO audit_log ({AUDIT_COLUMNS})
      SELECT :org, :course, :at, :actor, :rid, 'course_grade.published', cand.learner, NULL, NULL, NULL,
             jsonb_build_object('percent', trim_scale(w.percent), 'grade', w.grade, 'passed', w.passed,
                                'publication', CAST(:pub AS bigint))
      FROM written w JOIN cand USING (enrollment_id)
    ),
    {_OWED_AND_SKIPPED}
"""  # noqa: S608

_RETRACT_RESULTS = f"""
    WITH written AS (
      DELETE FROM published_results pr USING enrollments e
      WHERE pr.enrollment_id = e.id AND e.course_id = :c AND pr.assessment_id = ANY(CAST(:assessment_ids AS bigint[]))
        AND {{audience}}
      RETURNING e.external_id AS learner, pr.assessment_id, pr.earned, pr.possible
    ),
    audited AS (
      INSERT INTO audit_log ({AUDIT_COLUMNS})
      SELECT :org, :course, :at, :actor, :rid, 'result.retracted', w.learner, a.external_id, NULL,
             jsonb_build_object('earned', trim_scale(w.earned), 'possible', trim_scale(w.possible)),
             jsonb_build_object('publication', CAST(:pub AS bigint))
      FROM written w JOIN assessments a ON a.id = w.assessment_id
    )
    SELECT w.learner, a.external_id AS assessment FROM written w JOIN assessments a ON a.id = w.assessment_id
"""  # noqa: S608  (constant SQL; the audience is one of the fixed conditions above)

_RETRACT_GRADES = f"""
    WITH written AS (
      DELETE FROM published_grades pg USING enrollments e
      WHERE pg.enrollment_id = e.id AND e.course_id = :c AND {{audience}}
      RETURNING e.external_id AS learner, pg.percent, pg.grade, pg.passed
    ),
    audited AS (
      INSERT INTO audit_log ({AUDIT_COLUMNS})
      SELECT :org, :course, :at, :actor, :rid, 'course_grade.retracted', w.learner, NULL, NULL,
             jsonb_build_object('percent', trim_scale(w.percent), 'grade', w.grade, 'passed', w.passed),
             jsonb_build_object('publication', CAST(:pub AS bigint))
      FROM written w
    )
    SELECT w.learner, NULL AS assessment FROM written w
"""  # noqa: S608


# --- publications -------------------------------------------------------------------------------------------------


async def assessment_ids_by_external_id(
    session: AsyncSession, course_id: int, external_ids: list[str]
) -> dict[str, int]:
    """The course's assessments among `external_ids`: external id -> id (unknown ones left out)."""
    return dict(
        (
            await session.execute(
                text("SELECT external_id, id FROM assessments WHERE course_id = :c AND external_id = ANY(:ext)"),
                {"c": course_id, "ext": external_ids},
            )
        ).all()
    )


async def insert_publication(
    session: AsyncSession,
    course_id: int,
    *,
    action: str,
    assessments: list[str],
    course_grade: bool,
    audience_json: str,
    show: str,
    notify_email: bool,
    publish_at: datetime | None,
    status: str,
    trigger: str,
    actor: str,
) -> int:
    """A new publication; its id."""
    publication_id: int = await session.scalar(
        text(
            """
            INSERT INTO publications (course_id, action, assessments, course_grade, audience, show, notify_email,
                                      publish_at, status, trigger, created_by)
            VALUES (:c, :action, :assessments, :course_grade, CAST(:audience AS jsonb), :show, :notify, :at,
                    :status, :trigger, :actor)
            RETURNING id
            """
        ),
        {
            "c": course_id,
            "action": action,
            "assessments": assessments,
            "course_grade": course_grade,
            "audience": audience_json,
            "show": show,
            "notify": notify_email,
            "at": publish_at,
            "status": status,
            "trigger": trigger,
            "actor": actor,
        },
    )
    return publication_id


@dataclass(frozen=True, slots=True)
class PublicationOrder:
    """What a publication asks for: the action, its targets, its audience and how results are shown."""

    action: str
    assessments: list[str]
    course_grade: bool
    audience: dict[str, Any]
    show: str
    notify_email: bool
    trigger: str


async def publication_order(session: AsyncSession, publication_id: int) -> PublicationOrder:
    p = (
        (await session.execute(text("SELECT * FROM publications WHERE id = :id"), {"id": publication_id}))
        .mappings()
        .one()
    )
    return PublicationOrder(
        p["action"],
        list(p["assessments"]),
        p["course_grade"],
        p["audience"],
        p["show"],
        p["notify_email"],
        p["trigger"],
    )


@dataclass(frozen=True, slots=True)
class Published:
    """What one publishing statement did: results written, candidates skipped (with the first few for the
    response), and the learners with a result written (the first 1000, and how many)."""

    changed: int
    skipped: int
    learners: list[str]
    learner_count: int
    detail: list[Skipped]


async def publish(session: AsyncSession, *, course_grade: bool, audience: str, params: dict[str, Any]) -> Published:
    """Publish the candidates of the assessments (`params["assessment_ids"]`) or of the course grade to the audience
    (``audience_sql``) in one statement: snapshots, audit entries (`params` holds audit.stamp's), the e-mails owed."""
    sql = _PUBLISH_GRADES if course_grade else _PUBLISH_RESULTS
    row = (await session.execute(text(sql.format(audience=audience)), params)).one()
    return Published(
        row.changed, row.skipped, list(row.learners), row.learner_count, [Skipped(**d) for d in row.detail]
    )


async def retract(
    session: AsyncSession, *, course_grade: bool, audience: str, params: dict[str, Any]
) -> set[tuple[str, str | None]]:
    """Retract the audience's published results of the assessments, or course grades, auditing each (`params` holds
    audit.stamp's): the (learner, assessment) pairs retracted (assessment None for a course grade)."""
    sql = _RETRACT_GRADES if course_grade else _RETRACT_RESULTS
    return {(r[0], r[1]) for r in await session.execute(text(sql.format(audience=audience)), params)}


async def enrolled_of(session: AsyncSession, course_id: int, learners: list[str]) -> set[str]:
    """Those of `learners` enrolled in the course."""
    return set(
        (
            await session.scalars(
                text("SELECT external_id FROM enrollments WHERE course_id = :c AND external_id = ANY(:l)"),
                {"c": course_id, "l": learners},
            )
        ).all()
    )


async def course_external_id(session: AsyncSession, course_id: int) -> str | None:
    external_id: str | None = await session.scalar(
        text("SELECT external_id FROM courses WHERE id = :c"), {"c": course_id}
    )
    return external_id


async def course_organization(session: AsyncSession, course_id: int) -> int | None:
    organization_id: int | None = await session.scalar(
        text("SELECT organization_id FROM courses WHERE id = :c"), {"c": course_id}
    )
    return organization_id


async def record_outcome(
    session: AsyncSession, publication_id: int, now: datetime, changed: int, skipped: int, detail_json: str
) -> None:
    """The publication is done: what it changed and what it skipped."""
    await session.execute(
        text(
            """
            UPDATE publications SET status = 'done', done_at = :now, changed = :changed, skipped = :skipped,
                   skipped_detail = CAST(:detail AS jsonb)
            WHERE id = :id
            """
        ),
        {"now": now, "changed": changed, "skipped": skipped, "detail": detail_json, "id": publication_id},
    )


async def due_publication_ids(session: AsyncSession, now: datetime) -> list[int]:
    """The scheduled publications whose time has come, the earliest first."""
    return list(
        (
            await session.scalars(
                text(
                    "SELECT id FROM publications WHERE status = 'scheduled' AND publish_at <= :now ORDER BY publish_at"
                ),
                {"now": now},
            )
        ).all()
    )


@dataclass(frozen=True, slots=True)
class ScheduledPublication:
    course_id: int
    organization_id: int
    publish_at: datetime
    notify_email: bool
    created_by: str


async def lock_scheduled(session: AsyncSession, publication_id: int) -> ScheduledPublication | None:
    """The publication, locked, while it is still scheduled (None: already run or cancelled)."""
    row = (
        await session.execute(
            text(
                """
                SELECT p.course_id, c.organization_id, p.publish_at, p.notify_email, p.created_by
                FROM publications p JOIN courses c ON c.id = p.course_id
                WHERE p.id = :id AND p.status = 'scheduled' FOR UPDATE OF p
                """
            ),
            {"id": publication_id},
        )
    ).first()
    return None if row is None else ScheduledPublication(*row)


@dataclass(frozen=True, slots=True)
class PublicationScope:
    assessments: list[str]
    course_grade: bool
    status: PublicationStatus


async def lock_publication(session: AsyncSession, course_id: int, publication_id: int) -> PublicationScope | None:
    """The course's publication, locked (None: no such publication in the course)."""
    row = (
        await session.execute(
            text(
                "SELECT assessments, course_grade, status FROM publications"
                " WHERE id = :id AND course_id = :c FOR UPDATE"
            ),
            {"id": publication_id, "c": course_id},
        )
    ).first()
    return None if row is None else PublicationScope(list(row.assessments), row.course_grade, row.status)


async def mark_cancelled(session: AsyncSession, publication_id: int, now: datetime) -> None:
    await session.execute(
        text("UPDATE publications SET status = 'cancelled', done_at = :now WHERE id = :id"),
        {"id": publication_id, "now": now},
    )


# --- release modes ------------------------------------------------------------------------------------------------

# Assessments whose release mode says their publishable results should be published now. `last_attempt` waits
# for every learner's own due date (an extension holds back everyone's results until it passes).
_DUE_RELEASES = f"""
    SELECT a.id, a.external_id, a.release FROM assessments a
    WHERE a.course_id = :c AND (
      (a.release->>'mode' = 'automatic' AND NOT EXISTS (
         SELECT 1 FROM items i WHERE i.assessment_id = a.id AND i.marking = 'manual')
       AND (a.release->>'after' = 'each_attempt' OR (
            {due_dates.every_due_passed("a", ":now")}
            AND NOT EXISTS (SELECT 1 FROM attempts t WHERE t.assessment_id = a.id
                            AND {sql_in("t.status", UNGRADED_STATUSES)}))))
      OR (a.release->>'mode' = 'scheduled' AND CAST(a.release->>'at' AS timestamptz) <= :now))
    ORDER BY a.position, a.id
"""  # noqa: S608 (constant SQL)


@dataclass(frozen=True, slots=True)
class DueRelease:
    """An assessment whose release mode says its publishable results are due, and that mode."""

    id: int
    external_id: str
    release: dict[str, Any]


async def due_releases(session: AsyncSession, course_id: int, now: datetime) -> list[DueRelease]:
    """The course's assessments whose release mode says their publishable results should be published now."""
    rows = await session.execute(text(_DUE_RELEASES), {"c": course_id, "now": now})
    return [DueRelease(*r) for r in rows.all()]


async def publishable_count(session: AsyncSession, assessment_id: int) -> int:
    """Graded results of the assessment not published, or changed since they were."""
    pending: int = await session.scalar(
        text(
            f"""
            SELECT count(*) FROM attempts t
            LEFT JOIN published_results pr
              ON pr.enrollment_id = t.enrollment_id AND pr.assessment_id = t.assessment_id
            WHERE t.assessment_id = :a AND t.status = 'graded' AND t.earned IS NOT NULL
              AND (pr.enrollment_id IS NULL OR {published.CHANGED})
            """  # noqa: S608  (constant SQL)
        ),
        {"a": assessment_id},
    )
    return pending


# --- reads --------------------------------------------------------------------------------------------------------

_VIEW = """
    SELECT p.*,
      (SELECT count(*) FROM notifications n WHERE n.publication_id = p.id AND n.status IN ('queued', 'sending'))
        AS emails_pending,
      (SELECT count(*) FROM notifications n WHERE n.publication_id = p.id AND n.status = 'sent') AS emails_sent,
      (SELECT count(*) FROM notifications n WHERE n.publication_id = p.id AND n.status = 'failed') AS emails_failed
    FROM publications p
"""


@dataclass(frozen=True, slots=True)
class EmailCounts:
    """A publication's e-mails: waiting or being sent, sent, failed."""

    pending: int
    sent: int
    failed: int


@dataclass(frozen=True, slots=True)
class PublicationRow:
    """A publication as stored, with the counts of its e-mails."""

    id: int
    course_id: int
    action: str
    assessments: list[str]
    course_grade: bool
    audience: dict[str, Any]
    show: str
    notify_email: bool
    publish_at: datetime | None
    status: PublicationStatus
    trigger: str
    created_by: str
    created_at: datetime
    done_at: datetime | None
    changed: int
    skipped: int
    skipped_detail: list[Skipped]
    emails: EmailCounts


def _publication_row(row: RowMapping) -> PublicationRow:
    stored = dict(row)
    emails = EmailCounts(*(stored.pop(f"emails_{k}") for k in ("pending", "sent", "failed")))
    skipped = [Skipped(**d) for d in stored.pop("skipped_detail")]
    return PublicationRow(**stored, skipped_detail=skipped, emails=emails)


async def publication(session: AsyncSession, course_id: int, publication_id: int) -> PublicationRow | None:
    row = (
        (
            await session.execute(
                text(_VIEW + " WHERE p.id = :id AND p.course_id = :c"), {"id": publication_id, "c": course_id}
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else _publication_row(row)


async def publications_page(
    session: AsyncSession, course_id: int, limit: int, cursor: str | None
) -> Page[PublicationRow]:
    """The course's publications, most recent first."""
    page = await newest_first(session, _VIEW + " WHERE p.course_id = :c", {"c": course_id}, limit, cursor)
    return Page([_publication_row(r) for r in page.items], page.next_cursor)


@dataclass(frozen=True, slots=True)
class AssessmentPublished:
    """Per assessment: participants (attempts not cancelled), of them published, and graded results unpublished."""

    assessment: str
    release: dict[str, Any] | None
    participants: int
    published: int
    graded_unpublished: int


@dataclass(frozen=True, slots=True)
class GradesPublished:
    """Learners with an attempt not cancelled, and course grades published."""

    participants: int
    published: int


async def published_by_assessment(session: AsyncSession, course_id: int) -> list[AssessmentPublished]:
    rows = (
        await session.execute(
            text(
                """
                SELECT a.external_id, a.release,
                       count(t.id) FILTER (WHERE t.status <> 'cancelled') AS participants,
                       count(pr.enrollment_id) FILTER (WHERE t.status <> 'cancelled') AS published,
                       count(t.id) FILTER (WHERE t.status = 'graded' AND pr.enrollment_id IS NULL) AS unpublished_graded
                FROM assessments a
                LEFT JOIN attempts t ON t.assessment_id = a.id
                LEFT JOIN published_results pr ON pr.enrollment_id = t.enrollment_id AND pr.assessment_id = a.id
                WHERE a.course_id = :c GROUP BY a.id ORDER BY a.position, a.id
                """
            ),
            {"c": course_id},
        )
    ).all()
    return [AssessmentPublished(*r) for r in rows]


async def grades_published(session: AsyncSession, course_id: int) -> GradesPublished:
    grade = (
        await session.execute(
            text(
                """
                SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM attempts t WHERE t.enrollment_id = e.id
                                                      AND t.status <> 'cancelled')) AS participants,
                       count(pg.enrollment_id) AS published
                FROM enrollments e LEFT JOIN published_grades pg ON pg.enrollment_id = e.id
                WHERE e.course_id = :c
                """
            ),
            {"c": course_id},
        )
    ).one()
    return GradesPublished(*grade)


@dataclass(frozen=True, slots=True)
class MyPublishedResult:
    """A learner's published result as they see it (the snapshot)."""

    assessment: str
    title: str
    category: str
    earned: Decimal | None
    possible: Decimal
    excused: bool
    points_deducted: Decimal | None
    late_status: LateStatus | None
    feedback: str | None
    items: list[dict[str, Any]] | None
    published_at: datetime


@dataclass(frozen=True, slots=True)
class MyPublishedGrade:
    percent: Decimal | None
    grade: str | None
    passed: bool | None
    published_at: datetime


async def published_results_of(session: AsyncSession, enrollment_id: int) -> list[MyPublishedResult]:
    """The learner's published results, in the course's order of assessments."""
    rows = await session.execute(
        text(
            """
            SELECT a.external_id AS assessment, a.title, a.category, pr.earned, pr.possible, pr.excused,
                   pr.points_deducted, pr.late_status, pr.feedback, pr.items, pr.published_at
            FROM published_results pr JOIN assessments a ON a.id = pr.assessment_id
            WHERE pr.enrollment_id = :e ORDER BY a.position, a.id
            """
        ),
        {"e": enrollment_id},
    )
    return [MyPublishedResult(*r) for r in rows]


async def published_grade_of(session: AsyncSession, enrollment_id: int) -> MyPublishedGrade | None:
    row = (
        await session.execute(
            text("SELECT percent, grade, passed, published_at FROM published_grades WHERE enrollment_id = :e"),
            {"e": enrollment_id},
        )
    ).first()
    return None if row is None else MyPublishedGrade(*row)
