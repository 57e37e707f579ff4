"""Start-up bootstrap, the CLI, and migrations matching the models."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from services import cli
from services.api.main import create_app
from shared.db.migrate import check
from shared.settings import Settings, get_settings


async def test_bootstrap_key_is_ensured_at_startup(settings: Settings) -> None:
    secret = "gfk_bootstrap_for_tests_0123456789"
    app = create_app(
        settings.model_copy(update={"bootstrap_api_key": SecretStr(secret), "bootstrap_organization": "boot"})
    )
    for _ in range(2):  # a restart finds the key already there
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                r = await c.get("/v1/organization", headers={"Authorization": f"Bearer {secret}"})
                assert r.status_code == 200 and r.json()["slug"] == "boot"
                r = await c.get("/v1/api-keys", headers={"Authorization": f"Bearer {secret}"})
                assert [k["name"] for k in r.json()].count("bootstrap") == 1


async def test_cli_creates_organizations_and_keys(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], client: httpx.AsyncClient
) -> None:
    monkeypatch.setenv("GRADEFLOW_DATABASE_URL", settings.database_url.get_secret_value())
    get_settings.cache_clear()
    try:
        assert await asyncio.to_thread(cli.main, ["create-org", "cli-org", "--name", "CLI Org"]) == 0
        assert await asyncio.to_thread(cli.main, ["create-org", "cli-org"]) == 1
        capsys.readouterr()
        assert await asyncio.to_thread(cli.main, ["create-key", "cli-org", "--role", "admin"]) == 0
        secret = capsys.readouterr().out.strip()
    finally:
        get_settings.cache_clear()
    r = await client.get("/v1/organization", headers={"Authorization": f"Bearer {secret}"})
    assert r.json()["name"] == "CLI Org"


async def test_migrations_match_models(settings: Settings) -> None:
    await asyncio.to_thread(check, settings.async_database_url)
