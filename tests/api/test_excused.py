"""Excused work: a learner excused from an assessment (set and cleared by planners, at any time,
audited), counted as excused by every preset, and shown as Excused by every reader."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import openpyxl
from sqlalchemy import text

from gradeflow.core.settings import Settings
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, enroll, grant, user_token

HOMEWORK = {"name": "Homework", "weight": 0.4}
EXAM = {"name": "Exam", "weight": 0.6}
CUTOFFS = [{"grade": "A", "min": 0.9}, {"grade": "B", "min": 0.8}, {"grade": "F", "min": 0}]


def _excused(c: str, a: str, learner: str) -> str:
    return f"/v1/courses/{c}/assessments/{a}/excused/{learner}"


async def _course(t: Tenant, c: str, policy: dict[str, Any]) -> None:
    """hw1-hw3 (10 points, Homework) and an exam (100 points, Exam). ann: 10, 4, 8 and 80; bob: 5, 6, no
    hw3, 70; dan: full homework marks, exam attempt cancelled."""
    await course(t, c)
    for hw in ("hw1", "hw2", "hw3"):
        await assessment(t, c, hw, points_possible=10)
    await assessment(t, c, "exam", category="Exam", points_possible=100)
    await enroll(t, c, "ann", "bob", "dan")
    rows = [("ann", "hw1", 10), ("ann", "hw2", 4), ("ann", "hw3", 8), ("ann", "exam", 80)]
    rows += [("bob", "hw1", 5), ("bob", "hw2", 6), ("bob", "exam", 70)]
    rows += [("dan", "hw1", 10), ("dan", "hw2", 10), ("dan", "hw3", 10)]
    body = {"scores": [{"assessment": a, "learner": learner, "earned": e} for learner, a, e in rows]}
    assert (await t.post(f"/v1/courses/{c}/scores:batch", json=body)).status_code == 200
    for status in ("in_progress", "cancelled"):
        r = await t.put(f"/v1/courses/{c}/assessments/exam/attempts/dan", json={"status": status})
        assert r.status_code == 200, r.text
    r = await t.put(f"/v1/courses/{c}/policy", json={"cutoffs": CUTOFFS, **policy})
    assert r.status_code == 200, r.text


async def _final(t: Tenant, c: str, learner: str) -> float:
    r = await t.get(f"/v1/courses/{c}/learners/{learner}/grade")
    assert r.status_code == 200, r.text
    return float(r.json()["final"]["percent"])


async def test_each_preset_counts_an_excused_result_as_it_defines_excused(tenant: Tenant, settings: Settings) -> None:
    policies = {
        "std": {"preset": "standard", "categories": [HOMEWORK, EXAM]},
        "cnv": {"preset": "canvas", "categories": [HOMEWORK, EXAM]},
        "edx": {"preset": "openedx", "categories": [HOMEWORK, EXAM]},
        "edx3": {"preset": "openedx", "categories": [{**HOMEWORK, "min_count": 3}, EXAM]},
    }
    for c, policy in policies.items():
        await _course(tenant, c, policy)
    await run_worker(settings)
    # ann before: Homework 22/30 (openedx: mean of 100, 40 and 80 %), exam 80 -> 77.33 (openedx 77).
    # Excused from hw2, it leaves numerator and denominator: Homework 18/20 = 90 % -> 84. Open edX
    # skips the subsection (takes no slot); with min_count 3 a 0 % placeholder takes its place:
    # (100 + 80 + 0) / 3 = 60 % -> 0.4 x 60 + 0.6 x 80 = 72.
    expected = {"std": (77.33, 84.0), "cnv": (77.33, 84.0), "edx": (77.0, 84.0), "edx3": (77.0, 72.0)}
    for c, (before, excused) in expected.items():
        assert await _final(tenant, c, "ann") == before, c
        r = await tenant.put(_excused(c, "hw2", "ann"))
        assert r.status_code == 200, r.text
        assert r.json()["excused"] is True and r.json()["status"] == "graded" and r.json()["earned"] == 4
        assert await _final(tenant, c, "ann") == excused, c
        # The score is kept: clearing the excuse gives the grade its scores say.
        assert (await tenant.delete(_excused(c, "hw2", "ann"))).status_code == 204
        assert await _final(tenant, c, "ann") == before, c

    # A learner with no attempt is excused all the same: an attempt (to_be_taken) carries the flag.
    # bob under standard: the missing hw3 counts 0 in the final grade, 11/30 and 70 -> 56.67; excused
    # from it, 11/20 -> 0.4 x 55 + 0.6 x 70 = 64.
    assert await _final(tenant, "std", "bob") == 56.67
    r = await tenant.put(_excused("std", "hw3", "bob"))
    assert r.status_code == 200 and (r.json()["status"], r.json()["excused"], r.json()["earned"]) == (
        "to_be_taken",
        True,
        None,
    )
    assert await _final(tenant, "std", "bob") == 64.0
    score = await tenant.put("/v1/courses/std/assessments/hw3/scores/bob", json={"earned": 10})
    assert score.status_code == 200 and score.json()["excused"] is True  # a score does not clear it
    assert await _final(tenant, "std", "bob") == 64.0

    # A cancelled attempt is not an excuse: it counts as not attempted, as no row would. dan has full
    # homework marks and a cancelled exam: 0.4 x 100 + 0.6 x 0 = 40 (standard, openedx); canvas skips
    # work with no row, so the exam is left out: 100.
    assert await _final(tenant, "std", "dan") == 40.0
    assert await _final(tenant, "edx", "dan") == 40.0
    assert await _final(tenant, "cnv", "dan") == 100.0
    # ... and a cancelled attempt can still be excused, which counts as excused.
    assert (await tenant.put(_excused("std", "exam", "dan"))).status_code == 200
    assert await _final(tenant, "std", "dan") == 100.0


async def test_excusing_refreshes_the_stored_grade_in_the_worker(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _course(tenant, "c1", {"categories": [HOMEWORK, EXAM]})
    await run_worker(settings)

    async def stored() -> float:
        async with sessionmaker() as session:
            sql = """SELECT g.final_percent FROM course_grades g JOIN enrollments e ON e.id = g.enrollment_id
                     JOIN courses c ON c.id = e.course_id WHERE c.organization_id = :o AND e.external_id = 'ann'"""
            return float(await session.scalar(text(sql), {"o": tenant.id}))

    assert await stored() == 77.33
    assert (await tenant.put(_excused("c1", "hw2", "ann"))).status_code == 200
    await run_worker(settings)  # the follow-up the excuse asked for, as after a score write
    assert await stored() == 84.0
    async with sessionmaker() as session:
        events = await session.scalars(
            text("SELECT data FROM outbox_events WHERE organization_id = :o AND type = 'grade.changed'"),
            {"o": tenant.id},
        )
        changes = [e for e in events if e["learner"] == "ann"]
    assert changes[-1]["old"]["percent"] == 77.33 and changes[-1]["new"]["percent"] == 84.0


async def test_only_planners_and_api_keys_excuse_and_every_change_is_audited(tenant: Tenant) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "hw1")
    await enroll(tenant, "c1", "ann", "bob")
    await grant(tenant, "c1", "p1", "planner")
    await grant(tenant, "c1", "g1", "grader")
    planner, grader, learner = [await user_token(tenant, u) for u in ("p1", "g1", "ann")]
    url = _excused("c1", "hw1", "ann")
    for token, status in ((grader, 403), (learner, 404)):
        assert_problem(await tenant.put(url, as_=token), status)
        assert_problem(await tenant.delete(url, as_=token), status)
    assert_problem(await tenant.put(_excused("c1", "hw1", "nobody")), 404)
    assert_problem(await tenant.put(_excused("c1", "nope", "ann")), 404)

    assert (await tenant.put(url, as_=planner)).status_code == 200
    assert (await tenant.put(url)).status_code == 200  # already excused: no change, no entry
    assert (await tenant.delete(url)).status_code == 204
    assert (await tenant.delete(url)).status_code == 204  # not excused: no change, no entry
    assert (await tenant.delete(_excused("c1", "hw1", "bob"))).status_code == 204  # no attempt: nothing made
    assert_problem(await tenant.get("/v1/courses/c1/assessments/hw1/attempts/bob"), 404)
    attempt = (await tenant.get("/v1/courses/c1/assessments/hw1/attempts/ann")).json()
    assert attempt["excused"] is False and attempt["status"] == "to_be_taken"

    entries = (await tenant.get("/v1/courses/c1/audit")).json()["items"]
    mine = [e for e in entries if e["action"].startswith("result.")]
    assert sorted((e["action"], e["learner"], e["assessment"]) for e in mine) == [
        ("result.excused", "ann", "hw1"),
        ("result.unexcused", "ann", "hw1"),
    ]
    by_action = {e["action"]: e for e in mine}
    assert by_action["result.excused"]["actor"] == "p1"
    assert by_action["result.unexcused"]["actor"].startswith("key:")
    assert (by_action["result.excused"]["old"], by_action["result.excused"]["new"]) == (
        {"excused": False},
        {"excused": True},
    )
    assert by_action["result.unexcused"]["new"] == {"excused": False}


async def _report(t: Tenant, settings: Settings, kind: str, **params: Any) -> bytes:
    r = await t.post("/v1/courses/c1/reports", json={"kind": kind, "params": params})
    assert r.status_code == 202, r.text
    await run_worker(settings)
    body = (await t.get(r.headers["location"])).json()
    assert body["status"] == "succeeded", body
    async with httpx.AsyncClient() as http:
        return (await http.get(body["download_url"])).content


def _csv(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


async def test_readers_show_excused(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, "c1", {"categories": [HOMEWORK, EXAM]})
    await run_worker(settings)
    assert (await tenant.put(_excused("c1", "hw2", "ann"))).status_code == 200

    score = (await tenant.get("/v1/courses/c1/assessments/hw2/scores/ann")).json()
    assert score["excused"] is True and score["earned"] == 4  # staff still see the score it had
    listed = (await tenant.get("/v1/courses/c1/assessments/hw2/scores")).json()["items"]
    assert {s["learner"]: s["excused"] for s in listed} == {"ann": True, "bob": False, "dan": False}

    page = (await tenant.get("/v1/courses/c1/gradebook")).json()
    ann = next(r for r in page["items"] if r["learner"] == "ann")
    cell = next(c for c in ann["assessments"] if c["assessment"] == "hw2")
    assert (cell["status"], cell["score"], cell["display"]) == ("excused", None, "Excused")
    assert ann["final"]["percent"] == 84.0
    # Sorted or filtered by hw2's score, an excused learner has none.
    ranged = (await tenant.get("/v1/courses/c1/gradebook", params={"assessment": "hw2", "score_min": 0})).json()
    assert sorted(r["learner"] for r in ranged["items"]) == ["bob", "dan"]
    gradebook = _csv((await tenant.get("/v1/courses/c1/gradebook.csv")).content)
    assert next(r for r in gradebook if r["Student ID"] == "ann")["HW2 (hw2)"] == "Excused"

    rows = (await tenant.get("/v1/courses/c1/results", params={"assessment": "hw2"})).json()["items"]
    row = next(r for r in rows if r["learner"] == "ann")
    assert (row["result"], row["percent"]) == ("Excused", None)

    progress = (await tenant.get("/v1/courses/c1/learners/ann/progress")).json()
    hw2 = next(a for a in progress["assessments"] if a["assessment"] == "hw2")
    assert hw2["excused"] is True and hw2["earned"] is None and progress["final"]["percent"] == 84.0

    stats = (await tenant.get("/v1/courses/c1/statistics", params={"assessment": "hw2"})).json()
    assert stats["count"] == 2 and stats["mean"] == 80.0  # bob 60 %, dan 100 %; ann left out

    grade_report = _csv(await _report(tenant, settings, "grade_report"))
    ann_grades = next(r for r in grade_report if r["Student ID"] == "ann")
    assert (ann_grades["Homework 2"], ann_grades["Homework 3"]) == ("Excused", "0.8")
    assert ann_grades["Homework (Avg)"] == "0.36"  # (10 + 8) / 20 times the weight 0.4: the excused one is left out
    problems = _csv(await _report(tenant, settings, "problem_grade_report"))
    ann_problems = next(r for r in problems if r["Student ID"] == "ann")
    assert ann_problems["Homework 2: HW2 (Earned)"] == "Excused"
    assert ann_problems["Homework 2: HW2 (Possible)"] == "10"
    marks = _csv(await _report(tenant, settings, "marks_and_grades", assessment="hw2"))
    assert {r["CandidateExternalId"]: r["FinalGrade"] for r in marks}["ann"] == "Excused"
    book = openpyxl.load_workbook(io.BytesIO(await _report(tenant, settings, "results_xlsx", search="ann")))
    sheet_rows = list(book.worksheets[0].iter_rows(values_only=True))
    header, data = sheet_rows[0], sheet_rows[1:]
    assert "Result text" not in header
    excused_row = next(r for r in data if r[header.index("Assessment ID")] == "hw2")
    assert excused_row[header.index("Result")] == "Excused" and excused_row[header.index("Percent")] is None


async def test_a_published_excused_result_shows_the_learner_excused(tenant: Tenant, settings: Settings) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "hw1")
    await assessment(tenant, "c1", "hw2")
    await enroll(tenant, "c1", "ann")
    assert (await tenant.put("/v1/courses/c1/policy", json={"categories": [HOMEWORK]})).status_code == 200
    await run_worker(settings)
    assert (await tenant.put("/v1/courses/c1/assessments/hw1/scores/ann", json={"earned": 6})).status_code == 200
    # Excused before any attempt or score, then published: the learner sees Excused, no score.
    assert (await tenant.put(_excused("c1", "hw2", "ann"))).status_code == 200
    publish = {"assessments": ["hw1", "hw2"], "audience": {"learners": ["ann"]}}
    r = await tenant.post("/v1/courses/c1/publications", json=publish)
    assert r.status_code == 201 and r.json()["skipped"] == 0, r.text
    learner = await user_token(tenant, "ann")
    mine = (await tenant.get("/v1/me/courses/c1/results", as_=learner)).json()["results"]
    shown = {x["assessment"]: (x["excused"], x["earned"]) for x in mine}
    assert shown == {"hw1": (False, 6), "hw2": (True, None)}
    progress = (await tenant.get("/v1/courses/c1/learners/ann/progress", as_=learner)).json()
    assert next(a for a in progress["assessments"] if a["assessment"] == "hw2")["excused"] is True
    entries = (await tenant.get("/v1/courses/c1/audit", params={"action": "result.published"})).json()["items"]
    assert {e["assessment"]: e["new"]["excused"] for e in entries} == {"hw1": False, "hw2": True}

    # Publishing it again changes nothing; cleared and scored, staff see it changed since published,
    # and the learner keeps seeing Excused until it is published again.
    again = (await tenant.post("/v1/courses/c1/publications", json=publish)).json()
    assert again["changed"] == 0
    assert (await tenant.delete(_excused("c1", "hw2", "ann"))).status_code == 204
    assert (await tenant.put("/v1/courses/c1/assessments/hw2/scores/ann", json={"earned": 9})).status_code == 200
    score = (await tenant.get("/v1/courses/c1/assessments/hw2/scores/ann")).json()
    assert score["excused"] is False and score["publication"]["state"] == "changed"
    mine = (await tenant.get("/v1/me/courses/c1/results", as_=learner)).json()["results"]
    assert {x["assessment"]: x["excused"] for x in mine}["hw2"] is True
    assert (await tenant.post("/v1/courses/c1/publications", json=publish)).json()["changed"] == 1
    mine = (await tenant.get("/v1/me/courses/c1/results", as_=learner)).json()["results"]
    assert {x["assessment"]: (x["excused"], x["earned"]) for x in mine}["hw2"] == (False, 9)
