"""What the progression reports hold: learners who took an initial and a final test on the same subject
(the final test names its initial test, `assessments.initial_assessment_id`), compared - the test
platform's "group progression report" and "individual progression reports".

The group report (staff only) compares final results as the group report reads them: graded and, with
manual marking, confirmed, taken in the period. The individual reports may be sent to candidates, so
they compare only what was published to each learner (the snapshots `GET /v1/me/...` serves), like the
individual reports of gradeflow/reports/service/report_records.py.

Beyond the totals, the change is shown per question when both tests share questions (the same item
external ids), else per skill (`items.skills`): a skill's level is the weighted share of its points
earned, sum(weight x earned) / sum(weight x possible), as in the skills file. A question or skill is
compared for a learner who has a score on it in both tests.

Everything is read chunk by chunk inside the report's snapshot, a few set-based queries a chunk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.grading import stats
from gradeflow.grading.results import scale100
from gradeflow.readside.repository.learners import Who
from gradeflow.readside.service.course_data import (
    FINAL,
    AssessmentInfo,
    CourseInfo,
    learner_chunks,
    result_cells,
    who_of,
)
from gradeflow.reports.commands import GroupProgressionParams, IndividualProgressionParams
from gradeflow.reports.repository import progression as repository
from gradeflow.reports.service.report_records import display_name, histogram

# How the parts of the tests are compared: per question (shared item external ids), per skill, or not
# at all (the tests share neither).
BY_ITEM, BY_SKILL, BY_NOTHING = "item", "skill", "none"


class NoInitial(Exception):
    """The final test names no initial test (any more)."""


@dataclass(frozen=True)
class Pair:
    """A final test and the initial test it names."""

    initial: AssessmentInfo
    final: AssessmentInfo
    by: str  # BY_ITEM, BY_SKILL or BY_NOTHING

    @property
    def shared_items(self) -> list[str]:
        """The item external ids both tests have, in the final test's order."""
        before = {i.external_id for i in self.initial.items}
        return [i.external_id for i in self.final.items if i.external_id in before]


initial_of = repository.initial_of


async def pair_of(session: AsyncSession, course: CourseInfo, final_id: str) -> Pair:
    """The final test `final_id` (it must be in `course`) with its initial test; NoInitial if it names none."""
    final = course.assessment(final_id)
    initial_id = await initial_of(session, course.id, final_id)
    initial = None if initial_id is None else course.assessment(initial_id)
    if final is None or initial is None:
        raise NoInitial(f"The assessment {final_id!r} has no initial assessment.")
    pair = Pair(initial, final, BY_NOTHING)
    if pair.shared_items:
        return dataclasses.replace(pair, by=BY_ITEM)
    if await repository.share_skills(session, initial.id, final.id):
        return dataclasses.replace(pair, by=BY_SKILL)
    return pair


@dataclass(frozen=True)
class LearnerChange:
    """One learner's two results, in percent."""

    learner: str
    name: str
    before: float
    after: float

    @property
    def change(self) -> float:
        return round(self.after - self.before, 2)


@dataclass(frozen=True)
class PartChange:
    """A question's or a skill's level before and after (percent): a learner's, or the mean of the group's.
    All three rounded from the exact levels, so the change is not the difference of two rounded means."""

    label: str
    learners: int  # learners compared on it
    before: float
    after: float
    change: float

    @classmethod
    def of(cls, label: str, learners: int, before: float, after: float) -> PartChange:
        return cls(label, learners, round(before, 2), round(after, 2), round(after - before, 2))


@dataclass
class GroupProgression:
    course: str
    initial: str  # the tests' titles
    final: str
    language: str
    group: str | None
    cohort: str | None  # group and cohort both None: all learners
    since: datetime | None  # the period: both tests taken at or after since, and before until
    until: datetime | None
    learners: list[LearnerChange]  # learners (not the course team) with a final result on both tests, by name
    not_compared: int  # the other learners covered (a result missing, not final, or outside the period)
    by: str  # BY_ITEM, BY_SKILL or BY_NOTHING
    parts: list[PartChange]  # per question or skill, the group's mean levels
    before_histogram: list[int]  # 10 bins of percent (100 in the last), the same bins after
    after_histogram: list[int]

    def stats(self) -> dict[str, float | int | None]:
        """Over the learners compared: means and medians before and after, the mean change, and how many
        improved, kept their score or declined."""
        before = [x.before for x in self.learners]
        after = [x.after for x in self.learners]
        changes = [x.change for x in self.learners]
        return {
            "count": len(self.learners),
            "mean_before": _mean(before),
            "mean_after": _mean(after),
            "median_before": _median(before),
            "median_after": _median(after),
            "mean_change": _mean(changes),
            "improved": sum(c > 0 for c in changes),
            "unchanged": sum(c == 0 for c in changes),
            "declined": sum(c < 0 for c in changes),
        }


def _mean(xs: Sequence[float]) -> float | None:
    return stats.rounded(stats.mean(xs))


def _median(xs: Sequence[float]) -> float | None:
    return stats.rounded(stats.median(xs))


async def _team_and_period(
    session: AsyncSession, pair: Pair, ids: np.ndarray, since: datetime | None, until: datetime | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per learner: on the course team?; both tests taken in the period?"""
    return await repository.team_and_period(session, pair.initial.id, pair.final.id, ids, since, until)


class _PartSums:
    """Per question or skill: learners compared and the sums of their levels before and after."""

    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}

    def add(self, key: str, n: int, before: float, after: float) -> None:
        s = self.sums.setdefault(key, [0, 0.0, 0.0])
        s[0] += n
        s[1] += before
        s[2] += after

    def parts(self, order: Sequence[str], labels: dict[str, str]) -> list[PartChange]:
        """The means, questions in `order` (the final test's), skills by name."""
        keys = [k for k in order if k in self.sums] if order else sorted(self.sums, key=str.casefold)
        out = []
        for k in keys:
            n, before, after = self.sums[k]
            out.append(PartChange.of(labels.get(k, k), int(n), before / n, after / n))
        return out


async def group_progression(
    session: AsyncSession,
    course: CourseInfo,
    p: GroupProgressionParams,
    who: Who | None = None,
    pair: Pair | None = None,
) -> GroupProgression:
    """The group's learners with a final result on both tests in the period, compared: each learner's
    change, the distributions before and after in the same bins, the mean change per question or skill.
    `who` and `pair`: the params' learners and tests, if the caller has them already."""
    pair = pair or await pair_of(session, course, p.assessment)
    both = dataclasses.replace(course, assessments=[pair.initial, pair.final])
    compared: list[LearnerChange] = []
    not_compared = 0
    sums = _PartSums()
    who = who or await who_of(session, course.id, p)
    async for people in learner_chunks(session, course.id, who):
        ids = people["id"].to_numpy()
        value, state = await result_cells(session, both, ids)
        team, in_period = await _team_and_period(session, pair, ids, p.since, p.until)
        ok = in_period & (state[:, 0] == FINAL) & (state[:, 1] == FINAL) & ~team
        not_compared += int((~ok & ~team).sum())
        for k in np.flatnonzero(ok).tolist():
            person = people.row(k, named=True)
            before, after = (round(scale100(float(value[k, j])), 2) for j in (0, 1))
            compared.append(LearnerChange(person["external_id"], display_name(person), before, after))
        if pair.by != BY_NOTHING and ok.any():
            await _add_part_sums(session, pair, ids[ok], sums)
    compared.sort(key=lambda x: (x.name.casefold(), x.learner))
    return GroupProgression(
        course=course.title,
        initial=pair.initial.title,
        final=pair.final.title,
        language=p.language,
        group=p.group,
        cohort=p.cohort,
        since=p.since,
        until=p.until,
        learners=compared,
        not_compared=not_compared,
        by=pair.by,
        parts=sums.parts(*_part_order(pair)),
        before_histogram=histogram([x.before for x in compared]),
        after_histogram=histogram([x.after for x in compared]),
    )


def _part_order(pair: Pair) -> tuple[list[str], dict[str, str]]:
    """Questions in the final test's order, named by their label there; skills (no order) by name."""
    if pair.by != BY_ITEM:
        return [], {}
    shared = set(pair.shared_items)
    return pair.shared_items, {i.external_id: i.label for i in pair.final.items if i.external_id in shared}


async def _add_part_sums(session: AsyncSession, pair: Pair, ids: np.ndarray, sums: _PartSums) -> None:
    by: Literal["item", "skill"] = "item" if pair.by == BY_ITEM else "skill"
    for part in await repository.part_sums(session, by, pair.initial.id, pair.final.id, ids):
        sums.add(part.key, part.learners, part.before, part.after)


# --- each learner's individual progression report -------------------------------------------------


@dataclass(frozen=True)
class Published:
    """A result as published to the learner (final: not excused, with a score)."""

    earned: float
    possible: float
    items: list[dict[str, Any]] | None  # only when published with its items

    @property
    def percent(self) -> float:
        return round(scale100(self.earned / self.possible), 2) if self.possible > 0 else 0.0


@dataclass
class LearnerProgression:
    learner: str
    name: str
    course: str
    language: str
    initial: str  # the tests' titles
    final: str
    before: Published
    after: Published
    by: str  # BY_ITEM, BY_SKILL or BY_NOTHING: what the tests share
    parts: list[PartChange]  # this learner's levels, from what was published with items
    detail_published: bool  # both results were published with their items (else no parts can show)

    @property
    def change(self) -> float:
        return round(self.after.percent - self.before.percent, 2)


async def learner_progressions(
    session: AsyncSession,
    course: CourseInfo,
    p: IndividualProgressionParams,
    who: Who | None = None,
    pair: Pair | None = None,
) -> AsyncIterator[tuple[int, list[LearnerProgression]]]:
    """Per chunk: how many learners it covered, and the reports of those with both results published
    (not excused) and both tests taken in the period. Only what was published to the learner is shown:
    the scores of the snapshots, and questions only where both were published with their items. `who`
    and `pair`: the params' learners and tests, if the caller has them already."""
    pair = pair or await pair_of(session, course, p.assessment)
    skills = await _item_skills(session, pair) if pair.by == BY_SKILL else {}
    who = who or await who_of(session, course.id, p)
    async for people in learner_chunks(session, course.id, who):
        ids = people["id"].to_numpy()
        _, in_period = await _team_and_period(session, pair, ids, p.since, p.until)
        published = await _published_pairs(session, pair, ids[in_period])
        reports = []
        for person in people.filter(in_period).iter_rows(named=True):
            shown = published.get(int(person["id"]))
            if shown is None or len(shown) < 2:
                continue
            before, after = shown[pair.initial.id], shown[pair.final.id]
            detail = before.items is not None and after.items is not None
            reports.append(
                LearnerProgression(
                    learner=person["external_id"],
                    name=display_name(person),
                    course=course.title,
                    language=p.language,
                    initial=pair.initial.title,
                    final=pair.final.title,
                    before=before,
                    after=after,
                    by=pair.by,
                    parts=_learner_parts(pair, skills, before, after) if detail else [],
                    detail_published=detail,
                )
            )
        yield people.height, reports


async def _published_pairs(session: AsyncSession, pair: Pair, ids: np.ndarray) -> dict[int, dict[int, Published]]:
    """The chunk's published, final (not excused) results on the two tests, by enrollment and test."""
    out: dict[int, dict[int, Published]] = {}
    for r in await repository.published_scores(session, pair.initial.id, pair.final.id, ids):
        out.setdefault(r.enrollment_id, {})[r.assessment_id] = Published(r.earned, r.possible, r.items)
    return out


async def _item_skills(session: AsyncSession, pair: Pair) -> dict[tuple[int, str], list[tuple[str, float]]]:
    """The skills (and weights) of each item of the two tests, by (test, item external id)."""
    out: dict[tuple[int, str], list[tuple[str, float]]] = {}
    for r in await repository.item_skills(session, pair.initial.id, pair.final.id):
        out.setdefault((r.assessment_id, r.item), []).append((r.skill, r.weight))
    return out


def _levels(published: Published, keys: dict[str, list[tuple[str, float]]]) -> dict[str, float]:
    """The learner's level (percent) per key from the published items: sum(w x earned) / sum(w x possible)."""
    earned: dict[str, float] = {}
    possible: dict[str, float] = {}
    for item in published.items or []:
        if item.get("earned") is None:
            continue
        for key, weight in keys.get(str(item.get("item")), []):
            earned[key] = earned.get(key, 0.0) + weight * float(item["earned"])
            possible[key] = possible.get(key, 0.0) + weight * float(item["possible"])
    return {k: earned[k] * 100 / possible[k] for k in earned if possible[k] > 0}


def _learner_parts(
    pair: Pair, skills: dict[tuple[int, str], list[tuple[str, float]]], before: Published, after: Published
) -> list[PartChange]:
    """The learner's level per shared question (or skill) on both tests, from what was published."""
    if pair.by == BY_NOTHING:
        return []
    sums = _PartSums()
    if pair.by == BY_ITEM:
        shared = {k: [(k, 1.0)] for k in pair.shared_items}
        old, new = _levels(before, shared), _levels(after, shared)
    else:
        old = _levels(before, {i: s for (a, i), s in skills.items() if a == pair.initial.id})
        new = _levels(after, {i: s for (a, i), s in skills.items() if a == pair.final.id})
    for key in old.keys() & new.keys():
        sums.add(key, 1, old[key], new[key])
    return sums.parts(*_part_order(pair))
