"""Inspera's marks and grades CSV, compared cell by cell with the file a hand-built test should give,
and the staff directory whose usernames it prints."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
from sqlalchemy import text

from gradeflow.core.settings import Settings
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, enroll, grant, user_token

EXAM = "/v1/courses/c1/assessments/exam"
ITEMS = [
    {"external_id": "q1", "number": "1", "title": "Choice", "points_possible": 4},
    {"external_id": "q2", "number": "2", "title": "Match", "points_possible": 2},
    {"external_id": "q3", "number": "3", "title": "Essay", "points_possible": 6, "marking": "manual"},
    {"external_id": "q4", "number": "4a", "title": "Proof", "points_possible": 4, "marking": "manual"},
]


async def _scores(t: Tenant, learner: str, as_: str | None = None, **body: Any) -> None:
    items = [{"item": item, "earned": earned} for item, earned in body.pop("items").items()]
    r = await t.put(f"{EXAM}/scores/{learner}", json={"items": items, **body}, as_=as_)
    assert r.status_code == 200, r.text


async def _exam(t: Tenant, settings: Settings) -> None:
    """ann, bob and cid take the exam: two automatic questions (ann's q1 overridden by the planner p1,
    then rescored by the test engine; bob's q2 overridden by the LMS for x9, whom the directory does
    not know), two manual ones marked by g1 and g2 (bob's q4 then overridden by p1). Only ann's
    grading is confirmed; cid is excused."""
    await course(t)
    await enroll(t, "c1", "ann", "bob", "cid")
    marking = {"graders_per_item": 2, "reconciliation": "average"}
    await assessment(t, "c1", "exam", title="Final", category="Exam", items=ITEMS, marking=marking)
    policy = {
        "categories": [{"name": "Exam", "weight": 1}],
        "cutoffs": [{"grade": "A", "min": 0.8}, {"grade": "B", "min": 0.5}, {"grade": "F", "min": 0}],
    }
    assert (await t.put("/v1/courses/c1/policy", json=policy)).status_code == 200
    await run_worker(settings)  # the policy is the course's from now on
    await grant(t, "c1", "p1", "planner")
    planner = await user_token(t, "p1")  # p1's LMS token carries no names: the directory is set by hand
    r = await t.put("/v1/staff/p1", json={"username": "ada", "name": "Ada Lovelace"})
    assert r.status_code == 200, r.text
    for learner, q1, q2 in (("ann", 3, 2), ("bob", 4, 1), ("cid", 1, 0)):
        await _scores(t, learner, items={"q1": q1, "q2": q2})
    await _scores(t, "ann", as_=planner, items={"q1": 4}, source="override")
    await _scores(t, "ann", items={"q1": 2})  # the engine runs again: the calculated score changes, not the mark
    await _scores(t, "bob", items={"q2": 2}, source="override", graded_by="x9")
    r = await t.post(f"{EXAM}/allocations", json={"graders": ["g1", "g2"], "mode": "even"})
    assert r.status_code in (200, 201), r.text
    marks = {"g1": {"ann": (5, 3), "bob": (4, 2)}, "g2": {"ann": (6, 3), "bob": (4, 3)}}
    for grader, username in (("g1", "grace"), ("g2", "alan")):
        await grant(t, "c1", grader, "grader")
        token = await user_token(t, grader, preferred_username=username, name=username.title())
        for learner, points in marks[grader].items():
            for item, p in zip(("q3", "q4"), points, strict=True):
                r = await t.put(f"{EXAM}/marks/{learner}/{item}", json={"points": p}, as_=token)
                assert r.status_code == 200, r.text
    await _scores(t, "bob", as_=planner, items={"q4": 4}, source="override")
    assert (await t.put(f"{EXAM}/excused/cid")).status_code == 200
    assert (await t.post(f"{EXAM}/confirmations", json={"learners": ["ann"]})).status_code == 200


async def _marks_and_grades(t: Tenant, settings: Settings, course: str, assessment: str) -> list[list[str]]:
    """Ask for the file, let the worker build it, download it and read it back."""
    r = await t.post(
        f"/v1/courses/{course}/reports", json={"kind": "marks_and_grades", "params": {"assessment": assessment}}
    )
    assert r.status_code == 202, r.text
    await run_worker(settings)
    report = (await t.get(r.headers["location"])).json()
    assert report["status"] == "succeeded", report
    async with httpx.AsyncClient() as http:
        content = (await http.get(report["download_url"])).content
    assert b'""' not in content  # an empty cell is empty (Inspera's "empty/null"), not a quoted empty text
    return list(csv.reader(io.StringIO(content.decode("utf-8"))))


async def _ids(sessionmaker: Any, t: Tenant) -> dict[str, str]:
    """The internal ids the file shows: each learner's id in the organization, each question's."""
    async with sessionmaker() as session:
        learners = await session.execute(
            text("SELECT external_id, id FROM learners WHERE organization_id = :o"), {"o": t.id}
        )
        items = await session.execute(
            text(
                "SELECT i.external_id, i.id FROM items i JOIN assessments a ON a.id = i.assessment_id"
                " JOIN courses c ON c.id = a.course_id WHERE c.organization_id = :o AND a.external_id = 'exam'"
            ),
            {"o": t.id},
        )
        return {k: str(v) for k, v in [*learners, *items]}


HEADER = [
    "CandidateExternalId", "UserID", "QuestionNo", "QuestionTitle", "QuestionRevisionId", "QuestionId",
    "GraderUserID1", "GraderUsername1", "GraderUserID2", "GraderUsername2", "GraderUserID3", "GraderUsername3",
    "ManualScore", "AutoScore", "FinalGrade",
]  # fmt: skip

# ann: 4 + 2 + 5.5 + 3 = 14.5 of 16 (0.906): A, confirmed. bob: not confirmed, no final grade yet.
EXPECTED = [
    ["ann", "{ann}", "1", "Choice", "1", "{q1}", "p1", "ada", "", "", "", "", "4", "2", "A"],
    ["ann", "{ann}", "2", "Match", "1", "{q2}", "", "", "", "", "", "", "", "2", "A"],
    ["ann", "{ann}", "3", "Essay", "1", "{q3}", "g1", "grace", "g2", "alan", "", "", "5.5", "", "A"],
    ["ann", "{ann}", "4a", "Proof", "1", "{q4}", "g1", "grace", "g2", "alan", "", "", "3", "", "A"],
    ["bob", "{bob}", "1", "Choice", "1", "{q1}", "", "", "", "", "", "", "", "4", ""],
    ["bob", "{bob}", "2", "Match", "1", "{q2}", "x9", "", "", "", "", "", "2", "1", ""],
    ["bob", "{bob}", "3", "Essay", "1", "{q3}", "g1", "grace", "g2", "alan", "", "", "4", "", ""],
    ["bob", "{bob}", "4a", "Proof", "1", "{q4}", "g1", "grace", "g2", "alan", "p1", "ada", "4", "", ""],
    ["cid", "{cid}", "1", "Choice", "1", "{q1}", "", "", "", "", "", "", "", "1", "Excused"],
    ["cid", "{cid}", "2", "Match", "1", "{q2}", "", "", "", "", "", "", "", "0", "Excused"],
    ["cid", "{cid}", "3", "Essay", "1", "{q3}", "", "", "", "", "", "", "", "", "Excused"],
    ["cid", "{cid}", "4a", "Proof", "1", "{q4}", "", "", "", "", "", "", "", "", "Excused"],
]


async def test_marks_and_grades_match_the_inspera_document(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _exam(tenant, settings)
    # ann takes a second course (after dan): her UserID is the same in both files.
    await course(tenant, "c2", "Chemistry")
    await enroll(tenant, "c2", "dan", "ann")
    await assessment(tenant, "c2", "quiz")
    body = {"scores": [{"assessment": "quiz", "learner": lr, "earned": e} for lr, e in (("dan", 9), ("ann", 7))]}
    assert (await tenant.post("/v1/courses/c2/scores:batch", json=body)).status_code == 200
    ids = await _ids(sessionmaker, tenant)

    assert await _marks_and_grades(tenant, settings, "c1", "exam") == [
        HEADER,
        *([cell.format(**ids) for cell in row] for row in EXPECTED),
    ]

    # A course without cutoffs and an assessment without questions: one row a candidate, the total as
    # the final grade (nothing to confirm), nobody marked it.
    assert await _marks_and_grades(tenant, settings, "c2", "quiz") == [
        [*HEADER[:6], "ManualScore", "AutoScore", "FinalGrade"],
        ["dan", ids["dan"], "", "QUIZ", "", "", "", "9", "9"],
        ["ann", ids["ann"], "", "QUIZ", "", "", "", "7", "7"],
    ]


async def test_the_final_grader_is_listed_after_the_markers(tenant: Tenant, settings: Settings) -> None:
    """Under a final grader, the final grader's mark decides: listed after the marker's, whoever marked
    first; in the shared workflow the columns are the workgroups that marked."""
    await course(tenant)
    await enroll(tenant, "c1", "ann")
    essay = [{"external_id": "q1", "number": "1", "title": "Essay", "points_possible": 10, "marking": "manual"}]
    marking = {"reconciliation": "final_grader", "final_grader": "g2"}
    await assessment(tenant, "c1", "exam", title="Final", items=essay, marking=marking)
    await assessment(tenant, "c1", "oral", title="Oral", items=essay, marking={"workflow": "shared"})
    for name in ("exam", "oral"):
        r = await tenant.put(f"/v1/courses/c1/assessments/{name}/attempts/ann", json={"status": "submitted"})
        assert r.status_code == 200, r.text
    assert (await tenant.put("/v1/courses/c1/workgroups/panel", json={"members": ["g1"]})).status_code == 200
    for name, graders in (("exam", ["g1"]), ("oral", ["panel"])):
        r = await tenant.post(f"/v1/courses/c1/assessments/{name}/allocations", json={"graders": graders})
        assert r.status_code in (200, 201), r.text
    for grader, name, points in (("g2", "exam", 7), ("g1", "exam", 5), ("g1", "oral", 6)):
        await grant(tenant, "c1", grader, "grader")
        token = await user_token(tenant, grader)
        r = await tenant.put(f"/v1/courses/c1/assessments/{name}/marks/ann/q1", json={"points": points}, as_=token)
        assert r.status_code == 200, r.text
    exam = await _marks_and_grades(tenant, settings, "c1", "exam")
    assert [row[6:] for row in exam] == [
        [
            "GraderUserID1",
            "GraderUsername1",
            "GraderUserID2",
            "GraderUsername2",
            "ManualScore",
            "AutoScore",
            "FinalGrade",
        ],
        ["g1", "", "g2", "", "7", "", ""],
    ]
    oral = await _marks_and_grades(tenant, settings, "c1", "oral")
    assert [row[6:] for row in oral] == [
        ["WorkgroupID1", "ManualScore", "AutoScore", "FinalGrade"],
        ["panel", "6", "", ""],
    ]


async def _directory(t: Tenant, **params: Any) -> dict[str, Any]:
    r = await t.get("/v1/staff", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _staff_entries(t: Tenant) -> list[Any]:
    r = await t.get("/v1/audit", params={"action": "staff.updated"})
    return [(e["actor"], e["old"], e["new"]) for e in r.json()["items"]]


async def test_staff_directory_from_tokens_and_from_the_api(tenant: Tenant) -> None:
    await course(tenant)
    await enroll(tenant, "c1", "ann")
    await grant(tenant, "c1", "g1", "grader")
    # A staff user's token names them: the directory learns it once, not on every request.
    token = await user_token(tenant, "g1", preferred_username="grace", name="Grace Hopper")
    for _ in range(2):
        assert (await tenant.get("/v1/courses", as_=token)).status_code == 200
    # A learner's token names them too: learners are not staff.
    learner = await user_token(tenant, "ann", preferred_username="ann.s", name="Ann S")
    assert (await tenant.get("/v1/me/courses/c1/results", as_=learner)).status_code == 200
    # A token without a name keeps the name the directory has; a new username replaces the old one.
    renamed = await user_token(tenant, "g1", preferred_username="grace.h")
    assert (await tenant.get("/v1/courses", as_=renamed)).status_code == 200
    # An LMS whose tokens carry no names sets them (setting the same again changes nothing).
    for _ in range(2):
        r = await tenant.put("/v1/staff/p1", json={"username": "ada"})
        assert r.status_code == 200, r.text
    assert (r.json()["user"], r.json()["username"], r.json()["name"]) == ("p1", "ada", None)

    first = await _directory(tenant, limit=1)
    assert [(e["user"], e["username"], e["name"]) for e in first["items"]] == [("g1", "grace.h", "Grace Hopper")]
    rest = await _directory(tenant, limit=1, cursor=first["next_cursor"])
    assert [(e["user"], e["username"]) for e in rest["items"]] == [("p1", "ada")] and rest["next_cursor"] is None
    assert await _staff_entries(tenant) == [
        ("g1", None, {"user": "g1", "username": "grace", "name": "Grace Hopper"}),
        (
            "g1",
            {"user": "g1", "username": "grace", "name": "Grace Hopper"},
            {"user": "g1", "username": "grace.h", "name": "Grace Hopper"},
        ),
        (
            f"key:{(await tenant.get('/v1/api-keys')).json()[0]['id']}",
            None,
            {"user": "p1", "username": "ada", "name": None},
        ),
    ]
    assert_problem(await tenant.put("/v1/staff/p1", json={"username": ""}), 422, "/username")
    assert (await tenant.get("/v1/staff", as_=token)).status_code == 403  # admin keys only
