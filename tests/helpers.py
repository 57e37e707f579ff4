"""Small builders for test data through the public API."""

from __future__ import annotations

import time
from typing import Any

import jwt

from tests.conftest import Tenant


async def course(t: Tenant, ext: str = "c1", title: str = "Physics 101") -> dict[str, Any]:
    r = await t.post("/v1/courses", json={"external_id": ext, "title": title})
    assert r.status_code == 201, r.text
    return dict(r.json())


def email(t: Tenant, learner: str) -> str:
    """A learner's address, unique to the tenant (tests read the shared test mailbox by it)."""
    return f"{learner}@{t.slug}.example.org"


async def enroll(t: Tenant, course_ext: str, *learners: str) -> None:
    rows = [{"external_id": x, "username": x, "email": email(t, x)} for x in learners]
    r = await t.post(f"/v1/courses/{course_ext}/enrollments:batch", json={"enrollments": rows})
    assert r.status_code == 200, r.text


async def assessment(t: Tenant, course_ext: str, ext: str, **fields: Any) -> dict[str, Any]:
    body = {"external_id": ext, "title": ext.upper(), "category": "Homework", **fields}
    if "items" not in body:
        body.setdefault("points_possible", 10)
    r = await t.post(f"/v1/courses/{course_ext}/assessments", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


HS_SECRET = "s" * 40


async def user_token(t: Tenant, sub: str, **claims: Any) -> str:
    """Register an HS256 secret for the tenant (idempotent) and mint a user token like an LMS would."""
    r = await t.put("/v1/organization/token-keys", json={"hs256_secret": HS_SECRET})
    assert r.status_code == 200, r.text
    payload = {"iss": t.slug, "sub": sub, "exp": int(time.time()) + 600, **claims}
    return jwt.encode(payload, HS_SECRET, algorithm="HS256")


async def grant(t: Tenant, course_ext: str, user: str, *roles: str) -> None:
    r = await t.put(f"/v1/courses/{course_ext}/members/{user}", json={"roles": list(roles)})
    assert r.status_code == 200, r.text
