"""Every error is RFC 9457 problem+json, and nothing a client sends produces a 500."""

from __future__ import annotations

import httpx

from tests.conftest import Tenant, assert_problem
from tests.helpers import course


async def test_unknown_route_is_problem_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404)


async def test_wrong_method_is_problem_405_with_allow(tenant: Tenant) -> None:
    r = await tenant.delete("/v1/courses")
    assert_problem(r, 405)
    assert "GET" in r.headers["allow"] and "POST" in r.headers["allow"]


async def test_unparseable_json_is_400(tenant: Tenant) -> None:
    r = await tenant.post(
        "/v1/courses", content=b'{"external_id": "c1", "title":', headers={"content-type": "application/json"}
    )
    body = assert_problem(r, 400)
    assert body["type"].endswith("malformed-json")


async def test_body_over_limit_is_413(tenant: Tenant, settings: object) -> None:
    big = b'{"external_id": "c1", "title": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    r = await tenant.post("/v1/courses", content=big, headers={"content-type": "application/json"})
    assert_problem(r, 413)


async def test_validation_names_each_field_by_pointer(tenant: Tenant) -> None:
    r = await tenant.post("/v1/courses", json={"external_id": "", "title": 5, "extra": True})
    assert_problem(r, 422, "/external_id", "/title", "/extra")


async def test_nan_and_infinity_are_rejected(tenant: Tenant) -> None:
    await course(tenant)
    await tenant.post("/v1/courses/c1/enrollments:batch", json={"enrollments": [{"external_id": "u1"}]})
    for bad in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        r = await tenant.put(
            "/v1/courses/c1/assessments/a/scores/u1",
            content=b'{"earned": ' + bad + b"}",
            headers={"content-type": "application/json"},
        )
        assert r.status_code in (400, 422), (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_bad_query_parameter_is_named(tenant: Tenant) -> None:
    r = await tenant.get("/v1/courses", params={"limit": 5000})
    assert_problem(r, 422, "limit")
    r = await tenant.get("/v1/courses", params={"cursor": "!!garbage!!"})
    assert_problem(r, 422, "cursor")


async def test_missing_credentials_are_401_with_challenge(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/courses")
    assert_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"
    r = await client.get("/v1/courses", headers={"Authorization": "Bearer gfk_not_a_key"})
    assert_problem(r, 401)
    r = await client.get("/v1/courses", headers={"Authorization": "Bearer not.a.jwt"})
    assert_problem(r, 401)


async def test_openapi_documents_problem_responses(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/v1/courses/{course}/scores:batch"]["post"]
    for status in ("400", "401", "404", "405", "409", "413", "422"):
        assert "application/problem+json" in op["responses"][status]["content"], status
    assert "Problem" in spec["components"]["schemas"]
