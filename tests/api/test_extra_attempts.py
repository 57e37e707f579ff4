"""Another try: a handed-in attempt moved back to in_progress starts the learner's next attempt while they have one
left (the assessment's allowed attempts plus their overrides' extra ones), else 409 naming how many were allowed."""

from __future__ import annotations

from typing import Any

from gradeflow.core.settings import Settings
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course

C = "/v1/courses/c1"
A = f"{C}/assessments/quiz/attempts"


async def _course(t: Tenant, **quiz: Any) -> None:
    await course(t)
    rows = [{"external_id": "ann", "groups": ["red"]}, {"external_id": "bob"}]
    assert (await t.post(f"{C}/enrollments:batch", json={"enrollments": rows})).status_code == 200
    await assessment(t, "c1", "quiz", **quiz)
    assert (await t.put(f"{C}/policy", json={"categories": [{"name": "Homework", "weight": 1}]})).status_code == 200


async def _score(t: Tenant, learner: str, earned: float) -> None:
    assert (await t.put(f"{C}/assessments/quiz/scores/{learner}", json={"earned": earned})).status_code == 200


async def _again(t: Tenant, learner: str = "ann") -> Any:
    return await t.put(f"{A}/{learner}", json={"status": "in_progress"})


async def _percent(t: Tenant, learner: str = "ann") -> Any:
    r = await t.get(f"{C}/learners/{learner}/grade")
    assert r.status_code == 200, r.text
    return r.json()["current"]["percent"]


async def test_one_attempt_allowed_refuses_another_try(tenant: Tenant) -> None:
    await _course(tenant)
    await _score(tenant, "ann", 8)
    body = assert_problem(await _again(tenant), 409)
    assert body["allowed_attempts"] == 1 and "allowed 1 attempt " in body["detail"]
    attempt = (await tenant.get(f"{A}/ann")).json()
    assert (attempt["status"], attempt["earned"], attempt["attempt_number"], attempt["allowed_attempts"]) == (
        "graded",
        8,
        1,
        1,
    )
    assert (await tenant.get(f"{C}/audit", params={"action": "attempt.started_again"})).json()["items"] == []


async def test_a_second_attempt_starts_counts_as_not_graded_then_the_latest_counts(
    tenant: Tenant, settings: Settings
) -> None:
    await _course(tenant, allowed_attempts=2)
    await run_worker(settings)  # the learners' stored grades under the new policy
    body = {"status": "submitted", "submitted_at": "2030-01-01T10:00:00Z"}
    assert (await tenant.put(f"{A}/ann", json=body)).status_code == 200
    await _score(tenant, "ann", 8)
    assert await _percent(tenant) == 80.0
    r = await tenant.put(f"{A}/ann", json={"status": "in_progress", "started_at": "2030-01-02T09:00:00Z"})
    assert r.status_code == 200, r.text
    second = r.json()
    assert (second["status"], second["attempt_number"], second["allowed_attempts"]) == ("in_progress", 2, 2)
    assert second["submitted_at"] is None and second["started_at"].startswith("2030-01-02T09:00:00")
    # While the learner takes it again, the result counts as not graded.
    row = (await tenant.get(f"{C}/results", params={"search": "ann"})).json()["items"][0]
    assert (row["status"], row["result"], row["attempt_number"]) == ("in_progress", "No result yet", 2)
    assert await _percent(tenant) is None
    [entry] = (await tenant.get(f"{C}/audit", params={"action": "attempt.started_again"})).json()["items"]
    assert entry["learner"] == "ann" and entry["assessment"] == "quiz"
    assert entry["old"]["status"] == "graded" and float(entry["old"]["entered"]) == 8
    assert entry["old"]["attempt_number"] == 1 and entry["new"]["attempt_number"] == 2

    # Submitted without a time: stamped now. Scored: the latest attempt counts.
    submitted = (await tenant.put(f"{A}/ann", json={"status": "submitted"})).json()
    assert submitted["submitted_at"] is not None and submitted["attempt_number"] == 2
    await _score(tenant, "ann", 6)
    assert await _percent(tenant) == 60.0
    refused = assert_problem(await _again(tenant), 409)
    assert refused["allowed_attempts"] == 2 and refused["attempt_number"] == 2
    # bob's attempts are his own: his first try is still ahead of him.
    await _score(tenant, "bob", 5)
    assert (await _again(tenant, "bob")).json()["attempt_number"] == 2


async def test_overrides_grant_extra_attempts(tenant: Tenant) -> None:
    await _course(tenant)
    overrides = f"{C}/assessments/quiz/overrides"
    await _score(tenant, "ann", 4)
    assert_problem(await _again(tenant), 409)
    assert (await tenant.put(f"{overrides}/groups/red", json={"extra_attempts": 1})).status_code == 200
    assert (await tenant.get(f"{A}/ann")).json()["allowed_attempts"] == 2
    assert (await _again(tenant)).json()["attempt_number"] == 2
    await _score(tenant, "ann", 5)
    assert assert_problem(await _again(tenant), 409)["allowed_attempts"] == 2
    # Her own override grants more than her group's: the most counts.
    assert (await tenant.put(f"{overrides}/learners/ann", json={"extra_attempts": 2})).status_code == 200
    assert (await _again(tenant)).json()["allowed_attempts"] == 3
    # Taking the extra attempts away leaves the attempt she is on; she cannot start another.
    assert (await tenant.delete(f"{overrides}/learners/ann")).status_code == 204
    await _score(tenant, "ann", 7)
    attempt = (await tenant.get(f"{A}/ann")).json()
    assert (attempt["attempt_number"], attempt["allowed_attempts"], attempt["earned"]) == (3, 2, 7)
    assert_problem(await _again(tenant), 409)


async def test_the_other_moves_keep_their_rules(tenant: Tenant) -> None:
    await _course(tenant, allowed_attempts=3)
    assert (await tenant.put(f"{A}/ann", json={"status": "in_progress"})).json()["attempt_number"] == 1
    # in_progress again is no new attempt; cancelled is final, even with attempts left.
    assert (await tenant.put(f"{A}/ann", json={"status": "in_progress"})).json()["attempt_number"] == 1
    assert (await tenant.put(f"{A}/ann", json={"status": "cancelled"})).status_code == 200
    assert_problem(await _again(tenant), 409)
    # graded -> pending_grading still reopens marking without a new attempt.
    await _score(tenant, "bob", 5)
    r = await tenant.put(f"{A}/bob", json={"status": "pending_grading"})
    assert r.status_code == 200 and r.json()["attempt_number"] == 1
