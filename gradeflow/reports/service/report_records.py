"""What the PDF reports hold: a group's results on one assessment (the test platform's group report:
comparison, ranking, overall statistics) and each learner's record for their individual report (the
Open edX progress page: results by category, dropped work marked, the course grade and its cutoffs).

Both are read chunk by chunk inside the report's snapshot, a few set-based queries a chunk; the writer
(gradeflow/reports/writers/pdf.py) turns them into pages, with every label from the catalogue in the
report's language. States are catalogue keys, never English text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core import names
from gradeflow.core.errors import NotFound
from gradeflow.grading import stats
from gradeflow.grading.results import scale100
from gradeflow.readside.repository.learners import Who
from gradeflow.readside.service.course_data import (
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
from gradeflow.reports.commands import GroupReportParams, IndividualReportsParams
from gradeflow.reports.repository import records as repository
from gradeflow.reports.repository.records import PublishedResult

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
    return stats.histogram(percents, 10)


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


async def group_results(
    session: AsyncSession, course: CourseInfo, p: GroupReportParams, who: Who | None = None
) -> GroupResults:
    """The group's (or cohort's, or everyone's) results on one assessment within the period: the
    learners ranked (equal scores share a rank), the course team apart, statistics over the ranked.
    `who`: the params' learners, if the caller has them already."""
    assessment = course.assessment(p.assessment)
    if assessment is None:
        raise NotFound(f"Assessment {p.assessment!r} not found.")
    only = dataclasses.replace(course, assessments=[assessment])  # read this assessment's results alone
    learners: list[tuple[float, Ranked]] = []
    team: list[Ranked] = []
    not_graded = not_taken = excused = 0
    who = who or await who_of(session, course.id, p)
    async for people in learner_chunks(session, course.id, who):
        ids = people["id"].to_numpy()
        value, state = await result_cells(session, only, ids)
        is_team, in_period = await repository.team_and_period(
            session, assessment.id, ids, p.since, p.until, who.session_id
        )
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
    """The group's figures: the population standard deviation (the report describes the group it ranks)."""
    s = stats.summary(xs, sample=False)
    return {
        "count": s.count,
        "mean": stats.rounded(s.mean),
        "median": stats.rounded(s.median),
        "stdev": stats.rounded(s.stdev),
        "min": s.min,
        "max": s.max,
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
    session: AsyncSession, course: CourseInfo, p: IndividualReportsParams, who: Who | None = None
) -> AsyncIterator[list[LearnerRecord]]:
    """Each learner's record as the learner sees it: only what was published to them (the report may
    be sent to candidates). A result not published shows no score: "not attempted" without an attempt,
    "not available" with one. The course grade is the published one; the category percents and the
    dropped marks come from the stored grade's explanation, shown only while the stored grade still
    says what was published (publishing's own test of "already published"). `who`: the params'
    learners, if the caller has them already."""
    who = who or await who_of(session, course.id, p)
    cutoffs = [(c.grade, scale100(c.min)) for c in course.rules.cutoffs_high_first()] if course.rules else []
    label = {a.id: name for name, a in course.columns}
    categories = list(dict.fromkeys(a.category for a in course.assessments))
    async for people in learner_chunks(session, course.id, who):
        ids = people["id"].to_numpy()
        _, state = await result_cells(session, course, ids)
        published = await repository.published_results(session, ids)
        grades = await repository.published_grades(session, ids, course.served_version)
        records = []
        for k, person in enumerate(people.iter_rows(named=True)):
            enrollment = int(person["id"])
            grade = grades.get(enrollment)
            percent, letter = (grade.percent, grade.letter) if grade else (None, None)
            by_category = {c["name"]: c for c in (grade.explained if grade else None) or []}
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


def _published_line(label: str, title: str, r: PublishedResult, dropped: bool) -> AssessmentLine:
    possible = float(r.possible)
    earned = float(r.earned) if not r.excused and r.earned is not None else None
    final = earned is not None
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
