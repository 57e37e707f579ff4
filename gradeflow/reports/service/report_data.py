"""What each report holds, read in chunks of learners so memory does not grow with the course.

A report reads inside one read-only REPEATABLE READ transaction, so its file is one consistent
picture even while scores keep changing. CSV reports come out as polars frames (text cells ready to
write); the XLSX and PDF reports as plain rows and per-learner records.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import polars as pl
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow.certificates.service.certifications import ELIGIBLE_NOW, ID_VERIFIED_TRACKS, course_rule_sql
from gradeflow.courses.service import groups, sessions
from gradeflow.db.conditions import Params, contains
from gradeflow.db.copy import copy_frame
from gradeflow.grades.service import grades
from gradeflow.grading.policy import Category, PolicyRules
from gradeflow.readside.service import results_table

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
    labels: dict[str, str] = field(default_factory=dict)  # category -> its name in the Open edX reports

    def assessment(self, external_id: str) -> AssessmentInfo | None:
        return next((a for a in self.assessments if a.external_id == external_id), None)

    def rule(self, category: str) -> Category | None:
        """The served policy's rule for a category (None: the policy does not grade it)."""
        return next((c for c in self.rules.categories if c.name == category), None) if self.rules else None

    def letter(self, fraction: float | None) -> str | None:
        """The policy's letter for a fraction (0.85), if the course has cutoffs."""
        if fraction is None or self.rules is None:
            return None
        for cutoff in self.rules.cutoffs_high_first():
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


async def count_learners(session: AsyncSession, course_id: int, who: Who | None = None) -> int:
    """The learners a report covers: the course's, or those `who` selects."""
    condition, named = (who or EVERYONE).named()
    return int(
        await session.scalar(
            text(f"SELECT count(*) FROM enrollments e WHERE e.course_id = :c AND {condition}"),  # noqa: S608
            {"c": course_id, **named},
        )
        or 0
    )


async def count_candidates(session: AsyncSession, assessment_id: int) -> int:
    """The learners with an attempt at the assessment that is not cancelled (the marks CSV's candidates)."""
    return int(
        await session.scalar(
            text(
                "SELECT count(DISTINCT enrollment_id) FROM attempts WHERE assessment_id = :a AND status <> 'cancelled'"
            ),
            {"a": assessment_id},
        )
        or 0
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
    info.labels, info.columns = _labelled(info)
    return info


# The Open edX reports' own columns: no category label takes one of their names.
_OPEN_EDX_COLUMNS = (
    "Student ID", "Email", "Username", "Grade", "Cohort Name", "Team Name", "Enrollment Track", "Verification Status",
    "Certificate Eligible", "Certificate Delivered", "Certificate Type", "Enrollment Status",
)  # fmt: skip


def _labelled(course: CourseInfo) -> tuple[dict[str, str], list[tuple[str, AssessmentInfo]]]:
    """Open edX's columns: grouped by category in order of first appearance, "{label} {i}" ("HW 1"),
    or just "{label}" for a category with one assessment. A category's label is the policy's short label
    ("HW"), else its name, numbered where two categories would share one. Both Open edX reports name
    their columns from these."""
    by_category: dict[str, list[AssessmentInfo]] = {}
    for a in course.assessments:
        by_category.setdefault(a.category, []).append(a)
    wanted = [(r.short_label if (r := course.rule(c)) is not None and r.short_label else c) for c in by_category]
    labels = dict(zip(by_category, distinct(wanted, taken=_OPEN_EDX_COLUMNS), strict=True))
    out = []
    for category, members in by_category.items():
        label = labels[category]
        if len(members) == 1:
            out.append((label, members[0]))
        else:
            out += [(f"{label} {i}", a) for i, a in enumerate(members, start=1)]
    return labels, out


@dataclass(frozen=True)
class Who:
    """Which learners a report covers: everyone, a group, a cohort or a list; of those, only the ones
    with an attempt in a course session (`session_id`), and without the learners whose every group is
    archived (`hide_archived`, the results filter's default, as `who_of` builds it from a request)."""

    group: str | None = None
    cohort: str | None = None
    learners: list[str] | None = None
    session_id: int | None = None
    hide_archived: bool = False
    search: str | None = None  # the results table's search (learner id, username, names, e-mail)

    def sql(self) -> tuple[str, list[Any]]:
        """The condition on enrollment `e` (the course id is $1; its values are the COPY arguments from
        the 4th on) and those values."""
        arg = Params(None, None, None)  # $1 the course, $2 and $3 the chunk's bounds
        conditions = []
        if self.learners is not None:
            conditions.append(f"e.external_id = ANY(CAST({arg(self.learners)} AS text[]))")
        elif self.group is not None:
            conditions.append(f"CAST({arg(self.group)} AS text) = ANY(e.groups)")
        elif self.cohort is not None:
            conditions.append(f"e.cohort = {arg(self.cohort)}")
        if self.session_id is not None:
            conditions.append(sessions.with_attempt_in(arg(self.session_id)))
        if self.hide_archived:
            conditions.append(groups.not_archived("$1"))
        if self.search is not None:
            conditions.append(contains(results_table.SEARCHED, self.search, arg))
        return " AND ".join(conditions) or "TRUE", arg.values[3:]

    def named(self) -> tuple[str, dict[str, Any]]:
        """The same condition for text() statements: the course as `:c`, the values as `:x0`, `:x1`..."""
        condition, values = self.sql()
        for i in reversed(range(len(values))):  # $10 before $1
            condition = condition.replace(f"${4 + i}", f":x{i}")
        return condition.replace("$1", ":c"), {f"x{i}": v for i, v in enumerate(values)}


async def who_of(session: AsyncSession, course_id: int, params: Any) -> Who:
    """The learners a report's params select (group, cohort, learners, session, include_archived,
    whichever the kind has); an unknown session is a 404 naming it. Learners named one by one are
    reported even when every group of theirs is archived: whoever names them asks for them."""
    name = getattr(params, "session", None)
    learners = getattr(params, "learners", None)
    return Who(
        group=getattr(params, "group", None),
        cohort=getattr(params, "cohort", None),
        learners=learners,
        session_id=None if name is None else await sessions.session_id(session, course_id, name),
        hide_archived=not learners and not getattr(params, "include_archived", True),
        search=getattr(params, "search", None),
    )


EVERYONE = Who()
Bounds = tuple[int, int]  # the first and the last learner id of a chunk


async def chunk_bounds(session: AsyncSession, course_id: int, who: Who = EVERYONE, size: int = CHUNK) -> list[Bounds]:
    """The course's learners (those `who` covers) cut into chunks of `size`, ascending: one pass over
    their ids, so the chunks can then be read in any order, several at once."""
    condition, named = who.named()
    rows = await session.execute(text(_BOUNDS.format(condition=condition)), {"c": course_id, "n": size, **named})
    return [(int(r[0]), int(r[1])) for r in rows]


_BOUNDS = """
    SELECT min(id), max(id) FROM (
      SELECT e.id, (row_number() OVER (ORDER BY e.id) - 1) / :n AS k
      FROM enrollments e WHERE e.course_id = :c AND {condition}) x
    GROUP BY k ORDER BY k
"""


# A report's own columns for the learners' COPY: columns (", a, b"), joins, their arguments (numbered after
# the chunk's and `who`'s) and the columns' schema.
Extra = tuple[str, str, list[Any], dict[str, Any]]
NO_EXTRA: Extra = ("", "", [], {})


async def learners_in(
    session: AsyncSession, course_id: int, bounds: Bounds, who: Who = EVERYONE, extra: Extra = NO_EXTRA
) -> pl.DataFrame:
    """One chunk of learners (ascending ids), each with its stored final course grade; one COPY."""
    condition, argument = who.sql()
    columns, joins, args, schema = extra
    return await copy_frame(
        session,
        _LEARNERS.format(condition=condition, extra=columns, joins=joins),
        [course_id, *bounds, *argument, *args],
        _LEARNER_SCHEMA | schema,
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


# Up to this many decimals, fractions are written from a table of all their texts (10,001 at 4).
_TABLE_DIGITS = 4


def number_text(values: np.ndarray, digits: int) -> pl.Series:
    """The one way the reports print a number: rounded to `digits` decimals as numpy (and Open edX's
    numpy.around) rounds, half to even on the scaled double, then the shortest text of the rounded
    value: `1`, `0.4`, `0.3333`, never `1.0`, `1e-06` or `0.7250000000000001`. NaN is null."""
    steps = np.rint(np.asarray(values, dtype=np.float64) * 10**digits)  # np.round(values, digits) * 10**digits
    known = ~np.isnan(steps)
    if digits <= _TABLE_DIGITS and np.all(~known | ((steps >= 0) & (steps <= 10**digits))):
        # Fractions between 0 and 1 (most cells) are picked from a table of their texts: an enum column,
        # no number written per cell.
        return _fractions(digits).gather(np.where(known, steps, 10**digits + 1).astype(np.uint32))
    texts = pl.Series(steps / 10**digits + 0.0, nan_to_null=True).cast(pl.String)  # + 0.0: no "-0"
    if texts.str.contains("e", literal=True).any():  # polars writes tiny and huge doubles with an exponent
        return _spelled(steps, digits)
    return texts.str.strip_suffix(".0")


def _spelled(steps: np.ndarray, digits: int) -> pl.Series:
    """Whole numbers of 10**-digits written out in decimal, trailing zeros trimmed (NaN: null)."""
    scale = 10**digits
    n = pl.col("n")
    whole = (n.abs() // scale).cast(pl.String)
    fraction = (n.abs() % scale).cast(pl.String).str.zfill(digits).str.strip_chars_end("0")
    sign = pl.when(n < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    frame = pl.DataFrame({"n": pl.Series(steps, nan_to_null=True).cast(pl.Int64)})
    return frame.select(
        pl.when(fraction == "").then(sign + whole).otherwise(sign + whole + "." + fraction).alias("n")
    ).to_series()


@functools.cache
def _fractions(digits: int) -> pl.Series:
    """The texts of the fractions 0, 1/10**digits, ..., 1, then a null, as an enum."""
    texts = _spelled(np.arange(10**digits + 1, dtype=np.float64), digits)
    return pl.concat([texts, pl.Series([None], dtype=pl.String)]).cast(pl.Enum(texts))


def _cells(value: np.ndarray, state: np.ndarray, digits: int) -> pl.DataFrame:
    """Every assessment's cells at once (a column per assessment, course order): the rounded fraction
    when final, else Excused / Not Available / Not Attempted. A fraction between 0 and 1 (all of them,
    unless a result earned more than its points) is picked from the texts of every rounded fraction (an
    enum column: no number formatted per cell)."""
    scale = 10**digits
    final = state == FINAL
    steps = np.rint(np.where(final, value, 0.0) * scale)  # np.round(value, digits) is steps / scale
    if digits > _TABLE_DIGITS or ((steps < 0) | (steps > scale))[final].any():
        return _formatted_cells(value, state, digits)
    codes = np.select(
        [final, state == EXCUSED, np.isin(state, (UNAVAILABLE, CANCELLED))], [steps, scale + 3, scale + 1], scale + 2
    ).astype(np.uint32)
    labels = _labels(digits)
    return pl.DataFrame({str(j): labels.gather(codes[:, j]) for j in range(value.shape[1])})


@functools.cache
def _labels(digits: int) -> pl.Series:
    """The texts of the fractions 0, 1/10**digits, ..., 1 (as `number_text` writes them), then Not
    Available, Not Attempted and Excused, as an enum."""
    fractions = _fractions(digits).cast(pl.String).head(10**digits + 1)
    texts = pl.concat([fractions, pl.Series([NOT_AVAILABLE, NOT_ATTEMPTED, EXCUSED_TEXT])])
    return texts.cast(pl.Enum(texts))


def _formatted_cells(value: np.ndarray, state: np.ndarray, digits: int) -> pl.DataFrame:
    names = [str(j) for j in range(value.shape[1])]
    numbers = pl.DataFrame({n: number_text(value[:, j], digits).cast(pl.String) for j, n in enumerate(names)})
    frame = numbers.hstack(pl.DataFrame(state, schema=[f"s{n}" for n in names]))
    return frame.select(
        pl.when(pl.col(f"s{n}") == FINAL)
        .then(pl.col(n))
        .when(pl.col(f"s{n}") == EXCUSED)
        .then(pl.lit(EXCUSED_TEXT))
        .when(pl.col(f"s{n}").is_in([UNAVAILABLE, CANCELLED]))
        .then(pl.lit(NOT_AVAILABLE))
        .otherwise(pl.lit(NOT_ATTEMPTED))
        .alias(n)
        for n in names
    )


_LEARNERS = """
    SELECT e.id, e.external_id, e.email, e.username, e.full_name, e.given_name, e.family_name, e.cohort, e.team,
           e.track, e.status,
           g.final_percent, g.final_grade{extra}
    FROM enrollments e
    LEFT JOIN course_grades g  -- by the same id range: one merge over both indexes (a lookup a learner cost 2x)
      ON g.enrollment_id = e.id AND g.enrollment_id BETWEEN $2 AND $3
     AND g.policy_version = (SELECT c.grades_version FROM courses c WHERE c.id = $1){joins}
    WHERE e.course_id = $1 AND e.id BETWEEN $2 AND $3 AND {condition} ORDER BY e.id
"""
_LEARNER_SCHEMA = {
    "id": pl.Int64,
    "external_id": pl.String,
    "email": pl.String,
    "username": pl.String,
    "full_name": pl.String,
    "given_name": pl.String,  # with full_name and username: how reports name a learner (gradeflow.core.names)
    "family_name": pl.String,
    "cohort": pl.String,
    "team": pl.String,
    "track": pl.String,
    "status": pl.String,
    "final_percent": pl.Float64,
    "final_grade": pl.String,
}


# Decimals printed: a result as Open edX's percent_graded (4); the course grade exactly as stored (its
# percent has at most 6 decimals, so 8 as a fraction).
CELL_DIGITS = 4
GRADE_DIGITS = 8


def grade(frame: pl.DataFrame) -> pl.Series:
    """The stored course grade as Open edX reports it: a fraction (0.74, 1), 0 when there is none."""
    return number_text(frame["final_percent"].fill_null(0.0).to_numpy() / 100, GRADE_DIGITS)


# --- the course grade report (Open edX layout) ----------------------------------------------------


@dataclass(frozen=True)
class _GradeLayout:
    """The course grade report's optional columns, decided once for the whole file."""

    cohorts: bool
    teams: bool
    experiments: list[str]  # group configuration names, sorted
    averaged: dict[str, int]  # category with several assessments -> its place in the stored explanation
    eligible: str = ELIGIBLE_NOW  # the course certification's rule (SQL, no parameters)

    def extra(self) -> Extra:
        """The learners' COPY for the report: verification, eligibility and certificate, each averaged
        category's percent and applied weight, each experiment group (arguments from $4 on: the report
        covers everyone, so `who` takes none)."""
        columns = [f"e.id_verified::int, ({self.eligible})::int, cert.type"]
        for k in self.averaged.values():  # an int of ours: never a client's text in the statement
            columns.append(f"g.explanation -> 'final' -> {k} ->> 'percent'")
            columns.append(f"g.explanation -> 'final' -> {k} ->> 'applied_weight'")
        columns += [f"e.experiment_groups ->> CAST(${4 + i} AS text)" for i in range(len(self.experiments))]
        schema = {"id_verified": pl.Int8, "eligible": pl.Int8, "certificate": pl.String}
        for k in self.averaged.values():
            schema |= {f"percent{k}": pl.Float64, f"weight{k}": pl.Float64}
        schema |= {f"group{i}": pl.String for i in range(len(self.experiments))}
        return ", " + ", ".join(columns), _CERTIFICATE_JOINS, list(self.experiments), schema


# Whether a learner is on the allow list, and their course certificate (`w` is ELIGIBLE_NOW's allow list
# alias): an assessment's certificates are not the course's, and a revoked one is not delivered.
_CERTIFICATE_JOINS = """
    LEFT JOIN certificate_allowlist w ON w.enrollment_id = e.id AND w.enrollment_id BETWEEN $2 AND $3
    LEFT JOIN certificates cert ON cert.enrollment_id = e.id AND cert.enrollment_id BETWEEN $2 AND $3
      AND cert.assessment_id IS NULL AND cert.revoked_at IS NULL
"""


async def _grade_layout(session: AsyncSession, course: CourseInfo) -> _GradeLayout:
    """Cohort and team columns appear only when a learner has one; an experiment group column per group
    configuration some learner is in."""
    row = (
        await session.execute(
            text(
                """
                SELECT bool_or(e.cohort IS NOT NULL), bool_or(e.team IS NOT NULL),
                       array_agg(DISTINCT k.name) FILTER (WHERE k.name IS NOT NULL)
                FROM enrollments e LEFT JOIN LATERAL jsonb_object_keys(e.experiment_groups) k(name) ON TRUE
                WHERE e.course_id = :c  -- one pass over the course's learners
                """
            ),
            {"c": course.id},
        )
    ).one()
    sizes: dict[str, int] = {}
    for a in course.assessments:
        sizes[a.category] = sizes.get(a.category, 0) + 1
    # The stored explanation lists the served policy's categories in the policy's order.
    place = {c.name: k for k, c in enumerate(course.rules.categories)} if course.rules else {}
    averaged = {name: place[name] for name, n in sizes.items() if n > 1 and name in place}
    eligible = await course_rule_sql(session, course.id)
    return _GradeLayout(bool(row[0]), bool(row[1]), sorted(row[2] or []), averaged, eligible)


async def grade_report(snap: Snapshot, course: CourseInfo) -> AsyncIterator[pl.DataFrame]:
    """Frames of the course grade report; chunks are read by all the snapshot's sessions at once
    while the one before is built."""
    layout = await _grade_layout(snap.session, course)
    extra = layout.extra()

    async def read(session: AsyncSession, bounds: Bounds) -> tuple[pl.DataFrame, tuple[np.ndarray, np.ndarray]]:
        people = await learners_in(session, course.id, bounds, extra=extra)
        return people, await result_cells(session, course, people["id"].to_numpy())

    bounds = await chunk_bounds(snap.session, course.id, size=PARALLEL_CHUNK)
    chunks = in_parallel(snap.sessions, bounds, read)
    async for people, (value, state) in chunks:
        yield await asyncio.to_thread(_grade_frame, course, layout, people, value, state)


def _grade_frame(
    course: CourseInfo, layout: _GradeLayout, people: pl.DataFrame, value: np.ndarray, state: np.ndarray
) -> pl.DataFrame:
    position = {a.id: j for j, a in enumerate(course.assessments)}
    cells = _cells(value, state, CELL_DIGITS)
    head = {
        "Student ID": people["external_id"],
        "Email": people["email"].fill_null(""),
        "Username": people["username"].fill_null(""),
        "Grade": grade(people),
    }
    results: list[tuple[str, pl.Series]] = []
    for category, labelled in itertools.groupby(course.columns, key=lambda c: c[1].category):
        members = list(labelled)
        results += [(label, cells[str(position[a.id])]) for label, a in members]
        if len(members) > 1:
            results.append((f"{course.labels[category]} (Avg)", _average(layout, people, category)))
    groups: dict[str, pl.Series] = {}
    if layout.cohorts:
        groups["Cohort Name"] = people["cohort"].fill_null("")
    for i, name in enumerate(layout.experiments):
        groups[f"Experiment Group ({name})"] = people[f"group{i}"].fill_null("")
    if layout.teams:
        groups["Team Name"] = people["team"].fill_null("")
    certified = pl.col("certificate").is_not_null()
    tail = people.select(
        pl.col("track").alias("Enrollment Track"),
        pl.when(pl.col("track").is_in(ID_VERIFIED_TRACKS).not_())
        .then(pl.lit("N/A"))
        .when(pl.col("id_verified") == 1)
        .then(pl.lit("ID Verified"))
        .otherwise(pl.lit("Not ID Verified"))
        .alias("Verification Status"),
        pl.when(pl.col("eligible") == 1).then(pl.lit("Y")).otherwise(pl.lit("N")).alias("Certificate Eligible"),
        pl.when(certified).then(pl.lit("Y")).otherwise(pl.lit("N")).alias("Certificate Delivered"),
        pl.col("certificate").fill_null("N/A").alias("Certificate Type"),
        pl.col("status").alias("Enrollment Status"),
    )
    names = distinct([name for name, _ in results], taken=[*head, *groups, *tail.columns])
    return pl.DataFrame(head | dict(zip(names, (s for _, s in results), strict=True)) | groups).hstack(tail)


def distinct(names: list[str], taken: Sequence[str]) -> list[str]:
    """Column names from clients' texts (category labels, titles), made distinct from each other and from
    the report's own columns (`taken`) by " (2)", " (3)", ...: a column is never lost to another of the
    same name (a category called "Grade", two items both titled "Essay")."""
    seen = set(taken)
    out = []
    for name in names:
        unique, k = name, 1
        while unique in seen:
            k += 1
            unique = f"{name} ({k})"
        seen.add(unique)
        out.append(unique)
    return out


def _average(layout: _GradeLayout, people: pl.DataFrame, category: str) -> pl.Series:
    """Open edX's "(Avg)": the category's average as the stored grade computed it (its drops; with the
    openedx preset, its min_count placeholders) times the weight the grade applied to it, read from the
    grade's explanation; 0 when the learner has no grade, empty for a category the policy does not grade."""
    k = layout.averaged.get(category)
    if k is None:
        return pl.Series([""] * people.height, dtype=pl.String)
    percent = people[f"percent{k}"].fill_null(0.0).to_numpy()
    weight = people[f"weight{k}"].fill_null(1.0).to_numpy()  # points weighting applies no category weight
    return number_text(percent / 100 * weight, CELL_DIGITS)


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


POINT_DIGITS = 6  # points are stored with 6 decimals


async def problem_grade_report(session: AsyncSession, course: CourseInfo) -> AsyncIterator[pl.DataFrame]:
    """Per item (or per assessment without items) an Earned / Possible pair: `earned, possible` when
    scored, `Not Attempted, possible` when not, `Not Available, possible` while the result waits for
    grading or confirmation (an assessment with manual items shows nothing before it is confirmed),
    `Not Available` twice when the attempt is cancelled, `Excused, possible` when the learner is excused."""
    position = {a.id: j for j, a in enumerate(course.assessments)}
    all_items = [i for a in course.assessments for i in a.items]
    item_column = {i.id: k for k, i in enumerate(all_items)}
    # Per pair of columns: its name, its assessment's column, its item's (None: the assessment's total), points.
    pairs: list[tuple[str, int, int | None, float]] = []
    for label, a in course.columns:
        if a.items:
            pairs += [(f"{label}: {a.title} - {i.label}", position[a.id], item_column[i.id], i.points) for i in a.items]
        else:  # named once: the title is not repeated as an item name
            pairs.append((f"{label}: {a.title}", position[a.id], None, a.points))
    fixed = {"Student ID", "Email", "Username", "Enrollment Status", "Grade"}
    heads = distinct([head for head, *_ in pairs], taken=[*fixed])
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
        for head, (_, j, k, points) in zip(heads, pairs, strict=True):
            got = earned[:, k] if k is not None else np.where(state[:, j] == FINAL, value[:, j] * points, np.nan)
            possible = number_text(np.array([points]), POINT_DIGITS).cast(pl.String).item()
            shown = pl.DataFrame({"state": state[:, j], "earned": number_text(got, POINT_DIGITS).cast(pl.String)})
            shown = shown.select(
                pl.when(pl.col("state").is_in([CANCELLED, UNAVAILABLE]))
                .then(pl.lit(NOT_AVAILABLE))
                .when(pl.col("state") == EXCUSED)
                .then(pl.lit(EXCUSED_TEXT))
                .otherwise(pl.col("earned").fill_null(NOT_ATTEMPTED))
                .alias("earned"),
                pl.when(pl.col("state") == CANCELLED)
                .then(pl.lit(NOT_AVAILABLE))
                .otherwise(pl.lit(possible))
                .alias("possible"),
            )
            columns[f"{head} (Earned)"] = shown["earned"]
            columns[f"{head} (Possible)"] = shown["possible"]
        yield pl.DataFrame(columns)
