"""Scores: single upsert, item scores and derived totals, batches all or nothing, idempotency."""

from __future__ import annotations

import asyncio
import logging
import time
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
    app: Any, tenant: Tenant, sessionmaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PUT's common case is one statement (repository.put_scores, put_single); the general path (staging, as batches
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

            async def none_common(_: Any, scores: list[Any]) -> list[None]:
                return [None for _ in scores]

            async def not_common(*_: Any) -> None:
                return None

            monkeypatch.setattr(app.state.score_writes, "write", none_common)  # the fast lane's
            monkeypatch.setattr(score_sql, "put_single", not_common)  # the route's
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


# --- the score PUT's fast lane (gradeflow/scores/router/fast_lane.py) ---------------------------------


@pytest.fixture
def lane(app: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The fast lane, registered innermost; keys stay known for the test; counts the requests the app's
    route answered (`general`)."""
    from gradeflow.access.service import auth
    from gradeflow.scores.router.fast_lane import FastLane
    from gradeflow.scores.service import scores

    assert app.user_middleware[-1].cls is FastLane, "the fast lane is to be the innermost middleware"
    monkeypatch.setattr(auth, "KEY_CACHE_SECONDS", 60.0)
    calls = {"general": 0}
    put_score = scores.put_score

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls["general"] += 1
        return await put_score(*args, **kwargs)

    monkeypatch.setattr(scores, "put_score", counted)
    return calls


def _general_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from gradeflow.scores.router import fast_lane

    async def unknown(*_: Any) -> None:
        return None

    monkeypatch.setattr(fast_lane, "current_key", unknown)


HEADERS = ("content-type", "x-request-id", "www-authenticate", "retry-after", "cache-control", "etag")


def _answer(r: Any) -> tuple[int, Any, dict[str, str]]:
    body = r.json()
    if isinstance(body, dict):
        body.pop("graded_at", None)
    return r.status_code, body, {h: r.headers[h] for h in HEADERS if h in r.headers}


async def test_the_fast_lane_answers_and_writes_as_the_general_path(
    app: Any, tenant: Tenant, sessionmaker: Any, lane: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gradeflow import jobs
    from gradeflow.grades.service import followup
    from gradeflow.jobs import JobName

    steps: list[dict[str, Any]] = [
        {"earned": 7.25},  # create
        {"earned": 7.25},  # unchanged: no audit entry
        {"earned": 8.50},  # change
        {"earned": 9, "source": "override", "graded_by": "prof"},  # override
        {"earned": 3},  # automatic under an override: kept as computed
        {"earned": 4, "possible": 20, "source": "manual"},
    ]
    seen: dict[str, Any] = {}
    for ext in ("fast", "general"):
        if ext == "general":
            _general_path_only(monkeypatch)
        await course(tenant, ext)
        await assessment(tenant, ext, "hw1", points_possible=10)
        await enroll(tenant, ext, "l0", "l1")
        # The first PUT to a course is the app's: it resolves the course for the key (and the lane learns
        # the route).
        assert (await tenant.put(f"/v1/courses/{ext}/assessments/hw1/scores/l0", json={"earned": 1})).status_code == 200
        async with sessionmaker() as session:
            course_id = await session.scalar(
                text("SELECT id FROM courses WHERE external_id = :c AND organization_id = :o"),
                {"c": ext, "o": tenant.id},
            )
            await session.execute(text("DELETE FROM stale_grades WHERE course_id = :c"), {"c": course_id})
            await session.commit()
        job_key = "arq:job:" + jobs.job_id(JobName.FOLLOW_UP, course_id)
        general_before = lane["general"]
        answers, asked = [], []
        for n, body in enumerate(steps):
            followup._ASKED.clear()
            await app.state.redis.delete(job_key)
            r = await tenant.put(
                f"/v1/courses/{ext}/assessments/hw1/scores/l1", json=body, headers={"X-Request-ID": f"rid-{n}"}
            )
            answers.append(_answer(r))
            asked.append(await app.state.redis.exists(job_key))
        answers.append(_answer(await tenant.put(f"/v1/courses/{ext}/assessments/hw1/scores/l1", json={"earned": 5})))
        generated = answers[-1][2].pop("x-request-id")
        assert len(generated) == 32  # made up, as for any request without one
        served = lane["general"] - general_before
        assert served == (0 if ext == "fast" else len(steps) + 1)
        async with sessionmaker() as session:
            attempt = (
                await session.execute(
                    text(
                        """
                        SELECT t.status, t.entered, t.earned, t.possible, t.source, t.scored_by, t.computed_earned,
                               t.confirmed_at, t.late_status, t.points_deducted
                        FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id
                        WHERE e.course_id = :c AND e.external_id = 'l1'
                        """
                    ),
                    {"c": course_id},
                )
            ).all()
            entries = (
                await session.execute(
                    text(
                        """
                        SELECT action, actor, CASE WHEN request_id LIKE 'rid-%' THEN request_id ELSE 'made up' END,
                               learner, assessment, item, old, new, import_id
                        FROM audit_log WHERE course_id = :c AND learner = 'l1' AND action LIKE 'score%' ORDER BY id
                        """
                    ),
                    {"c": course_id},
                )
            ).all()
            stale = (
                await session.execute(
                    text(
                        "SELECT e.external_id FROM stale_grades s JOIN enrollments e ON e.id = s.enrollment_id"
                        " WHERE s.course_id = :c"
                    ),
                    {"c": course_id},
                )
            ).all()
        seen[ext] = (answers, asked, [tuple(a) for a in attempt], [tuple(e) for e in entries], stale)
    assert seen["fast"] == seen["general"]
    answers, asked, _, entries, stale = seen["fast"]
    assert all(status == 200 for status, _, _ in answers) and all(asked)
    assert [e[2] for e in entries] == ["rid-0", "rid-2", "rid-3", "rid-4", "rid-5", "made up"]
    assert stale == [("l1",)]


async def test_what_the_fast_lane_leaves_to_the_app(
    app: Any, tenant: Tenant, lane: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request but the common case gets the app's answer: the same as without the lane."""
    from gradeflow.core.errors import RateLimited

    await _setup(tenant)
    await course(tenant, "late")
    await assessment(tenant, "late", "hw1", points_possible=10)
    await enroll(tenant, "late", "l1")
    base = "/v1/courses/c1/assessments"
    assert (await tenant.put(f"{base}/hw1/scores/l3", json={"earned": 1})).status_code == 200  # course known
    await tenant.put(f"{base}/hw1/attempts/l2", json={"status": "cancelled"})
    json_type = {"content-type": "application/json"}
    errors: list[tuple[str, dict[str, Any]]] = [
        (f"{base}/nope/scores/l1", {"json": {"earned": 1}}),
        (f"{base}/hw1/scores/nobody", {"json": {"earned": 1}}),
        (f"{base}/hw1/scores/l2", {"json": {"earned": 1}}),  # cancelled: 409
        (f"{base}/hw1/scores/l1", {"json": {"earned": -1}}),
        (f"{base}/hw1/scores/l1", {"json": {}}),
        (f"{base}/hw1/scores/l1", {"json": [1]}),
        (f"{base}/hw1/scores/l1", {"json": {"earned": 1, "items": [{"item": "q1", "earned": 1}]}}),
        (f"{base}/exam/scores/l1", {"json": {"earned": 1}}),  # an assessment with items
        (f"{base}/hw1/scores/l1", {"content": b"{nope", "headers": json_type}),
        (f"{base}/hw1/scores/l1", {"content": b'{"earned": NaN}', "headers": json_type}),
        (f"{base}/hw1/scores/l1", {"content": b'{"earned": 1}', "headers": {"content-type": "text/plain"}}),
        (f"{base}/hw1/scores/{'x' * 256}", {"json": {"earned": 1}}),
        ("/v1/courses/unknown/assessments/hw1/scores/l1", {"json": {"earned": 1}}),
        (f"{base}/hw1/scores/l1", {"json": {"earned": 1}, "headers": {"Authorization": "Bearer gfk_unknown"}}),
        (f"{base}/hw1/scores/l1", {"json": {"earned": 1}, "headers": {"Authorization": "Basic eDp5"}}),
    ]
    with_lane = [_answer(await tenant.put(url, **kw)) for url, kw in errors]
    assert all(status >= 400 for status, _, _ in with_lane)
    # A rate limit's 429 is the app's own answer.
    checks = {"n": 0}
    unlimited = app.state.limiter.check

    async def limited(_: Any) -> None:
        checks["n"] += 1
        raise RateLimited("More than 1 per 1 second for this credential.", retry_after=1)

    monkeypatch.setattr(app.state.limiter, "check", limited)
    with_lane.append(_answer(await tenant.put(f"{base}/hw1/scores/l3", json={"earned": 2})))
    assert checks["n"] == 1 and with_lane[-1][0] == 429
    monkeypatch.setattr(app.state.limiter, "check", unlimited)
    # Common writes the lane leaves to the app all the same (answered there: counted as general).
    general = lane["general"]
    idempotent = await tenant.put(f"{base}/hw1/scores/l1", json={"earned": 2}, headers={"Idempotency-Key": "k1"})
    items = await tenant.put(f"{base}/exam/scores/l1", json={"items": [{"item": "q1", "earned": 3}]})
    r = await tenant.put("/v1/courses/late/late-policy", json={"late_submission_deduction_enabled": True})
    assert r.status_code == 200, r.text
    assert (await tenant.put("/v1/courses/late/assessments/hw1/scores/l1", json={"earned": 1})).status_code == 200
    late = await tenant.put("/v1/courses/late/assessments/hw1/scores/l1", json={"earned": 2})  # course known
    assert [r.status_code for r in (idempotent, items, late)] == [200, 200, 200]
    assert lane["general"] - general == 4
    _general_path_only(monkeypatch)
    without = [_answer(await tenant.put(url, **kw)) for url, kw in errors]
    monkeypatch.setattr(app.state.limiter, "check", limited)
    without.append(_answer(await tenant.put(f"{base}/hw1/scores/l3", json={"earned": 2})))
    for a, b in zip(with_lane, without, strict=True):
        a[2].pop("x-request-id"), b[2].pop("x-request-id")
    assert with_lane == without


async def _learners_scores(sessionmaker: Any, tenant: Tenant) -> dict[str, Any]:
    async with sessionmaker() as session:
        rows = await session.execute(
            text(
                """
                SELECT e.external_id, t.entered FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id
                JOIN courses c ON c.id = e.course_id
                WHERE c.organization_id = :o AND c.external_id = 'c1' AND t.entered IS NOT NULL
                """
            ),
            {"o": tenant.id},
        )
        return {learner: float(entered) for learner, entered in rows}


async def test_concurrent_puts_are_written_together_and_each_answered_as_alone(
    app: Any, tenant: Tenant, sessionmaker: Any, lane: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lane writes the common-case PUTs of concurrent requests as one statement (group commit): each
    request still gets its own answer, its own audit entry and its own error; the same score twice waits."""
    await _setup(tenant)
    learners = [f"m{i}" for i in range(12)]
    await enroll(tenant, "c1", *learners)
    base = "/v1/courses/c1/assessments"
    assert (await tenant.put(f"{base}/hw1/scores/l3", json={"earned": 1})).status_code == 200  # course known
    await tenant.put(f"{base}/hw1/attempts/l2", json={"status": "cancelled"})
    groups: list[int] = []

    async def counted(driver: Any, scores: list[Any]) -> Any:
        groups.append(len(scores))
        return await score_sql.put_scores(driver, scores)

    monkeypatch.setattr(app.state.score_writes, "write", counted)
    general = lane["general"]
    requests = [(f"{base}/hw1/scores/{learner}", {"earned": n}) for n, learner in enumerate(learners)]
    requests += [
        (f"{base}/hw1/scores/l1", {"earned": 4}),
        (f"{base}/hw1/scores/l1", {"earned": 5}),  # the same score again: written after the first
        (f"{base}/hw1/scores/l2", {"earned": 1}),  # a cancelled attempt: the app's 409
        (f"{base}/hw1/scores/nobody", {"earned": 1}),  # the app's 404
    ]
    answers = await asyncio.gather(*[tenant.put(url, json=body) for url, body in requests])
    assert [r.status_code for r in answers] == [200] * 14 + [409, 404]
    assert [r.json()["earned"] for r in answers[:14]] == [n for n in range(12)] + [4, 5]
    assert [r.json()["learner"] for r in answers[:14]] == [*learners, "l1", "l1"]
    assert lane["general"] - general == 2  # only the two errors went to the app
    assert sum(groups) == 16 and len(groups) < 8, groups  # written together, a few statements for 16 writes
    stored = await _learners_scores(sessionmaker, tenant)
    assert {learner: stored[learner] for learner in learners} == {m: float(n) for n, m in enumerate(learners)}
    assert stored["l1"] == 5 and "l2" not in stored
    async with sessionmaker() as session:
        audited = (
            await session.execute(
                text(
                    """
                    SELECT learner, new->>'earned' FROM audit_log
                    WHERE organization_id = :o AND action = 'score.set' AND learner <> 'l3' ORDER BY id
                    """
                ),
                {"o": tenant.id},
            )
        ).all()
    assert sorted(audited) == sorted([(m, str(n)) for n, m in enumerate(learners)] + [("l1", "4"), ("l1", "5")])
    assert [e for e in audited if e[0] == "l1"] == [("l1", "4"), ("l1", "5")]


async def test_a_group_that_fails_is_written_by_the_app_request_by_request(
    app: Any, tenant: Tenant, sessionmaker: Any, lane: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    await _setup(tenant)
    base = "/v1/courses/c1/assessments"
    assert (await tenant.put(f"{base}/hw1/scores/l3", json={"earned": 1})).status_code == 200  # course known

    failed: list[int] = []

    async def fails(_: Any, scores: list[Any]) -> Any:
        failed.append(len(scores))
        raise ConnectionResetError("the database went away mid-statement")

    monkeypatch.setattr(app.state.score_writes, "write", fails)
    general = lane["general"]
    answers = await asyncio.gather(
        *[tenant.put(f"{base}/hw1/scores/{learner}", json={"earned": 7}) for learner in ("l1", "l2", "l3")]
    )
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert lane["general"] - general == sum(failed) == 3 and len(failed) < 3  # each answered by the app
    assert await _learners_scores(sessionmaker, tenant) == {"l1": 7, "l2": 7, "l3": 7}


async def test_groups_writing_the_same_scores_in_any_order_never_deadlock(tenant: Tenant, sessionmaker: Any) -> None:
    """Two groups with the same scores, named in opposite orders, written at once many times: rows are locked
    in key order, so neither waits on the other in a circle (PostgreSQL would abort one as a deadlock)."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from gradeflow.audit import service as audit
    from gradeflow.db.grouped import driver_connection

    await _setup(tenant)
    learners = [f"d{i}" for i in range(60)]
    await enroll(tenant, "c1", *learners)
    async with sessionmaker() as session:
        course_id = await session.scalar(
            text("SELECT id FROM courses WHERE external_id = 'c1' AND organization_id = :o"), {"o": tenant.id}
        )
    engine = sessionmaker.kw["bind"]

    def scores(order: list[str], earned: int) -> list[score_sql.SingleScore]:
        stamp = audit.stamp(tenant.id, course_id, "test")
        now = datetime.now(UTC)
        return [
            score_sql.SingleScore(course_id, tenant.id, "c1", "hw1", m, Decimal(earned), None, "auto", "t", stamp, now)
            for m in order
        ]

    async def write(order: list[str], earned: int) -> None:
        async with engine.connect() as connection:
            written = await score_sql.put_scores(await driver_connection(connection), scores(order, earned))
        assert all(w is not None for w in written)

    for n in range(15):
        await asyncio.gather(write(learners, n), write(learners[::-1], n + 100))
    stored = await _learners_scores(sessionmaker, tenant)
    assert all(stored[m] in (14, 114) for m in learners)


async def test_a_revoked_key_stops_on_the_fast_lane_within_a_second(
    tenant: Tenant, sessionmaker: Any, app: Any
) -> None:
    from gradeflow.scores.router.fast_lane import FastLane

    assert app.user_middleware[-1].cls is FastLane
    await _setup(tenant)
    created = (await tenant.post("/v1/api-keys", json={"name": "lms", "role": "service"})).json()
    url = "/v1/courses/c1/assessments/hw1/scores/l1"
    assert (await tenant.put(url, json={"earned": 1}, as_=created["secret"])).status_code == 200
    async with sessionmaker() as session:
        await session.execute(text("UPDATE api_keys SET revoked_at = now() WHERE id = :id"), {"id": created["id"]})
        await session.commit()
    revoked = time.monotonic()
    n = 0
    while (await tenant.put(url, json={"earned": n % 2}, as_=created["secret"])).status_code == 200:
        assert time.monotonic() - revoked < 1.0, "the revoked key still wrote a second later"
        n += 1
        await asyncio.sleep(0.02)
    assert_problem(await tenant.put(url, json={"earned": 1}, as_=created["secret"]), 401)


async def test_fast_lane_requests_are_counted_and_logged(
    tenant: Tenant, lane: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    from gradeflow.core import metrics
    from gradeflow.scores.router.fast_lane import ROUTE

    await _setup(tenant)
    url = "/v1/courses/c1/assessments/hw1/scores/l1"
    assert (await tenant.put(url, json={"earned": 1})).status_code == 200

    def counted() -> float:
        return float(metrics.REQUESTS.labels(method="PUT", route=ROUTE, status="200")._value.get())

    before, general = counted(), lane["general"]
    with caplog.at_level(logging.INFO, logger="gradeflow.access"):
        assert (await tenant.put(url, json={"earned": 2})).status_code == 200
    assert lane["general"] == general  # the lane answered
    assert counted() == before + 1
    lines = [r for r in caplog.records if r.name == "gradeflow.access"]
    assert [(r.method, r.route, r.status) for r in lines] == [("PUT", ROUTE, 200)]  # type: ignore[attr-defined]
