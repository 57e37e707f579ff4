"""Small builders for test data through the public API."""

from __future__ import annotations

import secrets
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


async def populated_course(t: Tenant) -> dict[str, str]:
    """A course of `t` with something behind every path parameter of the API: returns a value for each."""
    c = "iso-" + secrets.token_hex(4)
    await course(t, c)
    await enroll(t, c, "u1", "u2")
    await assessment(t, c, "hw")
    await assessment(t, c, "ex", items=[{"external_id": "q1", "points_possible": 5, "marking": "manual"}])
    await grant(t, c, "g1", "grader")
    await grant(t, c, "g2", "grader")
    base = f"/v1/courses/{c}"
    assert (await t.put(f"{base}/assessments/hw/scores/u1", json={"earned": 8})).status_code == 200
    assert (await t.put(f"{base}/assessments/ex/scores/u1", json={"items": []})).status_code in (200, 422)
    r = await t.post(f"{base}/assessments/ex/allocations", json={"graders": ["g1"], "mode": "even"})
    assert r.status_code in (200, 201), r.text

    async def made(method: str, url: str, **kw: Any) -> str:
        r = await t.request(method, url, **kw)
        assert r.status_code < 300, (url, r.text)
        return str(r.json()["id"])

    ids = {
        "course": c,
        "learner": "u1",
        "assessment": "ex",
        "item": "q1",
        "grader": "g1",
        "user": "g1",
        "name": "wg1",
        "fmt": "svg",
        "session": "s1",  # a course session's external id (none needs to exist: callers are refused first)
        "group": "A",  # a group's name (likewise)
        "review": "rv1",  # a review session's external id (none needs to exist: callers are refused first)
        "code": "0123456789ABCDEF",  # a certificate's code (likewise)
        "document_id": "1",  # a learner document's id (likewise)
        "key_id": await made("POST", "/v1/api-keys", json={"name": "lms", "role": "service"}),
        "report_id": await made("POST", f"{base}/reports", json={"kind": "grade_report"}),
        "publication_id": await made(
            "POST", f"{base}/publications", json={"assessments": ["hw"], "audience": {"all": True}}
        ),
        "import_id": await made(
            "POST",
            f"{base}/imports",
            files={"file": ("s.csv", b"learner,assessment,earned\nu2,hw,4\n", "text/csv")},
            data={"dry_run": "true"},
        ),
        "mailing_id": await made("POST", f"{base}/mailings", json={"kind": "certificates"}),
        "rescore_id": await made("POST", f"{base}/assessments/ex/items/q1:rescore", json={"points_possible": 6}),
        "webhook_id": await made(
            "POST", "/v1/webhooks", json={"url": "http://127.0.0.1:9/h", "events": ["grade.changed"]}
        ),
    }
    assert (await t.post(f"/v1/webhooks/{ids['webhook_id']}:ping")).status_code == 202
    deliveries = (await t.get(f"/v1/webhooks/{ids['webhook_id']}/deliveries")).json()["items"]
    ids["delivery_id"] = str(deliveries[0]["id"])
    return ids
