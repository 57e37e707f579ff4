"""Publishing results to learners: publications (publish or retract, now or at a time), the release
modes of assessments, and what the staff see of it.

A learner sees a published result as it was when it was published (a snapshot): a later change stays
hidden until it is published again, so an unconfirmed re-mark can never leak. Every publication is
one statement per target (assessments, course grade) that classifies the candidates, writes the
snapshots, the audit entries and the e-mails owed, all in the publication's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.service.access import CourseRef, check_publisher_scope
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.core import clock, jsonutil
from gradeflow.core.errors import Conflict, NotFound, ValidationFailed
from gradeflow.core.paging import Page, newest_first
from gradeflow.courses.service import enrollments
from gradeflow.deadlines.service import due_dates
from gradeflow.grades.service import grades
from gradeflow.notify import events
from gradeflow.publishing.commands import Audience, PublicationRequest
from gradeflow.publishing.service import reviews
from gradeflow.publishing.service import visibility as published

MAX_SKIPPED_DETAIL = 1000
SYSTEM_ACTOR = "gradeflow:release"

# Why a requested result was not published.
SKIP_REASONS = {
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


def _audience_sql(audience: dict[str, Any]) -> str:
    """SQL condition on enrollment `e` for an audience (its lists are bound as :learners, :cohorts, :groups)."""
    if audience.get("learners") is not None:
        return "e.external_id = ANY(CAST(:learners AS text[]))"
    if audience.get("cohorts") is not None:
        return "e.cohort = ANY(CAST(:cohorts AS text[]))"
    if audience.get("groups") is not None:
        return "e.groups && CAST(:groups AS text[])"
    return "TRUE"


def _audience_params(audience: dict[str, Any]) -> dict[str, Any]:
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

_AUDIT_COLUMNS = "organization_id, course_id, at, actor, request_id, action, learner, assessment, old, new"

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
      INSERT INTO audit_log ({_AUDIT_COLUMNS})
      SELECT :org, :c, :now, :actor, :rid, 'result.published', cand.learner, cand.assessment, NULL,
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
      INSERT INTO audit_log ({_AUDIT_COLUMNS})
      SELECT :org, :c, :now, :actor, :rid, 'course_grade.published', cand.learner, NULL, NULL,
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
      INSERT INTO audit_log ({_AUDIT_COLUMNS})
      SELECT :org, :c, :now, :actor, :rid, 'result.retracted', w.learner, a.external_id,
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
      INSERT INTO audit_log ({_AUDIT_COLUMNS})
      SELECT :org, :c, :now, :actor, :rid, 'course_grade.retracted', w.learner, NULL,
             jsonb_build_object('percent', trim_scale(w.percent), 'grade', w.grade, 'passed', w.passed),
             jsonb_build_object('publication', CAST(:pub AS bigint))
      FROM written w
    )
    SELECT w.learner, NULL AS assessment FROM written w
"""  # noqa: S608


# --- creating and running publications ----------------------------------------------------------


async def _assessment_ids(session: AsyncSession, course_id: int, external_ids: list[str]) -> list[int]:
    found: dict[str, int] = dict(
        (
            await session.execute(
                text("SELECT external_id, id FROM assessments WHERE course_id = :c AND external_id = ANY(:ext)"),
                {"c": course_id, "ext": external_ids},
            )
        ).all()
    )
    missing = [i for i, ext in enumerate(external_ids) if ext not in found]
    if missing:
        raise ValidationFailed.one(f"/assessments/{missing[0]}", "No such assessment in this course.")
    return [found[ext] for ext in external_ids]


async def create(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    principal: Principal,
    body: PublicationRequest,
    actor: str,
) -> dict[str, Any]:
    """Publish or retract now, or schedule a publication for `publish_at` (the worker's
    `publish_due` cron runs it then, within seconds)."""
    await check_publisher_scope(session, ref.id, principal, body.assessments, body.course_grade)
    scheduled = body.publish_at is not None and body.publish_at > clock.now()
    if scheduled:  # checked now; an immediate publication checks them as it runs (and rolls back)
        await _assessment_ids(session, ref.id, body.assessments)
    publication_id = await _insert(session, ref.id, body, "scheduled" if scheduled else "done", "request", actor)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "publication.scheduled" if scheduled else f"publication.{body.action}",
        new={"publication": publication_id, **body.model_dump(mode="json", exclude_none=True)},
    )
    if not scheduled:
        await _execute(session, ref.organization_id, ref.id, publication_id, actor)
    await session.commit()
    if not scheduled and body.notify_email:
        await jobs.enqueue(queue, jobs.SEND_NOTIFICATIONS, f"notify-{publication_id}", publication_id)
    return await get(session, ref, publication_id)


async def _insert(
    session: AsyncSession, course_id: int, body: PublicationRequest, status: str, trigger: str, actor: str
) -> int:
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
            "action": body.action,
            "assessments": body.assessments,
            "course_grade": body.course_grade,
            "audience": jsonutil.dumps(body.audience.model_dump(exclude_none=True, exclude_defaults=True)),
            "show": body.show,
            "notify": body.notify_email,
            "at": body.publish_at,
            "status": status,
            "trigger": trigger,
            "actor": actor,
        },
    )
    return publication_id


async def _execute(
    session: AsyncSession, organization_id: int, course_id: int, publication_id: int, actor: str
) -> None:
    """Carry out a publication in the caller's transaction and record its outcome on it."""
    p = (
        (await session.execute(text("SELECT * FROM publications WHERE id = :id"), {"id": publication_id}))
        .mappings()
        .one()
    )
    audience = p["audience"]
    now = clock.now()
    params = {
        **_audience_params(audience),
        **audit.stamp(organization_id, course_id, actor),
        "c": course_id,
        "pub": publication_id,
        "now": now,
        "show": p["show"],
        "notify": p["notify_email"],
        "only_unpublished": bool(audience.get("unpublished")),
        "max_detail": MAX_SKIPPED_DETAIL,
        "assessment_ids": await _assessment_ids(session, course_id, list(p["assessments"])),
    }
    condition = _audience_sql(audience)
    changed, skipped = 0, 0
    detail: list[dict[str, Any]] = []
    learners: set[str] = set()
    learner_count = 0
    if p["action"] == "publish":
        statements = ([_PUBLISH_RESULTS] if p["assessments"] else []) + ([_PUBLISH_GRADES] if p["course_grade"] else [])
        if p["course_grade"]:
            await grades.bring_current(session, course_id)
        for sql in statements:
            row = (await session.execute(text(sql.format(audience=condition)), params)).one()
            changed, skipped = changed + row.changed, skipped + row.skipped
            detail += list(row.detail)
            learners |= set(row.learners)
            learner_count = max(learner_count, row.learner_count)
    else:
        statements = ([_RETRACT_RESULTS] if p["assessments"] else []) + ([_RETRACT_GRADES] if p["course_grade"] else [])
        done: set[tuple[str, str | None]] = set()
        for sql in statements:
            done |= {(r[0], r[1]) for r in await session.execute(text(sql.format(audience=condition)), params)}
        changed = len(done)
        learners = {lr for lr, _ in done}
        learner_count = len(learners)
        if audience.get("learners"):
            wanted = [(lr, a) for lr in audience["learners"] for a in p["assessments"]]
            wanted += [(lr, None) for lr in audience["learners"] if p["course_grade"]]
            missing = [w for w in wanted if w not in done]
            skipped = len(missing)
            detail = [{"learner": lr, "assessment": a, "reason": "not_published"} for lr, a in missing]
    if audience.get("learners"):
        strangers = await _not_enrolled(session, course_id, audience["learners"])
        skipped += len(strangers)
        detail = [{"learner": lr, "assessment": None, "reason": "not_enrolled"} for lr in strangers] + detail
    if changed:
        course = await session.scalar(text("SELECT external_id FROM courses WHERE id = :c"), {"c": course_id})
        await events.emit(
            session,
            organization_id,
            "results.published" if p["action"] == "publish" else "results.unpublished",
            {
                "course": course,
                "publication": publication_id,
                "assessments": list(p["assessments"]),
                "course_grade": p["course_grade"],
                "show": p["show"],
                "trigger": p["trigger"],
                "learner_count": max(learner_count, len(learners)),
                "learners": sorted(learners)[:1000],
            },
        )
    await session.execute(
        text(
            """
            UPDATE publications SET status = 'done', done_at = :now, changed = :changed, skipped = :skipped,
                   skipped_detail = CAST(:detail AS jsonb)
            WHERE id = :id
            """
        ),
        {
            "now": now,
            "changed": changed,
            "skipped": skipped,
            "detail": jsonutil.dumps(detail[:MAX_SKIPPED_DETAIL]),
            "id": publication_id,
        },
    )


async def _not_enrolled(session: AsyncSession, course_id: int, learners: list[str]) -> list[str]:
    enrolled = set(
        (
            await session.scalars(
                text("SELECT external_id FROM enrollments WHERE course_id = :c AND external_id = ANY(:l)"),
                {"c": course_id, "l": learners},
            )
        ).all()
    )
    return [lr for lr in learners if lr not in enrolled]


async def due_publications(session: AsyncSession) -> list[int]:
    return list(
        (
            await session.scalars(
                text(
                    "SELECT id FROM publications WHERE status = 'scheduled' AND publish_at <= :now ORDER BY publish_at"
                ),
                {"now": clock.now()},
            )
        ).all()
    )


async def run_scheduled(sessionmaker: async_sessionmaker[AsyncSession], publication_id: int) -> str:
    """Run a scheduled publication whose time has come (once: the row lock and status decide)."""
    async with sessionmaker() as session:
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
        if row is None:
            return "not scheduled (already run or cancelled)"
        if row.publish_at > clock.now():
            return "not due yet"
        await _execute(session, row.organization_id, row.course_id, publication_id, row.created_by)
        await session.commit()
        return "published"


async def cancel(
    session: AsyncSession, ref: CourseRef, principal: Principal, publication_id: int, actor: str
) -> dict[str, Any]:
    """Cancel a scheduled publication (a done one is undone by a retraction instead). A publisher
    limited to some assessments cancels only publications within their scope."""
    row = (
        await session.execute(
            text(
                "SELECT assessments, course_grade, status FROM publications"
                " WHERE id = :id AND course_id = :c FOR UPDATE"
            ),
            {"id": publication_id, "c": ref.id},
        )
    ).first()
    if row is None:
        raise NotFound(f"Publication {publication_id} not found in this course.")
    await check_publisher_scope(session, ref.id, principal, list(row.assessments), row.course_grade)
    if row.status != "scheduled":
        raise Conflict("Only a scheduled publication can be cancelled; retract published results instead.")
    await session.execute(
        text("UPDATE publications SET status = 'cancelled', done_at = :now WHERE id = :id"),
        {"id": publication_id, "now": clock.now()},
    )
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "publication.cancelled",
        old={"publication": publication_id, "status": "scheduled"},
        new={"publication": publication_id, "status": "cancelled"},
    )
    await session.commit()
    return await get(session, ref, publication_id)


# --- release modes --------------------------------------------------------------------------------

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
                            AND t.status IN ('to_be_taken', 'in_progress', 'submitted', 'pending_grading')))))
      OR (a.release->>'mode' = 'scheduled' AND CAST(a.release->>'at' AS timestamptz) <= :now))
    ORDER BY a.position, a.id
"""  # noqa: S608 (constant SQL)


async def release_due(session: AsyncSession, course_id: int) -> list[int]:
    """Publish what the course's release modes say is due (each assessment's results not yet
    published or changed since); one publication per assessment with something to publish. Returns
    the publications made."""
    org = await session.scalar(text("SELECT organization_id FROM courses WHERE id = :c"), {"c": course_id})
    if org is None:
        return []
    made = []
    for assessment_id, external_id, release in (
        await session.execute(text(_DUE_RELEASES), {"c": course_id, "now": clock.now()})
    ).all():
        pending = await session.scalar(
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
        if not pending:
            continue
        body = PublicationRequest(
            assessments=[external_id],
            audience=Audience(unpublished=True),
            show=release.get("show", "total_only"),
            notify_email=release.get("notify_email", False),
        )
        trigger = "automatic" if release["mode"] == "automatic" else "scheduled"
        publication_id = await _insert(session, course_id, body, "done", trigger, SYSTEM_ACTOR)
        await _execute(session, org, course_id, publication_id, SYSTEM_ACTOR)
        made.append(publication_id)
    return made


# --- reads ----------------------------------------------------------------------------------------

_VIEW = """
    SELECT p.*,
      (SELECT count(*) FROM notifications n WHERE n.publication_id = p.id AND n.status IN ('queued', 'sending'))
        AS emails_pending,
      (SELECT count(*) FROM notifications n WHERE n.publication_id = p.id AND n.status = 'sent') AS emails_sent,
      (SELECT count(*) FROM notifications n WHERE n.publication_id = p.id AND n.status = 'failed') AS emails_failed
    FROM publications p
"""


def _view(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "action": row["action"],
        "assessments": list(row["assessments"]),
        "course_grade": row["course_grade"],
        "audience": row["audience"],
        "show": row["show"],
        "notify_email": row["notify_email"],
        "publish_at": row["publish_at"],
        "status": row["status"],
        "trigger": row["trigger"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "done_at": row["done_at"],
        "changed": row["changed"],
        "skipped": row["skipped"],
        "skipped_detail": [{**d, "detail": SKIP_REASONS[d["reason"]]} for d in row["skipped_detail"]],
        "emails": {"pending": row["emails_pending"], "sent": row["emails_sent"], "failed": row["emails_failed"]},
    }


async def get(session: AsyncSession, ref: CourseRef, publication_id: int) -> dict[str, Any]:
    row = (
        (
            await session.execute(
                text(_VIEW + " WHERE p.id = :id AND p.course_id = :c"), {"id": publication_id, "c": ref.id}
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"Publication {publication_id} not found in this course.")
    return _view(row)


async def list_publications(
    session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """Most recent first."""
    page = await newest_first(session, _VIEW + " WHERE p.course_id = :c", {"c": ref.id}, limit, cursor)
    return Page([_view(r) for r in page.items], page.next_cursor)


async def summary(session: AsyncSession, ref: CourseRef) -> dict[str, Any]:
    """Per assessment: participants (attempts not cancelled), results ready to publish, published, and
    whether it is fully published; the same for the course grade."""
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
            {"c": ref.id},
        )
    ).all()
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
            {"c": ref.id},
        )
    ).one()
    return {
        "assessments": [
            {
                "assessment": r[0],
                "release": r[1] or {"mode": "manual"},
                "participants": r[2],
                "published": r[3],
                "graded_unpublished": r[4],
                "fully_published": r[2] > 0 and r[3] == r[2],
            }
            for r in rows
        ],
        "course_grade": {
            "participants": grade[0],
            "published": grade[1],
            "fully_published": grade[0] > 0 and grade[1] >= grade[0],
        },
    }


async def my_results(session: AsyncSession, principal: Principal, course: str) -> dict[str, Any]:
    """A learner's own published results in a course (their user token's `sub` is their enrollment's
    external id): snapshots only, item detail only where it was published with items; the feedback
    written for them, never the markers' marks, comments or names."""
    enrollment_id = await enrollments.learner_enrollment(session, principal, course)
    results = (
        await session.execute(
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
    ).mappings()
    grade = (
        (
            await session.execute(
                text("SELECT percent, grade, passed, published_at FROM published_grades WHERE enrollment_id = :e"),
                {"e": enrollment_id},
            )
        )
        .mappings()
        .first()
    )
    return {
        "course": course,
        "learner": principal.subject,
        "results": [{k: v for k, v in r.items() if k != "items" or v is not None} for r in (dict(x) for x in results)],
        "course_grade": dict(grade) if grade else None,
        "review_sessions": await reviews.for_learner(session, enrollment_id),
    }
