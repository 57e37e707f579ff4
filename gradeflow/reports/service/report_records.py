"""What the PDF reports hold: a group's results on one assessment (the test platform's group report:
comparison, ranking, overall statistics) and each learner's record for their individual report (the
Open edX progress page: results by category, dropped work marked, the course grade and its cutoffs).

Both are read chunk by chunk inside the report's snapshot, a few set-based queries a chunk; the writer
(gradeflow/reports/writers/pdf.py) turns them into pages, with every label from the catalogue in the
report's language. States are catalogue keys, never English text.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core import names
from gradeflow.core.errors import NotFound
from gradeflow.grading.results import scale100
from gradeflow.reports.commands import GroupReportParams, IndividualReportsParams
from gradeflow.reports.service.report_data import (
    CANCELLED,
    EMPTY,
    EXCUSED,
    FINAL,
    UNAVAILABLE,
    CourseInfo,
    learner_chunks,
    result_cells,
    who_of,
)

# A result's state in an individual report, as a key of the label catalogue.
STATE_FINAL = "final"
STATE_EXCUSED = "excused"
STATE_NOT_ATTEMPTED = "not_attempted"
# An attempt exists but nothing of it is published to the learner (being graded, awaiting
# confirmation, cancelled, or graded and not published yet).
STATE_NOT_AVAILABLE = "not_available"

# Two results are the same score when their fractions agree to this many places (float noise apart).
_TIE_PLACES = 9


def display_name(person: dict[str, Any]) -> str:
    """How a report names a learner: gradeflow.core.names' one rule (full name, else given and family names,
    else username, else their id)."""
    return names.learner_name(person)


def histogram(percents: Sequence[float]) -> list[int]:
    """Counts in ten 10 % bands (below 0 in the first, 100 and above in the last)."""
    bins = [0] * 10
    for x in percents:
        bins[min(9, max(0, int(x // 10)))] += 1
    return bins


# When a learner took a test (attempt `t`): its submission, else its start, else when the result was
# first recorded; and whether that falls in the report's period (:since, :until).
_TAKEN = "coalesce(t.submitted_at, t.started_at, t.created_at)"
TAKEN_IN_PERIOD = f"""(CAST(:since AS timestamptz) IS NULL OR {_TAKEN} >= :since)
           AND (CAST(:until AS timestamptz) IS NULL OR {_TAKEN} < :until)"""


# --- a group's results on one assessment ----------------------------------------------------------


@dataclass(frozen=True)
class Ranked:
    """One learner's final result on the assessment."""

    rank: int | None  # standard competition ranking (1, 1, 3); None for course team members
    learner: str
    name: str
    earned: float
    percent: float
    letter: str | None  # the policy's letter for this result; None without cutoffs


@dataclass
class GroupResults:
    course: str
    assessment: str
    language: str
    group: str | None
    cohort: str | None  # group and cohort both None: all learners
    since: datetime | None  # the period: attempts taken at or after since, and before until
    until: datetime | None
    possible: float
    ranking: list[Ranked]  # learners (not the course team) with a final result in the period
    team: list[Ranked]  # course team members' final results: listed apart, never ranked nor counted
    not_graded: int  # learners with an attempt in the period whose result is not final yet
    not_taken: int  # learners with no attempt in the period (none at all, or cancelled)
    excused: int  # learners excused from the assessment (their attempt in the period)
    stats: dict[str, float | None]  # over `ranking`, in percent
    histogram: list[int]  # 10 bins of percent: 0-10, ..., 90-100 (100 counts in the last)
    letters: dict[str, int]  # learners in `ranking` per letter, highest cutoff first


# Per learner of a chunk (ids ascending): a course team member?, and whether their attempt at the
# assessment was taken in the period. "Taken" is when the learner took the test: its submission,
# else its start, else when the result was first recorded (scores sent without an attempt's times).
# Never the last change: a re-mark in May does not move a test taken in March out of March. With a
# session, an attempt counts only if it is in that session.
_TEAM_AND_PERIOD = f"""
    SELECT e.is_course_team,
           t.id IS NOT NULL
           AND {TAKEN_IN_PERIOD}
           AND (CAST(:s AS bigint) IS NULL OR t.session_id = :s)
    FROM enrollments e LEFT JOIN attempts t ON t.enrollment_id = e.id AND t.assessment_id = :a
    WHERE e.id = ANY(CAST(:ids AS bigint[])) ORDER BY e.id
"""  # noqa: S608  (constant SQL)


async def group_results(session: AsyncSession, course: CourseInfo, p: GroupReportParams) -> GroupResults:
    """The group's (or cohort's, or everyone's) results on one assessment within the period: the
    learners ranked (equal scores share a rank), the course team apart, statistics over the ranked."""
    assessment = course.assessment(p.assessment)
    if assessment is None:
        raise NotFound(f"Assessment {p.assessment!r} not found.")
    only = dataclasses.replace(course, assessments=[assessment])  # read this assessment's results alone
    learners: list[tuple[float, Ranked]] = []
    team: list[Ranked] = []
    not_graded = not_taken = excused = 0
    who = await who_of(session, course.id, p)
    session_id = who.session_id
    async for people in learner_chunks(session, course.id, who):
        ids = people["id"].to_numpy()
        value, state = await result_cells(session, only, ids)
        rows = (
            await session.execute(
                text(_TEAM_AND_PERIOD),
                {"a": assessment.id, "ids": ids.tolist(), "since": p.since, "until": p.until, "s": session_id},
            )
        ).all()
        is_team = np.array([bool(r[0]) for r in rows], dtype=bool)
        in_period = np.array([bool(r[1]) for r in rows], dtype=bool)
        cell = np.where(in_period, state[:, 0], EMPTY)
        counted = ~is_team
        not_graded += int((counted & (cell == UNAVAILABLE)).sum())
        excused += int((counted & (cell == EXCUSED)).sum())
        not_taken += int((counted & np.isin(cell, (EMPTY, CANCELLED))).sum())
        for k in np.flatnonzero(cell == FINAL).tolist():
            person = people.row(k, named=True)
            fraction = float(value[k, 0])
            result = Ranked(
                rank=None,
                learner=person["external_id"],
                name=display_name(person),
                earned=round(fraction * assessment.points, 6),
                percent=round(scale100(fraction), 2),
                letter=course.letter(fraction),
            )
            if is_team[k]:
                team.append(result)
            else:
                learners.append((round(fraction, _TIE_PLACES), result))
    ranking = _ranked(learners)
    team.sort(key=lambda r: (-r.percent, r.name.casefold(), r.learner))
    percents = [r.percent for r in ranking]
    bands = histogram(percents)
    letters: dict[str, int] = {}
    if course.rules:
        letters = {c.grade: 0 for c in course.rules.cutoffs_high_first()}
        for r in ranking:
            if r.letter is not None:
                letters[r.letter] += 1
    return GroupResults(
        course=course.title,
        assessment=assessment.title,
        language=p.language,
        group=p.group,
        cohort=p.cohort,
        since=p.since,
        until=p.until,
        possible=assessment.points,
        ranking=ranking,
        team=team,
        not_graded=not_graded,
        not_taken=not_taken,
        excused=excused,
        stats=_stats(percents),
        histogram=bands,
        letters=letters,
    )


def _ranked(scored: Sequence[tuple[float, Ranked]]) -> list[Ranked]:
    """Standard competition ranking ("1224"): a learner's rank is one more than the number of learners
    with a higher score, so equal scores share a rank and the next rank skips; by rank, then name."""
    ordered = sorted(scored, key=lambda s: (-s[0], s[1].name.casefold(), s[1].learner))
    out: list[Ranked] = []
    for position, (score, result) in enumerate(ordered, start=1):
        tied = out and ordered[position - 2][0] == score
        out.append(dataclasses.replace(result, rank=out[-1].rank if tied else position))
    return out


def _stats(xs: list[float]) -> dict[str, float | None]:
    if not xs:
        return {"count": 0, "mean": None, "median": None, "stdev": None, "min": None, "max": None}
    return {
        "count": len(xs),
        "mean": round(statistics.fmean(xs), 2),
        "median": round(statistics.median(xs), 2),
        "stdev": round(statistics.pstdev(xs), 2),
        "min": min(xs),
        "max": max(xs),
    }


# --- each learner's individual report -------------------------------------------------------------


@dataclass(frozen=True)
class ItemLine:
    """One question of a result published with its items."""

    number: str | None
    title: str | None
    earned: float | None  # None: not scored
    possible: float
    feedback: str | None  # written for the learner and published; never the markers' comments


@dataclass(frozen=True)
class AssessmentLine:
    label: str  # Open edX's short label: "Homework 1", or the category alone when it has one assessment
    title: str
    state: str  # STATE_FINAL, STATE_EXCUSED, STATE_NOT_ATTEMPTED or STATE_NOT_AVAILABLE
    earned: float | None  # published points (final only)
    possible: float
    percent: float | None
    dropped: bool  # the learner's published course grade dropped it
    feedback: str | None  # on the assessment as a whole, as published
    items: list[ItemLine]  # only where the result was published with its items


@dataclass(frozen=True)
class CategoryLine:
    name: str
    percent: float | None  # the category's percent in the published course grade (drops applied)
    assessments: list[AssessmentLine]


@dataclass
class LearnerRecord:
    learner: str
    name: str
    course: str
    language: str
    grade_percent: float | None  # the published course grade; None: not published (or no policy)
    grade_letter: str | None
    categories: list[CategoryLine]
    cutoffs: list[tuple[str, float]]  # (letter, minimum percent), highest first


async def learner_records(
    session: AsyncSession, course: CourseInfo, p: IndividualReportsParams
) -> AsyncIterator[list[LearnerRecord]]:
    """Each learner's record as the learner sees it: only what was published to them (the report may
    be sent to candidates). A result not published shows no score: "not attempted" without an attempt,
    "not available" with one. The course grade is the published one; the category percents and the
    dropped marks come from the stored grade's explanation, shown only while the stored grade still
    says what was published (publishing's own test of "already published")."""
    who = await who_of(session, course.id, p)
    cutoffs = [(c.grade, scale100(c.min)) for c in course.rules.cutoffs_high_first()] if course.rules else []
    label = {a.id: name for name, a in course.columns}
    categories = list(dict.fromkeys(a.category for a in course.assessments))
    async for people in learner_chunks(session, course.id, who):
        ids = people["id"].to_numpy()
        _, state = await result_cells(session, course, ids)
        published = await _published_results(session, ids)
        grades = await _published_grades(session, course, ids)
        records = []
        for k, person in enumerate(people.iter_rows(named=True)):
            enrollment = int(person["id"])
            percent, letter, explained = grades.get(enrollment, (None, None, None))
            by_category = {c["name"]: c for c in explained or []}
            drops = {x for c in by_category.values() for x in c.get("dropped") or []}
            lines: dict[str, list[AssessmentLine]] = {c: [] for c in categories}
            for j, a in enumerate(course.assessments):
                shown = published.get((enrollment, a.id))
                line = (
                    _published_line(label[a.id], a.title, shown, a.external_id in drops)
                    if shown is not None
                    else AssessmentLine(
                        label=label[a.id],
                        title=a.title,
                        state=STATE_NOT_ATTEMPTED if state[k, j] == EMPTY else STATE_NOT_AVAILABLE,
                        earned=None,
                        possible=a.points,
                        percent=None,
                        dropped=a.external_id in drops,
                        feedback=None,
                        items=[],
                    )
                )
                lines[a.category].append(line)
            records.append(
                LearnerRecord(
                    learner=person["external_id"],
                    name=display_name(person),
                    course=course.title,
                    language=p.language,
                    grade_percent=percent,
                    grade_letter=letter,
                    categories=[
                        CategoryLine(name=c, percent=by_category.get(c, {}).get("percent"), assessments=lines[c])
                        for c in categories
                    ],
                    cutoffs=cutoffs,
                )
            )
        yield records


def _published_line(label: str, title: str, r: Any, dropped: bool) -> AssessmentLine:
    possible = float(r.possible)
    final = not r.excused and r.earned is not None
    earned = float(r.earned) if final else None
    return AssessmentLine(
        label=label,
        title=title,
        state=STATE_FINAL if final else STATE_EXCUSED,
        earned=earned,
        possible=possible,
        percent=round(scale100(earned / possible), 2) if earned is not None and possible > 0 else None,
        dropped=dropped,
        feedback=r.feedback,
        items=[
            ItemLine(
                number=i.get("number"),
                title=i.get("title"),
                earned=None if i.get("earned") is None else float(i["earned"]),
                possible=float(i["possible"]),
                feedback=i.get("feedback"),
            )
            for i in r.items or []
        ],
    )


async def _published_results(session: AsyncSession, ids: np.ndarray) -> dict[tuple[int, int], Any]:
    """The chunk's published snapshots by (enrollment, assessment): what the learners see."""
    rows = await session.execute(
        text(
            """
            SELECT pr.enrollment_id, pr.assessment_id, pr.earned, pr.possible, pr.excused, pr.items, pr.feedback
            FROM published_results pr WHERE pr.enrollment_id = ANY(CAST(:ids AS bigint[]))
            """
        ),
        {"ids": ids.tolist()},
    )
    return {(r.enrollment_id, r.assessment_id): r for r in rows}


async def _published_grades(
    session: AsyncSession, course: CourseInfo, ids: np.ndarray
) -> dict[int, tuple[float | None, str | None, list[dict[str, Any]] | None]]:
    """The chunk's published course grades, each with the stored grade's explanation (per category:
    percent, counted, dropped) while the stored grade is still the one published."""
    rows = await session.execute(
        text(
            """
            SELECT pg.enrollment_id, pg.percent, pg.grade,
                   CASE WHEN pg.percent IS NOT DISTINCT FROM g.final_percent
                         AND pg.grade IS NOT DISTINCT FROM g.final_grade THEN g.explanation -> 'final' END
            FROM published_grades pg
            LEFT JOIN course_grades g ON g.enrollment_id = pg.enrollment_id AND g.policy_version = :v
            WHERE pg.enrollment_id = ANY(CAST(:ids AS bigint[]))
            """
        ),
        {"ids": ids.tolist(), "v": course.served_version},
    )
    return {int(r[0]): (None if r[1] is None else float(r[1]), r[2], r[3]) for r in rows}
