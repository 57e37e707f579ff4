"""Separation of duties on course roles, and the record of who changed staff, courses and enrollments."""

from __future__ import annotations

from typing import Any

from tests.conftest import Tenant, assert_problem
from tests.helpers import course, enroll, grant, user_token


async def _actions(t: Tenant, **params: Any) -> list[dict[str, Any]]:
    return list((await t.get("/v1/courses/c1/audit", params={"limit": 1000, **params})).json()["items"])


async def test_a_planner_cannot_make_anyone_publisher_nor_change_their_own_roles(tenant: Tenant) -> None:
    await course(tenant)
    await grant(tenant, "c1", "p1", "planner")
    planner = await user_token(tenant, "p1")
    members = "/v1/courses/c1/members"
    # Themselves: not even a role they could otherwise give.
    assert_problem(await tenant.put(f"{members}/p1", json={"roles": ["planner", "publisher"]}, as_=planner), 403)
    assert_problem(await tenant.put(f"{members}/p1", json={"roles": ["planner", "grader"]}, as_=planner), 403)
    assert_problem(await tenant.delete(f"{members}/p1", as_=planner), 403)
    # Someone else as publisher: only admin keys and publishers grant it.
    assert_problem(await tenant.put(f"{members}/x1", json={"roles": ["publisher"]}, as_=planner), 403)
    r = await tenant.put(f"{members}/x1", json={"roles": ["grader"]}, as_=planner)
    assert r.status_code == 200, r.text
    roles = {m["user_id"]: m["roles"] for m in (await tenant.get(members)).json()}
    assert roles == {"p1": ["planner"], "x1": ["grader"]}


async def test_publishers_grant_publishing_within_their_own_scope(tenant: Tenant) -> None:
    await course(tenant)
    members = "/v1/courses/c1/members"
    await grant(tenant, "c1", "boss", "planner", "publisher")
    r = await tenant.put(f"{members}/lim", json={"roles": ["planner", "publisher"], "publish_assessments": ["hw1"]})
    assert r.status_code == 200, r.text
    boss, limited = await user_token(tenant, "boss"), await user_token(tenant, "lim")
    assert (await tenant.put(f"{members}/x1", json={"roles": ["publisher"]}, as_=boss)).status_code == 200
    assert_problem(await tenant.put(f"{members}/x2", json={"roles": ["publisher"]}, as_=limited), 403)
    assert_problem(await tenant.delete(f"{members}/x1", as_=limited), 403)  # an unlimited publisher
    ok = await tenant.put(f"{members}/x2", json={"roles": ["publisher"], "publish_assessments": ["hw1"]}, as_=limited)
    assert ok.status_code == 200, ok.text
    # A service key acts for the LMS, not for the school's publishers.
    service = (await tenant.post("/v1/api-keys", json={"name": "lms", "role": "service"})).json()["secret"]
    assert_problem(await tenant.put(f"{members}/x3", json={"roles": ["publisher"]}, as_=service), 403)


async def test_role_changes_are_on_the_record(tenant: Tenant) -> None:
    await course(tenant)
    members = "/v1/courses/c1/members"
    await grant(tenant, "c1", "g1", "grader")
    await grant(tenant, "c1", "g1", "grader")  # no change, no entry
    await grant(tenant, "c1", "g1", "grader", "viewer")
    assert (await tenant.delete(f"{members}/g1")).status_code == 204
    entries = [e for e in await _actions(tenant) if e["action"].startswith("member.")]
    assert [(e["action"], e["old"], e["new"]) for e in entries] == [
        ("member.roles_changed", None, {"user_id": "g1", "roles": ["grader"], "publish_assessments": None}),
        (
            "member.roles_changed",
            {"user_id": "g1", "roles": ["grader"], "publish_assessments": None},
            {"user_id": "g1", "roles": ["grader", "viewer"], "publish_assessments": None},
        ),
        ("member.removed", {"user_id": "g1", "roles": ["grader", "viewer"], "publish_assessments": None}, None),
    ]
    assert all(e["actor"].startswith("key:") for e in entries)


async def test_course_and_enrollment_changes_are_on_the_record(tenant: Tenant) -> None:
    await course(tenant)
    assert (await tenant.patch("/v1/courses/c1", json={"title": "Physics II"})).status_code == 200
    await enroll(tenant, "c1", "ann", "bob")
    await enroll(tenant, "c1", "ann")  # the same again: nothing changes
    r = await tenant.patch("/v1/courses/c1/enrollments/bob", json={"cohort": "B", "status": "unenrolled"})
    assert r.status_code == 200 and r.json()["status"] == "unenrolled", r.text
    r = await tenant.patch("/v1/courses/c1/enrollments/ann", json={"cohort": "A"})
    assert r.status_code == 200 and r.json()["cohort"] == "A", r.text
    entries = await _actions(tenant)
    assert [(e["action"], e["learner"]) for e in entries] == [
        ("course.created", None),
        ("course.updated", None),
        ("enrollment.created", "ann"),
        ("enrollment.created", "bob"),
        ("enrollment.unenrolled", "bob"),
        ("enrollment.changed", "ann"),
    ]
    assert entries[1]["old"] == {"title": "Physics 101"} and entries[1]["new"] == {"title": "Physics II"}
    assert entries[4]["old"] == {"status": "enrolled", "cohort": None}
    assert entries[4]["new"] == {"status": "unenrolled", "cohort": "B"}
