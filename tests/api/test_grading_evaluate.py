"""POST /v1/grading/evaluate: the standard preset on hand-computed cases, and bad input."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Tenant, assert_problem
from tests.helpers import user_token

CATALOGUE = [
    {"id": "hw1", "category": "Homework", "possible": 10},
    {"id": "hw2", "category": "Homework", "possible": 10},
    {"id": "hw3", "category": "Homework", "possible": 20},
    {"id": "exam", "category": "Exam", "possible": 100},
]


def request(learners: list[dict[str, Any]], **policy: Any) -> dict[str, Any]:
    body = {
        "preset": "standard",
        "categories": [{"name": "Homework", "weight": 0.4, "drop_lowest": 1}, {"name": "Exam", "weight": 0.6}],
        "cutoffs": [{"grade": "A", "min": 0.9}, {"grade": "B", "min": 0.8}, {"grade": "F", "min": 0}],
        "pass_min": 0.5,
        "assessments": CATALOGUE,
        **policy,
    }
    return {"policy": body, "learners": learners}


def scores(**earned: float | None) -> list[dict[str, Any]]:
    return [{"assessment_id": k, "earned": v} for k, v in earned.items()]


async def test_standard_current_and_final(tenant: Tenant) -> None:
    learners = [{"learner_id": "ada", "scores": scores(hw1=5, hw2=10, hw3=18, exam=None)}]
    r = await tenant.post("/v1/grading/evaluate", json=request(learners))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["policy_fingerprint"].startswith("sha256:")
    ada = body["learners"][0]
    # Homework keeps hw2 and hw3 (28/30) - dropping hw1 (5/10) is the best outcome.
    hw = ada["categories"][0]["current"]
    assert (hw["dropped"], hw["counted"], hw["score"], hw["possible"], hw["percent"]) == (
        ["hw1"],
        ["hw2", "hw3"],
        28,
        30,
        93.33,
    )
    # Current: the exam is not graded yet, so Homework alone carries the weight.
    assert ada["current"] == {"percent": 93.33, "score": 93.33, "possible": 100, "grade": "A", "passed": True}
    # Final: the exam counts as 0 of 100: 0.4 * 28/30 + 0.6 * 0 = 37.33 %.
    assert ada["final"]["percent"] == 37.33 and ada["final"]["grade"] == "F" and ada["final"]["passed"] is False


async def test_standard_exact_decimals_and_half_up(tenant: Tenant) -> None:
    # Weights 0.3333 + 0.3333 + 0.3334 sum to exactly 1; 0.5 of a hundredth rounds up.
    cats = [{"name": n, "weight": w} for n, w in (("A", 0.3333), ("B", 0.3333), ("C", 0.3334))]
    catalogue = [{"id": n.lower(), "category": n, "possible": 200} for n in "ABC"]
    learners = [{"learner_id": "x", "scores": scores(a=179.01, b=179.01, c=179.01)}]
    r = await tenant.post(
        "/v1/grading/evaluate", json=request(learners, categories=cats, assessments=catalogue, decimals=2)
    )
    assert r.json()["learners"][0]["current"]["percent"] == 89.51  # 89.505 rounds half up
    r = await tenant.post(
        "/v1/grading/evaluate", json=request(learners, categories=cats, assessments=catalogue, decimals=1)
    )
    assert r.json()["learners"][0]["current"]["percent"] == 89.5


async def test_points_weighting_excused_and_extra_credit(tenant: Tenant) -> None:
    catalogue = [*CATALOGUE, {"id": "bonus", "category": "Homework", "possible": 0}]
    learners = [
        {
            "learner_id": "x",
            "scores": [
                *scores(hw1=10, hw2=4, exam=80, bonus=3),
                {"assessment_id": "hw3", "earned": None, "excused": True},
            ],
        }
    ]
    r = await tenant.post("/v1/grading/evaluate", json=request(learners, weighting="points", assessments=catalogue))
    x = r.json()["learners"][0]
    # hw3 excused; hw2 dropped; bonus adds 3 points without possible: (10 + 3 + 80) / (10 + 100).
    assert (x["final"]["score"], x["final"]["possible"], x["final"]["percent"]) == (93, 110, 84.55)


async def test_no_graded_work_has_no_grade(tenant: Tenant) -> None:
    r = await tenant.post("/v1/grading/evaluate", json=request([{"learner_id": "new", "scores": []}]))
    new = r.json()["learners"][0]
    assert new["current"] == {"percent": None, "score": None, "possible": None, "grade": None, "passed": None}
    assert new["final"]["percent"] == 0 and new["final"]["grade"] == "F"


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"categories": [{"name": "Homework", "weight": -0.1}]}, "/policy/categories/0/weight"),
        ({"categories": [{"name": "Homework", "weight": 1, "drop_lowest": -1}]}, "/policy/categories/0/drop_lowest"),
        ({"categories": [{"name": "Homework", "weight": 1, "min_count": -2}]}, "/policy/categories/0/min_count"),
        ({"categories": [{"name": "H", "weight": 0.5}, {"name": "H", "weight": 0.5}]}, "/policy/categories/1/name"),
        ({"categories": [{"name": "H", "weight": 1, "never_drop": ["nope"]}]}, "/policy/categories/0/never_drop/0"),
        ({"cutoffs": [{"grade": "A", "min": -0.1}]}, "/policy/cutoffs/0/min"),
        ({"cutoffs": [{"grade": "B", "min": 0.8}, {"grade": "A", "min": 0.9}]}, "/policy/cutoffs/1/min"),
        ({"assessments": [*CATALOGUE, CATALOGUE[0]]}, "/policy/assessments/4/id"),
        ({"preset": "moodle"}, "/policy/preset"),
        ({"weighting": "vibes"}, "/policy/weighting"),
        # Finer than a stored score keeps: was a 500 in the canvas preset (a percent past 1e26).
        ({"assessments": [{**CATALOGUE[0], "possible": 1e-30}]}, "/policy/assessments/0/possible"),
    ],
)
async def test_bad_policies_are_422_naming_the_field(tenant: Tenant, change: dict[str, Any], pointer: str) -> None:
    r = await tenant.post("/v1/grading/evaluate", json=request([], **change))
    assert_problem(r, 422, pointer)


async def test_nan_infinity_and_unknown_assessments_are_422(tenant: Tenant) -> None:
    for bad in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"policy": {"categories": [{"name": "H", "weight": ' + bad + b'}]}, "learners": []}'
        r = await tenant.post("/v1/grading/evaluate", content=body, headers={"content-type": "application/json"})
        assert_problem(r, 422, "/policy/categories/0/weight")
    r = await tenant.post("/v1/grading/evaluate", json=request([{"learner_id": "x", "scores": scores(zzz=1)}]))
    assert_problem(r, 422, "/learners/0/scores/0/assessment_id")


async def test_the_finest_points_possible_grade_in_every_preset(tenant: Tenant) -> None:
    """A millionth of a point possible and a trillion earned: a huge percent, never a 500."""
    catalogue = [{"id": "hw1", "category": "Homework", "possible": 0.000001}]
    cats = [{"name": "Homework", "weight": 1}]
    learners = [{"learner_id": "x", "scores": [{"assessment_id": "hw1", "earned": 1e12}]}]
    for preset in ("standard", "openedx", "canvas"):
        body = request(learners, categories=cats, assessments=catalogue, preset=preset)
        r = await tenant.post("/v1/grading/evaluate", json=body)
        assert r.status_code == 200, (preset, r.text)
        assert r.json()["learners"][0]["final"]["percent"] == 1e20, preset
    tiny = [{"learner_id": "x", "scores": [{"assessment_id": "hw1", "earned": 1, "possible": 1e-9}]}]
    r = await tenant.post("/v1/grading/evaluate", json=request(tiny, categories=cats, assessments=catalogue))
    assert_problem(r, 422, "/learners/0/scores/0/possible")


async def test_drop_counts_beyond_the_assessments_follow_the_preset(tenant: Tenant) -> None:
    learners = [{"learner_id": "x", "scores": scores(hw1=5, hw2=10, hw3=18, exam=90)}]
    cats = [{"name": "Homework", "weight": 0.4, "drop_lowest": 9}, {"name": "Exam", "weight": 0.6}]
    std = (await tenant.post("/v1/grading/evaluate", json=request(learners, categories=cats))).json()
    assert std["learners"][0]["categories"][0]["current"]["counted"] == ["hw2"]  # one always stays
    edx = (await tenant.post("/v1/grading/evaluate", json=request(learners, categories=cats, preset="openedx"))).json()
    assert edx["learners"][0]["categories"][0]["current"]["percent"] == 0  # Open edX averages 0


async def test_evaluate_needs_credentials(client: Any) -> None:
    assert_problem(await client.post("/v1/grading/evaluate", json=request([])), 401)


async def test_min_count_counts_missing_work_in_the_final_grade(tenant: Tenant) -> None:
    cats = [{"name": "Homework", "weight": 1, "min_count": 4}]
    catalogue = CATALOGUE[:2]
    learners = [{"learner_id": "x", "scores": scores(hw1=10, hw2=5)}]
    r = await tenant.post("/v1/grading/evaluate", json=request(learners, categories=cats, assessments=catalogue))
    hw = r.json()["learners"][0]["categories"][0]
    # Two zeros worth the mean points (10) make up min_count 4: 15 of 40 in the final grade.
    assert (hw["final"]["score"], hw["final"]["possible"], hw["final"]["placeholders"]) == (15, 40, 2)
    assert (hw["current"]["score"], hw["current"]["possible"], hw["current"]["placeholders"]) == (15, 20, 0)


def _wide(learners: int, assessments: int) -> dict[str, Any]:
    """`learners` x `assessments` cells: a catalogue of `assessments` in one category, one score each."""
    catalogue = [{"id": f"a{j}", "category": "Homework", "possible": 10} for j in range(assessments)]
    rows = [{"learner_id": f"l{i}", "scores": scores(a0=7)} for i in range(learners)]
    return request(rows, categories=[{"name": "Homework", "weight": 1}], assessments=catalogue)


async def test_evaluate_is_capped_per_request_lower_for_user_tokens(tenant: Tenant) -> None:
    """10,000 x 10,000 used to return 794 MB after 65 s with every other request stalled. Over the
    caller's limit is 413, naming the limit and the request's size, before any grading."""
    r = await tenant.post("/v1/grading/evaluate", json=_wide(101, 10_000))
    assert r.status_code == 413, r.text[:200]
    body = assert_problem(r, 413)
    assert "1,000,000" in body["detail"] and "1,010,000" in body["detail"] and "API key" in body["detail"]
    assert (body["limit"], body["cells"]) == (1_000_000, 1_010_000)
    r = await tenant.post("/v1/grading/evaluate", json=_wide(100, 10_000))  # exactly the limit
    assert r.status_code == 200 and len(r.json()["learners"]) == 100
    assert r.json()["learners"][99]["categories"][0]["current"]["score"] == 7
    user = await user_token(tenant, "ann")
    r = await tenant.post("/v1/grading/evaluate", json=_wide(11, 10_000), as_=user)
    assert r.status_code == 413, r.text[:200]
    body = assert_problem(r, 413)
    assert "100,000" in body["detail"] and "110,000" in body["detail"] and "user token" in body["detail"]
    r = await tenant.post("/v1/grading/evaluate", json=_wide(10, 10_000), as_=user)
    assert r.status_code == 200 and len(r.json()["learners"]) == 10
