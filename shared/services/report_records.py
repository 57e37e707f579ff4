"""Data of the XLSX and PDF reports: the results table rows, a group's results on one assessment, and
each learner's record for their individual report. Read in chunks, inside the report's snapshot."""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.services.inputs import GroupReportParams, IndividualReportsParams
from shared.services.report_data import (
    FINAL,
    CourseInfo,
    Who,
    category_averages,
    learner_chunks,
    result_cells,
)

# --- a group's results on one assessment ----------------------------------------------------------


@dataclass
class GroupResults:
    course: str
    assessment: str
    group: str  # "group X", "cohort Y" or "all learners"
    possible: float
    ranking: list[dict[str, Any]]  # rank, learner, name, earned, percent, letter (graded results only)
    not_graded: int
    stats: dict[str, float | None]
    histogram: list[int]  # 10 bins of percent: 0-10, ..., 90-100 (100 counts in the last)
    letters: dict[str, int]


async def group_results(session: AsyncSession, course: CourseInfo, p: GroupReportParams) -> GroupResults:
    assessment = course.assessment(p.assessment)
    assert assessment is not None
    who = (
        "all learners"
        if p.group is None and p.cohort is None
        else f"group {p.group}"
        if p.group
        else f"cohort {p.cohort}"
    )
    j = course.assessments.index(assessment)
    graded: list[dict[str, Any]] = []
    not_graded = 0
    async for people in learner_chunks(session, course.id, Who(group=p.group, cohort=p.cohort)):
        value, state = await result_cells(session, course, people["id"].to_numpy())
        for k, person in enumerate(people.iter_rows(named=True)):
            if state[k, j] == FINAL:
                graded.append(
                    {
                        "learner": person["external_id"],
                        "name": person["full_name"] or person["username"] or person["external_id"],
                        "earned": round(float(value[k, j]) * assessment.points, 6),
                        "percent": round(float(value[k, j]) * 100, 2),
                        "letter": course.letter(float(value[k, j])),
                    }
                )
            else:
                not_graded += 1
    graded.sort(key=lambda r: (-r["percent"], r["name"]))
    for rank, r in enumerate(graded, start=1):
        r["rank"] = rank
    percents = [r["percent"] for r in graded]
    histogram = [0] * 10
    for x in percents:
        histogram[min(9, max(0, int(x // 10)))] += 1
    letters: dict[str, int] = {}
    if course.rules:
        letters = {c.grade: 0 for c in sorted(course.rules.cutoffs, key=lambda c: -c.min)}
        for r in graded:
            if r["letter"] is not None:
                letters[r["letter"]] += 1
    return GroupResults(
        course=course.title,
        assessment=assessment.title,
        group=who,
        possible=assessment.points,
        ranking=graded,
        not_graded=not_graded,
        stats=_stats(percents),
        histogram=histogram,
        letters=letters,
    )


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


@dataclass
class LearnerRecord:
    learner: str
    name: str
    course: str
    grade_percent: float | None
    grade_letter: str | None
    categories: list[dict[str, Any]]  # name, average (fraction or None), assessments: title, earned, possible, percent
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # assessment title -> published items
    cutoffs: list[tuple[str, float]] = field(default_factory=list)


async def learner_records(
    session: AsyncSession, course: CourseInfo, p: IndividualReportsParams
) -> AsyncIterator[list[LearnerRecord]]:
    """Each learner's record: scores per category and assessment (final results only), the course
    grade, and item detail only where it was published with items."""
    who = Who(group=p.group, cohort=p.cohort, learners=p.learners)
    cutoffs = sorted(((c.grade, c.min) for c in course.rules.cutoffs), key=lambda c: -c[1]) if course.rules else []
    async for people in learner_chunks(session, course.id, who):
        ids = people["id"].to_numpy()
        value, state = await result_cells(session, course, ids)
        averages = category_averages(course, value, state)
        published = await _published_items(session, ids)
        records = []
        for k, person in enumerate(people.iter_rows(named=True)):
            categories = []
            for category in dict.fromkeys(a.category for a in course.assessments):
                rows = []
                for j, a in enumerate(course.assessments):
                    if a.category != category:
                        continue
                    final = state[k, j] == FINAL
                    rows.append(
                        {
                            "title": a.title,
                            "earned": round(float(value[k, j]) * a.points, 6) if final else None,
                            "possible": a.points,
                            "percent": round(float(value[k, j]) * 100, 2) if final else None,
                        }
                    )
                average = averages.get(category)
                categories.append(
                    {"name": category, "average": None if average is None else float(average[k]), "assessments": rows}
                )
            records.append(
                LearnerRecord(
                    learner=person["external_id"],
                    name=person["full_name"] or person["username"] or person["external_id"],
                    course=course.title,
                    grade_percent=person["final_percent"],
                    grade_letter=person["final_grade"],
                    categories=categories,
                    items=published.get(int(person["id"]), {}),
                    cutoffs=cutoffs,
                )
            )
        yield records


async def _published_items(session: AsyncSession, ids: np.ndarray) -> dict[int, dict[str, list[dict[str, Any]]]]:
    out: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for enrollment, title, items in await session.execute(
        text(
            """
            SELECT pr.enrollment_id, a.title, pr.items
            FROM published_results pr JOIN assessments a ON a.id = pr.assessment_id
            WHERE pr.enrollment_id = ANY(:ids) AND pr.items IS NOT NULL ORDER BY a.position, a.id
            """
        ),
        {"ids": ids.tolist()},
    ):
        out.setdefault(enrollment, {})[title] = items
    return out
