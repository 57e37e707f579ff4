"""Schemathesis against the running API's own OpenAPI document: a bounded run (75 s, 20 examples per
operation, one worker, a fixed seed) with an admin key on a populated course. No 5xx, every status
documented, every body matching its schema and media type (problem+json for every documented error)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx

from tests.api.test_lti_token import ToolKey, form, register
from tests.conftest import Tenant
from tests.helpers import populated_course

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
SECONDS = 75  # fuzzing and stateful testing go on until the time is spent
SEED = int(os.environ.get("GRADEFLOW_FUZZ_SEED", "20261201"))  # another seed explores other inputs


async def _schemathesis(live_api: str, tmp_path: Path, credential: str, parameters: dict[str, str], *args: str) -> None:
    """One bounded schemathesis run against the live API with `credential`; path parameters from `parameters`."""
    # Path parameters point at real records most of the time, so generated bodies reach the services.
    config = tmp_path / "schemathesis.toml"
    config.write_text("[parameters]\n" + "".join(f'"path.{name}" = "{value}"\n' for name, value in parameters.items()))
    st = str(Path(sys.executable).with_name("st"))
    proc = await asyncio.create_subprocess_exec(
        st,
        "--config-file",
        str(config),
        "run",
        f"{live_api}/openapi.json",
        "--header",
        f"Authorization: Bearer {credential}",
        "--checks",
        CHECKS,
        "--max-examples",
        "20",
        "--seed",
        str(SEED),
        "--workers",
        "1",  # one worker and a fixed seed: a run can be repeated
        "--request-timeout",
        "20",
        "--no-color",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    out, _ = await proc.communicate()
    report = out.decode(errors="replace")
    assert proc.returncode == 0, report[-20000:]


async def test_fuzzing_finds_no_server_error_and_no_undocumented_answer(
    tenant: Tenant, live_api: str, tmp_path: Path
) -> None:
    ids = await populated_course(tenant)
    parameters = {name: str(value) for name, value in ids.items() if name != "fmt"}
    await _schemathesis(
        live_api, tmp_path, tenant.key, parameters, "--max-time", str(SECONDS), "--exclude-path", "/readyz"
    )


async def test_fuzzing_the_lti_services_with_a_tools_token(tenant: Tenant, live_api: str, tmp_path: Path) -> None:
    # The /lti/courses services answer only LTI access tokens: with the admin key above they are 401 throughout.
    ids = await populated_course(tenant)
    course = str(ids["course"])
    exposed = await tenant.put(f"/v1/courses/{course}/lti/line-items/{ids['assessment']}", json={})
    assert exposed.status_code in (200, 201), exposed.text
    key = ToolKey()
    tool = await register(tenant, key)
    async with httpx.AsyncClient(base_url=live_api) as c:
        # The token URL a tool signs for is the address it reaches the API at.
        r = await c.post("/lti/token", data=form(key.assertion(tool["client_id"], aud=f"{live_api}/lti/token")))
        assert r.status_code == 200, r.text
    parameters = {"course": course, "line_item": exposed.json()["id"].rsplit("/", 1)[1]}
    await _schemathesis(
        live_api,
        tmp_path,
        r.json()["access_token"],
        parameters,
        "--max-time",
        "40",
        "--include-path-regex",
        "^/lti/courses",
    )
