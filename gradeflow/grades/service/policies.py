"""A course's grading policy: versions, what-if previews, and the recompute that follows a change."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.service.access import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core import clock, jsonutil
from gradeflow.core.errors import NotFound, PreconditionFailed, ValidationFailed
from gradeflow.core.paging import Page, decode_cursor, page_of
from gradeflow.deadlines.service import late_policies
from gradeflow.grades.service import grades
from gradeflow.grading import engine
from gradeflow.grading.policy import PolicyRules
from gradeflow.notify import events


async def get_policy(session: AsyncSession, ref: CourseRef) -> dict[str, Any]:
    """The active policy with its version and the state of the grades it produced."""
    row = (
        (
            await session.execute(
                text(
                    """
                SELECT p.version, p.body, p.fingerprint, p.created_by, p.created_at, c.grades_version
                FROM courses c JOIN grading_policies p ON p.course_id = c.id AND p.version = c.policy_version
                WHERE c.id = :c
                """
                ),
                {"c": ref.id},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("This course has no grading policy yet; PUT one.")
    recompute = await _latest_recompute(session, ref.id)
    return {**_version_view(row), "grades_version": row["grades_version"], "recompute": recompute}


def _version_view(row: Any) -> dict[str, Any]:
    return {
        "version": row["version"],
        "policy": row["body"],
        "fingerprint": row["fingerprint"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
    }


async def _latest_recompute(session: AsyncSession, course_id: int) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                text(
                    """
                SELECT id, policy_version, status, progress, message, error, created_at, started_at, finished_at
                FROM grade_recomputes WHERE course_id = :c ORDER BY id DESC LIMIT 1
                """
                ),
                {"c": course_id},
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def put_policy(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, rules: PolicyRules, if_match: int | None, actor: str
) -> dict[str, Any]:
    """Store a new policy version and start recomputing the course's grades under it.

    With `if_match`, the change applies only if that is still the active version (else 412).
    """
    current = await session.scalar(
        text("SELECT policy_version FROM courses WHERE id = :c FOR NO KEY UPDATE"), {"c": ref.id}
    )
    if if_match is not None and if_match != current:
        raise PreconditionFailed(f"The active policy is version {current}, not {if_match}; reload and retry.")
    if rules.preset in late_policies.NO_LATE_POLICY and (field := await late_policies.deducts(session, ref.id)):
        raise ValidationFailed.one(
            "/preset",
            f"The {rules.preset!r} preset has no late policy, and this course's enables {field}: turn it off first.",
        )
    policy = grades.with_catalogue(await grades.catalogue(session, ref.id), rules, pointer="")
    version = (current or 0) + 1
    body = rules.model_dump(mode="json")
    await session.execute(
        text(
            """
            INSERT INTO grading_policies (course_id, version, body, fingerprint, created_by)
            VALUES (:c, :v, CAST(:body AS jsonb), :fp, :by)
            """
        ),
        {"c": ref.id, "v": version, "body": _json(body), "fp": engine.fingerprint(policy), "by": actor},
    )
    await session.execute(text("UPDATE courses SET policy_version = :v WHERE id = :c"), {"c": ref.id, "v": version})
    previous = None
    if current is not None:
        previous = await session.scalar(
            text("SELECT body FROM grading_policies WHERE course_id = :c AND version = :v"), {"c": ref.id, "v": current}
        )
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "policy.set",
        old=None if previous is None else {"version": current, "policy": previous},
        new={"version": version, "policy": body},
    )
    recompute_id = await _queue_recompute(session, ref.id, version)
    served = await session.scalar(text("SELECT grades_version FROM courses WHERE id = :c"), {"c": ref.id})
    await events.emit(
        session,
        ref.organization_id,
        "policy.changed",
        {"course": ref.external_id, "policy_version": version, "grades_version": served, "changed_by": actor},
    )
    await session.commit()
    await jobs.enqueue(queue, jobs.RECOMPUTE_GRADES, f"recompute-{recompute_id}", recompute_id)
    return await get_policy(session, ref)


async def _queue_recompute(session: AsyncSession, course_id: int, version: int) -> int:
    recompute_id: int = await session.scalar(
        text("INSERT INTO grade_recomputes (course_id, policy_version) VALUES (:c, :v) RETURNING id"),
        {"c": course_id, "v": version},
    )
    return recompute_id


async def recompute_after_change(session: AsyncSession, queue: jobs.Queue, course_id: int) -> None:
    """The course's assessments changed: recompute its grades under the active policy (if any)."""
    version = await session.scalar(text("SELECT policy_version FROM courses WHERE id = :c"), {"c": course_id})
    if version is None:
        return
    recompute_id = await _queue_recompute(session, course_id, version)
    await session.commit()
    await jobs.enqueue(queue, jobs.RECOMPUTE_GRADES, f"recompute-{recompute_id}", recompute_id)


async def list_versions(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[dict[str, Any]]:
    """Every version, newest first."""
    before = decode_cursor(cursor)
    rows = (
        (
            await session.execute(
                text(
                    """
                SELECT version, body, fingerprint, created_by, created_at FROM grading_policies
                WHERE course_id = :c AND (CAST(:before AS int) IS NULL OR version < :before)
                ORDER BY version DESC LIMIT :lim
                """
                ),
                {"c": ref.id, "before": before if isinstance(before, int) else None, "lim": limit + 1},
            )
        )
        .mappings()
        .all()
    )
    page = page_of(list(rows), limit, lambda r: r["version"])
    return Page([_version_view(r) for r in page.items], page.next_cursor)


async def run_recompute(sessionmaker: async_sessionmaker[AsyncSession], recompute_id: int) -> str:
    """Worker side: recompute a course under one version in chunks, then serve it (all at once).

    Claimed with a conditional update, so a job delivered twice runs once.
    """
    async with sessionmaker() as session:
        claimed = (
            await session.execute(
                text(
                    """
                    UPDATE grade_recomputes SET status = 'running', started_at = :now, message = 'starting'
                    WHERE id = :id AND status = 'queued' RETURNING course_id, policy_version
                    """
                ),
                {"id": recompute_id, "now": clock.now()},
            )
        ).first()
        await session.commit()
    if claimed is None:
        return "not queued"
    course_id, version = claimed
    try:
        return await _recompute(sessionmaker, recompute_id, course_id, version)
    except Exception as exc:
        async with sessionmaker() as session:
            await _finish(session, recompute_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise


async def _recompute(
    sessionmaker: async_sessionmaker[AsyncSession], recompute_id: int, course_id: int, version: int
) -> str:
    async with sessionmaker() as session:
        policy = await grades.course_policy(session, course_id, version)
        total = await session.scalar(text("SELECT count(*) FROM enrollments WHERE course_id = :c"), {"c": course_id})
    done, after = 0, 0
    while True:
        async with sessionmaker() as session:
            # FOR SHARE: a score write for one of these learners either commits first or waits.
            ids = (
                await session.scalars(
                    text(
                        """
                        SELECT id FROM enrollments WHERE course_id = :c AND id > :after
                        ORDER BY id LIMIT :n FOR SHARE
                        """
                    ),
                    {"c": course_id, "after": after, "n": grades.CHUNK},
                )
            ).all()
            if not ids:
                break
            await grades.compute_and_store(session, course_id, version, policy, np.array(ids, dtype=np.int64))
            done += len(ids)
            after = ids[-1]
            await session.execute(
                text("UPDATE grade_recomputes SET progress = :p, message = :m WHERE id = :id"),
                {
                    "id": recompute_id,
                    "p": min(99, done * 100 // max(total or 1, 1)),
                    "m": f"{done} of {total} learners",
                },
            )
            await session.commit()
    async with sessionmaker() as session:
        active = await session.scalar(
            text("SELECT policy_version FROM courses WHERE id = :c FOR NO KEY UPDATE"), {"c": course_id}
        )
        if active != version:  # a newer policy arrived; its own recompute will switch
            await session.execute(
                text("DELETE FROM course_grades WHERE course_id = :c AND policy_version = :v"),
                {"c": course_id, "v": version},
            )
            await _finish(session, recompute_id, "superseded", message=f"version {active} replaced it")
            return "superseded"
        await session.execute(
            text("UPDATE courses SET grades_version = :v WHERE id = :c"), {"c": course_id, "v": version}
        )
        await session.execute(
            text("DELETE FROM course_grades WHERE course_id = :c AND policy_version <> :v"),
            {"c": course_id, "v": version},
        )
        await _finish(session, recompute_id, "succeeded", message=f"{done} learners graded")
    return "succeeded"


async def _finish(
    session: AsyncSession, recompute_id: int, status: str, message: str | None = None, error: str | None = None
) -> None:
    await session.execute(
        text(
            """
            UPDATE grade_recomputes SET status = CAST(:s AS text),
              progress = CASE WHEN CAST(:s AS text) = 'succeeded' THEN 100 ELSE progress END,
              message = coalesce(CAST(:m AS text), message), error = :e, finished_at = :now WHERE id = :id
            """
        ),
        {"id": recompute_id, "s": status, "m": message, "e": error, "now": clock.now()},
    )
    await session.commit()


async def preview(session: AsyncSession, ref: CourseRef, rules: PolicyRules) -> dict[str, Any]:
    """A draft policy on the course's real scores, nothing saved: distributions before and after,
    and the learners whose letter changes."""
    policy = grades.with_catalogue(await grades.catalogue(session, ref.id), rules, pointer="")
    await grades.bring_current(session, ref.id)
    stored = {
        r[0]: (r[1], r[2], r[3])
        for r in await session.execute(
            text(
                """
                SELECT e.id, e.external_id, g.final_grade, g.final_percent FROM enrollments e
                JOIN courses c ON c.id = e.course_id
                LEFT JOIN course_grades g ON g.enrollment_id = e.id AND g.policy_version = c.grades_version
                WHERE e.course_id = :c ORDER BY e.id
                """
            ),
            {"c": ref.id},
        )
    }
    ids = np.array(sorted(stored), dtype=np.int64)
    after: dict[int, tuple[str | None, float | None]] = {}
    for start in range(0, len(ids), grades.CHUNK):
        chunk = ids[start : start + grades.CHUNK]
        sheet = await grades.load_sheet(session, ref.id, policy, chunk)
        for eid, result in zip(chunk.tolist(), engine.PRESETS[policy.preset](policy, sheet), strict=True):
            after[eid] = (result.final.grade, result.final.percent)
    changes = [
        {
            "learner": stored[e][0],
            "from": stored[e][1],
            "to": after[e][0],
            "percent_from": _num(stored[e][2]),
            "percent_to": after[e][1],
        }
        for e in ids.tolist()
        if stored[e][1] != after[e][0]
    ]
    return {
        "learners": len(ids),
        "before": _distribution([stored[e][1] for e in stored], [_num(stored[e][2]) for e in stored]),
        "after": _distribution([a[0] for a in after.values()], [a[1] for a in after.values()]),
        "changed": changes[:1000],
        "changed_count": len(changes),
    }


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


def _distribution(letters: list[str | None], percents: list[float | None]) -> dict[str, Any]:
    values = np.array([p for p in percents if p is not None], dtype=np.float64)
    histogram = np.histogram(np.clip(values, 0, 100), bins=10, range=(0, 100))[0] if values.size else np.zeros(10)
    return {
        "letters": dict(Counter(letter or "none" for letter in letters)),
        "histogram": {"bins": [f"{10 * i}-{10 * i + 10}" for i in range(10)], "counts": [int(c) for c in histogram]},
        "mean": float(values.mean()) if values.size else None,
    }


def _json(value: Any) -> str:
    return jsonutil.dumps(value)
