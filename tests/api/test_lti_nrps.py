"""NRPS 2.0 memberships: learners and staff with LIS role URIs, the role filter (full URI, short name, any letter
case), keyset pages whose next link keeps the filters and survives lower-casing, and 404 for any course the
tool may not reach."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from gradeflow.lti.scopes import Scope
from tests.api.test_lti_token import ToolKey, access_token, register
from tests.conftest import Tenant, assert_problem
from tests.helpers import course, enroll, grant

LIS = "http://purl.imsglobal.org/vocab/lis/v2/membership"
CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


def _next(r: httpx.Response) -> str | None:
    found = re.search(r'<([^>]+)>;\s*rel="next"', r.headers.get("link", ""))
    return found.group(1) if found else None


@pytest.fixture
async def roster(tenant: Tenant) -> dict[str, Any]:
    """A course with five learners (one unenrolled, one also a grader) and one staff member per role."""
    c = "nrps-course"
    await course(tenant, c, "Chemistry 2")
    await enroll(tenant, c, "l1", "l2", "l3", "l4", "both")
    r = await tenant.put(f"/v1/courses/{c}/enrollments/l1", json={"full_name": "Ada L", "given_name": "Ada"})
    assert r.status_code in (200, 201), r.text
    assert (await tenant.patch(f"/v1/courses/{c}/enrollments/l4", json={"status": "unenrolled"})).status_code == 200
    for user, role in [("s-plan", "planner"), ("s-grade", "grader"), ("s-mod", "moderator"), ("s-pub", "publisher")]:
        await grant(tenant, c, user, role)
    await grant(tenant, c, "s-view", "viewer", "grader")
    await grant(tenant, c, "both", "grader")
    key = ToolKey()
    tool = await register(tenant, key)
    token = await access_token(tenant, tool, key, Scope.NRPS_MEMBERSHIPS)
    return {"course": c, "tool": tool, "key": key, "auth": {"Authorization": f"Bearer {token}"}}


async def _members(tenant: Tenant, roster: dict[str, Any], **params: Any) -> httpx.Response:
    url = f"/lti/courses/{roster['course']}/memberships"
    return await tenant.client.get(url, params=params, headers=roster["auth"])


async def test_learners_and_staff_with_their_lis_roles(tenant: Tenant, roster: dict[str, Any]) -> None:
    r = await _members(tenant, roster)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(CONTAINER) and _next(r) is None
    body = r.json()
    assert body["id"] == f"http://gradeflow.test/lti/courses/{roster['course']}/memberships?limit=100"
    assert body["context"] == {"id": "nrps-course", "label": "nrps-course", "title": "Chemistry 2"}
    members = {m["user_id"]: m for m in body["members"]}
    assert [m["user_id"] for m in body["members"]] == sorted(members)
    assert set(members) == {"both", "l1", "l2", "l3", "l4", "s-grade", "s-mod", "s-plan", "s-pub", "s-view"}
    assert members["l1"] | {"email": None} == {
        "user_id": "l1",
        "roles": [f"{LIS}#Learner"],
        "status": "Active",
        "name": "Ada L",
        "given_name": "Ada",
        "email": None,
    }
    assert members["l4"]["status"] == "Inactive"
    assert members["both"]["roles"] == [f"{LIS}#Learner", f"{LIS}/Instructor#TeachingAssistant", f"{LIS}#Instructor"]
    assert members["s-plan"]["roles"] == [f"{LIS}#Instructor"] and members["s-plan"]["status"] == "Active"
    assert members["s-mod"]["roles"] == [f"{LIS}/Instructor#Grader", f"{LIS}#Instructor"]
    assert members["s-pub"]["roles"] == [f"{LIS}#Manager"]
    assert members["s-view"]["roles"] == [f"{LIS}/Instructor#TeachingAssistant", f"{LIS}#Instructor", f"{LIS}#Mentor"]
    r = await tenant.client.get(
        f"/lti/courses/{roster['course']}/memberships", headers=roster["auth"] | {"Accept": "application/json"}
    )
    assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("Learner", {"both", "l1", "l2", "l3", "l4"}),
        (f"{LIS}#Learner", {"both", "l1", "l2", "l3", "l4"}),
        ("learner", {"both", "l1", "l2", "l3", "l4"}),
        (f"{LIS}#learner".lower(), {"both", "l1", "l2", "l3", "l4"}),
        ("Instructor", {"both", "s-grade", "s-mod", "s-plan", "s-view"}),
        ("Instructor#TeachingAssistant", {"both", "s-grade", "s-view"}),
        (f"{LIS}/Instructor#Grader", {"s-mod"}),
        ("Mentor", {"s-view"}),
        ("Manager", {"s-pub"}),
        ("ContentDeveloper", set()),
        ("urn:lti:role:ims/lis/Learner", set()),
    ],
)
async def test_the_role_filter(tenant: Tenant, roster: dict[str, Any], role: str, expected: set[str]) -> None:
    r = await _members(tenant, roster, role=role)
    assert r.status_code == 200, r.text
    assert {m["user_id"] for m in r.json()["members"]} == expected


async def test_pages_follow_the_next_link_even_lower_cased(tenant: Tenant, roster: dict[str, Any]) -> None:
    seen: list[str] = []
    r = await _members(tenant, roster, role="Learner", limit=2)
    while True:
        assert r.status_code == 200, r.text
        seen += [m["user_id"] for m in r.json()["members"]]
        following = _next(r)
        if following is None:
            break
        assert "role=learner" in following.lower() and "limit=2" in following
        r = await tenant.client.get(following.lower(), headers=roster["auth"])  # as PyLTI1p3 2.0.0 does
    assert seen == ["both", "l1", "l2", "l3", "l4"]
    r = await _members(tenant, roster, limit=3, rlid="some-link")
    assert r.status_code == 200 and len(r.json()["members"]) == 3 and "rlid=some-link" in (_next(r) or "")


async def test_bad_parameters_are_422(tenant: Tenant, roster: dict[str, Any]) -> None:
    for params, name in [
        ({"cursor": "zz"}, "cursor"),
        ({"cursor": "00"}, "cursor"),  # a NUL
        ({"cursor": "ff"}, "cursor"),  # not UTF-8
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
    ]:
        assert_problem(await _members(tenant, roster, **params), 422, name)


async def test_only_courses_the_tool_may_reach(tenant: Tenant, other_tenant: Tenant, roster: dict[str, Any]) -> None:
    await course(tenant, "nrps-closed")
    await course(other_tenant, "nrps-theirs")
    key = ToolKey()
    narrow = await register(tenant, key, courses=[roster["course"]])
    auth = {"Authorization": f"Bearer {await access_token(tenant, narrow, key)}"}
    assert (await tenant.client.get(f"/lti/courses/{roster['course']}/memberships", headers=auth)).status_code == 200
    for c in ("nrps-closed", "nrps-theirs", "no-such-course"):
        assert_problem(await tenant.client.get(f"/lti/courses/{c}/memberships", headers=auth), 404)
    for c in ("nrps-theirs", "no-such-course"):  # a tool of every course: still only its organization's
        assert_problem(await tenant.client.get(f"/lti/courses/{c}/memberships", headers=roster["auth"]), 404)


async def test_a_token_without_the_roster_scope_is_403(tenant: Tenant, roster: dict[str, Any]) -> None:
    token = await access_token(tenant, roster["tool"], roster["key"], Scope.AGS_SCORE)
    r = await tenant.client.get(
        f"/lti/courses/{roster['course']}/memberships", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 403
    assert f'scope="{Scope.NRPS_MEMBERSHIPS}"' in r.headers["www-authenticate"]
