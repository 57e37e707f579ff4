"""Compatibility guard: PyLTI1p3 2.0.0 (still what many tools run) drives the same flows against the live API from
its own virtual environment. It lower-cases next-page URLs, so paging works only with lowercase-safe cursors (the
course key and filter values here are lowercase: the library lower-cases those too)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import Tenant
from tests.helpers import course, enroll, grant
from tests.lti import compat_venv
from tests.lti.conftest import launch_claims, register
from tests.lti.tool import AGS_CLAIM, NRPS_CLAIM, ToolKey

CLIENT = Path(__file__).with_name("compat_client.py")


@pytest.fixture(scope="session")
def compat_python() -> Path:
    try:
        return compat_venv.python()
    except subprocess.CalledProcessError as e:
        pytest.fail(f"could not make {compat_venv.VENV} with {compat_venv.PACKAGE}:\n{e.stdout}\n{e.stderr}")


async def test_pylti1p3_2_0_0_drives_ags_and_nrps(live: Tenant, tool_key: ToolKey, compat_python: Path) -> None:
    learners = ["ann", "bob", "cid"]
    await course(live, "c1")
    await enroll(live, "c1", *learners)
    await grant(live, "c1", "prof", "planner")
    tool = await register(live, tool_key)
    claims = await launch_claims(live, "c1", tool)
    setup = {
        "client_id": tool["client_id"],
        "token_url": tool["token_url"],
        "private_key": tool_key.private_pem,
        "public_key": tool_key.public_pem,
        "ags": claims[AGS_CLAIM],
        "nrps": claims[NRPS_CLAIM],
        "learners": learners,
        # The spec's own example form: fractions and a +00:00 offset.
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    client = await asyncio.create_subprocess_exec(
        str(compat_python),
        "-I",  # isolated: nothing from this environment's PYTHONPATH or the tests' folder
        str(CLIENT),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(client.communicate(json.dumps(setup).encode()), 60)
    assert client.returncode == 0, err.decode()
    report = json.loads(out)

    container = claims[AGS_CLAIM]["lineitems"]
    assert report["created"] == report["found"] and report["created"].startswith(f"{container}/")
    assert report["paged_labels"] == ["part 0", "part 1", "part 2", "part 3", "quiz"]
    assert report["tagged_labels"] == ["part 0", "part 2"]
    # scoreGiven 2n of 10, rescaled to the line item's 20 points.
    assert report["results"] == [["ann", 0, 20], ["bob", 4, 20], ["cid", 8, 20]]
    bob = (await live.get("/v1/courses/c1/assessments")).json()["items"]
    quiz = next(a["external_id"] for a in bob if a["title"] == "quiz")
    assert (await live.get(f"/v1/courses/c1/assessments/{quiz}/scores/bob")).json()["earned"] == 4
    assert report["unknown_user_status"] == 422
    assert [status for _, _, status in report["failed"]] == [report["unknown_user_status"]]
    assert report["members"] == ["ann", "bob", "cid", "prof"]
    assert report["learners"] == learners
    assert report["member_pages"] >= 2 + 2  # 4 members, then 3 learners, two a page
    assert report["token_requests"] == 2  # AGS and NRPS, each token reused
