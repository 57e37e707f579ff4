"""Skills on items and the skills file (`skills_xlsx`): the test platform's "skills file - a detailed
Excel export of skill levels per candidate".

A hand-built course, worked out by hand (level = sum(weight x earned) / sum(weight x possible)):
  quiz "Algebra quiz"  q1 (4 points): Algebra x1; q2 (6): Algebra x2, Reading x1; q3 (10): no skill
      ann  q1 3, q2 6, q3 5   Algebra (3 + 2*6) / (4 + 2*6) = 15/16 = 93.75   Reading 6/6 = 100
      bob  q1 1, q2 2, q3 0   Algebra (1 + 2*2) / 16 = 5/16 = 31.25           Reading 2/6 = 33.33
      cid  excused: nothing counts (a row, empty cells)
  essay "Essay"        e1 (10, manual): Reading x1; e2 (5): Writing x0.5 (results count once confirmed)
      ann  e1 7, e2 4, confirmed       Reading 7/10 = 70   Writing (0.5*4) / (0.5*5) = 80
      bob  e1 5, e2 1, confirmed, then e2 rescored: waiting for confirmation again, nothing counts
  Overall: ann Algebra 93.75, Reading (6 + 7) / (6 + 10) = 81.25, Writing 80; bob Algebra 31.25,
  Reading 33.33 (the quiz alone). dan is enrolled without an attempt: not a row (the results table's
  rows are attempts; the skills file has a row per learner among them).
"""

from __future__ import annotations

import io
from typing import Any

import httpx
import openpyxl
import pytest

from gradeflow.core.settings import Settings
from gradeflow.readside.service import course_data
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import course

C = "/v1/courses/c1"
QUIZ_ITEMS: list[dict[str, Any]] = [
    {"external_id": "q1", "points_possible": 4, "skills": [{"skill": "Algebra"}]},
    {
        "external_id": "q2",
        "points_possible": 6,
        "skills": [{"skill": "Algebra", "weight": 2}, {"skill": "Reading", "weight": 1}],
    },
    {"external_id": "q3", "points_possible": 10},
]
ESSAY_ITEMS: list[dict[str, Any]] = [
    {"external_id": "e1", "points_possible": 10, "marking": "manual", "skills": [{"skill": "Reading"}]},
    {"external_id": "e2", "points_possible": 5, "skills": [{"skill": "Writing", "weight": 0.5}]},
]
LEARNER_HEADERS = ["Learner ID", "Last name", "First name", "Full name", "Username", "Groups", "Cohort"]


async def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


async def _scores(t: Tenant, assessment: str, learner: str, source: str = "auto", **items: float) -> None:
    body = {"items": [{"item": i, "earned": e} for i, e in items.items()], "source": source}
    await _ok(await t.put(f"{C}/assessments/{assessment}/scores/{learner}", json=body))


async def _course(t: Tenant) -> None:
    await course(t)
    rows = [
        {
            "external_id": "ann",
            "username": "ann",
            "full_name": "Ann Ünal",
            "given_name": "Ann",
            "family_name": "Ünal",
            "cohort": "A",
            "groups": ["g-a"],
        },
        {"external_id": "bob", "username": "bob", "full_name": "Bob Stone", "cohort": "B", "groups": ["g-a", "g-b"]},
        {"external_id": "cid", "username": "cid", "given_name": "Cid", "family_name": "Ødegård"},
        {"external_id": "dan", "username": "dan"},
    ]
    await _ok(await t.post(f"{C}/enrollments:batch", json={"enrollments": rows}))
    quiz = {"external_id": "quiz", "title": "Algebra quiz", "category": "Quiz", "items": QUIZ_ITEMS}
    await _ok(await t.post(f"{C}/assessments", json=quiz))
    essay = {"external_id": "essay", "title": "Essay", "category": "Essay", "items": ESSAY_ITEMS}
    await _ok(await t.post(f"{C}/assessments", json=essay))
    await _scores(t, "quiz", "ann", q1=3, q2=6, q3=5)
    await _scores(t, "quiz", "bob", q1=1, q2=2, q3=0)
    await _ok(await t.put(f"{C}/assessments/quiz/excused/cid"))
    await _scores(t, "essay", "ann", "manual", e1=7, e2=4)
    await _scores(t, "essay", "bob", "manual", e1=5, e2=1)
    await _ok(await t.post(f"{C}/assessments/essay/confirmations", json={}))
    await _scores(t, "essay", "bob", e2=2)  # a change reopens bob's essay for confirmation


async def _request(t: Tenant, settings: Settings, **params: Any) -> dict[str, Any]:
    r = await t.post(f"{C}/reports", json={"kind": "skills_xlsx", "params": params})
    assert r.status_code == 202, r.text
    await run_worker(settings)
    body = dict((await t.get(r.headers["location"])).json())
    assert body["status"] == "succeeded", body
    return body


async def _sheet(t: Tenant, settings: Settings, **params: Any) -> Any:
    body = await _request(t, settings, **params)
    async with httpx.AsyncClient() as http:
        file = await http.get(body["download_url"])
    book = openpyxl.load_workbook(io.BytesIO(file.content))
    assert [s.title for s in book.worksheets] == ["Skills"]
    return book.worksheets[0]


def _values(sheet: Any) -> list[tuple[Any, ...]]:
    return list(sheet.iter_rows(values_only=True))


ANN = ("ann", "Ünal", "Ann", "Ann Ünal", "ann", "g-a", "A")
BOB = ("bob", None, None, "Bob Stone", "bob", "g-a, g-b", "B")
CID = ("cid", "Ødegård", "Cid", None, "cid", None, None)


async def test_the_skills_file_cell_by_cell(
    tenant: Tenant, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _course(tenant)
    sheet = await _sheet(tenant, settings)
    header, *rows = list(sheet.iter_rows())
    assert [c.value for c in header] == [
        *LEARNER_HEADERS,
        "Algebra quiz - Algebra",
        "Algebra quiz - Reading",
        "Essay - Reading",
        "Essay - Writing",
        "Overall - Algebra",
        "Overall - Reading",
        "Overall - Writing",
    ]
    expected = [
        (*ANN, 93.75, 100, 70, 80, 93.75, 81.25, 80),
        (*BOB, 31.25, 33.33, None, None, 31.25, 33.33, None),
        (*CID, None, None, None, None, None, None, None),
    ]
    assert [tuple(c.value for c in row) for row in rows] == expected
    for row in rows:
        for cell in row[len(LEARNER_HEADERS) :]:
            # Levels are numbers shown with two decimals; no level is an empty cell, never 0.
            if cell.value is None:
                assert cell.data_type == "n" and cell.number_format == "General", cell.coordinate
            else:
                assert cell.data_type == "n" and cell.number_format == "0.00", cell.coordinate
    # The report says how many rows it wrote.
    reports = (await tenant.get(f"{C}/reports")).json()["items"]
    assert reports[0]["kind"] == "skills_xlsx" and reports[0]["rows"] == 3
    assert reports[0]["file_name"].startswith("c1_skills_") and reports[0]["file_name"].endswith(".xlsx")
    # Read two learners at a time: the same file.
    monkeypatch.setattr(course_data, "CHUNK", 2)
    assert _values(await _sheet(tenant, settings)) == [tuple(c.value for c in header), *expected]


async def test_the_skills_file_is_filtered_like_the_results_table(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)
    # One assessment: its columns only, and "overall" is over that assessment.
    assert _values(await _sheet(tenant, settings, assessment="essay")) == [
        (*LEARNER_HEADERS, "Essay - Reading", "Essay - Writing", "Overall - Reading", "Overall - Writing"),
        (*ANN, 70, 80, 70, 80),
        (*BOB, None, None, None, None),  # waiting for confirmation: no level yet
    ]
    everything = _values(await _sheet(tenant, settings))
    by_learner = {row[0]: row for row in everything[1:]}
    for params, learners in (
        ({"cohort": "B"}, ["bob"]),
        ({"group": "g-a"}, ["ann", "bob"]),
        ({"search": "ødegård"}, ["cid"]),
        ({"group": "g-b", "assessment": "quiz"}, ["bob"]),
    ):
        rows = _values(await _sheet(tenant, settings, **params))
        assert [r[0] for r in rows[1:]] == learners, params
        if "assessment" not in params:
            assert rows[0] == everything[0]
            assert rows[1:] == [by_learner[x] for x in learners], params
    # A filter that keeps nobody: the header alone.
    assert _values(await _sheet(tenant, settings, search="nobody")) == [everything[0]]


async def test_requests_are_checked(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)

    async def refused(params: dict[str, Any], pointer: str) -> None:
        r = await tenant.post(f"{C}/reports", json={"kind": "skills_xlsx", "params": params})
        assert_problem(r, 422, pointer)

    await refused({"assessment": "nope"}, "/params/assessment")
    await refused({"group": "g-z"}, "/params/group")
    await refused({"cohort": "Z"}, "/params/cohort")
    await refused({"status": ["graded"]}, "/params/status")  # a level counts graded results only
    await refused({"time_zone": "UTC"}, "/params/time_zone")  # no times in the file


async def test_skills_on_items_through_the_api(tenant: Tenant) -> None:
    await course(tenant)
    quiz = {"external_id": "quiz", "title": "Algebra quiz", "category": "Quiz", "items": QUIZ_ITEMS}
    created = await _ok(await tenant.post(f"{C}/assessments", json=quiz))
    assert [i["skills"] for i in created["items"]] == [
        [{"skill": "Algebra", "weight": 1}],
        [{"skill": "Algebra", "weight": 2}, {"skill": "Reading", "weight": 1}],
        [],
    ]
    # A change that does not name skills keeps them; naming them replaces them (no new revision).
    items = [
        {"external_id": "q1", "points_possible": 4, "title": "Factorise"},
        {"external_id": "q2", "points_possible": 6, "skills": [{"skill": " Geometry ", "weight": 0.25}]},
    ]
    changed = await _ok(await tenant.patch(f"{C}/assessments/quiz", json={"items": items}))
    assert [(i["skills"], i["revision"]) for i in changed["items"]] == [
        ([{"skill": "Algebra", "weight": 1}], 1),
        ([{"skill": "Geometry", "weight": 0.25}], 1),
        ([], 1),
    ]
    listed = (await tenant.get(f"{C}/assessments")).json()["items"][0]
    assert listed["items"] == changed["items"]
    assert (await tenant.get(f"{C}/assessments/quiz")).json()["items"] == changed["items"]
    # Audited with the assessment's own action, old and new skills side by side.
    entries = (await tenant.get(f"{C}/audit", params={"action": "assessment.updated"})).json()["items"]
    assert len(entries) == 1
    old, new = entries[0]["old"]["items"], entries[0]["new"]["items"]
    assert [i["skills"] for i in old] == [i["skills"] for i in created["items"]]
    assert [i["skills"] for i in new] == [i["skills"] for i in changed["items"]]
    assert old[0]["title"] is None and new[0]["title"] == "Factorise"
    # An empty list clears them.
    cleared = [{"external_id": "q1", "points_possible": 4, "title": "Factorise", "skills": []}]
    after = await _ok(await tenant.patch(f"{C}/assessments/quiz", json={"items": cleared}))
    assert [i["skills"] for i in after["items"]] == [[], [{"skill": "Geometry", "weight": 0.25}], []]


async def test_bad_skills_are_named(tenant: Tenant) -> None:
    await course(tenant)

    async def refused(skills: Any, *pointers: str, second: Any = None) -> None:
        items = [{"external_id": "q1", "points_possible": 1, "skills": skills}]
        if second is not None:
            items.append({"external_id": "q2", "points_possible": 1, "skills": second})
        body = {"external_id": "a1", "title": "A", "category": "Quiz", "items": items}
        assert_problem(await tenant.post(f"{C}/assessments", json=body), 422, *pointers)

    await refused([{"skill": "A", "weight": 0}], "/items/0/skills/0/weight")
    await refused([{"skill": "A", "weight": -1}], "/items/0/skills/0/weight")
    await refused([{"skill": "A"}, {"skill": "B", "weight": 1000.5}], "/items/0/skills/1/weight")
    await refused([{"skill": "A", "weight": "NaN"}], "/items/0/skills/0/weight")
    await refused([{"skill": ""}], "/items/0/skills/0/skill")
    await refused([{"skill": "   "}], "/items/0/skills/0/skill")
    await refused([{"skill": "x" * 101}], "/items/0/skills/0/skill")
    await refused([{"skill": "A\x00"}], "/items/0/skills/0/skill")
    await refused([{"weight": 1}], "/items/0/skills/0/skill")
    await refused([{"skill": "A", "level": 3}], "/items/0/skills/0/level")
    await refused([{"skill": f"s{n}"} for n in range(51)], "/items/0/skills")
    await refused("Algebra", "/items/0/skills")
    # Repeats are named where they repeat, in every item.
    await refused(
        [{"skill": "A"}, {"skill": "A", "weight": 2}],
        "/items/0/skills/1/skill",
        "/items/1/skills/2/skill",
        second=[{"skill": "B"}, {"skill": "C"}, {"skill": "B"}],
    )
    # At the limits: 50 skills, names of 100 characters, weights up to 1000.
    skills = [{"skill": f"{n:03d}" + "x" * 97, "weight": 1000 if n else 0.000001} for n in range(50)]
    body = {"external_id": "a1", "title": "A", "category": "Quiz"}
    created = await _ok(
        await tenant.post(
            f"{C}/assessments", json={**body, "items": [{"external_id": "q1", "points_possible": 1, "skills": skills}]}
        )
    )
    assert created["items"][0]["skills"] == skills


async def test_hostile_skill_names_stay_text_and_repeated_titles_keep_their_columns(
    tenant: Tenant, settings: Settings
) -> None:
    await course(tenant)
    await _ok(await tenant.post(f"{C}/enrollments:batch", json={"enrollments": [{"external_id": "ann"}]}))
    items = [{"external_id": "q1", "points_possible": 2, "skills": [{"skill": "=SUM(A1)"}, {"skill": "x"}]}]
    for ext, title in (("a1", "Overall"), ("a2", "Overall")):
        await _ok(
            await tenant.post(
                f"{C}/assessments", json={"external_id": ext, "title": title, "category": "Q", "items": items}
            )
        )
        await _scores(tenant, ext, "ann", q1=1 if ext == "a1" else 2)
    sheet = await _sheet(tenant, settings)
    header, row = _values(sheet)
    assert header[len(LEARNER_HEADERS) :] == (
        "Overall - =SUM(A1) (2)",
        "Overall - x (2)",
        "Overall - =SUM(A1) (3)",
        "Overall - x (3)",
        "Overall - =SUM(A1)",
        "Overall - x",
    )
    assert row[len(LEARNER_HEADERS) :] == (50, 50, 100, 100, 75, 75)
    assert all(c.data_type != "f" for r in sheet.iter_rows() for c in r)


async def test_a_sheet_cannot_hold_the_columns(tenant: Tenant) -> None:
    await course(tenant)
    items = [
        {"external_id": f"q{k}", "points_possible": 1, "skills": [{"skill": f"s{k}-{n}"} for n in range(50)]}
        for k in range(170)
    ]
    await _ok(
        await tenant.post(f"{C}/assessments", json={"external_id": "a", "title": "A", "category": "Q", "items": items})
    )
    # 8,500 skills: 8,500 columns for the assessment and 8,500 overall, past a sheet's 16,384.
    r = await tenant.post(f"{C}/reports", json={"kind": "skills_xlsx"})
    problem = assert_problem(r, 422, "/params/assessment")
    assert "17,007 columns" in problem["errors"][0]["detail"]


async def test_sessions_and_archived_groups_filter_the_skills_file(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)
    # ann sat the quiz in session s1; bob sat it elsewhere. In s1, only ann's quiz counts, overall too.
    await _ok(await tenant.post(f"{C}/sessions", json={"external_id": "s1"}))
    await _ok(
        await tenant.put(f"{C}/sessions/s1/attempts", json={"attempts": [{"assessment": "quiz", "learner": "ann"}]})
    )
    assert _values(await _sheet(tenant, settings, session="s1"))[1:] == [
        (*ANN, 93.75, 100, None, None, 93.75, 100, None)
    ]
    assert_problem(
        await tenant.post(f"{C}/reports", json={"kind": "skills_xlsx", "params": {"session": "s9"}}),
        422,
        "/params/session",
    )
    # A learner whose every group is archived is left out unless asked for; cid is in no group.
    await _ok(await tenant.put(f"{C}/groups/g-b", json={"archived": True}))
    await _ok(await tenant.put(f"{C}/groups/g-a", json={"archived": True}))
    assert [r[0] for r in _values(await _sheet(tenant, settings))[1:]] == ["cid"]
    await _ok(await tenant.put(f"{C}/groups/g-b", json={"archived": False}))  # bob has a live group again
    assert [r[0] for r in _values(await _sheet(tenant, settings))[1:]] == ["bob", "cid"]
    shown = _values(await _sheet(tenant, settings, include_archived=True))
    assert [r[0] for r in shown[1:]] == ["ann", "bob", "cid"]


async def test_levels_are_exact_and_rounded_half_up(tenant: Tenant, settings: Settings) -> None:
    """Ties at half a hundredth round up, from exact sums: 0.01005 of 1 point is 1.01 % (a double
    makes it 1.0049999..., which rounds to 1.0); points near the 10**12 limit times a weight of 1000
    overflow 64-bit integers and are summed exactly all the same."""
    await course(tenant)
    await _ok(
        await tenant.post(
            f"{C}/enrollments:batch", json={"enrollments": [{"external_id": "ann"}, {"external_id": "bob"}]}
        )
    )
    small = [
        {"external_id": "q1", "points_possible": 1, "skills": [{"skill": "Tie"}]},
        {"external_id": "q2", "points_possible": 3, "skills": [{"skill": "Third", "weight": 0.000001}]},
        {"external_id": "q3", "points_possible": 1, "skills": [{"skill": "Tiny"}]},
    ]
    huge = [{"external_id": "h1", "points_possible": 100_000_000_000, "skills": [{"skill": "Huge", "weight": 1000}]}]
    for ext, items in (("a", small), ("b", huge)):
        await _ok(
            await tenant.post(
                f"{C}/assessments", json={"external_id": ext, "title": ext.upper(), "category": "Q", "items": items}
            )
        )
    await _scores(tenant, "a", "ann", q1=0.33335, q2=2, q3=0.01005)
    await _scores(tenant, "a", "bob", q1=0.333349, q2=1, q3=0)
    await _ok(
        await tenant.put(f"{C}/assessments/b/scores/ann", json={"items": [{"item": "h1", "earned": "33335000000"}]})
    )
    await _ok(
        await tenant.put(
            f"{C}/assessments/b/scores/bob", json={"items": [{"item": "h1", "earned": "33334999999.999999"}]}
        )
    )
    levels = {"ann": (33.34, 66.67, 1.01), "bob": (33.33, 33.33, 0)}
    # One assessment: sums that fit 64-bit integers.
    rows = _values(await _sheet(tenant, settings, assessment="a"))
    assert rows[0][len(LEARNER_HEADERS) :] == (
        "A - Tie",
        "A - Third",
        "A - Tiny",
        "Overall - Tie",
        "Overall - Third",
        "Overall - Tiny",
    )
    assert {r[0]: r[len(LEARNER_HEADERS) :] for r in rows[1:]} == {k: v + v for k, v in levels.items()}
    # With the huge item in the chunk, every sum is made with Python's integers: the same answers.
    rows = _values(await _sheet(tenant, settings))
    assert {r[0]: r[len(LEARNER_HEADERS) :] for r in rows[1:]} == {
        "ann": (*levels["ann"], 33.34, *levels["ann"], 33.34),
        "bob": (*levels["bob"], 33.33, *levels["bob"], 33.33),
    }
