"""Every error is RFC 9457 problem+json, and nothing a client sends produces a 500."""

from __future__ import annotations

import asyncio
import contextlib

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


async def test_oversized_request_headers_are_431_before_any_work(tenant: Tenant) -> None:
    await course(tenant)
    padding = {f"x-pad-{i}": "p" * 8000 for i in range(5)}  # 40 kB, over the 32 KiB default
    r = await tenant.get("/v1/courses/c1", headers=padding)
    body = assert_problem(r, 431)
    assert "32768 bytes" in body["detail"]
    # Refused before authentication: no credential is looked at.
    assert_problem(await tenant.client.get("/v1/courses", headers=padding), 431)
    assert (await tenant.get("/v1/courses/c1", headers={"x-pad": "p" * 8000})).status_code == 200


async def test_oversized_request_heads_are_refused_by_the_server_as_they_arrive(live_api: str) -> None:
    # What `gradeflow api` runs (uvicorn with httptools) would otherwise read any amount of headers.
    host, port = live_api.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"GET /v1/courses HTTP/1.1\r\nHost: x\r\n")
        answered = asyncio.ensure_future(reader.read(4096))
        sent = 0
        with contextlib.suppress(ConnectionError):
            while sent < 4 * 1024 * 1024 and not answered.done():
                writer.write(b"x-pad-%d: %s\r\n" % (sent, b"p" * 4000))
                await writer.drain()
                await asyncio.sleep(0.001)  # let the answer in as soon as there is one
                sent += 4000
        answer = await asyncio.wait_for(answered, 10)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"application/problem+json" in answer
    assert sent < 1024 * 1024  # refused early, not after reading everything
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{live_api}/v1/courses")).status_code == 401  # and still serving


async def test_nul_in_a_path_segment_is_404(tenant: Tenant) -> None:
    await course(tenant)
    for url in ("/v1/courses/a%00b", "/v1/courses/c1/assessments/a%00", "/v1/courses/c1/members/u%00"):
        assert_problem(await tenant.get(url), 404)
    assert_problem(await tenant.put("/v1/courses/c1/members/u%00", json={"roles": ["viewer"]}), 404)
