"""Scores: single upsert, item scores and derived totals, batches all or nothing, idempotency."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from gradeflow.scores.repository import scores as score_sql
from tests.conftest import Tenant, assert_problem
from tests.helpers import assessment, course, enroll

ITEMS = [
    {"external_id": "q1", "number": "1", "points_possible": 4},
    {"external_id": "q2", "number": "2", "points_possible": 6, "marking": "manual"},
]


async def _setup(t: Tenant) -> None:
    await course(t)
    await assessment(t, "c1", "hw1", points_possible=10)
    await assessment(t, "c1", "exam", category="Exam", items=ITEMS)
    await enroll(t, "c1", "l1", "l2", "l3")


async def test_put_score_is_an_idempotent_upsert(tenant: Tenant) -> None:
    await _setup(tenant)
    url = "/v1/courses/c1/assessments/hw1/scores/l1"
    first = await tenant.put(url, json={"earned": 7.25})
    assert first.status_code == 200
    body = first.json()
    assert (body["earned"], body["possible"], body["status"], body["source"]) == (7.25, 10, "graded", "auto")
    again = (await tenant.put(url, json={"earned": 7.25})).json()
    assert again["earned"] == 7.25
    r = await tenant.put(url, json={"earned": 12, "possible": 10, "source": "override", "graded_by": "prof"})
    assert (r.json()["earned"], r.json()["source"], r.json()["graded_by"]) == (12, "override", "prof")
    listed = (await tenant.get("/v1/courses/c1/assessments/hw1/scores")).json()["items"]
    assert [(s["learner"], s["earned"]) for s in listed] == [("l1", 12)]


async def test_item_scores_derive_the_total_and_status(tenant: Tenant) -> None:
    await _setup(tenant)
    url = "/v1/courses/c1/assessments/exam/scores/l1"
    r = await tenant.put(url, json={"items": [{"item": "q1", "earned": 3}]})
    body = r.json()
    assert (body["earned"], body["possible"], body["status"]) == (3, 10, "pending_grading")
    assert [i["earned"] for i in body["items"]] == [3, None]
    r = await tenant.put(url, json={"items": [{"item": "q2", "earned": 5.5}], "source": "manual", "graded_by": "g1"})
    body = r.json()
    assert (body["earned"], body["possible"], body["status"], body["source"]) == (8.5, 10, "graded", "manual")
    assert [(i["item"], i["earned"], i["graded_by"]) for i in body["items"]] == [
        ("q1", 3, "key:" + body["items"][0]["graded_by"].split(":")[1]),
        ("q2", 5.5, "g1"),
    ]
    # After q1's points change, its score shows as given under an older revision.
    await tenant.patch("/v1/courses/c1/assessments/exam", json={"items": [{"external_id": "q1", "points_possible": 5}]})
    items = (await tenant.get(url)).json()["items"]
    assert [i["stale"] for i in items] == [True, False]


async def test_score_input_errors(tenant: Tenant) -> None:
    await _setup(tenant)
    base = "/v1/courses/c1/assessments"
    assert_problem(await tenant.put(f"{base}/hw1/scores/l1", json={"earned": -1}), 422, "/earned")
    assert_problem(await tenant.put(f"{base}/hw1/scores/l1", json={"earned": 1.0000001}), 422, "/earned")
    assert_problem(await tenant.put(f"{base}/hw1/scores/l1", json={}), 422, "/earned")
    assert_problem(await tenant.put(f"{base}/hw1/scores/l1", json={"earned": 1, "source": "x"}), 422, "/source")
    assert_problem(await tenant.put(f"{base}/exam/scores/l1", json={"earned": 1}), 422, "/earned")
    assert_problem(
        await tenant.put(f"{base}/hw1/scores/l1", json={"items": [{"item": "q1", "earned": 1}]}), 422, "/items"
    )
    assert_problem(
        await tenant.put(
            f"{base}/exam/scores/l1", json={"items": [{"item": "q1", "earned": 1}, {"item": "q9", "earned": 1}]}
        ),
        422,
        "/items/1/item",
    )
    assert_problem(
        await tenant.put(
            f"{base}/exam/scores/l1", json={"items": [{"item": "q1", "earned": 1}, {"item": "q1", "earned": 2}]}
        ),
        422,
        "/items/1/item",
    )
    assert_problem(await tenant.put(f"{base}/nope/scores/l1", json={"earned": 1}), 404)
    assert_problem(await tenant.put(f"{base}/hw1/scores/nobody", json={"earned": 1}), 404)
    # A cancelled attempt takes no score.
    await tenant.put(f"{base}/hw1/attempts/l2", json={"status": "cancelled"})
    assert_problem(await tenant.put(f"{base}/hw1/scores/l2", json={"earned": 1}), 409)
    # Nothing of the failed requests was kept.
    assert_problem(await tenant.get(f"{base}/exam/scores/l1"), 404)


async def test_batch_writes_everything_or_nothing(tenant: Tenant) -> None:
    await _setup(tenant)
    good = [
        {"assessment": "hw1", "learner": "l1", "earned": 9},
        {"assessment": "hw1", "learner": "l2", "earned": 4.5},
        {"assessment": "exam", "learner": "l1", "item": "q1", "earned": 4},
        {"assessment": "exam", "learner": "l1", "item": "q2", "earned": 6, "source": "manual"},
        {"assessment": "exam", "learner": "l2", "item": "q1", "earned": 1},
    ]
    bad = [
        *good,
        {"assessment": "nope", "learner": "l1", "earned": 1},
        {"assessment": "hw1", "learner": "ghost", "earned": 1},
        {"assessment": "exam", "learner": "l3", "item": "q7", "earned": 1},
        {"assessment": "exam", "learner": "l3", "earned": 1},
        {"assessment": "hw1", "learner": "l1", "earned": 2},
        {"assessment": "hw1", "learner": "l3", "earned": -2},
    ]
    r = await tenant.post("/v1/courses/c1/scores:batch", json={"scores": bad})
    assert_problem(r, 422, "/scores/10/earned")  # shape errors are reported first
    r = await tenant.post("/v1/courses/c1/scores:batch", json={"scores": bad[:-1]})
    body = assert_problem(
        r, 422, "/scores/5/assessment", "/scores/6/learner", "/scores/7/item", "/scores/8/item", "/scores/9/learner"
    )
    assert "row 0" in next(e["detail"] for e in body["errors"] if e["pointer"] == "/scores/9/learner")
    assert (await tenant.get("/v1/courses/c1/assessments/hw1/scores")).json()["items"] == []

    r = await tenant.post("/v1/courses/c1/scores:batch", json={"scores": good})
    assert r.json() == {"written": 5}
    exam = {s["learner"]: s for s in (await tenant.get("/v1/courses/c1/assessments/exam/scores")).json()["items"]}
    assert (exam["l1"]["earned"], exam["l1"]["status"], exam["l1"]["source"]) == (10, "graded", "manual")
    assert (exam["l2"]["earned"], exam["l2"]["status"]) == (1, "pending_grading")


async def test_idempotency_key_replays_and_rejects_other_bodies(tenant: Tenant) -> None:
    await _setup(tenant)
    body = {"scores": [{"assessment": "hw1", "learner": "l1", "earned": 5}]}
    headers = {"Idempotency-Key": "import-42"}
    first = await tenant.post("/v1/courses/c1/scores:batch", json=body, headers=headers)
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    await tenant.put("/v1/courses/c1/assessments/hw1/scores/l1", json={"earned": 8})
    again = await tenant.post("/v1/courses/c1/scores:batch", json=body, headers=headers)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    # The replay did not write again: the later PUT stands.
    assert (await tenant.get("/v1/courses/c1/assessments/hw1/scores/l1")).json()["earned"] == 8
    other = {"scores": [{"assessment": "hw1", "learner": "l1", "earned": 6}]}
    assert_problem(await tenant.post("/v1/courses/c1/scores:batch", json=other, headers=headers), 409)
    # A failed request does not use up its key.
    bad = {"scores": [{"assessment": "hw1", "learner": "ghost", "earned": 6}]}
    assert_problem(await tenant.post("/v1/courses/c1/scores:batch", json=bad, headers={"Idempotency-Key": "k2"}), 422)
    assert (
        await tenant.post("/v1/courses/c1/scores:batch", json=other, headers={"Idempotency-Key": "k2"})
    ).status_code == 200


async def test_concurrent_requests_with_one_key_write_once(tenant: Tenant) -> None:
    await _setup(tenant)
    body = {"scores": [{"assessment": "hw1", "learner": f"l{i}", "earned": i} for i in (1, 2, 3)]}
    responses = await asyncio.gather(
        *[tenant.post("/v1/courses/c1/scores:batch", json=body, headers={"Idempotency-Key": "same"}) for _ in range(5)]
    )
    assert all(r.status_code in (200, 409) for r in responses)
    assert any(r.status_code == 200 for r in responses)
    assert all(r.json() == {"written": 3} for r in responses if r.status_code == 200)


async def test_batch_of_ten_thousand_rows(tenant: Tenant) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "hw1", points_possible=100)
    await tenant.post(
        "/v1/courses/c1/enrollments:batch", json={"enrollments": [{"external_id": f"u{i}"} for i in range(10_000)]}
    )
    rows = [{"assessment": "hw1", "learner": f"u{i}", "earned": i % 101} for i in range(10_000)]
    r = await tenant.post("/v1/courses/c1/scores:batch", json={"scores": rows})
    assert r.json() == {"written": 10_000}
    assert (await tenant.get("/v1/courses/c1/assessments/hw1/scores/u9999")).json()["earned"] == 9999 % 101
    r = await tenant.post("/v1/courses/c1/scores:batch", json={"scores": [*rows, rows[0]]})
    assert_problem(r, 422, "/scores")


async def test_the_single_write_and_the_general_path_write_the_same(
    tenant: Tenant, sessionmaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PUT's common case is one statement (repository.put_single); the general path (staging, as batches
    do) must give the same answers, attempts and audit entries."""
    steps: list[dict[str, Any]] = [
        {"earned": 7.25},
        {"earned": 7.25},  # unchanged: no audit entry
        {"earned": 8.50},
        {"earned": 9, "source": "override", "graded_by": "prof"},
        {"earned": 3},  # automatic under an override: kept as computed
        {"earned": 4, "possible": 20, "source": "manual"},
    ]
    seen: dict[str, Any] = {}
    for ext in ("one", "general"):
        if ext == "general":

            async def not_common(*_: Any) -> None:
                return None

            monkeypatch.setattr(score_sql, "put_single", not_common)
        await course(tenant, ext)
        await assessment(tenant, ext, "hw1", points_possible=10)
        await enroll(tenant, ext, "l1")
        answers = []
        for body in steps:
            r = await tenant.put(f"/v1/courses/{ext}/assessments/hw1/scores/l1", json=body)
            assert r.status_code == 200
            answers.append({k: v for k, v in r.json().items() if k != "graded_at"})
        async with sessionmaker() as session:
            attempt = (
                await session.execute(
                    text(
                        """
                        SELECT t.status, t.entered, t.earned, t.possible, t.source, t.scored_by, t.computed_earned,
                               t.confirmed_at, t.late_status, t.points_deducted
                        FROM attempts t JOIN assessments a ON a.id = t.assessment_id
                        JOIN courses c ON c.id = a.course_id WHERE c.external_id = :c AND c.organization_id = :o
                        """
                    ),
                    {"c": ext, "o": tenant.id},
                )
            ).all()
            entries = (
                await session.execute(
                    text(
                        """
                        SELECT l.action, l.actor, l.learner, l.assessment, l.item, l.old, l.new, l.import_id,
                               l.request_id IS NOT NULL AS has_request
                        FROM audit_log l JOIN courses c ON c.id = l.course_id
                        WHERE c.external_id = :c AND c.organization_id = :o AND l.action LIKE 'score%' ORDER BY l.id
                        """
                    ),
                    {"c": ext, "o": tenant.id},
                )
            ).all()
            audited = await session.scalar(
                text(
                    """
                    SELECT count(*) FROM audit_log l JOIN courses c ON c.id = l.course_id
                    WHERE c.external_id = :c AND c.organization_id = :o
                    """
                ),
                {"c": ext, "o": tenant.id},
            )
        seen[ext] = (answers, [tuple(a) for a in attempt], [tuple(e) for e in entries], audited)
    assert seen["one"] == seen["general"]
    assert len(seen["one"][2]) == len(steps) - 1
