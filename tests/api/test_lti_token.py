"""POST /lti/token: RFC 7523 client assertions checked one by one (signature by kid, algorithm, iss = sub, aud,
exp, iat, jti replay), granted scopes, RFC 6749 errors never cached, and access tokens that stop working within
a second of their tool's deletion or narrowing. The helpers here (a tool's key pair, assertions, registration)
serve the other LTI test files too."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from limits import parse_many
from sqlalchemy import text

from gradeflow.lti.scopes import Scope
from gradeflow.lti.service import tokens
from tests.conftest import Tenant
from tests.helpers import course

TOKEN_URL = "http://gradeflow.test/lti/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALL = [str(s) for s in Scope]

_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # made once: slow to generate


@dataclass
class ToolKey:
    """A tool's signing key and its public JWK Set."""

    kid: str = field(default_factory=lambda: "k-" + secrets.token_hex(4))
    alg: str = "RS256"
    private: Any = None

    def __post_init__(self) -> None:
        if self.private is None:
            self.private = ec.generate_private_key(ec.SECP256R1()) if self.alg.startswith("ES") else _RSA

    @property
    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        public: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return public | {"kid": self.kid, "alg": self.alg, "use": "sig"}

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}

    def assertion(self, client_id: str, **claims: Any) -> str:
        """A client assertion of the tool; claims given None are left out, `_headers` replaces the header."""
        headers = claims.pop("_headers", None) or {"kid": self.kid}
        now = int(time.time())
        payload = {
            "iss": client_id,
            "sub": client_id,
            "aud": TOKEN_URL,
            "iat": now - 5,
            "exp": now + 60,
            "jti": secrets.token_hex(12),
        } | claims
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, self.private, algorithm=self.alg, headers=headers)


async def register(t: Tenant, key: ToolKey | None = None, **fields: Any) -> dict[str, Any]:
    body = {"name": "Quiz tool", **({"jwks": key.jwks} if key else {}), **fields}
    r = await t.post("/v1/lti/tools", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def form(assertion: str, scope: str | None = " ".join(ALL), **extra: str) -> dict[str, str]:
    body = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    if scope is not None:
        body["scope"] = scope
    return body | extra


async def access_token(t: Tenant, tool: dict[str, Any], key: ToolKey, *scopes: str) -> str:
    r = await t.client.post("/lti/token", data=form(key.assertion(tool["client_id"]), " ".join(scopes or ALL)))
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def refused(r: Any, status: int, error: str, says: str = "") -> None:
    assert r.status_code == status, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["error"] == error, body
    assert says.lower() in body["error_description"].lower(), body


@pytest.fixture
async def tool_and_key(tenant: Tenant) -> tuple[dict[str, Any], ToolKey]:
    key = ToolKey()
    return await register(tenant, key), key


async def test_a_signed_assertion_gets_a_bearer_token_for_the_scopes_asked(
    tenant: Tenant, tool_and_key: tuple[dict[str, Any], ToolKey]
) -> None:
    tool, key = tool_and_key
    assert tool["token_url"] == TOKEN_URL
    asked = f"{Scope.AGS_SCORE} {Scope.NRPS_MEMBERSHIPS} https://example.org/unknown-scope"
    r = await tenant.client.post("/lti/token", data=form(key.assertion(tool["client_id"]), asked))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["access_token"].startswith("gft_")
    assert body["scope"].split() == [Scope.AGS_SCORE, Scope.NRPS_MEMBERSHIPS]


@pytest.mark.parametrize("alg", ["RS384", "RS512", "ES256", "ES384"])
async def test_every_allowed_algorithm_verifies(tenant: Tenant, alg: str) -> None:
    key = ToolKey(alg=alg, private=ec.generate_private_key(ec.SECP384R1()) if alg == "ES384" else None)
    tool = await register(tenant, key)
    r = await tenant.client.post("/lti/token", data=form(key.assertion(tool["client_id"])))
    assert r.status_code == 200, r.text


async def test_aud_may_be_a_list_holding_the_token_url(
    tenant: Tenant, tool_and_key: tuple[dict[str, Any], ToolKey]
) -> None:
    tool, key = tool_and_key
    assertion = key.assertion(tool["client_id"], aud=["https://other.example", TOKEN_URL])
    assert (await tenant.client.post("/lti/token", data=form(assertion))).status_code == 200


async def test_no_scope_parameter_grants_every_scope_of_the_tool(tenant: Tenant) -> None:
    key = ToolKey()
    tool = await register(tenant, key, scopes=[Scope.AGS_SCORE, Scope.AGS_LINEITEM])
    r = await tenant.client.post("/lti/token", data=form(key.assertion(tool["client_id"]), None))
    assert r.json()["scope"].split() == [Scope.AGS_LINEITEM, Scope.AGS_SCORE]


async def test_refused_assertions_say_why_in_rfc6749_errors(
    tenant: Tenant, tool_and_key: tuple[dict[str, Any], ToolKey], caplog: pytest.LogCaptureFixture
) -> None:
    tool, key = tool_and_key
    cid = tool["client_id"]
    post = tenant.client.post
    now = int(time.time())
    impostor = ToolKey(kid=key.kid, private=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    cases = [
        (impostor.assertion(cid), "signature"),  # wrong signature
        (key.assertion(cid, exp=now - 120, iat=now - 180), "expired"),
        (key.assertion(cid, aud="https://elsewhere.example/lti/token"), "aud"),
        (key.assertion(cid, iat=now + 600, exp=now + 700), "not valid yet"),
        (key.assertion(cid, exp=now + 7200), "within 3600"),
        (key.assertion(cid, iss="someone-else"), "iss and sub"),
        (key.assertion("unknown-client"), "unknown client"),
        (key.assertion(cid, jti=None), "jti"),
        (key.assertion(cid, _headers={"kid": "not-a-key"}), "no rs256 key"),  # unknown kid
        (key.assertion(cid, _headers={"alg": "RS256"}), "kid"),  # no kid
        (jwt.encode({"iss": cid, "sub": cid}, "secret-of-32-bytes-or-more-000000", "HS256"), "signed with one of"),
        ("not.a.jwt", "well-formed"),
    ]
    caplog.set_level(logging.INFO, logger="gradeflow.lti")
    for assertion, says in cases:
        refused(await post("/lti/token", data=form(assertion)), 401, "invalid_client", says)
    # Each refusal is logged, and its record formats (a kid such as "%s" is data, never a format).
    refused(await post("/lti/token", data=form(key.assertion(cid, _headers={"kid": "%s%d"}))), 401, "invalid_client")
    messages = [r.getMessage() for r in caplog.records if r.name == "gradeflow.lti"]
    assert len(messages) == len(cases) + 1


async def test_a_replayed_assertion_is_refused(tenant: Tenant, tool_and_key: tuple[dict[str, Any], ToolKey]) -> None:
    tool, key = tool_and_key
    assertion = key.assertion(tool["client_id"])
    assert (await tenant.client.post("/lti/token", data=form(assertion))).status_code == 200
    refused(await tenant.client.post("/lti/token", data=form(assertion)), 401, "invalid_client", "used before")


async def test_scopes_the_tool_may_not_have_are_invalid_scope(tenant: Tenant) -> None:
    key = ToolKey()
    tool = await register(tenant, key, scopes=[Scope.NRPS_MEMBERSHIPS])
    r = await tenant.client.post("/lti/token", data=form(key.assertion(tool["client_id"]), str(Scope.AGS_SCORE)))
    refused(r, 400, "invalid_scope")


async def test_malformed_requests(tenant: Tenant, tool_and_key: tuple[dict[str, Any], ToolKey]) -> None:
    tool, key = tool_and_key
    post = tenant.client.post
    good = form(key.assertion(tool["client_id"]))
    refused(await post("/lti/token", data=good | {"grant_type": "password"}), 400, "unsupported_grant_type")
    refused(await post("/lti/token", data=good | {"client_assertion_type": "x"}), 400, "invalid_request")
    refused(await post("/lti/token", data={"grant_type": "client_credentials"}), 400, "invalid_request", "missing")
    refused(await post("/lti/token", json=good), 400, "invalid_request", "x-www-form-urlencoded")
    repeated = "grant_type=client_credentials&grant_type=client_credentials"
    headers = {"content-type": "application/x-www-form-urlencoded"}
    refused(await post("/lti/token", content=repeated, headers=headers), 400, "invalid_request", "repeated")
    refused(await post("/lti/token", content=b"a=\xff", headers=headers), 400, "invalid_request")
    refused(await post("/lti/token", content=b"a=" + b"x" * 70_000, headers=headers), 400, "invalid_request", "KB")
    refused(await post("/lti/token", data=good | {"client_id": "other"}), 401, "invalid_client", "client_id")


async def test_an_access_token_works_until_its_tool_is_deleted(tenant: Tenant) -> None:
    key = ToolKey()
    await course(tenant, "lti-c1")
    tool = await register(tenant, key)
    token = await access_token(tenant, tool, key)
    url = "/lti/courses/lti-c1/memberships"
    auth = {"Authorization": f"Bearer {token}"}
    assert (await tenant.client.get(url, headers=auth)).status_code == 200
    assert (await tenant.delete(f"/v1/lti/tools/{tool['id']}")).status_code == 204
    await asyncio.sleep(1.1)
    r = await tenant.client.get(url, headers=auth)
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    refused(await tenant.client.post("/lti/token", data=form(key.assertion(tool["client_id"]))), 401, "invalid_client")


async def test_narrowed_courses_and_scopes_reach_issued_tokens(tenant: Tenant) -> None:
    key = ToolKey()
    await course(tenant, "lti-c2")
    tool = await register(tenant, key)
    auth = {"Authorization": f"Bearer {await access_token(tenant, tool, key)}"}
    url = "/lti/courses/lti-c2/memberships"
    assert (await tenant.client.get(url, headers=auth)).status_code == 200
    await course(tenant, "lti-c2-other")
    r = await tenant.patch(f"/v1/lti/tools/{tool['id']}", json={"courses": ["lti-c2-other"]})
    assert r.status_code == 200, r.text
    await asyncio.sleep(1.1)
    assert (await tenant.client.get(url, headers=auth)).status_code == 404  # no longer one of its courses
    r = await tenant.patch(f"/v1/lti/tools/{tool['id']}", json={"scopes": [Scope.AGS_SCORE], "courses": None})
    assert r.status_code == 200, r.text
    await asyncio.sleep(1.1)
    r = await tenant.client.get(url, headers=auth)
    assert r.status_code == 403 and 'error="insufficient_scope"' in r.headers["www-authenticate"]


async def test_missing_and_unknown_access_tokens_are_401(tenant: Tenant) -> None:
    await course(tenant, "lti-c3")
    url = "/lti/courses/lti-c3/memberships"
    r = await tenant.client.get(url)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    for credential in ("gft_" + "x" * 43, tenant.key, "x" * 20_000):
        r = await tenant.client.get(url, headers={"Authorization": f"Bearer {credential}"})
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"], credential


async def test_each_tool_is_rate_limited_like_an_api_key(
    tenant: Tenant, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = ToolKey()
    busy, other = await register(tenant, key), await register(tenant, key)
    monkeypatch.setattr(app.state.limiter, "items", parse_many("3/minute"))
    answers = [await tenant.client.post("/lti/token", data=form(key.assertion(busy["client_id"]))) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    refused(answers[-1], 429, "temporarily_unavailable")
    assert int(answers[-1].headers["retry-after"]) >= 1
    # The budget is the tool's: its access token is refused too, another tool is not.
    auth = {"Authorization": f"Bearer {answers[0].json()['access_token']}"}
    assert (await tenant.client.get("/lti/courses/any/memberships", headers=auth)).status_code == 429
    assert (await tenant.client.post("/lti/token", data=form(key.assertion(other["client_id"])))).status_code == 200


async def test_the_public_url_setting_names_the_token_url_and_the_service_urls(
    tenant: Tenant, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    public = "https://grades.example.edu/gf"
    monkeypatch.setattr(app.state.settings, "public_url", public + "/")
    key = ToolKey()
    tool = await register(tenant, key)
    assert tool["token_url"] == f"{public}/lti/token"
    cid = tool["client_id"]
    refused(await tenant.client.post("/lti/token", data=form(key.assertion(cid))), 401, "invalid_client", "aud")
    r = await tenant.client.post("/lti/token", data=form(key.assertion(cid, aud=f"{public}/lti/token")))
    assert r.status_code == 200, r.text
    await course(tenant, "lti-public")
    claims = (await tenant.get("/v1/courses/lti-public/lti/claims", params={"tool": tool["id"]})).json()
    nrps = claims["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"]
    assert nrps["context_memberships_url"] == f"{public}/lti/courses/lti-public/memberships"


_COUNT = text("SELECT count(*) FROM lti_access_tokens WHERE secret_hash = :h")


async def test_expired_access_tokens_are_purged(tenant: Tenant, sessionmaker: Any) -> None:
    key = ToolKey()
    token = await access_token(tenant, await register(tenant, key), key)
    digest = tokens.secret_hash(token)
    async with sessionmaker() as session:
        await session.execute(
            text("UPDATE lti_access_tokens SET expires_at = now() - interval '1 second' WHERE secret_hash = :h"),
            {"h": digest},
        )
        await session.commit()
        assert await tokens.purge_expired(session) >= 1
        left = await session.scalar(_COUNT, {"h": digest})
    assert left == 0


async def test_a_tool_removed_by_another_process_is_refused_within_a_second(tenant: Tenant, sessionmaker: Any) -> None:
    key = ToolKey()
    await course(tenant, "lti-c4")
    tool = await register(tenant, key)
    auth = {"Authorization": f"Bearer {await access_token(tenant, tool, key)}"}
    url = "/lti/courses/lti-c4/memberships"
    assert (await tenant.client.get(url, headers=auth)).status_code == 200  # cached in this process now
    async with sessionmaker() as session:  # as another API process would: this one's cache is not told
        await session.execute(text("DELETE FROM lti_tools WHERE id = :id"), {"id": tool["id"]})
        await session.commit()
    await asyncio.sleep(1.1)
    assert (await tenant.client.get(url, headers=auth)).status_code == 401
