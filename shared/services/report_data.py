"""What each report holds, read in chunks of learners so memory does not grow with the course.

A report reads inside one read-only REPEATABLE READ transaction, so its file is one consistent
picture even while scores keep changing. CSV reports come out as polars frames (text cells ready to
write); the XLSX and PDF reports as plain rows and per-learner records.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import polars as pl
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.copy import copy_frame
from shared.grading.policy import PolicyRules
from shared.services import grades

CHUNK = 20_000
# Chunks read by two sessions at once are smaller, so the worker's peak memory stays under 500 MB at
# 1,000,000 learners (20,000 a chunk peaked at 491-512 MB; 15,000 at 462-527 MB once chunks were
# parsed in threads).
PARALLEL_CHUNK = 12_000
NOT_ATTEMPTED = "Not Attempted"
NOT_AVAILABLE = "Not Available"
EXCUSED_TEXT = "Excused"
# Cell states of a learner x assessment result.
EMPTY, FINAL, UNAVAILABLE, CANCELLED, EXCUSED = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class ItemInfo:
    id: int
    external_id: str
    number: str | None
    title: str | None
    points: float
    marking: str
    revision: int

    @property
    def label(self) -> str:
        return self.title or self.number or self.external_id


@dataclass(frozen=True)
class AssessmentInfo:
    id: int
    external_id: str
    title: str
    category: str
    points: float
    items: list[ItemInfo]
    marking: dict[str, Any] | None


@dataclass
class CourseInfo:
    id: int
    external_id: str
    title: str
    assessments: list[AssessmentInfo]
    rules: PolicyRules | None
    served_version: int | None = None  # the policy version whose stored grades are served
    columns: list[tuple[str, AssessmentInfo]] = field(default_factory=list)  # report label, assessment

    def assessment(self, external_id: str) -> AssessmentInfo | None:
        return next((a for a in self.assessments if a.external_id == external_id), None)

    def letter(self, fraction: float | None) -> str | None:
        """The policy's letter for a fraction (0.85), if the course has cutoffs."""
        if fraction is None or self.rules is None:
            return None
        for cutoff in sorted(self.rules.cutoffs, key=lambda c: -c.min):
            if fraction >= cutoff.min:
                return cutoff.grade
        return None


_SNAPSHOT_SETTINGS = ("enable_seqscan = off", "max_parallel_workers_per_gather = 0", "jit = off")


@dataclass(frozen=True)
class Snapshot:
    """Sessions that all read one read-only REPEATABLE READ snapshot (the first exports it, the others
    import it), so a report can read several chunks at once and still show one consistent picture."""

    sessions: tuple[AsyncSession, ...]

    @property
    def session(self) -> AsyncSession:
        return self.sessions[0]


@contextlib.asynccontextmanager
async def snapshot(sessionmaker: async_sessionmaker[AsyncSession], readers: int = 1) -> AsyncIterator[Snapshot]:
    """`readers` sessions on one snapshot for the whole report.

    Every query of a report reads one chunk of learners by an id range, a few thousand pages. In a
    large course (1M learners) the planner answers that range with a scan of every attempt (measured:
    2 s a chunk instead of 0.3 s), so the report's transactions do without sequential scans, parallel
    workers (the report reads in parallel itself) and JIT (compiling costs more than it saves)."""
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(sessionmaker()) for _ in range(readers)]
        exported = None
        for session in sessions:
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            if exported is None:
                exported = await session.scalar(text("SELECT pg_export_snapshot()"))
            else:
                await session.execute(text(f"SET TRANSACTION SNAPSHOT '{exported}'"))
            for setting in _SNAPSHOT_SETTINGS:
                await session.execute(text(f"SET LOCAL {setting}"))
        yield Snapshot(tuple(sessions))


async def count_learners(session: AsyncSession, course_id: int) -> int:
    return int(
        await session.scalar(text("SELECT count(*) FROM enrollments WHERE course_id = :c"), {"c": course_id}) or 0
    )


async def load_course(session: AsyncSession, course_id: int) -> CourseInfo:
    course = (
        await session.execute(
            text(
                """
                SELECT c.external_id, c.title, p.body, c.grades_version FROM courses c
                LEFT JOIN grading_policies p ON p.course_id = c.id AND p.version = c.grades_version
                WHERE c.id = :c
                """
            ),
            {"c": course_id},
        )
    ).one()
    items: dict[int, list[ItemInfo]] = {}
    for r in await session.execute(
        text(
            """
            SELECT i.assessment_id, i.id, i.external_id, i.number, i.title, i.points_possible, i.marking, i.revision
            FROM items i JOIN assessments a ON a.id = i.assessment_id WHERE a.course_id = :c
            ORDER BY i.assessment_id, i.position, i.id
            """
        ),
        {"c": course_id},
    ):
        items.setdefault(r[0], []).append(ItemInfo(r[1], r[2], r[3], r[4], float(r[5]), r[6], r[7]))
    assessments = [
        AssessmentInfo(r[0], r[1], r[2], r[3], float(r[4]), items.get(r[0], []), r[5])
        for r in await session.execute(
            text(
                "SELECT id, external_id, title, category, points_possible, marking FROM assessments"
                " WHERE course_id = :c ORDER BY position, id"
            ),
            {"c": course_id},
        )
    ]
    info = CourseInfo(
        course_id,
        course[0],
        course[1],
        assessments,
        PolicyRules.model_validate(course[2]) if course[2] else None,
        course[3],
    )
    info.columns = _labelled(assessments)
    return info


def _labelled(assessments: list[AssessmentInfo]) -> list[tuple[str, AssessmentInfo]]:
    """Open edX's grouping: by category in order of first appearance, "{category} {i}" numbering, or
    just "{category}" for a category with one assessment."""
    by_category: dict[str, list[AssessmentInfo]] = {}
    for a in assessments:
        by_category.setdefault(a.category, []).append(a)
    out = []
    for category, members in by_category.items():
        if len(members) == 1:
            out.append((category, members[0]))
        else:
            out += [(f"{category} {i}", a) for i, a in enumerate(members, start=1)]
    return out


@dataclass(frozen=True)
class Who:
    """Which learners a report covers: everyone, a group, a cohort or a list."""

    group: str | None = None
    cohort: str | None = None
    learners: list[str] | None = None

    def sql(self) -> tuple[str, list[Any]]:
        """The condition on enrollment `e` (its value is the 4th COPY argument) and that argument."""
        if self.learners is not None:
            return "e.external_id = ANY(CAST($4 AS text[]))", [self.learners]
        if self.group is not None:
            return "CAST($4 AS text) = ANY(e.groups)", [self.group]
        if self.cohort is not None:
            return "e.cohort = $4", [self.cohort]
        return "TRUE", []


EVERYONE = Who()
Bounds = tuple[int, int]  # the first and the last learner id of a chunk


async def chunk_bounds(session: AsyncSession, course_id: int, who: Who = EVERYONE, size: int = CHUNK) -> list[Bounds]:
    """The course's learners (those `who` covers) cut into chunks of `size`, ascending: one pass over
    their ids, so the chunks can then be read in any order, several at once."""
    condition, extra = who.sql()
    rows = await session.execute(
        text(_BOUNDS.format(condition=condition.replace("$4", ":x"))),
        {"c": course_id, "n": size, **({"x": extra[0]} if extra else {})},
    )
    return [(int(r[0]), int(r[1])) for r in rows]


_BOUNDS = """
    SELECT min(id), max(id) FROM (
      SELECT e.id, (row_number() OVER (ORDER BY e.id) - 1) / :n AS k
      FROM enrollments e WHERE e.course_id = :c AND {condition}) x
    GROUP BY k ORDER BY k
"""


async def learners_in(session: AsyncSession, course_id: int, bounds: Bounds, who: Who = EVERYONE) -> pl.DataFrame:
    """One chunk of learners (ascending ids), each with its stored final course grade; one COPY."""
    condition, extra = who.sql()
    return await copy_frame(
        session, _LEARNERS.format(condition=condition), [course_id, *bounds, *extra], _LEARNER_SCHEMA
    )


async def learner_chunks(session: AsyncSession, course_id: int, who: Who = EVERYONE) -> AsyncIterator[pl.DataFrame]:
    """The course's learners (those `who` covers) chunk by chunk, in ascending order."""
    for bounds in await chunk_bounds(session, course_id, who):
        yield await learners_in(session, course_id, bounds, who)


async def result_cells(session: AsyncSession, course: CourseInfo, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per learner x assessment (course order): the result as a fraction (earned / possible) and its
    state: FINAL (graded and, with manual marking, confirmed), UNAVAILABLE (waiting for grading or
    confirmation), CANCELLED, EXCUSED (whatever the attempt's status), EMPTY (no attempt, or not yet
    taken)."""
    column_of = {a.external_id: j for j, a in enumerate(course.assessments)}
    rows, cols, status, earned, possible = await grades.attempt_columns(session, course.id, ids, column_of)
    n_l, n_a = len(ids), len(course.assessments)
    value = np.full((n_l, n_a), np.nan)
    state = np.zeros((n_l, n_a), dtype=np.int8)
    final = (status == grades.GRADED_STATUS) & ~np.isnan(earned)
    waiting = np.isin(status, grades.WAITING)
    excused = status == grades.EXCUSED_STATUS
    state[rows, cols] = np.select(
        [final, waiting, status == grades.CANCELLED_STATUS, excused], [FINAL, UNAVAILABLE, CANCELLED, EXCUSED], EMPTY
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(possible > 0, earned / possible, np.nan)
    value[rows, cols] = np.where(final, fraction, np.nan)
    state[(state == FINAL) & np.isnan(value)] = EMPTY  # zero points possible: nothing to show (as Open edX)
    return value, state


def category_averages(course: CourseInfo, value: np.ndarray, state: np.ndarray) -> dict[str, np.ndarray]:
    """Open edX's "(Avg)": the category's assessments (unscored count 0, excused left out), the policy's
    drops applied, no min-count placeholders. Categories with several assessments and a rule in the
    policy only."""
    rules = {c.name: c for c in course.rules.categories} if course.rules else {}
    out = {}
    members: dict[str, list[int]] = {}
    for j, a in enumerate(course.assessments):
        members.setdefault(a.category, []).append(j)
    for category, cols in members.items():
        if len(cols) < 2 or category not in rules:
            continue
        rule = rules[category]
        cells = state[:, cols]
        excused = cells == EXCUSED
        # Excused results sort last (NaN) and are left out: each learner has as many as they have.
        scores = np.sort(np.where(cells == FINAL, value[:, cols], np.where(excused, np.nan, 0.0)), axis=1)
        slot = np.arange(len(cols))[None, :]
        keep = (slot >= rule.drop_lowest) & (slot < (~excused).sum(axis=1, keepdims=True) - rule.drop_highest)
        count = keep.sum(axis=1)
        out[category] = np.where(count > 0, np.where(keep, scores, 0.0).sum(axis=1) / np.maximum(count, 1), 0.0)
    return out


def _cells(value: np.ndarray, state: np.ndarray, digits: int) -> pl.DataFrame:
    """Every assessment's cells at once (a column per assessment, course order): the rounded fraction
    when final, else Excused / Not Available / Not Attempted. A fraction between 0 and 1 (all of them, unless
    a result earned more than its points) is picked from the texts of every rounded fraction (an enum
    column: no number formatted per cell)."""
    scale = 10**digits
    final = state == FINAL
    steps = np.rint(np.where(final, value, 0.0) * scale)  # np.round(value, digits) is steps / scale
    if ((steps < 0) | (steps > scale))[final].any():
        return _formatted_cells(value, state, digits)
    codes = np.select(
        [final, state == EXCUSED, np.isin(state, (UNAVAILABLE, CANCELLED))], [steps, scale + 3, scale + 1], scale + 2
    ).astype(np.uint32)
    labels = _labels(digits)
    return pl.DataFrame({str(j): labels.gather(codes[:, j]) for j in range(value.shape[1])})


@functools.cache
def _labels(digits: int) -> pl.Series:
    """The texts of the fractions 0, 1/10**digits, ..., 1 as polars writes them, then Not Available,
    Not Attempted and Excused, as an enum."""
    scale = 10**digits
    fractions = pl.Series(np.arange(scale + 1) / scale).cast(pl.String)
    texts = pl.concat([fractions, pl.Series([NOT_AVAILABLE, NOT_ATTEMPTED, EXCUSED_TEXT])])
    return texts.cast(pl.Enum(texts))


def _formatted_cells(value: np.ndarray, state: np.ndarray, digits: int) -> pl.DataFrame:
    names = [str(j) for j in range(value.shape[1])]
    frame = pl.DataFrame(np.round(value, digits), schema=names).hstack(
        pl.DataFrame(state, schema=[f"s{n}" for n in names])
    )
    return frame.select(
        pl.when(pl.col(f"s{n}") == FINAL)
        .then(pl.col(n).cast(pl.String))
        .when(pl.col(f"s{n}") == EXCUSED)
        .then(pl.lit(EXCUSED_TEXT))
        .when(pl.col(f"s{n}").is_in([UNAVAILABLE, CANCELLED]))
        .then(pl.lit(NOT_AVAILABLE))
        .otherwise(pl.lit(NOT_ATTEMPTED))
        .alias(n)
        for n in names
    )


_LEARNERS = """
    SELECT e.id, e.external_id, e.email, e.username, e.full_name, e.cohort, e.team, e.track, e.status,
           g.final_percent, g.final_grade
    FROM enrollments e
    LEFT JOIN course_grades g  -- by the same id range: one merge over both indexes (a lookup a learner cost 2x)
      ON g.enrollment_id = e.id AND g.enrollment_id BETWEEN $2 AND $3
     AND g.policy_version = (SELECT c.grades_version FROM courses c WHERE c.id = $1)
    WHERE e.course_id = $1 AND e.id BETWEEN $2 AND $3 AND {condition} ORDER BY e.id
"""
_LEARNER_SCHEMA = {
    "id": pl.Int64,
    "external_id": pl.String,
    "email": pl.String,
    "username": pl.String,
    "full_name": pl.String,
    "cohort": pl.String,
    "team": pl.String,
    "track": pl.String,
    "status": pl.String,
    "final_percent": pl.Float64,
    "final_grade": pl.String,
}


async def uses(session: AsyncSession, course_id: int) -> tuple[bool, bool]:
    """Whether the course has cohorts, and teams (their report columns appear only then)."""
    row = (
        await session.execute(
            text("SELECT bool_or(cohort IS NOT NULL), bool_or(team IS NOT NULL) FROM enrollments WHERE course_id = :c"),
            {"c": course_id},
        )
    ).one()
    return bool(row[0]), bool(row[1])


def grade(frame: pl.DataFrame) -> pl.Series:
    """The stored course grade as Open edX reports it: a fraction (0.74), 0.0 when there is none."""
    return (frame["final_percent"].fill_null(0.0) / 100).round(4).cast(pl.String)


# --- the course grade report (Open edX layout) ----------------------------------------------------


async def grade_report(snap: Snapshot, course: CourseInfo) -> AsyncIterator[pl.DataFrame]:
    """Frames of the course grade report; chunks are read by all the snapshot's sessions at once
    while the one before is built."""
    cohorts, teams = await uses(snap.session, course.id)

    async def read(session: AsyncSession, bounds: Bounds) -> tuple[pl.DataFrame, tuple[np.ndarray, np.ndarray]]:
        people = await learners_in(session, course.id, bounds)
        return people, await result_cells(session, course, people["id"].to_numpy())

    bounds = await chunk_bounds(snap.session, course.id, size=PARALLEL_CHUNK)
    chunks = in_parallel(snap.sessions, bounds, read)
    async for people, (value, state) in chunks:
        yield await asyncio.to_thread(_grade_frame, course, people, value, state, cohorts, teams)


def _grade_frame(
    course: CourseInfo, people: pl.DataFrame, value: np.ndarray, state: np.ndarray, cohorts: bool, teams: bool
) -> pl.DataFrame:
    position = {a.id: j for j, a in enumerate(course.assessments)}
    averages = category_averages(course, value, state)
    cells = _cells(value, state, 4)
    columns: dict[str, pl.Series] = {
        "Student ID": people["external_id"],
        "Email": people["email"].fill_null(""),
        "Username": people["username"].fill_null(""),
        "Grade": grade(people),
    }
    for category in dict.fromkeys(a.category for a in course.assessments):
        for label, a in course.columns:
            if a.category == category:
                title = label if label == category else f"{label}: {a.title}"
                columns[title] = cells[str(position[a.id])]
        if sum(a.category == category for a in course.assessments) > 1:
            avg = averages.get(category)
            columns[f"{category} (Avg)"] = (
                pl.Series(avg).cast(pl.String) if avg is not None else pl.Series([""] * people.height)
            )
    if cohorts:
        columns["Cohort Name"] = people["cohort"].fill_null("")
    if teams:
        columns["Team Name"] = people["team"].fill_null("")
    columns["Enrollment Track"] = people["track"]
    columns["Enrollment Status"] = people["status"]
    return pl.DataFrame(columns)


T = TypeVar("T")
_END = object()


async def ahead(source: AsyncIterator[T]) -> AsyncIterator[T]:
    """Run `source` one item ahead of the consumer, so producing the next item (waiting on the
    database) overlaps consuming this one (in a thread)."""
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)

    async def fill() -> None:
        try:
            async for item in source:
                await queue.put(item)
            await queue.put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            await queue.put(exc)

    task = asyncio.create_task(fill())
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def in_parallel(
    sessions: Sequence[AsyncSession], work: Sequence[Bounds], read: Callable[[AsyncSession, Bounds], Awaitable[T]]
) -> AsyncIterator[T]:
    """`read(session, bounds)` for every chunk, each session reading its share one chunk after the
    other, results yielded in the chunks' order. A session reads its next chunk once the consumer
    has taken its last one, so no more chunks than sessions wait in memory."""
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue(maxsize=1) for _ in sessions]

    async def reader(k: int) -> None:
        try:
            for bounds in work[k :: len(sessions)]:
                await queues[k].put(await read(sessions[k], bounds))
                await queues[k].join()
        except BaseException as exc:  # handed to the consumer, raised there
            await queues[k].put(exc)

    tasks = [asyncio.create_task(reader(k)) for k in range(len(sessions))]
    try:
        for i in range(len(work)):
            item = await queues[i % len(sessions)].get()
            queues[i % len(sessions)].task_done()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


# --- the problem grade report ---------------------------------------------------------------------

_ITEM_SCORES = """
    SELECT t.enrollment_id, sc.item_id, sc.earned FROM attempts t JOIN item_scores sc ON sc.attempt_id = t.id
    WHERE t.assessment_id = ANY(CAST($1 AS bigint[])) AND t.enrollment_id = ANY(CAST($2 AS bigint[]))
      AND t.status <> 'cancelled'
"""


async def problem_grade_report(session: AsyncSession, course: CourseInfo) -> AsyncIterator[pl.DataFrame]:
    """Per item (or per assessment without items) an Earned / Possible pair: `earned, possible` when
    scored, `Not Attempted, possible` when not, `Not Available` twice when the attempt is cancelled,
    `Excused, possible` when the learner is excused."""
    position = {a.id: j for j, a in enumerate(course.assessments)}
    all_items = [i for a in course.assessments for i in a.items]
    item_column = {i.id: k for k, i in enumerate(all_items)}
    async for people in learner_chunks(session, course.id):
        ids = people["id"].to_numpy()
        value, state = await result_cells(session, course, ids)
        earned = np.full((len(ids), len(all_items)), np.nan)
        scores = await copy_frame(
            session,
            _ITEM_SCORES,
            [[a.id for a in course.assessments if a.items], ids.tolist()],
            {"enrollment": pl.Int64, "item": pl.Int64, "earned": pl.Float64},
        )
        if scores.height:
            rows = np.searchsorted(ids, scores["enrollment"].to_numpy())
            cols = np.array([item_column[i] for i in scores["item"].to_list()], dtype=np.int64)
            earned[rows, cols] = scores["earned"].to_numpy()
        columns: dict[str, pl.Series] = {
            "Student ID": people["external_id"],
            "Email": people["email"].fill_null(""),
            "Username": people["username"].fill_null(""),
            "Enrollment Status": people["status"],
            "Grade": grade(people),
        }
        for label, a in course.columns:
            j = position[a.id]
            gone = state[:, j] == CANCELLED
            excused = pl.Series(state[:, j] == EXCUSED)
            if a.items:
                pairs = [(f"{a.title} - {i.label}", earned[:, item_column[i.id]], i.points) for i in a.items]
            else:
                total = np.where(state[:, j] == FINAL, value[:, j] * a.points, np.nan)
                pairs = [(f"{a.title} - {a.title}", total, a.points)]
            for name, got, points in pairs:
                head = f"{label}: {name}"
                shown = pl.Series(got, nan_to_null=True).cast(pl.String).fill_null(NOT_ATTEMPTED)
                columns[f"{head} (Earned)"] = pl.select(
                    pl.when(pl.lit(pl.Series(gone)))
                    .then(pl.lit(NOT_AVAILABLE))
                    .when(pl.lit(excused))
                    .then(pl.lit(EXCUSED_TEXT))
                    .otherwise(shown)
                ).to_series()
                columns[f"{head} (Possible)"] = pl.Series(np.where(gone, NOT_AVAILABLE, str(float(points))))
        yield pl.DataFrame(columns)


# --- marks and grades (Inspera's CSV) -------------------------------------------------------------

_MARKS = """
    SELECT e.external_id, e.id, i.id AS item_id, sc.earned, sc.computed_earned, sc.source, t.earned AS total,
           t.possible AS total_possible, t.status, t.confirmed_at IS NOT NULL AS confirmed, t.source AS total_source,
           t.computed_earned AS total_computed, t.excused,
           (SELECT array_agg(m.grader ORDER BY m.id) FROM marks m WHERE m.attempt_id = t.id AND m.item_id = i.id)
             AS graders
    FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id
    LEFT JOIN items i ON i.assessment_id = t.assessment_id
    LEFT JOIN item_scores sc ON sc.attempt_id = t.id AND sc.item_id = i.id
    WHERE t.assessment_id = :a AND t.status <> 'cancelled' AND e.id > :after
    ORDER BY e.id, i.position, i.id
    LIMIT :n
"""


async def marks_and_grades(
    session: AsyncSession, course: CourseInfo, assessment: AssessmentInfo
) -> AsyncIterator[pl.DataFrame]:
    """One row per candidate per question: who marked it (a column pair per grader in the individual
    workflow, a workgroup per column in the shared one), the manual and automatic scores (AutoScore holds
    the overriding value where a score was overridden), and the final grade once grading is confirmed
    (`Excused` where the learner is excused)."""
    shared = (assessment.marking or {}).get("workflow") == "shared"
    width = await session.scalar(
        text(
            """
            SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM marks m JOIN attempts t ON t.id = m.attempt_id
            WHERE t.assessment_id = :a GROUP BY m.attempt_id, m.item_id) x
            """
        ),
        {"a": assessment.id},
    )
    needs_confirmation = any(i.marking == "manual" for i in assessment.items)
    items = {i.id: i for i in assessment.items}
    after, per_row = 0, max(1, len(assessment.items))
    while True:
        rows = (
            (await session.execute(text(_MARKS), {"a": assessment.id, "after": after, "n": CHUNK * per_row}))
            .mappings()
            .all()
        )
        if not rows:
            return
        last = rows[-1]["id"]
        if len(rows) == CHUNK * per_row:  # keep every learner whole: leave the last one for the next chunk
            rows = [r for r in rows if r["id"] != last] or rows
        after = rows[-1]["id"]
        yield pl.DataFrame(
            [_marks_row(course, assessment, items, r, int(width or 0), shared, needs_confirmation) for r in rows],
            schema=_marks_header(int(width or 0), shared),
            orient="row",
        )


def _marks_header(width: int, shared: bool) -> list[str]:
    graders = (
        [f"WorkgroupID{n}" for n in range(1, width + 1)]
        if shared
        else [c for n in range(1, width + 1) for c in (f"GraderUserID{n}", f"GraderUsername{n}")]
    )
    return [
        "CandidateExternalId",
        "UserID",
        "QuestionNo",
        "QuestionTitle",
        "QuestionRevisionId",
        "QuestionId",
        *graders,
        "ManualScore",
        "AutoScore",
        "FinalGrade",
    ]


def _number(x: Any) -> str:
    return "" if x is None else format(x.normalize(), "f") if hasattr(x, "normalize") else str(x)


def _marks_row(
    course: CourseInfo,
    assessment: AssessmentInfo,
    items: dict[int, ItemInfo],
    r: Any,
    width: int,
    shared: bool,
    needs_confirmation: bool,
) -> list[str]:
    item = items.get(r["item_id"]) if r["item_id"] is not None else None
    manual = item is not None and item.marking == "manual"
    graders = list(r["graders"] or [])[:width] if manual else []
    graders += [""] * (width - len(graders))
    grader_cells = graders if shared else [c for g in graders for c in (g, g)]
    earned = r["earned"] if item is not None else r["total"]
    final = r["status"] == "graded" and (r["confirmed"] or not needs_confirmation)
    fraction = float(r["total"] / r["total_possible"]) if final and r["total_possible"] else None
    final_grade = (course.letter(fraction) or _number(r["total"])) if final else ""
    if r["excused"]:
        final_grade = EXCUSED_TEXT
    return [
        r["external_id"],
        str(r["id"]),
        (item.number or item.external_id) if item else "",
        (item.title or "") if item else assessment.title,
        str(item.revision) if item else "",
        str(item.id) if item else "",
        *grader_cells,
        _number(earned) if manual else "",
        "" if manual else _number(earned),
        final_grade,
    ]
