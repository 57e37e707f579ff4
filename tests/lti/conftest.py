"""Real LTI clients against `gradeflow api` served by uvicorn on 127.0.0.1: the tenant's admin key sets up courses
and registers the tool; the tool then speaks only LTI (token endpoint, AGS, NRPS) through the client library."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant
from tests.lti.tool import Connector, ToolKey

Connect = Callable[[dict[str, Any], ToolKey], Connector]


@pytest.fixture(scope="session")
async def live_client(live_api: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_api, timeout=30) as client:
        yield client


@pytest.fixture
async def live(tenant: Tenant, live_client: httpx.AsyncClient) -> Tenant:
    """The test's own tenant, speaking to the live API (so every absolute URL it answers is reachable)."""
    return Tenant(tenant.slug, tenant.id, tenant.key, live_client)


@pytest.fixture
def tool_key() -> ToolKey:
    return ToolKey.generate()


@pytest.fixture
def connect() -> Iterator[Connect]:
    """A pylti1p3 connector for a registered tool, signing with its key; closed when the test ends."""
    made: list[Connector] = []

    def connector(tool: dict[str, Any], key: ToolKey) -> Connector:
        made.append(Connector(key.registration(tool["client_id"], tool["token_url"])))
        return made[-1]

    yield connector
    for c in made:
        c.close()


async def register(t: Tenant, key: ToolKey | None = None, **fields: Any) -> dict[str, Any]:
    """Register a tool with the organization's admin key (its key set inline unless `jwks_url` is given)."""
    body = {"name": "Quiz tool", **({"jwks": key.jwks()} if key else {}), **fields}
    r = await t.post("/v1/lti/tools", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def launch_claims(t: Tenant, course: str, tool: dict[str, Any], resource_link_id: str = "rl-1") -> dict[str, Any]:
    """The AGS and NRPS claims an LMS would put in its launch for `tool` in `course`."""
    params = {"tool": str(tool["id"]), "resource_link_id": resource_link_id}
    r = await t.get(f"/v1/courses/{course}/lti/claims", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())
