"""Courses, enrollments, members, assessments with items, attempts."""

from __future__ import annotations

from tests.conftest import Tenant, assert_problem
from tests.helpers import assessment, course, enroll


async def test_course_lifecycle_and_keyset_pages(tenant: Tenant) -> None:
    for i in range(5):
        await course(tenant, f"course-v1:Org+C{i}+2026", f"Course {i}")
    r = await tenant.post("/v1/courses", json={"external_id": "course-v1:Org+C0+2026", "title": "dup"})
    assert_problem(r, 409)
    seen, cursor = [], None
    while True:
        page = (await tenant.get("/v1/courses", params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
        seen += [c["external_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"course-v1:Org+C{i}+2026" for i in range(5)]
    r = await tenant.patch("/v1/courses/course-v1:Org+C1+2026", json={"archived": True})
    assert r.json()["archived"] is True
    archived = (await tenant.get("/v1/courses", params={"archived": "true"})).json()["items"]
    assert [c["external_id"] for c in archived] == ["course-v1:Org+C1+2026"]
    assert_problem(await tenant.get("/v1/courses/nope"), 404)


async def test_enrollments_single_bulk_and_filters(tenant: Tenant) -> None:
    await course(tenant)
    rows = [
        {
            "external_id": f"u{i}",
            "username": f"user{i}",
            "email": f"u{i}@example.org",
            "full_name": f"Ünï {i}",
            "track": "verified" if i % 2 else "audit",
            "cohort": "A" if i < 5 else "B",
            "groups": ["g1"],
        }
        for i in range(10)
    ]
    r = await tenant.post("/v1/courses/c1/enrollments:batch", json={"enrollments": rows})
    assert r.json() == {"written": 10}
    rows[0]["full_name"] = "Renamed"
    assert (await tenant.post("/v1/courses/c1/enrollments:batch", json={"enrollments": rows})).json() == {"written": 10}
    one = (await tenant.get("/v1/courses/c1/enrollments/u0")).json()
    assert one["full_name"] == "Renamed" and one["groups"] == ["g1"] and one["status"] == "enrolled"
    r = await tenant.patch("/v1/courses/c1/enrollments/u1", json={"status": "unenrolled", "team": "red"})
    assert r.json()["status"] == "unenrolled" and r.json()["team"] == "red" and r.json()["cohort"] == "A"
    r = await tenant.put("/v1/courses/c1/enrollments/u99", json={"username": "late", "is_course_team": True})
    assert r.status_code == 200 and r.json()["is_course_team"] is True
    b = (await tenant.get("/v1/courses/c1/enrollments", params={"cohort": "B"})).json()["items"]
    assert [e["external_id"] for e in b] == ["u5", "u6", "u7", "u8", "u9"]
    gone = (await tenant.get("/v1/courses/c1/enrollments", params={"status": "unenrolled"})).json()["items"]
    assert [e["external_id"] for e in gone] == ["u1"]


async def test_enrollment_batch_errors_name_the_row(tenant: Tenant) -> None:
    await course(tenant)
    rows = [{"external_id": "a"}, {"external_id": "b", "email": "not-an-email"}, {"external_id": "a"}]
    r = await tenant.post("/v1/courses/c1/enrollments:batch", json={"enrollments": rows})
    assert_problem(r, 422, "/enrollments/1/email")
    r = await tenant.post("/v1/courses/c1/enrollments:batch", json={"enrollments": [rows[0], rows[2]]})
    assert_problem(r, 422, "/enrollments/1/external_id")
    assert (await tenant.get("/v1/courses/c1/enrollments")).json()["items"] == []
    too_many = {"enrollments": [{"external_id": f"x{i}"} for i in range(10_001)]}
    assert_problem(await tenant.post("/v1/courses/c1/enrollments:batch", json=too_many), 422, "/enrollments")


async def test_members_roles(tenant: Tenant) -> None:
    await course(tenant)
    r = await tenant.put("/v1/courses/c1/members/ann", json={"roles": ["grader", "publisher", "grader"]})
    ann = {"user_id": "ann", "roles": ["grader", "publisher"], "publish_assessments": None}
    assert r.json() == ann
    assert_problem(await tenant.put("/v1/courses/c1/members/bob", json={"roles": ["boss"]}), 422, "/roles/0")
    limited = {"roles": ["grader"], "publish_assessments": ["hw1"]}
    assert_problem(await tenant.put("/v1/courses/c1/members/bob", json=limited), 422, "/publish_assessments")
    r = await tenant.put("/v1/courses/c1/members/bob", json={"roles": ["publisher"], "publish_assessments": ["hw1"]})
    bob = {"user_id": "bob", "roles": ["publisher"], "publish_assessments": ["hw1"]}
    assert r.json() == bob
    assert (await tenant.get("/v1/courses/c1/members")).json() == [ann, bob]
    assert (await tenant.delete("/v1/courses/c1/members/ann")).status_code == 204
    assert_problem(await tenant.delete("/v1/courses/c1/members/ann"), 404)


async def test_assessments_with_items_in_course_order(tenant: Tenant) -> None:
    await course(tenant)
    exam = await assessment(
        tenant,
        "c1",
        "exam",
        category="Exam",
        items=[
            {"external_id": "q1", "number": "1a", "points_possible": 2.5},
            {"external_id": "q2", "number": "1b", "points_possible": 7.5, "marking": "manual"},
        ],
    )
    assert exam["points_possible"] == 10 and [i["number"] for i in exam["items"]] == ["1a", "1b"]
    await assessment(tenant, "c1", "hw1", points_possible=20)
    await assessment(tenant, "c1", "hw0", points_possible=5, position=0)
    assert_problem(
        await tenant.post("/v1/courses/c1/assessments", json={"external_id": "x", "title": "X", "category": "HW"}),
        422,
        "/points_possible",
    )
    r = await tenant.post(
        "/v1/courses/c1/assessments", json={"external_id": "hw1", "title": "T", "category": "HW", "points_possible": 1}
    )
    assert_problem(r, 409)
    order = [a["external_id"] for a in (await tenant.get("/v1/courses/c1/assessments")).json()["items"]]
    assert order == ["exam", "hw0", "hw1"]  # equal positions keep creation order
    page1 = (await tenant.get("/v1/courses/c1/assessments", params={"limit": 2})).json()
    page2 = (await tenant.get("/v1/courses/c1/assessments", params={"limit": 2, "cursor": page1["next_cursor"]})).json()
    assert [a["external_id"] for a in page1["items"] + page2["items"]] == order and page2["next_cursor"] is None

    # Changing an item's points bumps its revision; a title change does not; new items are added.
    r = await tenant.patch(
        "/v1/courses/c1/assessments/exam",
        json={
            "items": [
                {"external_id": "q1", "number": "1a", "points_possible": 5},
                {"external_id": "q2", "number": "1b", "title": "Essay", "points_possible": 7.5, "marking": "manual"},
                {"external_id": "q3", "number": "2", "points_possible": 1},
            ]
        },
    )
    items = {i["external_id"]: i for i in r.json()["items"]}
    assert (items["q1"]["revision"], items["q2"]["revision"], items["q3"]["revision"]) == (2, 1, 1)
    assert r.json()["points_possible"] == 13.5
    assert_problem(
        await tenant.patch("/v1/courses/c1/assessments/exam", json={"points_possible": 3}), 422, "/points_possible"
    )
    r = await tenant.patch(
        "/v1/courses/c1/assessments/hw1", json={"title": "Homework 1", "due_at": "2026-12-01T12:00:00Z"}
    )
    assert r.json()["title"] == "Homework 1" and r.json()["due_at"].startswith("2026-12-01T12:00:00")
    assert_problem(
        await tenant.patch("/v1/courses/c1/assessments/hw1", json={"due_at": "2026-12-01T12:00:00"}), 422, "/due_at"
    )


async def test_attempt_transitions(tenant: Tenant) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "quiz")
    await enroll(tenant, "c1", "l1", "l2")
    url = "/v1/courses/c1/assessments/quiz/attempts"
    for status in ("to_be_taken", "in_progress", "submitted", "pending_grading", "graded"):
        r = await tenant.put(f"{url}/l1", json={"status": status})
        assert r.status_code == 200 and r.json()["status"] == status
    body = assert_problem(await tenant.put(f"{url}/l1", json={"status": "cancelled"}), 409)
    assert "graded" in body["detail"]
    assert (
        await tenant.put(f"{url}/l2", json={"status": "in_progress", "started_at": "2026-11-20T10:00:00+01:00"})
    ).status_code == 200
    assert (await tenant.put(f"{url}/l2", json={"status": "cancelled"})).status_code == 200
    assert_problem(await tenant.put(f"{url}/l2", json={"status": "in_progress"}), 409)
    assert_problem(await tenant.put(f"{url}/l2", json={"status": "done"}), 422, "/status")
    assert_problem(await tenant.put(f"{url}/nobody", json={"status": "in_progress"}), 404)
    listed = (await tenant.get(url, params={"status": "cancelled"})).json()["items"]
    assert [a["learner"] for a in listed] == ["l2"] and listed[0]["started_at"].startswith("2026-11-20T09:00")
