"""What the PDF reports hold: a course built through the API, then its group results and learner
records read as the worker reads them (inside a report snapshot), compared field by field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from gradeflow.core.settings import Settings
from gradeflow.readside.service import course_data
from gradeflow.reports.commands import GroupReportParams, IndividualReportsParams
from gradeflow.reports.service.report_records import (
    AssessmentLine,
    CategoryLine,
    ItemLine,
    LearnerRecord,
    Ranked,
    group_results,
    learner_records,
)
from tests.conftest import Tenant, run_worker
from tests.helpers import assessment, course, grant, user_token

C = "/v1/courses/c1"


def _at(day: str) -> str:
    return f"2026-{day}T00:00:00Z"


async def _load(sessionmaker: Any, t: Tenant) -> course_data.CourseInfo:
    async with sessionmaker() as session:
        course_id = await session.scalar(
            text("SELECT id FROM courses WHERE organization_id = :o AND external_id = 'c1'"), {"o": t.id}
        )
        return await course_data.load_course(session, int(course_id))


async def _group(sessionmaker: Any, t: Tenant, **params: Any) -> Any:
    info = await _load(sessionmaker, t)
    async with course_data.snapshot(sessionmaker) as snap:
        return await group_results(snap.session, info, GroupReportParams(assessment="quiz", **params))


async def _records(sessionmaker: Any, t: Tenant, **params: Any) -> dict[str, LearnerRecord]:
    info = await _load(sessionmaker, t)
    out: dict[str, LearnerRecord] = {}
    async with course_data.snapshot(sessionmaker) as snap:
        async for chunk in learner_records(snap.session, info, IndividualReportsParams(**params)):
            out |= {r.learner: r for r in chunk}
    return out


async def _taken(t: Tenant, learner: str, day: str, earned: float | None) -> None:
    """The learner sat the quiz (submitted on `day`) and, with `earned`, was scored."""
    r = await t.put(f"{C}/assessments/quiz/attempts/{learner}", json={"status": "submitted", "submitted_at": _at(day)})
    assert r.status_code == 200, r.text
    if earned is not None:
        r = await t.put(f"{C}/assessments/quiz/scores/{learner}", json={"earned": earned})
        assert r.status_code == 200, r.text


async def _group_course(t: Tenant, settings: Settings) -> None:
    """A quiz out of 10 sat by group g1: cid 9, ann and bob 8 (a tie), dan 5 (in April); eve is on the
    course team (10); hal awaits grading, ivy is excused, gus's sitting was cancelled, fay never sat it;
    zed (group g2) scored 10."""
    await course(t)
    people = ["ann", "bob", "cid", "dan", "eve", "fay", "gus", "hal", "ivy", "zed"]
    rows = [
        {
            "external_id": x,
            "username": x,
            "full_name": x.capitalize() + " Test",
            "groups": ["g2" if x == "zed" else "g1"],
            "is_course_team": x == "eve",
        }
        for x in people
    ]
    assert (await t.post(f"{C}/enrollments:batch", json={"enrollments": rows})).status_code == 200
    await assessment(t, "c1", "quiz", title="Quiz one", category="Quiz")
    policy = {
        "categories": [{"name": "Quiz", "weight": 1}],
        "cutoffs": [{"grade": "A", "min": 0.8}, {"grade": "B", "min": 0.5}],
    }
    assert (await t.put(f"{C}/policy", json=policy)).status_code == 200
    # ann sat it at the very start of March, bob at the very start of April: the period's two edges.
    for learner, day, earned in [
        ("ann", "03-01", 8),
        ("bob", "04-01", 8),
        ("cid", "03-12", 9),
        ("dan", "04-05", 5),
        ("eve", "03-10", 10),
        ("hal", "03-15", None),
        ("ivy", "03-16", 7),
        ("zed", "03-20", 10),
    ]:
        await _taken(t, learner, day, earned)
    assert (await t.put(f"{C}/assessments/quiz/excused/ivy")).status_code == 200
    await t.put(f"{C}/assessments/quiz/attempts/gus", json={"status": "to_be_taken"})
    assert (await t.put(f"{C}/assessments/quiz/attempts/gus", json={"status": "cancelled"})).status_code == 200
    await run_worker(settings)


def _ranking(g: Any) -> list[tuple[int | None, str, float, float, str | None]]:
    return [(r.rank, r.learner, r.earned, r.percent, r.letter) for r in g.ranking]


async def test_group_results_share_ranks_and_keep_the_course_team_apart(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _group_course(tenant, settings)
    g = await _group(sessionmaker, tenant, group="g1", language="fr")
    assert (g.course, g.assessment, g.group, g.cohort, g.language, g.possible) == (
        "Physics 101",
        "Quiz one",
        "g1",
        None,
        "fr",
        10.0,
    )
    # Equal scores share a rank and the next rank skips (1, 2, 2, 4); ties by name. zed is in g2.
    assert _ranking(g) == [
        (1, "cid", 9.0, 90.0, "A"),
        (2, "ann", 8.0, 80.0, "A"),
        (2, "bob", 8.0, 80.0, "A"),
        (4, "dan", 5.0, 50.0, "B"),
    ]
    assert g.ranking[1].name == "Ann Test"
    # The course team member is listed apart, unranked, and counts in no figure.
    assert g.team == [Ranked(rank=None, learner="eve", name="Eve Test", earned=10.0, percent=100.0, letter="A")]
    assert (g.not_graded, g.excused, g.not_taken) == (1, 1, 2)  # hal; ivy; fay and gus (cancelled)
    assert g.stats == {"count": 4, "mean": 75.0, "median": 80.0, "stdev": 15.0, "min": 50.0, "max": 90.0}
    assert g.histogram == [0, 0, 0, 0, 0, 1, 0, 0, 2, 1]
    assert g.letters == {"A": 3, "B": 1}
    everyone = await _group(sessionmaker, tenant)
    assert everyone.group is None and everyone.cohort is None
    assert [(r.rank, r.learner) for r in everyone.ranking] == [
        (1, "zed"),
        (2, "cid"),
        (3, "ann"),
        (3, "bob"),
        (5, "dan"),
    ]


async def test_group_results_cover_the_tests_taken_in_the_period(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _group_course(tenant, settings)
    since, until = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    g = await _group(sessionmaker, tenant, group="g1", since=since, until=until)
    assert (g.since, g.until) == (since, until)
    # since is inclusive (ann sat at 03-01 00:00), until exclusive (bob sat at 04-01 00:00).
    assert _ranking(g) == [(1, "cid", 9.0, 90.0, "A"), (2, "ann", 8.0, 80.0, "A")]
    assert [r.learner for r in g.team] == ["eve"]
    # bob and dan sat outside the period: with fay and gus, no sitting in it.
    assert (g.not_graded, g.excused, g.not_taken) == (1, 1, 4)
    assert g.stats["count"] == 2 and g.stats["mean"] == 85.0 and g.histogram[8:] == [1, 1]
    # A re-mark today does not move a sitting out of the period it was taken in.
    assert (await tenant.put(f"{C}/assessments/quiz/scores/cid", json={"earned": 10})).status_code == 200
    await run_worker(settings)
    g = await _group(sessionmaker, tenant, group="g1", since=since, until=until)
    assert _ranking(g)[0] == (1, "cid", 10.0, 100.0, "A")
    empty = await _group(sessionmaker, tenant, since=datetime(2025, 1, 1, tzinfo=UTC), until=since)
    assert empty.ranking == [] and empty.team == [] and empty.stats["mean"] is None and empty.not_taken == 9


async def _individual_course(t: Tenant, settings: Settings) -> None:
    """Three homeworks (the lowest dropped) and an exam with a question marked by hand. ann's results
    are scored, marked with an internal comment, given feedback, and partly published; bob's hw1 is
    scored, nothing of his published; cid has nothing."""
    await course(t)
    rows = [
        {"external_id": "ann", "username": "ann", "full_name": "Ann Ünal"},
        {"external_id": "bob", "username": "bob"},
        {"external_id": "cid", "username": "cid"},
    ]
    assert (await t.post(f"{C}/enrollments:batch", json={"enrollments": rows})).status_code == 200
    for ext, title in (("hw1", "Intro"), ("hw2", "Vectors"), ("hw3", "Forces")):
        await assessment(t, "c1", ext, title=title)
    items = [
        {"external_id": "q1", "number": "1", "title": "Choice", "points_possible": 4},
        {"external_id": "q2", "number": "2", "title": "Essay", "points_possible": 6, "marking": "manual"},
    ]
    await assessment(t, "c1", "exam", title="Final", category="Exam", items=items)
    policy = {
        "categories": [{"name": "Homework", "weight": 0.5, "drop_lowest": 1}, {"name": "Exam", "weight": 0.5}],
        "cutoffs": [{"grade": "Pass", "min": 0.5}],
    }
    assert (await t.put(f"{C}/policy", json=policy)).status_code == 200
    await run_worker(settings)
    scores = [("ann", "hw1", 9), ("ann", "hw2", 4), ("ann", "hw3", 7), ("bob", "hw1", 10)]
    body = {"scores": [{"assessment": a, "learner": lr, "earned": e} for lr, a, e in scores]}
    assert (await t.post(f"{C}/scores:batch", json=body)).status_code == 200
    r = await t.put(f"{C}/assessments/exam/scores/ann", json={"items": [{"item": "q1", "earned": 3}]})
    assert r.status_code == 200, r.text
    await grant(t, "c1", "g1", "grader")
    r = await t.post(f"{C}/assessments/exam/allocations", json={"graders": ["g1"], "mode": "even"})
    assert r.status_code in (200, 201), r.text
    r = await t.put(
        f"{C}/assessments/exam/marks/ann/q2",
        json={"points": 5, "comment": "internal: generous"},
        as_=await user_token(t, "g1"),
    )
    assert r.status_code == 200, r.text
    assert (await t.post(f"{C}/assessments/exam/confirmations", json={"learners": ["ann"]})).status_code == 200
    for url, words in (
        (f"{C}/assessments/exam/feedback/ann/q2", "Cite sources"),
        (f"{C}/assessments/exam/feedback/ann", "Well argued"),
    ):
        assert (await t.put(url, json={"text": words})).status_code == 200
    await run_worker(settings)
    for what in (
        {"assessments": ["hw1", "hw2"]},
        {"assessments": ["exam"], "show": "with_items"},
        {"course_grade": True},
    ):
        r = await t.post(f"{C}/publications", json={**what, "audience": {"learners": ["ann"]}})
        assert r.status_code == 201, r.text
    await run_worker(settings)


def _line(label: str, title: str, state: str, possible: float, **shown: Any) -> AssessmentLine:
    base: dict[str, Any] = {"earned": None, "percent": None, "dropped": False, "feedback": None, "items": []}
    return AssessmentLine(label=label, title=title, state=state, possible=possible, **(base | shown))


async def test_learner_records_show_what_was_published_with_drops_and_item_detail(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _individual_course(tenant, settings)
    records = await _records(sessionmaker, tenant, language="fr")
    assert list(records) == ["ann", "bob", "cid"]
    ann = records["ann"]
    assert (ann.name, ann.course, ann.language, ann.cutoffs) == ("Ann Ünal", "Physics 101", "fr", [("Pass", 50.0)])
    # homework: 9 and 7 counted (4 dropped) = 80 %; exam 8/10 = 80 %; the course grade 80 %.
    assert (ann.grade_percent, ann.grade_letter) == (80.0, "Pass")
    assert ann.categories == [
        CategoryLine(
            name="Homework",
            percent=80.0,
            assessments=[
                _line("Homework 1", "Intro", "final", 10.0, earned=9.0, percent=90.0),
                _line("Homework 2", "Vectors", "final", 10.0, earned=4.0, percent=40.0, dropped=True),
                # hw3 (7 points, counted in the grade) was never published: no score shows.
                _line("Homework 3", "Forces", "not_available", 10.0),
            ],
        ),
        CategoryLine(
            name="Exam",
            percent=80.0,
            assessments=[
                _line(
                    "Exam",
                    "Final",
                    "final",
                    10.0,
                    earned=8.0,
                    percent=80.0,
                    feedback="Well argued",
                    items=[
                        ItemLine(number="1", title="Choice", earned=3.0, possible=4.0, feedback=None),
                        ItemLine(number="2", title="Essay", earned=5.0, possible=6.0, feedback="Cite sources"),
                    ],
                )
            ],
        ),
    ]
    assert "internal: generous" not in repr(records)  # the markers' comments are theirs alone
    # bob's hw1 is scored but not published; his grade is not published: no score, no drop, no percent.
    bob = records["bob"]
    assert (bob.grade_percent, bob.grade_letter) == (None, None)
    assert [(a.state, a.earned, a.dropped) for c in bob.categories for a in c.assessments] == [
        ("not_available", None, False),
        ("not_attempted", None, False),
        ("not_attempted", None, False),
        ("not_attempted", None, False),
    ]
    assert [c.percent for c in bob.categories] == [None, None]
    assert {a.state for c in records["cid"].categories for a in c.assessments} == {"not_attempted"}
    only = await _records(sessionmaker, tenant, learners=["bob"])
    assert list(only) == ["bob"] and only["bob"].language == "en"


async def test_learner_records_keep_the_published_grade_after_a_change(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _individual_course(tenant, settings)
    # A re-score after publication: the learner keeps the published result and grade; the drops and
    # category percents of the new stored grade explain another grade, so they are not shown.
    assert (await tenant.put(f"{C}/assessments/hw2/scores/ann", json={"earned": 10})).status_code == 200
    await run_worker(settings)
    ann = (await _records(sessionmaker, tenant))["ann"]
    assert ann.grade_percent == 80.0
    homework = ann.categories[0]
    assert homework.percent is None and not any(a.dropped for a in homework.assessments)
    assert (homework.assessments[1].earned, homework.assessments[1].state) == (4.0, "final")
    # Published again, the new grade explains itself: hw1 9, hw2 10, hw3 7 -> 7 dropped.
    for what in ({"assessments": ["hw2", "hw3"]}, {"course_grade": True}):
        r = await tenant.post(f"{C}/publications", json={**what, "audience": {"learners": ["ann"]}})
        assert r.status_code == 201, r.text
    ann = (await _records(sessionmaker, tenant))["ann"]
    homework = ann.categories[0]
    assert [(a.earned, a.dropped) for a in homework.assessments] == [(9.0, False), (10.0, False), (7.0, True)]
    assert homework.percent == 95.0 and ann.grade_percent == 87.5
