"""API keys, user tokens, course roles and organization isolation."""

from __future__ import annotations

import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import Tenant, assert_problem
from tests.helpers import HS_SECRET, assessment, course, enroll, grant, user_token


async def test_api_keys_are_shown_once_listed_and_revoked(tenant: Tenant) -> None:
    r = await tenant.post("/v1/api-keys", json={"name": "lms", "role": "service"})
    assert r.status_code == 201
    created = r.json()
    secret = created["secret"]
    assert secret.startswith("gfk_") and created["prefix"] == secret[:12]
    listed = (await tenant.get("/v1/api-keys")).json()
    assert {k["name"] for k in listed} == {"test admin", "lms"}
    assert all("secret" not in k for k in listed)
    assert (await tenant.get("/v1/courses", as_=secret)).status_code == 200
    r = await tenant.delete(f"/v1/api-keys/{created['id']}")
    assert r.json()["revoked_at"] is not None
    assert_problem(await tenant.get("/v1/courses", as_=secret), 401)


async def test_service_key_cannot_manage_keys_or_token_settings(tenant: Tenant) -> None:
    service = (await tenant.post("/v1/api-keys", json={"name": "lms", "role": "service"})).json()["secret"]
    assert_problem(await tenant.post("/v1/api-keys", json={"name": "x"}, as_=service), 403)
    assert_problem(await tenant.get("/v1/api-keys", as_=service), 403)
    assert_problem(await tenant.put("/v1/organization/token-keys", json={}, as_=service), 403)
    assert (await tenant.post("/v1/courses", json={"external_id": "c", "title": "t"}, as_=service)).status_code == 201


async def test_hs256_user_roles_per_course(tenant: Tenant) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "hw1")
    await enroll(tenant, "c1", "learner1")
    await grant(tenant, "c1", "grader1", "grader")
    await grant(tenant, "c1", "planner1", "planner")
    grader = await user_token(tenant, "grader1")
    planner = await user_token(tenant, "planner1")
    stranger = await user_token(tenant, "nobody")
    learner = await user_token(tenant, "learner1")

    # A grader reads the course but changes results only through marks on allocated work.
    assert (await tenant.get("/v1/courses/c1", as_=grader)).status_code == 200
    assert_problem(
        await tenant.put("/v1/courses/c1/assessments/hw1/scores/learner1", json={"earned": 7}, as_=grader), 403
    )
    r = await tenant.put("/v1/courses/c1/assessments/hw1/scores/learner1", json={"earned": 7}, as_=planner)
    assert r.status_code == 200 and r.json()["graded_by"] == "planner1"
    assert_problem(await tenant.post("/v1/courses/c1/assessments", json={}, as_=grader), 403)
    assert_problem(await tenant.patch("/v1/courses/c1", json={"title": "x"}, as_=grader), 403)
    assert_problem(await tenant.post("/v1/courses", json={"external_id": "c2", "title": "t"}, as_=planner), 403)
    # A planner sets the course up.
    assert (await tenant.patch("/v1/courses/c1", json={"title": "New"}, as_=planner)).status_code == 200
    assert (await tenant.get("/v1/courses/c1/members", as_=planner)).status_code == 200
    # Users see only the courses they have a role in; the rest do not exist for them.
    assert [c["external_id"] for c in (await tenant.get("/v1/courses", as_=grader)).json()["items"]] == ["c1"]
    assert (await tenant.get("/v1/courses", as_=stranger)).json()["items"] == []
    assert_problem(await tenant.get("/v1/courses/c1", as_=stranger), 404)
    # Learners do not read staff data (their own results come with publication).
    assert_problem(await tenant.get("/v1/courses/c1/assessments/hw1/scores/learner1", as_=learner), 404)
    # Organization settings are for API keys only.
    assert_problem(await tenant.get("/v1/organization", as_=planner), 403)


async def test_bad_tokens_are_401(tenant: Tenant) -> None:
    await user_token(tenant, "x")  # registers the secret
    now = int(time.time())
    expired = jwt.encode({"iss": tenant.slug, "sub": "u", "exp": now - 3600}, HS_SECRET, algorithm="HS256")
    forged = jwt.encode({"iss": tenant.slug, "sub": "u", "exp": now + 60}, "w" * 40, algorithm="HS256")
    no_sub = jwt.encode({"iss": tenant.slug, "exp": now + 60}, HS_SECRET, algorithm="HS256")
    unknown_org = jwt.encode({"iss": "nope", "sub": "u", "exp": now + 60}, HS_SECRET, algorithm="HS256")
    for token in (expired, forged, no_sub, unknown_org):
        assert_problem(await tenant.get("/v1/courses", as_=token), 401)


async def test_rs256_tokens_verified_with_registered_jwks(tenant: Tenant) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwk["kid"] = "k1"
    assert (await tenant.put("/v1/organization/token-keys", json={"jwks": {"keys": [jwk]}})).status_code == 200
    await course(tenant)
    await grant(tenant, "c1", "viewer1", "viewer")
    claims = {"iss": tenant.slug, "sub": "viewer1", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, private, algorithm="RS256", headers={"kid": "k1"})
    assert (await tenant.get("/v1/courses/c1", as_=token)).status_code == 200
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert_problem(await tenant.get("/v1/courses/c1", as_=jwt.encode(claims, other, algorithm="RS256")), 401)


async def test_another_organization_sees_nothing(tenant: Tenant, other_tenant: Tenant) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "hw1", items=[{"external_id": "q1", "points_possible": 2}])
    await enroll(tenant, "c1", "l1")
    await tenant.put("/v1/courses/c1/assessments/hw1/scores/l1", json={"items": [{"item": "q1", "earned": 1}]})
    key = (await tenant.post("/v1/api-keys", json={"name": "k"})).json()
    urls = [
        ("GET", "/v1/courses/c1"),
        ("PATCH", "/v1/courses/c1"),
        ("GET", "/v1/courses/c1/members"),
        ("GET", "/v1/courses/c1/enrollments"),
        ("GET", "/v1/courses/c1/enrollments/l1"),
        ("PUT", "/v1/courses/c1/enrollments/l1"),
        ("GET", "/v1/courses/c1/assessments"),
        ("GET", "/v1/courses/c1/assessments/hw1"),
        ("GET", "/v1/courses/c1/assessments/hw1/attempts"),
        ("GET", "/v1/courses/c1/assessments/hw1/attempts/l1"),
        ("GET", "/v1/courses/c1/assessments/hw1/scores"),
        ("GET", "/v1/courses/c1/assessments/hw1/scores/l1"),
        ("PUT", "/v1/courses/c1/assessments/hw1/scores/l1"),
        ("POST", "/v1/courses/c1/scores:batch"),
        ("DELETE", f"/v1/api-keys/{key['id']}"),
    ]
    bodies = {
        "PATCH": {},
        "PUT": {"earned": 1},
        "POST": {"scores": [{"assessment": "hw1", "learner": "l1", "earned": 1}]},
    }
    for method, url in urls:
        r = await other_tenant.request(method, url, json=bodies.get(method))
        assert_problem(r, 404)
    assert (await other_tenant.get("/v1/courses")).json()["items"] == []
    # Nothing changed for the owner.
    score = (await tenant.get("/v1/courses/c1/assessments/hw1/scores/l1")).json()
    assert score["earned"] == 1
    assert (await tenant.get("/v1/courses", as_=key["secret"])).status_code == 200
