"""The dashboard against a small course whose figures are worked out by hand.

Learners: ann (cohort A, group g1), bob (A, g1 and g2), cid (B, g2), dan (no cohort, no group).
quiz (20 points, first), essay (10 points):
  ann  quiz  graded 18 (90 %)       09:00 -> 09:30  1800 s   essay  to_be_taken
  bob  quiz  graded 22 (110 %)      09:00 -> 09:20  1200 s   essay  graded 10 (100 %)  13:00 -> 13:10:30  630 s
  cid  quiz  graded 9 (45 %)        09:05 -> 10:05  3600 s   essay  cancelled, "submitted" before it started
  dan  quiz  in_progress            09:00 -> -               essay  graded 0.5, excused
Total: 8 attempts; to_be_taken 1, in_progress 1, graded 5, cancelled 1; excused 1.
Durations 1800, 1200, 3600, 630: mean 1807.5, median 1500. Percents 90, 110, 45, 100 (dan's is excused):
mean 86.25, median 95, min 45, max 110; bins [40, 50) 1, [90, 100] 2, above 100 1.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Tenant, assert_problem
from tests.helpers import assessment, course, grant, user_token

URL = "/v1/courses/c1/dashboard"
DAY = "2026-11-02T"


async def _attempt(t: Tenant, a: str, learner: str, status: str, started: str | None, submitted: str | None) -> None:
    body = {"status": status, "started_at": started and DAY + started, "submitted_at": submitted and DAY + submitted}
    r = await t.put(f"/v1/courses/c1/assessments/{a}/attempts/{learner}", json=body)
    assert r.status_code == 200, r.text


async def _course(t: Tenant) -> None:
    await course(t)
    rows = [
        {"external_id": "ann", "cohort": "A", "groups": ["g1"]},
        {"external_id": "bob", "cohort": "A", "groups": ["g1", "g2"]},
        {"external_id": "cid", "cohort": "B", "groups": ["g2"]},
        {"external_id": "dan"},
    ]
    assert (await t.post("/v1/courses/c1/enrollments:batch", json={"enrollments": rows})).status_code == 200
    await assessment(t, "c1", "quiz", title="Quiz", points_possible=20)
    await assessment(t, "c1", "essay", title="Essay", points_possible=10)
    await _attempt(t, "quiz", "ann", "submitted", "09:00:00Z", "09:30:00Z")
    await _attempt(t, "quiz", "bob", "submitted", "09:00:00Z", "09:20:00Z")
    await _attempt(t, "quiz", "cid", "submitted", "09:05:00Z", "10:05:00Z")
    await _attempt(t, "quiz", "dan", "in_progress", "09:00:00Z", None)
    await _attempt(t, "essay", "ann", "to_be_taken", None, None)
    await _attempt(t, "essay", "bob", "submitted", "13:00:00Z", "13:10:30Z")
    await _attempt(t, "essay", "cid", "submitted", "13:00:00Z", "12:00:00Z")
    await _attempt(t, "essay", "cid", "cancelled", None, None)
    scores = [("ann", "quiz", 18), ("bob", "quiz", 22), ("cid", "quiz", 9), ("bob", "essay", 10), ("dan", "essay", 0.5)]
    body = {"scores": [{"assessment": a, "learner": lr, "earned": e} for lr, a, e in scores]}
    assert (await t.post("/v1/courses/c1/scores:batch", json=body)).status_code == 200
    assert (await t.put("/v1/courses/c1/assessments/essay/excused/dan")).status_code == 200


def _bins(row: dict[str, Any]) -> dict[str, int]:
    """The bins that are not empty, by label."""
    return {b["label"]: b["count"] for b in row["scores"]["bins"] if b["count"]}


def _statuses(row: dict[str, Any]) -> dict[str, int]:
    return {s: n for s, n in row["statuses"].items() if n}


async def _get(t: Tenant, **params: Any) -> dict[str, Any]:
    r = await t.get(URL, params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_the_totals_are_the_hand_worked_figures(tenant: Tenant) -> None:
    await _course(tenant)
    body = await _get(tenant)
    assert body["by"] == "none" and body["rows"] == []
    total = body["total"]
    assert total["key"] is None and total["attempts"] == 8
    assert total["statuses"] == {
        "to_be_taken": 1,
        "in_progress": 1,
        "submitted": 0,
        "pending_grading": 0,
        "graded": 5,
        "cancelled": 1,
    }
    assert (total["completed"], total["in_progress"], total["to_be_taken"], total["excused"]) == (5, 1, 1, 1)
    assert total["duration"] == {"count": 4, "mean_seconds": 1807.5, "median_seconds": 1500.0}
    scores = total["scores"]
    assert (scores["count"], scores["mean"], scores["median"], scores["min"], scores["max"]) == (4, 86.25, 95, 45, 110)
    assert [b["label"] for b in scores["bins"]] == [
        "[0, 10)",
        "[10, 20)",
        "[20, 30)",
        "[30, 40)",
        "[40, 50)",
        "[50, 60)",
        "[60, 70)",
        "[70, 80)",
        "[80, 90)",
        "[90, 100]",
        "above 100",
    ]
    assert scores["bins"][-1] == {"label": "above 100", "from": 100, "to": None, "count": 1}
    assert _bins(total) == {"[40, 50)": 1, "[90, 100]": 2, "above 100": 1}

    # the counts are the results table's tabs, the scores its Percent cells
    table = (await tenant.get("/v1/courses/c1/results")).json()
    assert table["counts"] == total["statuses"]
    assert sorted(r["percent"] for r in table["items"] if r["percent"] is not None) == [45, 90, 100, 110]


async def test_a_row_per_group_cohort_and_assessment(tenant: Tenant) -> None:
    await _course(tenant)
    groups = (await _get(tenant, by="group"))["rows"]
    # bob counts in both of his groups; dan, in no group, has the row without a key
    assert [(r["key"], r["attempts"]) for r in groups] == [("g1", 4), ("g2", 4), (None, 2)]
    g1, g2, none = groups
    assert _statuses(g1) == {"to_be_taken": 1, "graded": 3}
    assert g1["duration"] == {"count": 3, "mean_seconds": 1210.0, "median_seconds": 1200.0}
    assert (g1["scores"]["mean"], g1["scores"]["median"], g1["scores"]["min"], g1["scores"]["max"]) == (
        100,
        100,
        90,
        110,
    )
    assert _statuses(g2) == {"graded": 3, "cancelled": 1}
    assert g2["duration"] == {"count": 3, "mean_seconds": 1810.0, "median_seconds": 1200.0}
    assert (g2["scores"]["mean"], g2["scores"]["median"]) == (85, 100) and _bins(g2) == {
        "[40, 50)": 1,
        "[90, 100]": 1,
        "above 100": 1,
    }
    assert _statuses(none) == {"in_progress": 1, "graded": 1} and none["excused"] == 1
    assert none["scores"]["count"] == 0 and none["scores"]["mean"] is None and none["duration"]["count"] == 0

    cohorts = (await _get(tenant, by="cohort"))["rows"]
    assert [(r["key"], r["attempts"], r["completed"]) for r in cohorts] == [("A", 4, 3), ("B", 2, 1), (None, 2, 1)]
    assert cohorts[1]["scores"]["median"] == 45 and cohorts[1]["duration"]["count"] == 1

    # assessments in course order, with their titles
    quiz, essay = (await _get(tenant, by="assessment"))["rows"]
    assert (quiz["key"], quiz["title"], essay["key"], essay["title"]) == ("quiz", "Quiz", "essay", "Essay")
    assert _statuses(quiz) == {"in_progress": 1, "graded": 3}
    assert quiz["duration"] == {"count": 3, "mean_seconds": 2200.0, "median_seconds": 1800.0}
    assert (quiz["scores"]["mean"], quiz["scores"]["median"]) == (81.67, 90)  # 245 / 3
    assert _statuses(essay) == {"to_be_taken": 1, "graded": 2, "cancelled": 1} and essay["excused"] == 1
    assert essay["scores"]["count"] == 1 and essay["duration"] == {
        "count": 1,
        "mean_seconds": 630.0,
        "median_seconds": 630.0,
    }
    # the total is the same whatever the breakdown
    assert (await _get(tenant, by="group"))["total"] == (await _get(tenant))["total"]


async def test_the_results_tables_filters_apply(tenant: Tenant) -> None:
    await _course(tenant)
    # under a group filter, the by-group breakdown has that group's row only
    g1 = await _get(tenant, group="g1", by="group")
    assert g1["total"]["attempts"] == 4 and [r["key"] for r in g1["rows"]] == ["g1"]
    b = (await _get(tenant, cohort="B"))["total"]
    assert (b["attempts"], b["completed"], b["statuses"]["cancelled"], b["scores"]["max"]) == (2, 1, 1, 45)
    essay = (await _get(tenant, assessment="essay", by="cohort"))["total"]
    assert (essay["attempts"], essay["scores"]["mean"], essay["to_be_taken"]) == (4, 100, 1)
    later = (await _get(tenant, since="2999-01-01T00:00:00Z"))["total"]
    assert later["attempts"] == 0 and later["scores"]["mean"] is None and later["duration"]["median_seconds"] is None
    assert (await _get(tenant, until="2999-01-01T00:00:00Z"))["total"]["attempts"] == 8

    assert_problem(await tenant.get(URL, params={"assessment": "nope"}), 404)
    assert_problem(await tenant.get(URL, params={"by": "learner"}), 422, "by")
    assert_problem(await tenant.get(URL, params={"since": "yesterday"}), 422, "since")


async def test_medians_are_exact_and_extra_credit_has_no_ceiling(tenant: Tenant) -> None:
    await _course(tenant)
    await assessment(tenant, "c1", "exact", points_possible=100)
    await assessment(tenant, "c1", "tiny", points_possible=0.000001)
    scores = [("ann", "exact", 70.01), ("bob", "exact", 70.02), ("cid", "tiny", "999999999999.999999")]
    body = {"scores": [{"assessment": a, "learner": lr, "earned": e} for lr, a, e in scores]}
    assert (await tenant.post("/v1/courses/c1/scores:batch", json=body)).status_code == 200
    exact = (await _get(tenant, assessment="exact"))["total"]["scores"]
    # (70.01 + 70.02) / 2 = 70.015, rounded half away from zero as the table rounds
    assert (exact["median"], exact["mean"], _bins({"scores": exact})) == (70.02, 70.02, {"[70, 80)": 2})
    tiny = (await _get(tenant, assessment="tiny"))["total"]["scores"]
    assert tiny["max"] == tiny["median"] == 1e20 and _bins({"scores": tiny}) == {"above 100": 1}


@pytest.mark.parametrize("role", ["viewer", "planner"])
async def test_staff_who_oversee_see_everything(tenant: Tenant, role: str) -> None:
    await _course(tenant)
    await grant(tenant, "c1", "sam", role)
    r = await tenant.get(URL, as_=await user_token(tenant, "sam"))
    assert r.status_code == 200 and r.json()["total"]["attempts"] == 8


async def test_graders_count_only_their_work_and_learners_none(tenant: Tenant) -> None:
    await _course(tenant)
    items = [
        {"external_id": "q1", "points_possible": 5},
        {"external_id": "q2", "points_possible": 5, "marking": "manual"},
    ]
    await assessment(tenant, "c1", "lab", title="Lab", items=items)
    for learner in ("ann", "cid"):
        r = await tenant.put(
            f"/v1/courses/c1/assessments/lab/scores/{learner}", json={"items": [{"item": "q1", "earned": 4}]}
        )
        assert r.status_code == 200, r.text
    r = await tenant.post("/v1/courses/c1/assessments/lab/allocations", json={"graders": ["gina"], "mode": "even"})
    assert r.status_code in (200, 201), r.text
    await grant(tenant, "c1", "gina", "grader")
    await grant(tenant, "c1", "gus", "grader")

    mine = (await tenant.get(URL, params={"by": "cohort"}, as_=await user_token(tenant, "gina"))).json()
    assert mine["total"]["attempts"] == 2 and mine["total"]["statuses"]["pending_grading"] == 2
    assert [(r["key"], r["attempts"]) for r in mine["rows"]] == [("A", 1), ("B", 1)]
    nothing = (await tenant.get(URL, as_=await user_token(tenant, "gus"))).json()
    assert nothing["total"]["attempts"] == 0 and nothing["rows"] == []
    assert_problem(await tenant.get(URL, as_=await user_token(tenant, "ann")), 404)


async def test_a_row_per_session_and_archived_groups_hidden(tenant: Tenant) -> None:
    await _course(tenant)
    for ext, title in (("s1", "Morning"), ("s2", "Afternoon")):
        r = await tenant.post("/v1/courses/c1/sessions", json={"external_id": ext, "title": title})
        assert r.status_code == 201, r.text
    for ext, learners in (("s1", ["ann", "bob"]), ("s2", ["cid"])):
        body = {"attempts": [{"assessment": "quiz", "learner": lr} for lr in learners]}
        assert (await tenant.put(f"/v1/courses/c1/sessions/{ext}/attempts", json=body)).status_code < 300

    rows = (await _get(tenant, by="session"))["rows"]
    assert [(r["key"], r["title"], r["attempts"]) for r in rows] == [
        ("s1", "Morning", 2),
        ("s2", "Afternoon", 1),
        (None, None, 5),
    ]
    morning = (await _get(tenant, session="s1"))["total"]
    assert morning["duration"] == {"count": 2, "mean_seconds": 1500.0, "median_seconds": 1500.0}
    assert (morning["scores"]["mean"], morning["scores"]["min"], morning["scores"]["max"]) == (100, 90, 110)
    assert_problem(await tenant.get(URL, params={"session": "nope"}), 404)

    # g2 archived: cid (only in g2) is hidden; bob, also in g1, still counts there
    assert (await tenant.put("/v1/courses/c1/groups/g2", json={"archived": True})).status_code == 200
    hidden = await _get(tenant, by="group")
    assert hidden["total"]["attempts"] == 6 and hidden["total"]["statuses"]["cancelled"] == 0
    assert [(r["key"], r["attempts"]) for r in hidden["rows"]] == [("g1", 4), (None, 2)]
    shown = await _get(tenant, by="group", include_archived="true")
    assert shown["total"]["attempts"] == 8
    assert [(r["key"], r["attempts"]) for r in shown["rows"]] == [("g1", 4), ("g2", 4), (None, 2)]
    table = (await tenant.get("/v1/courses/c1/results")).json()
    assert table["counts"] == hidden["total"]["statuses"]
