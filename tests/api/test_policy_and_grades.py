"""Course policies (versioned, If-Match, preview) and stored grades kept current."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from gradeflow.core.settings import Settings
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, enroll, grant, user_token

POLICY = {
    "preset": "standard",
    "categories": [{"name": "Homework", "weight": 0.4, "drop_lowest": 1}, {"name": "Exam", "weight": 0.6}],
    "cutoffs": [
        {"grade": "A", "min": 0.9},
        {"grade": "B", "min": 0.8},
        {"grade": "C", "min": 0.5},
        {"grade": "F", "min": 0},
    ],
}


async def _course(t: Tenant) -> None:
    await course(t)
    for hw in ("hw1", "hw2", "hw3"):
        await assessment(t, "c1", hw, points_possible=10)
    await assessment(t, "c1", "exam", category="Exam", points_possible=100)
    await enroll(t, "c1", "ann", "bob", "cid")
    rows = [
        ("ann", "hw1", 10),
        ("ann", "hw2", 9),
        ("ann", "hw3", 2),
        ("ann", "exam", 95),
        ("bob", "hw1", 5),
        ("bob", "hw2", 6),
        ("bob", "hw3", 7),
        ("bob", "exam", 80),
    ]
    body = {"scores": [{"assessment": a, "learner": learner, "earned": e} for learner, a, e in rows]}
    assert (await t.post("/v1/courses/c1/scores:batch", json=body)).status_code == 200


async def _grades(t: Tenant) -> dict[str, Any]:
    page = (await t.get("/v1/courses/c1/grades")).json()
    return {g["learner"]: g for g in page["items"]}


async def test_policy_versions_recompute_and_stored_grades(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)
    assert_problem(await tenant.get("/v1/courses/c1/policy"), 404)
    r = await tenant.put("/v1/courses/c1/policy", json=POLICY)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"v1"' and r.json()["version"] == 1
    assert r.json()["recompute"]["status"] == "queued" and r.json()["grades_version"] is None
    await run_worker(settings)
    policy = (await tenant.get("/v1/courses/c1/policy")).json()
    assert policy["grades_version"] == 1 and policy["recompute"]["status"] == "succeeded", policy
    assert policy["recompute"]["progress"] == 100

    grades = await _grades(tenant)
    # ann: homework keeps 10 + 9 of 20 (hw3 dropped) = 95 %, exam 95 % -> 95 %.
    assert grades["ann"]["final"] == {"percent": 95.0, "grade": "A", "passed": True}
    # bob: homework 13/20 = 65 %, exam 80 % -> 0.4 * 65 + 0.6 * 80 = 74 %.
    assert grades["bob"]["final"]["percent"] == 74.0 and grades["bob"]["final"]["grade"] == "C"
    # cid has no work: current has no grade yet, final is 0.
    assert grades["cid"]["current"]["percent"] is None and grades["cid"]["final"]["grade"] == "F"

    detail = (await tenant.get("/v1/courses/c1/learners/ann/grade")).json()
    hw = detail["explanation"]["final"][0]
    assert (hw["name"], hw["dropped"], hw["counted"]) == ("Homework", ["hw3"], ["hw1", "hw2"])
    assert hw["applied_weight"] == 0.4 and hw["rules"]["drop_lowest"] == 1
    assert detail["policy_version"] == 1

    # A score write is reflected by the next grade read, worker or not.
    assert (await tenant.put("/v1/courses/c1/assessments/exam/scores/cid", json={"earned": 50})).status_code == 200
    cid = (await tenant.get("/v1/courses/c1/learners/cid/grade")).json()
    assert cid["current"]["percent"] == 50.0 and cid["final"]["percent"] == 30.0

    # A new version: the old grades stay served until the recompute finishes, then all switch.
    stale = await tenant.put(
        "/v1/courses/c1/policy", json={**POLICY, "weighting": "points"}, headers={"If-Match": '"v0"'}
    )
    assert_problem(stale, 412)
    r = await tenant.put("/v1/courses/c1/policy", json={**POLICY, "weighting": "points"}, headers={"If-Match": '"v1"'})
    assert r.json()["version"] == 2 and r.json()["grades_version"] == 1
    assert (await _grades(tenant))["ann"]["policy_version"] == 1
    await run_worker(settings)
    after = await _grades(tenant)
    assert {g["policy_version"] for g in after.values()} == {2}
    # Points: ann keeps 19 of 20 homework points and 95 of 100 on the exam: 114/120 = 95 %.
    assert after["ann"]["final"]["percent"] == 95.0
    # bob: 13 + 80 of 120 = 77.5 %.
    assert after["bob"]["final"]["percent"] == 77.5
    versions = (await tenant.get("/v1/courses/c1/policy/versions")).json()["items"]
    assert [v["version"] for v in versions] == [2, 1] and versions[1]["policy"]["weighting"] == "categories"


_OWN = "JOIN enrollments e ON e.id = {t}.enrollment_id JOIN courses c ON c.id = e.course_id AND c.organization_id = :o"


async def _stored_final(sessionmaker: Any, t: Tenant, learner: str) -> float:
    """The stored grade as it is in the database (reading it through the API would refresh it)."""
    async with sessionmaker() as session:
        sql = f"SELECT g.final_percent FROM course_grades g {_OWN.format(t='g')} WHERE e.external_id = :l"  # noqa: S608
        return float(await session.scalar(text(sql), {"l": learner, "o": t.id}))


async def test_single_score_writes_refresh_grades_in_the_worker(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _course(tenant)
    await tenant.put("/v1/courses/c1/policy", json=POLICY)
    await run_worker(settings)
    assert await _stored_final(sessionmaker, tenant, "cid") == 0.0
    for exam in (40, 50):  # a burst of writes: the worker refreshes the course once, a moment later
        r = await tenant.put("/v1/courses/c1/assessments/exam/scores/cid", json={"earned": exam})
        assert r.status_code == 200
    assert await _stored_final(sessionmaker, tenant, "cid") == 0.0  # not yet: nobody read it
    await run_worker(settings)
    assert await _stored_final(sessionmaker, tenant, "cid") == 30.0
    async with sessionmaker() as session:
        sql = f"SELECT count(*) FROM stale_grades s {_OWN.format(t='s')}"  # noqa: S608
        assert await session.scalar(text(sql), {"o": tenant.id}) == 0


async def test_new_assessment_triggers_recompute(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)
    await tenant.put("/v1/courses/c1/policy", json=POLICY)
    await run_worker(settings)
    await assessment(tenant, "c1", "exam2", category="Exam", points_possible=100)
    assert (await tenant.get("/v1/courses/c1/policy")).json()["recompute"]["status"] == "queued"
    await run_worker(settings)
    # The second exam is not graded yet: ann's final exam category is now 95 of 200.
    ann = (await tenant.get("/v1/courses/c1/learners/ann/grade")).json()
    assert ann["final"]["percent"] == 66.5  # 0.4 * 95 + 0.6 * 47.5


async def test_preview_changes_nothing(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)
    await tenant.put("/v1/courses/c1/policy", json=POLICY)
    await run_worker(settings)
    draft = {**POLICY, "cutoffs": [{"grade": "A", "min": 0.7}, {"grade": "F", "min": 0}]}
    r = await tenant.post("/v1/courses/c1/policy:preview", json=draft)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["learners"] == 3
    assert body["before"]["letters"] == {"A": 1, "C": 1, "F": 1} and body["after"]["letters"] == {"A": 2, "F": 1}
    assert body["changed_count"] == 1 and body["changed"][0] == {
        "learner": "bob",
        "from": "C",
        "to": "A",
        "percent_from": 74.0,
        "percent_to": 74.0,
    }
    assert (await tenant.get("/v1/courses/c1/policy")).json()["version"] == 1


async def test_policy_input_errors_and_roles(tenant: Tenant) -> None:
    await _course(tenant)
    bad = {**POLICY, "categories": [{"name": "Homework", "weight": 1, "never_drop": ["nope"]}]}
    assert_problem(await tenant.put("/v1/courses/c1/policy", json=bad), 422, "/categories/0/never_drop/0")
    dup = {**POLICY, "categories": [{"name": "H", "weight": 0.5}, {"name": "H", "weight": 0.5}]}
    assert_problem(await tenant.put("/v1/courses/c1/policy", json=dup), 422, "/categories/1/name")
    assert_problem(await tenant.put("/v1/courses/c1/policy", json={**POLICY, "assessments": []}), 422, "/assessments")
    assert_problem(
        await tenant.put("/v1/courses/c1/policy", json=POLICY, headers={"If-Match": "yesterday"}), 422, "If-Match"
    )
    await grant(tenant, "c1", "g1", "grader")
    grader = await user_token(tenant, "g1")
    assert_problem(await tenant.put("/v1/courses/c1/policy", json=POLICY, as_=grader), 403)
    assert (await tenant.put("/v1/courses/c1/policy", json=POLICY)).status_code == 200
    assert (await tenant.get("/v1/courses/c1/policy", as_=grader)).status_code == 200
    assert_problem(await tenant.get("/v1/courses/c1/grades", as_=grader), 403)  # results are not for graders


async def test_canvas_explanation_applies_weights_as_the_grade_does(tenant: Tenant, settings: Settings) -> None:
    """Canvas scales weights below 100 % up but never down: with 100 % + 100 % the grade is the sum
    of the two groups' percents, and the explanation says each group weighed 1.0 (it said 0.5)."""
    await _course(tenant)
    policy = {
        "preset": "canvas",
        "categories": [{"name": "Homework", "weight": 1.0}, {"name": "Exam", "weight": 1.0}],
        "cutoffs": [{"grade": "A", "min": 0.9}, {"grade": "F", "min": 0}],
    }
    assert (await tenant.put("/v1/courses/c1/policy", json=policy)).status_code == 200
    await run_worker(settings)
    detail = (await tenant.get("/v1/courses/c1/learners/bob/grade")).json()
    # bob: homework 18/30 = 60 %, exam 80 %: 60 + 80 = 140 %, as Canvas shows it.
    assert detail["final"]["percent"] == 140.0
    weights = {c["name"]: c["applied_weight"] for c in detail["explanation"]["final"]}
    assert weights == {"Homework": 1.0, "Exam": 1.0}
