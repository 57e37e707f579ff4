"""API keys, user tokens, course roles and organization isolation."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text

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


async def test_a_key_revoked_by_another_process_stops_working_within_a_second(
    tenant: Tenant, sessionmaker: Any
) -> None:
    """Keys are looked up at most once a second per process: a revocation that process does not see
    itself (another API process's, or the database's) takes effect within a second."""
    created = (await tenant.post("/v1/api-keys", json={"name": "lms", "role": "service"})).json()
    secret = created["secret"]
    assert (await tenant.get("/v1/courses", as_=secret)).status_code == 200  # looked up, and kept
    async with sessionmaker() as session:
        await session.execute(text("UPDATE api_keys SET revoked_at = now() WHERE id = :id"), {"id": created["id"]})
        await session.commit()
    revoked = time.monotonic()
    while (await tenant.get("/v1/courses", as_=secret)).status_code == 200:
        assert time.monotonic() - revoked < 1.0, "the revoked key still worked a second later"
        await asyncio.sleep(0.05)
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


def _hs256(tenant: Tenant, **claims: Any) -> str:
    payload = {"iss": tenant.slug, "sub": "u1", "exp": int(time.time()) + 600, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, HS_SECRET, algorithm="HS256")


def _signed(payload: dict[str, Any]) -> str:
    """An HS256 token with any JSON payload (PyJWT's own encoder refuses some)."""
    return jwt.api_jws.encode(json.dumps(payload).encode(), HS_SECRET, algorithm="HS256")


def _rsa_jwk(kid: str, bits: int = 2048) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return private, {**jwk, "kid": kid}


async def _org_audit(t: Tenant, action: str) -> list[dict[str, Any]]:
    r = await t.get("/v1/audit", params={"action": action})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_every_refused_credential_gets_the_same_answer(tenant: Tenant, other_tenant: Tenant) -> None:
    await user_token(tenant, "x")  # the tenant accepts HS256 tokens (and no RS256 ones)
    now = int(time.time())
    private, _ = _rsa_jwk("k1")
    refused = [
        None,
        "gfk_not_a_key",
        "not.a.jwt",
        _hs256(tenant, exp=now - 3600),  # expired
        jwt.encode({"iss": tenant.slug, "sub": "u", "exp": now + 60}, "w" * 40, algorithm="HS256"),  # forged
        _hs256(tenant, sub=None),  # no sub
        jwt.encode({"iss": "no-such-org", "sub": "u", "exp": now + 60}, HS_SECRET, algorithm="HS256"),
        jwt.encode({"iss": tenant.slug, "sub": "u", "exp": now + 60}, private, algorithm="RS256"),  # no RS256 key
        jwt.encode({"iss": other_tenant.slug, "sub": "u", "exp": now + 60}, HS_SECRET, algorithm="HS256"),
        jwt.encode({"iss": tenant.slug, "sub": "u", "exp": now + 60}, None, algorithm="none"),
    ]
    details = set()
    for credential in refused:
        headers = {} if credential is None else {"Authorization": f"Bearer {credential}"}
        body = assert_problem(await tenant.client.get("/v1/courses", headers=headers), 401)
        details.add(body["detail"])
    # Nothing tells an unknown slug from a known one, which algorithm an organization uses, or why.
    [detail] = details
    assert not any(word in detail for word in (tenant.slug, "HS256", "RS256", "Signature", "issuer", "exp"))


async def test_user_tokens_must_expire_soon_with_a_numeric_exp(tenant: Tenant) -> None:
    await course(tenant)
    await grant(tenant, "c1", "u1", "viewer")
    await user_token(tenant, "u1")
    now = int(time.time())
    assert (await tenant.get("/v1/courses/c1", as_=_hs256(tenant, exp=now + 23 * 3600))).status_code == 200
    assert (await tenant.get("/v1/courses/c1", as_=_hs256(tenant, exp=now + 600.5))).status_code == 200
    for exp in (str(now + 600), now + 25 * 3600, now + 10 * 365 * 86400, float("inf"), float("nan")):
        assert_problem(await tenant.get("/v1/courses/c1", as_=_hs256(tenant, exp=exp)), 401)


async def test_an_organization_may_require_an_audience(tenant: Tenant) -> None:
    await course(tenant)
    await grant(tenant, "c1", "u1", "viewer")
    # Without an audience setting, `aud` is not looked at.
    await user_token(tenant, "u1")
    assert (await tenant.get("/v1/courses/c1", as_=_hs256(tenant, aud="anything"))).status_code == 200
    r = await tenant.put("/v1/organization/token-keys", json={"hs256_secret": HS_SECRET, "audience": "gradeflow"})
    assert r.status_code == 200 and r.json()["token_audience"] == "gradeflow"
    assert (await tenant.get("/v1/organization")).json()["token_audience"] == "gradeflow"
    assert (await tenant.get("/v1/courses/c1", as_=_hs256(tenant, aud="gradeflow"))).status_code == 200
    assert (await tenant.get("/v1/courses/c1", as_=_hs256(tenant, aud=["lms", "gradeflow"]))).status_code == 200
    for aud in (None, "anything", ["lms"]):
        assert_problem(await tenant.get("/v1/courses/c1", as_=_hs256(tenant, aud=aud)), 401)


async def test_nul_or_unstorable_text_in_token_claims_is_401(tenant: Tenant) -> None:
    await course(tenant)
    await grant(tenant, "c1", "u1", "viewer")
    await user_token(tenant, "u1")
    now = int(time.time())
    tokens = [
        _hs256(tenant, sub="u1\x00"),
        _hs256(tenant, sub="\ud800"),
        _hs256(tenant, sub="u" * 256),
        _hs256(tenant, sub=""),
        _hs256(tenant, sub=5),
        jwt.encode({"iss": tenant.slug + "\x00", "sub": "u1", "exp": now + 60}, HS_SECRET, algorithm="HS256"),
        jwt.encode({"iss": "\ud800", "sub": "u1", "exp": now + 60}, HS_SECRET, algorithm="HS256"),
        _signed({"iss": ["x"], "sub": "u1", "exp": now + 60}),
    ]
    for token in tokens:
        assert_problem(await tenant.get("/v1/courses", as_=token), 401)
        assert_problem(await tenant.get("/v1/courses/c1", as_=token), 401)


async def test_bearer_credentials_over_the_limit_are_refused_unread(tenant: Tenant) -> None:
    await course(tenant)
    await grant(tenant, "c1", "u1", "viewer")
    await user_token(tenant, "u1")
    assert (await tenant.get("/v1/courses/c1", as_=_hs256(tenant, pad="x" * 1000))).status_code == 200
    # A well-signed token is refused too when it is over 8 KiB: nothing that long is read.
    assert_problem(await tenant.get("/v1/courses/c1", as_=_hs256(tenant, pad="x" * 9000)), 401)
    assert_problem(await tenant.get("/v1/courses/c1", as_="gfk_" + "x" * 10_000), 401)


async def test_key_sets_are_validated_when_registered(tenant: Tenant) -> None:
    _, good = _rsa_jwk("k1")
    _, small = _rsa_jwk("k2", bits=1024)
    private_key, _ = _rsa_jwk("k3")
    private = {**jwt.algorithms.RSAAlgorithm.to_jwk(private_key, as_dict=True), "kid": "k3"}
    cases: list[tuple[Any, str]] = [
        ({"keys": "abc"}, "/jwks/keys"),
        ({"nokeys": []}, "/jwks/keys"),
        ({"keys": ["abc"]}, "/jwks/keys/0"),
        ({"keys": [good, {"kty": "RSA", "n": "abc", "e": "AQAB"}]}, "/jwks/keys/1"),
        ({"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}]}, "/jwks/keys/0"),
        ({"keys": [good, small]}, "/jwks/keys/1"),
        ({"keys": [private]}, "/jwks/keys/0"),
        ({"keys": [{**good, "alg": "HS256"}]}, "/jwks/keys/0"),
        ({"keys": [good, good]}, "/jwks/keys/1/kid"),
        ({"keys": [good] * 21}, "/jwks/keys"),
    ]
    for jwks, pointer in cases:
        body = assert_problem(await tenant.put("/v1/organization/token-keys", json={"jwks": jwks}), 422, pointer)
        assert private["d"] not in json.dumps(body)
    assert (await tenant.get("/v1/organization")).json()["accepts_rs256_tokens"] is False
    assert (await tenant.put("/v1/organization/token-keys", json={"jwks": {"keys": [good]}})).status_code == 200


async def test_a_stored_malformed_key_set_refuses_tokens_without_an_error(tenant: Tenant, sessionmaker: Any) -> None:
    private, _ = _rsa_jwk("k1")
    private_jwk = {**jwt.algorithms.RSAAlgorithm.to_jwk(private, as_dict=True), "kid": "k1"}
    token = jwt.encode({"iss": tenant.slug, "sub": "u1", "exp": int(time.time()) + 60}, private, algorithm="RS256")
    # Key sets registered before they were checked.
    for jwks in (
        {"keys": "abc"},
        {"keys": ["abc"]},
        {"keys": [{"kty": "RSA", "n": "x", "e": "y"}]},
        [1],
        {"keys": [private_jwk]},
    ):
        async with sessionmaker() as session:
            await session.execute(
                text("UPDATE organizations SET jwks = CAST(:jwks AS jsonb) WHERE id = :id"),
                {"jwks": json.dumps(jwks), "id": tenant.id},
            )
            await session.commit()
        assert_problem(await tenant.get("/v1/courses", as_=token), 401)


async def test_clearing_every_token_key_needs_an_explicit_confirmation(tenant: Tenant) -> None:
    await course(tenant)
    await grant(tenant, "c1", "u1", "viewer")
    token = await user_token(tenant, "u1")
    for body in ({}, {"hs256_secret": None, "jwks": None}, {"jwks": {"keys": []}}, {"audience": "x"}):
        assert_problem(await tenant.put("/v1/organization/token-keys", json=body), 422, "/disable_user_tokens")
    body = {"hs256_secret": HS_SECRET, "disable_user_tokens": True}
    assert_problem(await tenant.put("/v1/organization/token-keys", json=body), 422, "/disable_user_tokens")
    # Nothing of that changed anything: LMS users still sign in.
    assert (await tenant.get("/v1/courses/c1", as_=token)).status_code == 200
    r = await tenant.put("/v1/organization/token-keys", json={"jwks": {"keys": []}, "disable_user_tokens": True})
    assert r.status_code == 200, r.text
    assert not r.json()["accepts_hs256_tokens"] and not r.json()["accepts_rs256_tokens"]
    assert_problem(await tenant.get("/v1/courses/c1", as_=token), 401)
    assert (await tenant.put("/v1/organization/token-keys", json={"disable_user_tokens": True})).status_code == 200


async def test_api_keys_and_token_keys_are_audited_without_secrets(tenant: Tenant) -> None:
    admin_id = next(k["id"] for k in (await tenant.get("/v1/api-keys")).json() if k["name"] == "test admin")
    created = (await tenant.post("/v1/api-keys", json={"name": "lms", "role": "service"})).json()
    *_, entry = await _org_audit(tenant, "api_key.created")  # the tenant's own key came first
    assert entry["actor"] == f"key:{admin_id}"
    assert entry["new"]["id"] == created["id"] and entry["new"]["name"] == "lms" and entry["new"]["role"] == "service"
    assert (await tenant.delete(f"/v1/api-keys/{created['id']}")).status_code == 200
    assert (await tenant.delete(f"/v1/api-keys/{created['id']}")).status_code == 200  # changes nothing
    [entry] = await _org_audit(tenant, "api_key.revoked")
    assert entry["old"]["revoked_at"] is None and entry["new"]["revoked_at"] is not None
    assert entry["new"]["id"] == created["id"]

    _, jwk = _rsa_jwk("k1")
    await user_token(tenant, "u1")
    await user_token(tenant, "u1")  # the same keys again: no change
    body = {"hs256_secret": HS_SECRET, "jwks": {"keys": [jwk]}, "audience": "gradeflow"}
    assert (await tenant.put("/v1/organization/token-keys", json=body)).status_code == 200
    first, second = await _org_audit(tenant, "token_keys.changed")
    assert first["old"] == {"hs256": False, "rs256_kids": [], "audience": None}
    assert first["new"] == {"hs256": True, "rs256_kids": [], "audience": None}
    assert second["new"] == {"hs256": True, "rs256_kids": ["k1"], "audience": "gradeflow"}
    everything = (await tenant.get("/v1/audit")).text
    assert created["secret"] not in everything and HS_SECRET not in everything and jwk["n"] not in everything
