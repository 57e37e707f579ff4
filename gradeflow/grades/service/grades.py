"""Stored course grades: computing them from the database, keeping them current, reading them.

Grades are computed in chunks of learners: their scores come out with COPY into polars and numpy,
go through the grading engine, and go back with one multi-row upsert. Score writes refresh the
grades of the learners they touch in the same transaction; a policy change recomputes the course
in a worker job under the new version while the old version's grades stay served.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import polars as pl
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.service.access import CourseRef
from gradeflow.core import clock
from gradeflow.core.errors import NotFound
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.db.copy import copy_frame
from gradeflow.grading import engine
from gradeflow.grading.policy import Policy, PolicyRules
from gradeflow.grading.results import LearnerResult, many_objects
from gradeflow.grading.sheet import EXCUSED, GRADED, UNGRADED, Sheet
from gradeflow.notify import events
from gradeflow.publishing.service import visibility as published

CHUNK = 20_000


# Policy versions never change, and the catalogue is keyed by its stamp (count and last change of the
# course's assessments), so cached entries can never disagree between processes.
_POLICIES: OrderedDict[tuple[int, int, str], Policy] = OrderedDict()

_STAMP = "(SELECT count(*) || '@' || coalesce(max(updated_at)::text, '') FROM assessments WHERE course_id = :c)"


async def course_policy(session: AsyncSession, course_id: int, version: int, stamp: str | None = None) -> Policy:
    """The stored policy `version` with the course's assessments as its catalogue (course order)."""
    if stamp is None:
        stamp = await session.scalar(text(f"SELECT {_STAMP}"), {"c": course_id})
    key = (course_id, version, stamp or "")
    if key in _POLICIES:
        _POLICIES.move_to_end(key)
        return _POLICIES[key]
    body = await session.scalar(
        text("SELECT body FROM grading_policies WHERE course_id = :c AND version = :v"), {"c": course_id, "v": version}
    )
    if body is None:
        raise NotFound(f"Policy version {version} not found.")
    policy = with_catalogue(await catalogue(session, course_id), PolicyRules.model_validate(body), pointer="")
    _POLICIES[key] = policy
    if len(_POLICIES) > 256:
        _POLICIES.popitem(last=False)
    return policy


async def catalogue(session: AsyncSession, course_id: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT external_id, category, points_possible, title FROM assessments"
            " WHERE course_id = :c ORDER BY position, id"
        ),
        {"c": course_id},
    )
    return [{"id": r[0], "category": r[1], "possible": float(r[2]), "label": r[3]} for r in rows]


def with_catalogue(assessments: list[dict[str, Any]], rules: PolicyRules, pointer: str) -> Policy:
    return Policy.model_validate({**rules.model_dump(), "assessments": assessments}, context={"pointer": pointer})


# Attempt statuses as codes. UNCONFIRMED: graded, but the assessment has manual items and its results
# are not confirmed yet, so the result is not final (it does not count as graded). EXCUSED_STATUS: the
# learner is excused (the attempt's flag), whatever its status and scores.
STATUSES = ("to_be_taken", "in_progress", "submitted", "pending_grading", "graded", "cancelled")
STATUS = {s: i for i, s in enumerate(STATUSES)}
GRADED_STATUS, CANCELLED_STATUS, UNCONFIRMED = STATUS["graded"], STATUS["cancelled"], len(STATUSES)
EXCUSED_STATUS = UNCONFIRMED + 1
WAITING = (STATUS["submitted"], STATUS["pending_grading"], UNCONFIRMED)


def status_name(code: int) -> str:
    return STATUSES[code] if code < len(STATUSES) else "unconfirmed" if code == UNCONFIRMED else "excused"


_COURSE_ASSESSMENTS = """
    SELECT a.id, a.external_id, EXISTS (SELECT 1 FROM items i WHERE i.assessment_id = a.id AND i.marking = 'manual'),
           EXISTS (SELECT 1 FROM attempts t WHERE t.assessment_id = a.id AND t.excused)
    FROM assessments a WHERE a.course_id = :c
"""
# Plain columns of one table, numbers as PostgreSQL's own text: the cheapest rows it can send (casts to
# float8, a join to the assessments and the confirmation CASE made the read 2.5x slower; a sixth column
# for the confirmation, 10 % more). The course's assessments are applied in numpy; the unconfirmed
# results of manual assessments, and the excused results, come from narrow reads of their own, only
# for the assessments that have any (the excused ones by their partial index).
_ATTEMPTS = """
    SELECT t.enrollment_id, t.assessment_id, t.status, t.earned, t.possible FROM attempts t WHERE {learners}
"""
_UNCONFIRMED = """
    SELECT t.enrollment_id, t.assessment_id FROM attempts t
    WHERE {learners} AND t.assessment_id = ANY(CAST({manual} AS bigint[])) AND t.status = 'graded'
      AND t.confirmed_at IS NULL
"""
_EXCUSED = """
    SELECT t.enrollment_id, t.assessment_id FROM attempts t
    WHERE {learners} AND t.assessment_id = ANY(CAST({excused} AS bigint[])) AND t.excused
"""
_LEARNER_LIST = "t.enrollment_id = ANY(CAST($1 AS bigint[]))"
# Consecutive learners (a report's or a recompute's chunk) are read by one index range; rows of other
# courses' learners in the range are dropped in numpy.
_LEARNER_RANGE = "t.enrollment_id BETWEEN $1 AND $2"
_ATTEMPT_SCHEMA = {
    "enrollment": pl.Int64,
    "assessment": pl.Int64,
    "status": pl.String,
    "earned": pl.Float64,
    "possible": pl.Float64,
}
_PAIR_SCHEMA = {"enrollment": pl.Int64, "assessment": pl.Int64}

# Per attempt row: the learner's position in the ids asked for, the assessment's column, status code,
# earned, possible.
AttemptColumns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


async def load_sheet(session: AsyncSession, course_id: int, policy: Policy, enrollment_ids: np.ndarray) -> Sheet:
    """The chunk's attempts as dense arrays (COPY out, parsed by polars; a plain query for a few)."""
    column_of = {a.id: j for j, a in enumerate(policy.assessments)}
    return sheet_of(policy, enrollment_ids, *await attempt_columns(session, course_id, enrollment_ids, column_of))


async def attempt_columns(
    session: AsyncSession, course_id: int, enrollment_ids: np.ndarray, column_of: dict[str, int]
) -> AttemptColumns:
    """These learners' attempts (ids ascending), column-wise; `column_of` maps assessment external ids
    to columns (others get -1)."""
    assessments = (await session.execute(text(_COURSE_ASSESSMENTS), {"c": course_id})).all()
    manual = [a for a, _, m, _ in assessments if m]
    excused = [a for a, _, _, x in assessments if x]
    unconfirmed = flagged = None
    if len(enrollment_ids) <= 100:
        learners = _LEARNER_LIST.replace("$1", ":ids")
        params = {"ids": enrollment_ids.tolist(), "manual": manual, "excused": excused}
        frame = await _plain(session, _ATTEMPTS.format(learners=learners), params, _ATTEMPT_SCHEMA)
        if manual:
            sql = _UNCONFIRMED.format(learners=learners, manual=":manual")
            unconfirmed = await _plain(session, sql, params, _PAIR_SCHEMA)
        if excused:
            sql = _EXCUSED.format(learners=learners, excused=":excused")
            flagged = await _plain(session, sql, params, _PAIR_SCHEMA)
        return _attempt_columns(frame, unconfirmed, flagged, enrollment_ids, assessments, column_of)
    if 2 * len(enrollment_ids) >= enrollment_ids[-1] - enrollment_ids[0]:
        learners, args = _LEARNER_RANGE, [int(enrollment_ids[0]), int(enrollment_ids[-1])]
    else:
        learners, args = _LEARNER_LIST, [enrollment_ids.tolist()]
    frame = await copy_frame(session, _ATTEMPTS.format(learners=learners), args, _ATTEMPT_SCHEMA)
    if manual:
        sql = _UNCONFIRMED.format(learners=learners, manual=f"${len(args) + 1}")
        unconfirmed = await copy_frame(session, sql, [*args, manual], _PAIR_SCHEMA)
    if excused:
        sql = _EXCUSED.format(learners=learners, excused=f"${len(args) + 1}")
        flagged = await copy_frame(session, sql, [*args, excused], _PAIR_SCHEMA)
    # numpy and polars work on whole columns: off the event loop, which keeps receiving other reads
    return await asyncio.to_thread(
        _attempt_columns, frame, unconfirmed, flagged, enrollment_ids, assessments, column_of
    )


async def _plain(session: AsyncSession, sql: str, params: dict[str, Any], schema: dict[str, Any]) -> pl.DataFrame:
    """A few learners' rows by a plain query (cheaper than a COPY for a handful), column-wise."""
    rows = (await session.execute(text(sql), params)).all()
    return pl.DataFrame(  # column-wise: building a frame row by row costs more than the query
        dict(zip(schema, map(list, zip(*rows, strict=True)), strict=True)) if rows else None,
        schema=schema,
        strict=False,
    )


def _attempt_columns(
    frame: pl.DataFrame,
    unconfirmed: pl.DataFrame | None,
    excused: pl.DataFrame | None,
    enrollment_ids: np.ndarray,
    assessments: Sequence[Any],
    column_of: dict[str, int],
) -> AttemptColumns:
    to_column = {a: column_of.get(x, -1) for a, x, *_ in assessments}

    def columns(f: pl.DataFrame) -> np.ndarray:
        return f["assessment"].replace_strict(to_column, default=-1, return_dtype=pl.Int64).to_numpy()

    at, mine = _positions(enrollment_ids, frame["enrollment"].to_numpy())
    cols = columns(frame)

    def among(pairs: pl.DataFrame) -> np.ndarray:
        """Per attempt row: whether it is one of these (learner, assessment) pairs."""
        p_at, p_mine = _positions(enrollment_ids, pairs["enrollment"].to_numpy())
        # one more column than `column_of` has, where the assessments without a column (-1) land
        grid = np.zeros((len(enrollment_ids), max(column_of.values(), default=-1) + 2), dtype=bool)
        grid[p_at[p_mine], columns(pairs)[p_mine]] = True
        found: np.ndarray = grid[at, cols]
        return found

    status = frame["status"].replace_strict(STATUS, return_dtype=pl.Int8).to_numpy()
    if unconfirmed is not None and unconfirmed.height:
        status = np.where((status == GRADED_STATUS) & among(unconfirmed), UNCONFIRMED, status).astype(np.int8)
    if excused is not None and excused.height:
        status = np.where(among(excused), EXCUSED_STATUS, status).astype(np.int8)
    keep = mine & (cols >= 0)
    return (
        at[keep],
        cols[keep],
        status[keep],
        frame["earned"].to_numpy()[keep],
        frame["possible"].to_numpy()[keep],
    )


def _positions(enrollment_ids: np.ndarray, enrollment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each attempt row's learner position in `enrollment_ids` (ascending), and whether it is one of
    them. Consecutive ids (a course's learners, usually) need a subtraction, not a search."""
    if not len(enrollment_ids):
        return np.zeros(len(enrollment), np.int64), np.zeros(len(enrollment), bool)
    first, n = int(enrollment_ids[0]), len(enrollment_ids)
    if int(enrollment_ids[-1]) - first == n - 1:
        at = enrollment - first
        mine = (at >= 0) & (at < n)
        return np.clip(at, 0, n - 1), mine
    at = np.minimum(np.searchsorted(enrollment_ids, enrollment), n - 1)
    return at, enrollment_ids[at] == enrollment


def sheet_of(
    policy: Policy,
    enrollment_ids: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    status: np.ndarray,
    e: np.ndarray,
    p: np.ndarray,
) -> Sheet:
    """Dense learner x assessment arrays from attempt rows (given column-wise: learner position,
    assessment column, status code, earned, possible). An excused result is EXCUSED for every preset;
    a cancelled attempt is left out, so it counts as not attempted, as a missing row does."""
    ids = [a.id for a in policy.assessments]
    n_l, n_a = len(enrollment_ids), len(ids)
    catalogue_possible = np.array([a.possible for a in policy.assessments], dtype=np.float64)
    earned = np.full((n_l, n_a), np.nan)
    possible = np.broadcast_to(catalogue_possible, (n_l, n_a)).copy()
    state = np.zeros((n_l, n_a), dtype=np.int8)
    cancelled = status == CANCELLED_STATUS
    if cancelled.any():
        rows, cols, status, e, p = (x[~cancelled] for x in (rows, cols, status, e, p))
    if len(rows):
        graded = (status == GRADED_STATUS) & ~np.isnan(e)
        state[rows, cols] = np.where(graded, GRADED, np.where(status == EXCUSED_STATUS, EXCUSED, UNGRADED))
        earned[rows, cols] = np.where(graded, e, np.nan)
        possible[rows, cols] = np.where(np.isnan(p), possible[rows, cols], p)
    return Sheet(
        learner_ids=[str(i) for i in enrollment_ids.tolist()],
        assessment_ids=ids,
        categories=[a.category for a in policy.assessments],
        omit=np.array([a.omit_from_final for a in policy.assessments], dtype=bool),
        earned=earned,
        possible=possible,
        state=state,
    )


def explanation(policy: Policy, result: LearnerResult) -> dict[str, Any]:
    """What is stored per learner to explain the grade: per category and version what counted, what
    was dropped and the weight applied. The rules come from the policy version when it is read."""
    weights = {c.name: c.weight for c in policy.categories}
    out: dict[str, Any] = {}
    for version in ("current", "final"):
        cats = [(name, cur if version == "current" else fin) for name, cur, fin in result.categories]
        relevant = sum(weights[n] for n, c in cats if (c.possible or 0) > 0)
        out[version] = [
            {"name": n, "applied_weight": _applied(policy, weights[n], relevant, (c.possible or 0) > 0), **c.as_dict()}
            for n, c in cats
        ]
    return out


def _applied(policy: Policy, weight: float, relevant: float, counts: bool) -> float | None:
    if policy.weighting == "points":
        return None
    if policy.preset == "openedx":
        return weight  # Open edX does not normalise weights
    if not counts or not relevant:
        return 0.0
    if policy.preset == "canvas" and relevant >= 1:
        return weight  # Canvas scales weights up to 100 % but never down
    return weight / relevant


def explained(stored: dict[str, Any], rules: dict[str, Any], version: int) -> dict[str, Any]:
    """The stored explanation joined with the policy version's rules, as the API shows it."""
    by_name = {c["name"]: c for c in rules.get("categories", [])}
    out: dict[str, Any] = {
        "policy_version": version,
        "preset": rules.get("preset"),
        "weighting": rules.get("weighting"),
    }
    for version_name in ("current", "final"):
        out[version_name] = [
            {
                **entry,
                "weight": by_name.get(entry["name"], {}).get("weight"),
                "rules": {
                    k: by_name.get(entry["name"], {}).get(k)
                    for k in ("drop_lowest", "drop_highest", "min_count", "never_drop")
                },
            }
            for entry in stored.get(version_name, [])
        ]
    return out


_UPSERT = text(
    """
    INSERT INTO course_grades AS g (enrollment_id, policy_version, course_id, current_percent, current_grade,
        current_passed, final_percent, final_grade, final_passed, explanation, computed_at)
    SELECT u.e, :version, :course, u.cp, u.cg, u.cpass, u.fp, u.fg, u.fpass, u.x::jsonb, :now
    FROM unnest(CAST(:e AS bigint[]), CAST(:cp AS numeric[]), CAST(:cg AS text[]), CAST(:cpass AS bool[]),
                CAST(:fp AS numeric[]), CAST(:fg AS text[]), CAST(:fpass AS bool[]), CAST(:x AS text[]))
         AS u(e, cp, cg, cpass, fp, fg, fpass, x)
    ON CONFLICT (enrollment_id, policy_version) DO UPDATE SET
      current_percent = excluded.current_percent, current_grade = excluded.current_grade,
      current_passed = excluded.current_passed, final_percent = excluded.final_percent,
      final_grade = excluded.final_grade, final_passed = excluded.final_passed,
      explanation = excluded.explanation, computed_at = excluded.computed_at
    """
)


async def compute_and_store(
    session: AsyncSession,
    course_id: int,
    version: int,
    policy: Policy,
    enrollment_ids: np.ndarray,
    announce: bool = False,
) -> int:
    """Grade these learners (sorted ids) under `policy` and upsert their rows for `version`; with
    `announce` (the served version), a `grade.changed` event for each learner whose grade changed."""
    if len(enrollment_ids) == 0:
        return 0
    sheet = await load_sheet(session, course_id, policy, enrollment_ids)
    results = engine.PRESETS[policy.preset](policy, sheet)
    if announce:
        await _announce_changes(session, course_id, version, enrollment_ids, results)
    with many_objects():
        rows = {
            "version": version,
            "course": course_id,
            "now": clock.now(),
            "e": enrollment_ids.tolist(),
            "cp": [_dec(r.current.percent) for r in results],
            "cg": [r.current.grade for r in results],
            "cpass": [r.current.passed for r in results],
            "fp": [_dec(r.final.percent) for r in results],
            "fg": [r.final.grade for r in results],
            "fpass": [r.final.passed for r in results],
            "x": [orjson.dumps(explanation(policy, r)).decode() for r in results],
        }
    await session.execute(_UPSERT, rows)
    return len(results)


async def _announce_changes(
    session: AsyncSession, course_id: int, version: int, enrollment_ids: np.ndarray, results: list[LearnerResult]
) -> None:
    before = {
        r[0]: r[1:]
        for r in await session.execute(
            text(
                """
                SELECT e.id, e.external_id, g.final_percent, g.final_grade, g.final_passed
                FROM enrollments e LEFT JOIN course_grades g ON g.enrollment_id = e.id AND g.policy_version = :v
                WHERE e.id = ANY(:ids)
                """
            ),
            {"v": version, "ids": enrollment_ids.tolist()},
        )
    }
    changes = []
    for eid, result in zip(enrollment_ids.tolist(), results, strict=True):
        learner, old_percent, old_grade, old_passed = before[eid]
        new_percent = result.final.percent
        old = None if old_percent is None else float(old_percent)
        if old == new_percent and old_grade == result.final.grade:
            continue
        changes.append(
            {
                "learner": learner,
                "policy_version": version,
                "old": None if old_percent is None else {"percent": old, "grade": old_grade, "passed": old_passed},
                "new": {"percent": new_percent, "grade": result.final.grade, "passed": result.final.passed},
            }
        )
    if changes:
        course = (
            await session.execute(
                text("SELECT organization_id, external_id FROM courses WHERE id = :c"), {"c": course_id}
            )
        ).one()
        await events.emit(session, course[0], "grade.changed", *({"course": course[1], **c} for c in changes))


def _dec(x: float | None) -> Decimal | None:
    return None if x is None else Decimal(repr(x))


async def refresh_learners(session: AsyncSession, course_id: int, enrollment_ids: list[int]) -> None:
    """Recompute these learners' grades inside the caller's transaction (after their scores changed).

    Both the served version and a newer one being recomputed are kept current. The learners' rows
    are locked first, so a concurrent recompute chunk either waits for this commit or is overwritten
    by it.
    """
    if not enrollment_ids:
        return
    state = (
        await session.execute(
            text(f"SELECT policy_version, grades_version, {_STAMP} FROM courses WHERE id = :c"),  # noqa: S608
            {"c": course_id},
        )
    ).first()
    if state is None:  # the course is gone
        return
    wanted = sorted({v for v in state[:2] if v is not None})
    if not wanted:
        return
    ids = np.array(sorted(set(enrollment_ids)), dtype=np.int64)
    await session.execute(
        text("SELECT 1 FROM enrollments WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE"), {"ids": ids.tolist()}
    )
    for version in wanted:
        policy = await course_policy(session, course_id, version, state[2])
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            await compute_and_store(session, course_id, version, policy, chunk, announce=version == state[1])


# Single score writes only mark their learner stale (one row in the write's transaction) and ask the
# worker to refresh the course a moment later (services/followup.py), so a burst of writes costs one
# vectorised refresh. Every grade read first refreshes what is stale, so nobody reads a grade older
# than its scores.
MARK_STALE_FROM_SCRATCH = text(
    """
    INSERT INTO stale_grades (enrollment_id, course_id)
    SELECT DISTINCT enrollment_id, CAST(:c AS bigint) FROM score_in ON CONFLICT DO NOTHING
    """
)

_MARK_STALE = text(
    """
    INSERT INTO stale_grades (enrollment_id, course_id)
    SELECT e, CAST(:c AS bigint) FROM unnest(CAST(:e AS bigint[])) AS e ON CONFLICT DO NOTHING
    """
)


async def mark_stale(session: AsyncSession, course_id: int, enrollment_ids: list[int]) -> None:
    """Mark learners' stored grades stale in the caller's transaction (refreshed by the follow-up or
    the next grade read), as a single score write does."""
    await session.execute(_MARK_STALE, {"c": course_id, "e": enrollment_ids})


# Locks are taken in enrollment order, so concurrent refreshers queue up rather than deadlock; a write
# that marks a learner while the refresher holds the mark waits, and its mark outlives this refresh.
_TAKE_STALE = text(
    """
    DELETE FROM stale_grades WHERE enrollment_id IN (
      SELECT enrollment_id FROM stale_grades WHERE course_id = :c ORDER BY enrollment_id LIMIT :lim FOR UPDATE)
    RETURNING enrollment_id
    """
)


async def refresh_stale(session: AsyncSession, course_id: int, limit: int = CHUNK) -> int:
    """Refresh up to `limit` stale learners of the course in the caller's transaction; how many."""
    ids = list((await session.scalars(_TAKE_STALE, {"c": course_id, "lim": limit})).all())
    await refresh_learners(session, course_id, ids)
    return len(ids)


async def bring_current(session: AsyncSession, course_id: int) -> int:
    """Refresh every stale learner of the course, committing chunk by chunk; how many."""
    total = 0
    while n := await refresh_stale(session, course_id):
        await session.commit()
        total += n
    return total


# --- reads ----------------------------------------------------------------------------------------

# With the course grade as published to the learner (`pg`), if it is.
_GRADE_COLUMNS = """
    pg.published_at, (pg.percent IS DISTINCT FROM g.final_percent OR pg.grade IS DISTINCT FROM g.final_grade)
      AS changed_since_published,
    e.external_id AS learner, g.policy_version, g.current_percent, g.current_grade, g.current_passed,
    g.final_percent, g.final_grade, g.final_passed, g.computed_at
"""


def _grade_view(row: Any, with_explanation: bool = False) -> dict[str, Any]:
    view = {
        "learner": row["learner"],
        "policy_version": row["policy_version"],
        "current": {"percent": row["current_percent"], "grade": row["current_grade"], "passed": row["current_passed"]},
        "final": {"percent": row["final_percent"], "grade": row["final_grade"], "passed": row["final_passed"]},
        "computed_at": row["computed_at"],
        "publication": published.state(row["published_at"], row["changed_since_published"]),
    }
    if with_explanation:
        view["explanation"] = explained(row["explanation"], row["rules"], row["policy_version"])
    return view


async def list_grades(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[dict[str, Any]]:
    """Stored grades of the served version, in enrollment order."""
    await bring_current(session, ref.id)
    rows = (
        (
            await session.execute(
                text(
                    f"""
                SELECT g.enrollment_id, {_GRADE_COLUMNS}
                FROM courses c
                JOIN course_grades g ON g.course_id = c.id AND g.policy_version = c.grades_version
                JOIN enrollments e ON e.id = g.enrollment_id
                LEFT JOIN published_grades pg ON pg.enrollment_id = g.enrollment_id
                WHERE c.id = :c AND g.enrollment_id > :after
                ORDER BY g.enrollment_id LIMIT :lim
                """  # noqa: S608  (constant columns, no input)
                ),
                {"c": ref.id, "after": last_id_after(cursor), "lim": limit + 1},
            )
        )
        .mappings()
        .all()
    )
    page = page_of(list(rows), limit, lambda r: r["enrollment_id"])
    return Page([_grade_view(r) for r in page.items], page.next_cursor)


async def learner_grade(session: AsyncSession, ref: CourseRef, learner: str) -> dict[str, Any]:
    await bring_current(session, ref.id)
    row = (
        (
            await session.execute(
                text(
                    f"""
                SELECT {_GRADE_COLUMNS}, g.explanation, p.body AS rules
                FROM enrollments e
                JOIN courses c ON c.id = e.course_id
                JOIN course_grades g ON g.enrollment_id = e.id AND g.policy_version = c.grades_version
                LEFT JOIN published_grades pg ON pg.enrollment_id = e.id
                JOIN grading_policies p ON p.course_id = c.id AND p.version = g.policy_version
                WHERE e.course_id = :c AND e.external_id = :l
                """  # noqa: S608
                ),
                {"c": ref.id, "l": learner},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"No stored grade for learner {learner!r} (not enrolled, or the course has no policy yet).")
    return _grade_view(row, with_explanation=True)
