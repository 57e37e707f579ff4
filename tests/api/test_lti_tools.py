"""LTI tool registration (admin keys): generated client and deployment ids, keys checked on save (inline, or
fetched from a JWKS URL through the webhook target policy), fetched again for an unknown kid at most every few
seconds, courses of the organization only, every change audited, and the launch claims helper."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text

from gradeflow.devstack.infra import free_port
from gradeflow.lti.scopes import Scope
from tests.api.test_lti_token import ALL, ToolKey, access_token, form, refused, register
from tests.conftest import Tenant, assert_problem
from tests.helpers import assessment, course, grant, user_token


@dataclass
class JwksServer:
    """A tool publishing its keys on loopback (an allowed private network in the test settings)."""

    url: str
    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    hits: int = 0


@pytest.fixture
async def jwks_server() -> AsyncIterator[JwksServer]:
    port = free_port()
    server = JwksServer(f"http://127.0.0.1:{port}/jwks.json")

    async def handle(request: web.Request) -> web.Response:
        server.hits += 1
        return web.json_response({"keys": server.keys}, status=server.status)

    app = web.Application()
    app.router.add_get("/jwks.json", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield server
    await runner.cleanup()


async def test_register_list_get_change_delete(tenant: Tenant) -> None:
    await course(tenant, "lt-a")
    await course(tenant, "lt-b")
    key = ToolKey()
    r = await tenant.post("/v1/lti/tools", json={"name": "Quiz", "jwks": key.jwks, "courses": ["lt-b", "lt-a"]})
    assert r.status_code == 201, r.text
    tool = r.json()
    assert r.headers["location"] == f"/v1/lti/tools/{tool['id']}"
    assert tool["scopes"] == ALL and tool["courses"] == ["lt-a", "lt-b"] and tool["jwks_url"] is None
    assert tool["jwks"] == key.jwks and len(tool["client_id"]) == 32 and tool["deployment_id"]
    assert tool["token_url"] == "http://gradeflow.test/lti/token"
    other = await register(tenant, ToolKey())
    assert other["client_id"] != tool["client_id"] and other["courses"] is None
    listed = (await tenant.get("/v1/lti/tools")).json()
    assert [t["id"] for t in listed] == [tool["id"], other["id"]]
    assert (await tenant.get(f"/v1/lti/tools/{tool['id']}")).json() == tool
    change = {"name": "Quiz 2", "scopes": [Scope.AGS_SCORE, Scope.AGS_LINEITEM], "courses": None}
    r = await tenant.patch(f"/v1/lti/tools/{tool['id']}", json=change)
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["name"] == "Quiz 2" and changed["courses"] is None
    assert changed["scopes"] == [Scope.AGS_LINEITEM, Scope.AGS_SCORE]
    assert changed["client_id"] == tool["client_id"] and changed["deployment_id"] == tool["deployment_id"]
    r = await tenant.patch(f"/v1/lti/tools/{tool['id']}", json={"courses": ["lt-a"]})
    assert r.json()["courses"] == ["lt-a"] and r.json()["name"] == "Quiz 2"
    assert (await tenant.delete(f"/v1/lti/tools/{tool['id']}")).status_code == 204
    assert (await tenant.get(f"/v1/lti/tools/{tool['id']}")).status_code == 404
    assert (await tenant.delete(f"/v1/lti/tools/{tool['id']}")).status_code == 404

    entries = (await tenant.get("/v1/audit", params={"limit": 100})).json()["items"]
    mine = [
        e for e in entries if e["action"].startswith("lti_tool.") and e["new"] and e["new"].get("tool") == tool["id"]
    ]
    mine += [e for e in entries if e["action"] == "lti_tool.deleted"]
    actions = sorted(e["action"] for e in mine)
    assert actions == ["lti_tool.created", "lti_tool.deleted", "lti_tool.updated", "lti_tool.updated"], actions
    assert all(e["actor"].startswith("key:") for e in mine)
    updated = next(e for e in mine if e["action"] == "lti_tool.updated" and "name" in e["new"])
    assert updated["old"]["name"] == "Quiz" and updated["new"]["name"] == "Quiz 2"


async def test_only_admin_keys_manage_tools(tenant: Tenant, other_tenant: Tenant) -> None:
    tool = await register(tenant, ToolKey())
    await course(tenant, "lt-staff")
    await grant(tenant, "lt-staff", "planner-1", "planner")
    as_planner = await user_token(tenant, "planner-1")
    assert (await tenant.get("/v1/lti/tools", as_=as_planner)).status_code == 403
    assert (await other_tenant.get(f"/v1/lti/tools/{tool['id']}")).status_code == 404
    assert (await other_tenant.patch(f"/v1/lti/tools/{tool['id']}", json={"name": "x"})).status_code == 404
    assert (await other_tenant.delete(f"/v1/lti/tools/{tool['id']}")).status_code == 404
    assert tool["id"] not in [t["id"] for t in (await other_tenant.get("/v1/lti/tools")).json()]


async def test_bad_registrations_name_the_field(tenant: Tenant, other_tenant: Tenant) -> None:
    key = ToolKey()
    jwk = key.jwk
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505  (refused: the point)
    await course(other_tenant, "theirs")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "x"}, "/jwks_url"),
        ({"name": "x", "jwks": key.jwks, "jwks_url": "https://tool.example/jwks"}, "/jwks"),
        ({"name": "x", "jwks": {"keys": "nope"}}, "/jwks"),
        ({"name": "x", "jwks": {"keys": []}}, "/jwks/keys"),
        ({"name": "x", "jwks": {"keys": [jwk | {"d": "AAAA"}]}}, "/jwks/keys/0"),  # a private member
        ({"name": "x", "jwks": {"keys": [{k: v for k, v in jwk.items() if k != "kid"}]}}, "/jwks/keys/0"),
        ({"name": "x", "jwks": {"keys": [jwk, jwk]}}, "/jwks/keys/1/kid"),
        ({"name": "x", "jwks": {"keys": [jwk | {"kty": "oct", "k": "c2VjcmV0"}]}}, "/jwks/keys/0"),
        ({"name": "x", "jwks": {"keys": [jwk | {"alg": "HS256"}]}}, "/jwks/keys/0"),
        ({"name": "x", "jwks": {"keys": [jwk | {"use": "enc"}]}}, "/jwks/keys/0"),
        ({"name": "x", "jwks": {"keys": [jwk | {"n": "AQAB"}]}}, "/jwks/keys/0"),
        ({"name": "x", "jwks": {"keys": [ToolKey(private=weak).jwk]}}, "/jwks/keys/0"),
        ({"name": "x", "jwks": key.jwks, "scopes": ["https://example.org/scope"]}, "/scopes/0"),
        ({"name": "x", "jwks": key.jwks, "scopes": []}, "/scopes"),
        ({"name": "x", "jwks": key.jwks, "scopes": [Scope.AGS_SCORE, Scope.AGS_SCORE]}, "/scopes/1"),
        ({"name": "x", "jwks": key.jwks, "courses": ["no-such-course"]}, "/courses/0"),
        ({"name": "x", "jwks": key.jwks, "courses": ["theirs"]}, "/courses/0"),  # another organization's
        ({"name": "", "jwks": key.jwks}, "/name"),
        ({"name": "x", "jwks_url": "ftp://tool.example/jwks"}, "/jwks_url"),
        ({"name": "x", "jwks_url": "http://8.8.8.8/jwks.json"}, "/jwks_url"),  # plain http to a public address
        ({"name": "x", "jwks_url": "https://10.1.2.3/jwks.json"}, "/jwks_url"),  # a private, not allowed, network
        ({"name": "x", "jwks_url": "https://u:p@tool.example/jwks.json"}, "/jwks_url"),
        ({"name": "x", "jwks": key.jwks, "extra": 1}, "/extra"),
    ]
    for body, pointer in cases:
        assert_problem(await tenant.post("/v1/lti/tools", json=body), 422, pointer)
    tool = await register(tenant, key)
    for patch, pointer in [({"name": None}, "/name"), ({"scopes": None}, "/scopes"), ({"jwks": {}}, "/jwks")]:
        assert_problem(await tenant.patch(f"/v1/lti/tools/{tool['id']}", json=patch), 422, pointer)


async def test_keys_are_fetched_from_the_jwks_url_on_save(tenant: Tenant, jwks_server: JwksServer) -> None:
    jwks_server.status = 404
    r = await tenant.post("/v1/lti/tools", json={"name": "x", "jwks_url": jwks_server.url})
    body = assert_problem(r, 422, "/jwks_url")
    assert "404" in body["errors"][0]["detail"]
    jwks_server.status, jwks_server.keys = 200, [ToolKey().jwk | {"d": "AAAA"}]
    assert_problem(
        await tenant.post("/v1/lti/tools", json={"name": "x", "jwks_url": jwks_server.url}), 422, "/jwks_url"
    )
    key = ToolKey()
    jwks_server.keys = [key.jwk]
    tool = await register(tenant, jwks_url=jwks_server.url)
    assert tool["jwks_url"] == jwks_server.url and tool["jwks"] is None
    hits = jwks_server.hits
    r = await tenant.client.post("/lti/token", data=form(key.assertion(tool["client_id"])))
    assert r.status_code == 200, r.text
    assert jwks_server.hits == hits  # the keys fetched on save served


async def _fetched_long_ago(sessionmaker: Any, tool_id: int) -> None:
    async with sessionmaker() as session:
        await session.execute(
            text("UPDATE lti_tools SET fetched_at = fetched_at - interval '1 minute' WHERE id = :id"), {"id": tool_id}
        )
        await session.commit()


async def test_an_unknown_kid_fetches_the_keys_again_at_most_every_few_seconds(
    tenant: Tenant, jwks_server: JwksServer, sessionmaker: Any
) -> None:
    old, new, newer = ToolKey(), ToolKey(), ToolKey()
    jwks_server.keys = [old.jwk]
    tool = await register(tenant, jwks_url=jwks_server.url)
    jwks_server.keys = [old.jwk, new.jwk]  # the tool rotates its keys
    # Just fetched (on save): an unknown kid waits for the interval.
    refused(await tenant.client.post("/lti/token", data=form(new.assertion(tool["client_id"]))), 401, "invalid_client")
    await _fetched_long_ago(sessionmaker, tool["id"])
    hits = jwks_server.hits
    r = await tenant.client.post("/lti/token", data=form(new.assertion(tool["client_id"])))
    assert r.status_code == 200, r.text
    assert jwks_server.hits == hits + 1
    jwks_server.keys = [new.jwk, newer.jwk]
    for _ in range(3):  # a flood of unknown kids: no fetch within the interval
        r = await tenant.client.post("/lti/token", data=form(newer.assertion(tool["client_id"])))
        refused(r, 401, "invalid_client", "no rs256 key")
    assert jwks_server.hits == hits + 1
    await _fetched_long_ago(sessionmaker, tool["id"])
    r = await tenant.client.post("/lti/token", data=form(newer.assertion(tool["client_id"])))
    assert r.status_code == 200, r.text
    assert jwks_server.hits == hits + 2


async def test_a_jwks_url_that_stops_answering_keeps_the_keys_last_fetched(
    tenant: Tenant, jwks_server: JwksServer, sessionmaker: Any
) -> None:
    key = ToolKey()
    jwks_server.keys = [key.jwk]
    tool = await register(tenant, jwks_url=jwks_server.url)
    jwks_server.status = 500
    async with sessionmaker() as session:  # older than the maximum age: fetched again before use, and that fails
        await session.execute(
            text("UPDATE lti_tools SET fetched_at = now() - interval '2 hours' WHERE id = :id"), {"id": tool["id"]}
        )
        await session.commit()
    r = await tenant.client.post("/lti/token", data=form(key.assertion(tool["client_id"])))
    assert r.status_code == 200, r.text


async def test_switching_between_inline_keys_and_a_url(tenant: Tenant, jwks_server: JwksServer) -> None:
    inline, published = ToolKey(), ToolKey()
    jwks_server.keys = [published.jwk]
    tool = await register(tenant, inline)
    r = await tenant.patch(f"/v1/lti/tools/{tool['id']}", json={"jwks_url": jwks_server.url})
    assert r.status_code == 200 and r.json()["jwks"] is None and r.json()["jwks_url"] == jwks_server.url
    cid = tool["client_id"]
    refused(await tenant.client.post("/lti/token", data=form(inline.assertion(cid))), 401, "invalid_client")
    assert (await tenant.client.post("/lti/token", data=form(published.assertion(cid)))).status_code == 200
    r = await tenant.patch(f"/v1/lti/tools/{tool['id']}", json={"jwks": inline.jwks})
    assert r.status_code == 200 and r.json()["jwks_url"] is None
    assert (await tenant.client.post("/lti/token", data=form(inline.assertion(cid)))).status_code == 200


async def test_launch_claims(tenant: Tenant, other_tenant: Tenant) -> None:
    await course(tenant, "lt-claims")
    await course(tenant, "lt-elsewhere")
    tool = await register(tenant, ToolKey(), courses=["lt-claims"])
    r = await tenant.get("/v1/courses/lt-claims/lti/claims", params={"tool": tool["id"]})
    assert r.status_code == 200, r.text
    claims = r.json()
    base = "http://gradeflow.test/lti/courses/lt-claims"
    assert claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == tool["deployment_id"]
    ags = claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]
    assert ags == {"scope": ALL[:4], "lineitems": f"{base}/lineitems"}
    nrps = claims["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"]
    assert nrps == {"context_memberships_url": f"{base}/memberships", "service_versions": ["2.0"]}

    roster_only = await register(tenant, ToolKey(), scopes=[Scope.NRPS_MEMBERSHIPS])
    r = await tenant.get("/v1/courses/lt-claims/lti/claims", params={"tool": roster_only["id"]})
    assert "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint" not in r.json()

    r = await tenant.get("/v1/courses/lt-elsewhere/lti/claims", params={"tool": tool["id"]})
    assert_problem(r, 404)  # not registered for that course
    assert_problem(await tenant.get("/v1/courses/lt-claims/lti/claims", params={"tool": 2**62}), 404)
    theirs = await register(other_tenant, ToolKey())
    assert_problem(await tenant.get("/v1/courses/lt-claims/lti/claims", params={"tool": theirs["id"]}), 404)
    assert_problem(await tenant.get("/v1/courses/lt-claims/lti/claims"), 422, "tool")
    r = await tenant.get("/v1/courses/lt-claims/lti/claims", params={"tool": tool["id"], "resource_link_id": "\x00"})
    assert_problem(r, 422, "resource_link_id")
    with_link = {"tool": tool["id"], "resource_link_id": "rl-1"}
    r = await tenant.get("/v1/courses/lt-claims/lti/claims", params=with_link)
    assert r.status_code == 200 and "lineitem" not in r.json()["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]
    await assessment(tenant, "lt-claims", "hw")
    r = await tenant.put("/v1/courses/lt-claims/lti/line-items/hw", json={"resource_link_id": "rl-1"})
    assert r.status_code == 200, r.text
    line_item = r.json()["id"]
    assert line_item.startswith(f"{base}/lineitems/")
    r = await tenant.get("/v1/courses/lt-claims/lti/claims", params=with_link)
    assert r.json()["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]["lineitem"] == line_item


async def test_deleting_a_tool_keeps_the_assessments_it_created(tenant: Tenant) -> None:
    await course(tenant, "lt-del")
    key = ToolKey()
    tool = await register(tenant, key)
    token = await access_token(tenant, tool, key)
    r = await tenant.client.post(
        "/lti/courses/lt-del/lineitems",
        content=b'{"label": "Tool quiz", "scoreMaximum": 10}',
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/vnd.ims.lis.v2.lineitem+json"},
    )
    assert r.status_code == 201, r.text
    before = (await tenant.get("/v1/courses/lt-del/assessments")).json()
    assert (await tenant.delete(f"/v1/lti/tools/{tool['id']}")).status_code == 204
    assert (await tenant.get("/v1/courses/lt-del/assessments")).json() == before
