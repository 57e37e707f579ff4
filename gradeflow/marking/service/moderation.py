"""Moderation: a planner picks a sample of marked attempts, stratified by grader; a moderator agrees
with the graders' marks or adjusts them (the moderator's marks are kept beside the graders', and decide
the item's score), and may scale one grader's marks on the assessment. Every score a decision changes
goes through the one score path (totals, grades, audit, confirmation reopened); every decision is
audited. When the assessment requires moderation, grading cannot be confirmed until it is complete.

An attempt belongs to the grader who marked it first (the stratum it is sampled in). Only graders' marks
are moderated: attempts whose manual items were scored without marks (imported, PUT) are outside the
sample, and an assessment with none marked does not wait for moderation (marking.moderation_state). A
grader who changes a mark of a decided attempt sends it back to pending (marking.put_mark). Scores follow
marks only through marking.rescore, under marking.lock. Moderators see learners as graders do: by
candidate label on an anonymous assessment (gradeflow/marking/service/anonymity.py).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.service.access import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import FieldError, Forbidden, NotFound, ValidationFailed
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.courses.service.assessments import AssessmentView, get_assessment
from gradeflow.marking.commands import ModerationAdjustment, ModerationAgreement, ModerationSampleRequest, ScalingIn
from gradeflow.marking.service import anonymity, marking

SAMPLE_STATUSES = ("pending", "agreed", "adjusted")

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


async def sample(
    session: AsyncSession, ref: CourseRef, assessment: str, body: ModerationSampleRequest, actor: str
) -> dict[str, Any]:
    """Add to the assessment's moderation sample: the listed learners' marked attempts, then a percentage
    of each grader's marked attempts (rounded up, at least one per grader who marked; attempts already in
    the grader's stratum count towards it), at random. Nothing is ever taken out of the sample. Audited as
    `moderation.sampled` with the learners picked."""
    view = await get_assessment(session, ref, assessment)
    a = view.assessment.id
    # Two samplings at once would both count the strata before either adds: one at a time per assessment.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('moderation_sample:' || :a))"), {"a": str(a)})
    added: list[int] = []
    if body.learners is not None:
        rows = (await session.execute(_LISTED, {"learners": list(body.learners), "c": ref.id, "a": a})).all()
        problems = [
            FieldError(
                f"/learners/{r.ord - 1}",
                "not enrolled in this course" if r.enrollment is None else "has no marked attempt at this assessment",
            )
            for r in rows
            if r.attempt_id is None
        ]
        if problems:
            raise ValidationFailed(problems)
        added += await session.scalars(
            _ADD_LISTED,
            {"a": a, "by": actor, "attempts": [r.attempt_id for r in rows], "graders": [r.grader for r in rows]},
        )
    if body.percent is not None:
        added += await session.scalars(_ADD_PERCENT, {"a": a, "by": actor, "percent": body.percent})
    picked = (
        await session.execute(
            text(
                """
                SELECT e.external_id, s.grader FROM moderation_samples s JOIN attempts t ON t.id = s.attempt_id
                JOIN enrollments e ON e.id = t.enrollment_id
                WHERE s.assessment_id = :a AND s.attempt_id = ANY(:ids) ORDER BY s.grader, e.external_id
                """
            ),
            {"a": a, "ids": added},
        )
    ).all()
    per_grader: dict[str, int] = defaultdict(int)
    for _, grader in picked:
        per_grader[grader] += 1
    if picked:
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            actor,
            "moderation.sampled",
            assessment=assessment,
            new={
                "percent": None if body.percent is None else float(body.percent),
                "learners": [learner for learner, _ in picked],
                "per_grader": dict(per_grader),
            },
        )
    await session.commit()
    return {"added": len(picked), "added_per_grader": dict(per_grader), **await _status(session, view)}


async def status(session: AsyncSession, ref: CourseRef, assessment: str) -> dict[str, Any]:
    """The assessment's moderation status, counts per grader and the graders' scalings."""
    return await _status(session, await get_assessment(session, ref, assessment))


async def _status(session: AsyncSession, view: AssessmentView) -> dict[str, Any]:
    a = view.assessment
    counts = (
        await session.execute(
            text(
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
            ),
            {"a": a.id},
        )
    ).mappings()
    graders = [dict(r) for r in counts]
    sampled = sum(g["sampled"] for g in graders)
    pending = sum(g["pending"] for g in graders)
    state = marking.moderation_state(view, sum(g["marked"] for g in graders), sampled, pending)
    factors = (
        await session.execute(
            text(
                """
                SELECT grader, factor, reason, scaled_by, updated_at FROM moderation_scalings
                WHERE assessment_id = :a ORDER BY grader
                """
            ),
            {"a": a.id},
        )
    ).mappings()
    return {
        "assessment": a.external_id,
        "required": a.moderation_required,
        "status": state,
        "sampled": sampled,
        "pending": pending,
        "graders": graders,
        "scalings": [{**dict(s), "factor": float(s["factor"])} for s in factors],
    }


# --- the sample -----------------------------------------------------------------------------------


async def list_samples(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    hide: bool,
    limit: int,
    cursor: str | None,
    state: str | None = None,
) -> Page[dict[str, Any]]:
    """The sampled attempts in the order they were picked (optionally those of one status), each with its
    manual items: every grader's mark, the moderator's, and the item's score. Concealed callers (`hide`)
    see candidate labels on an anonymous assessment."""
    view = await get_assessment(session, ref, assessment)
    masked = await anonymity.mask(session, ref, hide, assessment)
    rows = (
        (
            await session.execute(
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
                {"a": view.assessment.id, "after": last_id_after(cursor), "state": state, "lim": limit + 1},
            )
        )
        .mappings()
        .all()
    )
    page = page_of([dict(r) for r in rows], limit, lambda r: r["id"])
    details = await _details(session, view, [r["attempt_id"] for r in page.items])
    page.items = [_sample_view(r, masked, details.get(r["attempt_id"], {})) for r in page.items]
    return page


async def _details(
    session: AsyncSession, view: AssessmentView, attempts: list[int]
) -> dict[int, dict[int, dict[str, Any]]]:
    """attempt -> item id -> the item's marks (graders' and moderator's) and score, for manual items."""
    out: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
    manual = [i for i in view.items if i.marking == "manual"]
    for attempt in attempts:
        for item in manual:
            out[attempt][item.id] = {
                "item": item.external_id,
                "points_possible": float(item.points_possible),
                "marks": [],
                "moderator": None,
                "score": None,
            }
    for attempt, item_id, grader, role, points, comment in await session.execute(
        text(
            """
            SELECT attempt_id, item_id, grader, role, points, comment FROM marks
            WHERE attempt_id = ANY(:ids) ORDER BY id
            """
        ),
        {"ids": attempts},
    ):
        cell = out[attempt].get(item_id)
        if cell is None:
            continue
        mark = {"grader": grader, "role": role, "points": float(points), "comment": comment}
        if role == "moderator":
            cell["moderator"] = mark
        else:
            cell["marks"].append(mark)
    for attempt, item_id, earned in await session.execute(
        text("SELECT attempt_id, item_id, earned FROM item_scores WHERE attempt_id = ANY(:ids)"), {"ids": attempts}
    ):
        cell = out[attempt].get(item_id)
        if cell is not None:
            cell["score"] = None if earned is None else float(earned)
    return out


def _sample_view(row: dict[str, Any], masked: anonymity.Mask, items: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return {
        "learner": masked.show(row["learner"]),
        "grader": row["grader"],
        "status": row["status"],
        "moderator": row["moderator"],
        "decided_at": row["decided_at"],
        "note": row["note"],
        "picked_by": row["picked_by"],
        "picked_at": row["picked_at"],
        "earned": None if row["earned"] is None else float(row["earned"]),
        "possible": None if row["possible"] is None else float(row["possible"]),
        "items": list(items.values()),
    }


# --- decisions ------------------------------------------------------------------------------------


async def _sampled(
    session: AsyncSession, ref: CourseRef, view: AssessmentView, learner: str, moderator: str
) -> dict[str, Any]:
    """The learner's sampled attempt, read under the marking locks (marking.lock: a grader's mark, a scaling
    and this decision on the attempt happen one after the other). A moderator never decides work they (or
    one of their workgroups) marked."""
    attempt = await session.scalar(
        text(
            """
            SELECT t.id FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id
            WHERE t.assessment_id = :a AND e.course_id = :c AND e.external_id = :l
            """
        ),
        {"a": view.assessment.id, "c": ref.id, "l": learner},
    )
    row = None
    if attempt is not None:
        await marking.lock(session, view.assessment.id, [attempt])
        row = (
            (
                await session.execute(
                    text(
                        "SELECT id, attempt_id, status, note FROM moderation_samples"
                        " WHERE assessment_id = :a AND attempt_id = :t FOR UPDATE"
                    ),
                    {"a": view.assessment.id, "t": attempt},
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound(f"The learner's attempt at {view.assessment.external_id!r} is not in the moderation sample.")
    names = await marking.identities(session, ref, moderator)
    marked = await session.scalar(
        text("SELECT EXISTS (SELECT 1 FROM marks WHERE attempt_id = :t AND role <> 'moderator' AND grader = ANY(:n))"),
        {"t": row["attempt_id"], "n": names},
    )
    if marked:
        raise Forbidden("You marked this attempt: another moderator decides it.")
    return dict(row)


async def _moderator_marks(session: AsyncSession, attempt: int) -> dict[str, float]:
    rows = await session.execute(
        text(
            """
            SELECT i.external_id, m.points FROM marks m JOIN items i ON i.id = m.item_id
            WHERE m.attempt_id = :t AND m.role = 'moderator' ORDER BY i.position
            """
        ),
        {"t": attempt},
    )
    return {item: float(points) for item, points in rows}


async def agree(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    given: str,
    hide: bool,
    body: ModerationAgreement,
    moderator: str,
) -> dict[str, Any]:
    """The moderator agrees with the graders' marks of a sampled attempt: they stand (an earlier
    adjustment of the attempt is withdrawn and its items' scores follow the graders' marks again, or
    are removed where the graders' marks give no score yet); a planner's override of an item stands.
    Audited as `moderation.agreed`."""
    masked = await anonymity.learner(session, ref, hide, assessment, given)
    learner = anonymity.real(masked, given)
    view = await get_assessment(session, ref, assessment)
    found = await _sampled(session, ref, view, learner, moderator)
    old_marks = await _moderator_marks(session, found["attempt_id"])
    await session.execute(
        text("DELETE FROM marks WHERE attempt_id = :t AND role = 'moderator'"), {"t": found["attempt_id"]}
    )
    await _decide(session, found["id"], "agreed", moderator, body.note)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        moderator,
        "moderation.agreed",
        learner=learner,
        assessment=assessment,
        old={"status": found["status"], "moderator_marks": old_marks, "note": found["note"]},
        new={"status": "agreed", "moderator_marks": {}, "note": body.note},
    )
    # The graders' marks stand; a planner's override of an item stands too (as under a scaling).
    await marking.rescore(session, ref, view, [found["attempt_id"]], moderator)
    await session.commit()
    return await _one(session, ref, view, masked, found["id"])


async def adjust(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    given: str,
    hide: bool,
    body: ModerationAdjustment,
    moderator: str,
) -> dict[str, Any]:
    """The moderator's own marks for items of a sampled attempt, stored beside the graders' marks (which
    stay as given) as marks of role moderator; each becomes the item's score through the score path,
    replacing a planner's override of that item (the moderator decided it last). Audited as
    `moderation.adjusted` (the moderator's marks before and after)."""
    masked = await anonymity.learner(session, ref, hide, assessment, given)
    learner = anonymity.real(masked, given)
    view = await get_assessment(session, ref, assessment)
    items = {i.external_id: i for i in view.items}
    problems = []
    for n, mark in enumerate(body.items):
        item = items.get(mark.item)
        if item is None:
            problems.append(FieldError(f"/items/{n}/item", f"no item {mark.item!r} in this assessment"))
        elif item.marking != "manual":
            problems.append(FieldError(f"/items/{n}/item", "scored automatically: it is not moderated"))
        elif mark.points > item.points_possible:
            problems.append(
                FieldError(f"/items/{n}/points", f"at most the item's {item.points_possible.normalize()} points")
            )
    if problems:
        raise ValidationFailed(problems)
    found = await _sampled(session, ref, view, learner, moderator)
    attempt = found["attempt_id"]
    ids = [items[m.item].id for m in body.items]
    marked = set(
        await session.scalars(
            text("SELECT item_id FROM marks WHERE attempt_id = :t AND role <> 'moderator'"), {"t": attempt}
        )
    )
    unmarked = [
        FieldError(f"/items/{n}/item", "no grader has marked this item of the attempt: nothing to moderate")
        for n, item_id in enumerate(ids)
        if item_id not in marked
    ]
    if unmarked:
        raise ValidationFailed(unmarked)
    old_marks = await _moderator_marks(session, attempt)
    # The moderator's latest decision on an item replaces any earlier moderator's mark on it.
    await session.execute(
        text("DELETE FROM marks WHERE attempt_id = :t AND role = 'moderator' AND item_id = ANY(:i)"),
        {"t": attempt, "i": ids},
    )
    await session.execute(
        text(
            """
            INSERT INTO marks (attempt_id, item_id, grader, role, points, comment)
            SELECT :t, i, :g, 'moderator', p, :c FROM unnest(CAST(:i AS bigint[]), CAST(:p AS numeric[])) AS x(i, p)
            """
        ),
        {"t": attempt, "g": moderator, "c": body.note, "i": ids, "p": [m.points for m in body.items]},
    )
    await _decide(session, found["id"], "adjusted", moderator, body.note)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        moderator,
        "moderation.adjusted",
        learner=learner,
        assessment=assessment,
        old={"status": found["status"], "moderator_marks": old_marks, "note": found["note"]},
        new={"status": "adjusted", "moderator_marks": await _moderator_marks(session, attempt), "note": body.note},
    )
    # The moderator decided these items just now: their marks replace a planner's override of them.
    await marking.rescore(session, ref, view, [attempt], moderator, replace={(attempt, i) for i in ids})
    await session.commit()
    return await _one(session, ref, view, masked, found["id"])


async def _decide(session: AsyncSession, sample_id: int, state: str, moderator: str, note: str | None) -> None:
    await session.execute(
        text(
            """
            UPDATE moderation_samples SET status = :s, moderator = :m, decided_at = :now, note = :note
            WHERE id = :id
            """
        ),
        {"s": state, "m": moderator, "now": clock.now(), "note": note, "id": sample_id},
    )


async def _one(
    session: AsyncSession, ref: CourseRef, view: AssessmentView, masked: anonymity.Mask, sample_id: int
) -> dict[str, Any]:
    row = (
        (
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
        )
        .mappings()
        .one()
    )
    details = await _details(session, view, [row["attempt_id"]])
    return _sample_view(dict(row), masked, details.get(row["attempt_id"], {}))


# --- scaling --------------------------------------------------------------------------------------


async def _not_own_marks(session: AsyncSession, ref: CourseRef, grader: str, moderator: str) -> None:
    # Neither way: a grader who also moderates neither scales nor unscales their own marks.
    if grader in await marking.identities(session, ref, moderator):
        raise Forbidden("You cannot scale your own marks.")


async def scale(
    session: AsyncSession, ref: CourseRef, assessment: str, grader: str, body: ScalingIn, moderator: str
) -> dict[str, Any]:
    """Scale one grader's marks on the assessment: they count times `factor` (capped at the item's points)
    wherever their marks decide an item, for every attempt they marked; the marks themselves stay as given.
    Scores follow at once through the score path (an overridden score stands). Audited as
    `moderation.scaled`."""
    view = await get_assessment(session, ref, assessment)
    await _not_own_marks(session, ref, grader, moderator)
    # Exclusive: no mark of this grader lands between finding their attempts and rescoring them.
    await marking.lock(session, view.assessment.id, [], exclusive=True)
    attempts = await _marked_by(session, view, grader)
    old = (
        (
            await session.execute(
                text(
                    "SELECT factor, reason FROM moderation_scalings WHERE assessment_id = :a AND grader = :g FOR UPDATE"
                ),
                {"a": view.assessment.id, "g": grader},
            )
        )
        .mappings()
        .first()
    )
    now = clock.now()
    row = (
        (
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
                {"a": view.assessment.id, "g": grader, "f": body.factor, "by": moderator, "r": body.reason, "now": now},
            )
        )
        .mappings()
        .one()
    )
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        moderator,
        "moderation.scaled",
        assessment=assessment,
        old=None if old is None else {"grader": grader, "factor": float(old["factor"]), "reason": old["reason"]},
        new={"grader": grader, "factor": float(body.factor), "reason": body.reason},
    )
    done = await marking.rescore(session, ref, view, attempts, moderator)
    await session.commit()
    return {**dict(row), "factor": float(row["factor"]), "rescored": done.changed}


async def unscale(session: AsyncSession, ref: CourseRef, assessment: str, grader: str, moderator: str) -> None:
    """Take a grader's scaling away: their marks count as given again. Audited as `moderation.unscaled`."""
    view = await get_assessment(session, ref, assessment)
    await _not_own_marks(session, ref, grader, moderator)
    await marking.lock(session, view.assessment.id, [], exclusive=True)
    old = (
        (
            await session.execute(
                text(
                    "DELETE FROM moderation_scalings WHERE assessment_id = :a AND grader = :g RETURNING factor, reason"
                ),
                {"a": view.assessment.id, "g": grader},
            )
        )
        .mappings()
        .first()
    )
    if old is None:
        raise NotFound(f"{grader!r}'s marks on {assessment!r} are not scaled.")
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        moderator,
        "moderation.unscaled",
        assessment=assessment,
        old={"grader": grader, "factor": float(old["factor"]), "reason": old["reason"]},
    )
    await marking.rescore(session, ref, view, await _marked_by(session, view, grader), moderator)
    await session.commit()


async def _marked_by(session: AsyncSession, view: AssessmentView, grader: str) -> list[int]:
    attempts = list(
        await session.scalars(
            text(
                """
                SELECT DISTINCT m.attempt_id FROM marks m JOIN attempts t ON t.id = m.attempt_id
                WHERE t.assessment_id = :a AND m.grader = :g AND m.role <> 'moderator' ORDER BY 1
                """
            ),
            {"a": view.assessment.id, "g": grader},
        )
    )
    if not attempts:
        raise NotFound(f"{grader!r} has no marks on {view.assessment.external_id!r}.")
    return attempts
