"""The shared Open edX and Canvas vectors through POST /v1/grading/evaluate: a few spread over each file prove
the route hands the request to the engine and answers what it graded (every vector runs in-process in
tests/unit/test_grading_vectors.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.canvas_vectors import CANVAS, assert_matches_canvas, canvas_request
from tests.conftest import Tenant
from tests.openedx_vectors import OPENEDX, REJECTED, assert_matches_openedx, openedx_request

EVERY = 15  # one case in EVERY
SOME_OPENEDX = [c for c in OPENEDX if REJECTED not in c["tags"]][::EVERY]
SOME_CANVAS = CANVAS[::EVERY]


@pytest.mark.parametrize("case", SOME_OPENEDX, ids=[c["id"] for c in SOME_OPENEDX])
async def test_openedx_vectors(tenant: Tenant, case: dict[str, Any]) -> None:
    for learner, expected in zip(case["input"]["learners"], case["expected"], strict=True):
        r = await tenant.post("/v1/grading/evaluate", json=openedx_request(case, learner))
        assert r.status_code == 200, r.text
        [got] = r.json()["learners"]
        assert_matches_openedx(got, expected)


@pytest.mark.parametrize("case", SOME_CANVAS, ids=[c["id"] for c in SOME_CANVAS])
async def test_canvas_vectors(tenant: Tenant, case: dict[str, Any]) -> None:
    r = await tenant.post("/v1/grading/evaluate", json=canvas_request(case))
    assert r.status_code == 200, r.text
    assert_matches_canvas(case, r.json()["learners"])
