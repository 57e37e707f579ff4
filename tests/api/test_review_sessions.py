"""Candidate review sessions: publishers schedule windows in which learners review their published
result with item scores and feedback (own user token); the window's edges, its audience, what a
learner never sees, and who may schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gradeflow.core import clock
from gradeflow.core.paging import encode_cursor
from tests.conftest import Tenant, assert_problem
from tests.helpers import course, grant, user_token

EXAM = "/v1/courses/c1/assessments/exam"
REVIEWS = f"{EXAM}/review-sessions"
MINE = "/v1/me/courses/c1"
REVIEW = f"{MINE}/assessments/exam/review"
LEARNERS = ("ann", "bob", "cid", "dan")
US = timedelta(microseconds=1)


def _at(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


async def _course(t: Tenant) -> dict[str, str]:
    """ann (cohort A, group g1), bob (cohort B), cid (cohort B, group g2) and dan sat an exam: q1
    auto-scored, q2 marked by g1 with a private comment, all confirmed. ann has feedback on the exam
    and on q2. The exam is published (totals only) to ann, bob and cid, not to dan. Tokens for all."""
    await course(t)
    rows = [
        {"external_id": "ann", "cohort": "A", "groups": ["g1"]},
        {"external_id": "bob", "cohort": "B"},
        {"external_id": "cid", "cohort": "B", "groups": ["g2"]},
        {"external_id": "dan"},
    ]
    assert (await t.post("/v1/courses/c1/enrollments:batch", json={"enrollments": rows})).status_code == 200
    items = [
        {"external_id": "q1", "number": "1", "title": "Kinematics", "points_possible": 4},
        {"external_id": "q2", "number": "2", "title": "Proof", "points_possible": 6, "marking": "manual"},
    ]
    body = {"external_id": "exam", "title": "Final exam", "category": "Exam", "items": items}
    assert (await t.post("/v1/courses/c1/assessments", json=body)).status_code == 201
    await grant(t, "c1", "g1", "grader")
    tokens = {u: await user_token(t, u) for u in (*LEARNERS, "g1")}
    for n, learner in enumerate(LEARNERS):
        r = await t.put(f"{EXAM}/scores/{learner}", json={"items": [{"item": "q1", "earned": n + 1}]})
        assert r.status_code == 200, r.text
    assert (await t.post(f"{EXAM}/allocations", json={"graders": ["g1"]})).json()["allocated"] == 4
    for learner in LEARNERS:
        mark = {"points": 5, "comment": f"PRIVATE note on {learner}"}
        r = await t.put(f"{EXAM}/marks/{learner}/q2", json=mark, as_=tokens["g1"])
        assert r.status_code == 200, r.text
    assert (await t.post(f"{EXAM}/confirmations", json={})).status_code == 200
    assert (await t.put(f"{EXAM}/feedback/ann", json={"text": "Well argued."})).status_code == 200
    assert (await t.put(f"{EXAM}/feedback/ann/q2", json={"text": "Check the base case."})).status_code == 200
    publication = {"assessments": ["exam"], "audience": {"learners": ["ann", "bob", "cid"]}}
    r = await t.post("/v1/courses/c1/publications", json=publication)
    assert r.json()["changed"] == 3, r.text
    return tokens


async def _schedule(t: Tenant, ext: str, starts: datetime, ends: datetime, **fields: Any) -> dict[str, Any]:
    r = await t.post(REVIEWS, json={"external_id": ext, "starts_at": _at(starts), "ends_at": _at(ends), **fields})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _reviewers(t: Tenant, tokens: dict[str, str]) -> set[str]:
    """The learners who may review the exam now."""
    answers = {u: (await t.get(REVIEW, as_=tokens[u])).status_code for u in LEARNERS}
    assert set(answers.values()) <= {200, 404}, answers
    return {u for u, status in answers.items() if status == 200}


async def _audit(t: Tenant, action: str) -> list[dict[str, Any]]:
    r = await t.get("/v1/courses/c1/audit", params={"action": action, "limit": 1000})
    return list(r.json()["items"])


async def test_schedule_change_and_cancel_review_sessions(tenant: Tenant) -> None:
    await _course(tenant)
    now = datetime.now(UTC).replace(microsecond=0)
    later = await _schedule(tenant, "second", now + timedelta(days=2), now + timedelta(days=3), title="Second look")
    window = {"starts_at": _at(now - timedelta(hours=1)), "ends_at": _at(now + timedelta(hours=1))}
    r = await tenant.post(REVIEWS, json={"external_id": "first", **window})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{REVIEWS}/first"
    first = r.json()
    assert (first["state"], first["learners"], first["title"]) == ("open", 3, None)  # dan: nothing published
    assert first["audience"] == {"learners": [], "groups": [], "cohorts": []}
    assert (later["state"], later["title"]) == ("scheduled", "Second look") and later["created_by"].startswith("key:")

    # Listed in the order they open, page by page.
    page = (await tenant.get(REVIEWS, params={"limit": 1})).json()
    assert [s["external_id"] for s in page["items"]] == ["first"]
    rest = (await tenant.get(REVIEWS, params={"cursor": page["next_cursor"]})).json()
    assert [s["external_id"] for s in rest["items"]] == ["second"] and rest["next_cursor"] is None
    assert (await tenant.get(f"{REVIEWS}/second")).json()["starts_at"] == later["starts_at"]

    # A change of audience or window applies at once; an unchanged PATCH writes no audit entry.
    r = await tenant.patch(f"{REVIEWS}/first", json={"audience": {"cohorts": ["B", "B"]}, "title": "Cohort B"})
    assert r.status_code == 200, r.text
    assert (r.json()["audience"]["cohorts"], r.json()["learners"], r.json()["title"]) == (["B"], 2, "Cohort B")
    assert (await tenant.patch(f"{REVIEWS}/first", json={"title": "Cohort B"})).status_code == 200
    r = await tenant.patch(f"{REVIEWS}/first", json={"ends_at": _at(now - timedelta(minutes=1)), "title": None})
    assert (r.json()["state"], r.json()["title"]) == ("ended", None)
    assert (await tenant.delete(f"{REVIEWS}/second")).status_code == 204
    assert_problem(await tenant.delete(f"{REVIEWS}/second"), 404)
    assert_problem(await tenant.get(f"{REVIEWS}/second"), 404)
    assert [s["external_id"] for s in (await tenant.get(REVIEWS)).json()["items"]] == ["first"]

    created = await _audit(tenant, "review_session.created")
    assert [(e["assessment"], e["new"]["external_id"], e["new"]["title"]) for e in created] == [
        ("exam", "second", "Second look"),
        ("exam", "first", None),
    ]
    assert created[1]["new"]["audience"] == {"learners": [], "groups": [], "cohorts": []}
    # Each change says what the changed fields were and became.
    updated = await _audit(tenant, "review_session.updated")
    assert [(e["old"], e["new"]) for e in updated] == [
        (
            {"external_id": "first", "title": None, "audience": {"learners": [], "groups": [], "cohorts": []}},
            {"external_id": "first", "title": "Cohort B", "audience": {"learners": [], "groups": [], "cohorts": ["B"]}},
        ),
        (
            {"external_id": "first", "title": "Cohort B", "ends_at": (now + timedelta(hours=1)).isoformat()},
            {"external_id": "first", "title": None, "ends_at": (now - timedelta(minutes=1)).isoformat()},
        ),
    ]
    [deleted] = await _audit(tenant, "review_session.deleted")
    assert (deleted["assessment"], deleted["old"]["external_id"], deleted["new"]) == ("exam", "second", None)


async def test_bad_requests_name_the_field(tenant: Tenant) -> None:
    await _course(tenant)
    now = datetime.now(UTC).replace(microsecond=0)
    ok = {"external_id": "r1", "starts_at": _at(now), "ends_at": _at(now + timedelta(hours=1))}
    assert_problem(await tenant.post(REVIEWS, json={**ok, "ends_at": _at(now)}), 422, "/ends_at")
    assert_problem(await tenant.post(REVIEWS, json={**ok, "ends_at": _at(now - US)}), 422, "/ends_at")
    assert_problem(await tenant.post(REVIEWS, json={**ok, "ends_at": "2026-01-01T09:00:00"}), 422, "/ends_at")
    assert_problem(
        await tenant.post(REVIEWS, json={k: v for k, v in ok.items() if k != "starts_at"}), 422, "/starts_at"
    )
    bad_audience = {**ok, "audience": {"learners": ["ann", "zed", "bob", "yan"]}}
    assert_problem(await tenant.post(REVIEWS, json=bad_audience), 422, "/audience/learners/1", "/audience/learners/3")
    assert_problem(await tenant.post(REVIEWS, json={**ok, "audience": {"people": ["ann"]}}), 422, "/audience/people")
    assert_problem(await tenant.post(REVIEWS, json={**ok, "external_id": "a/b"}), 422, "/external_id")
    assert_problem(await tenant.post("/v1/courses/c1/assessments/nope/review-sessions", json=ok), 404)
    for cursor in ("nope", encode_cursor(["soon", 1]), encode_cursor(["0001-01-01T00:00:00+14:00", 1])):
        assert_problem(await tenant.get(REVIEWS, params={"cursor": cursor}), 422, "cursor")
    assert (await tenant.post(REVIEWS, json=ok)).status_code == 201
    assert_problem(await tenant.post(REVIEWS, json=ok), 409)
    assert_problem(await tenant.patch(f"{REVIEWS}/r1", json={"ends_at": _at(now)}), 422, "/ends_at")
    assert_problem(
        await tenant.patch(f"{REVIEWS}/r1", json={"starts_at": _at(now + timedelta(hours=2))}), 422, "/starts_at"
    )
    assert_problem(await tenant.patch(f"{REVIEWS}/r1", json={"starts_at": None}), 422, "/starts_at")
    assert_problem(
        await tenant.patch(f"{REVIEWS}/r1", json={"audience": {"learners": ["zed"]}}), 422, "/audience/learners/0"
    )
    assert_problem(await tenant.patch(f"{REVIEWS}/r2", json={"title": "x"}), 404)
    # Nothing of the refused changes stuck.
    assert (await tenant.get(f"{REVIEWS}/r1")).json()["ends_at"] == ok["ends_at"]
    assert (await tenant.get(f"{REVIEWS}/r1")).json()["audience"]["learners"] == []


async def test_publishers_schedule_and_overseers_read(tenant: Tenant, other_tenant: Tenant) -> None:
    tokens = await _course(tenant)
    assessment = {"external_id": "quiz", "title": "Quiz", "category": "Quiz", "points_possible": 5}
    assert (await tenant.post("/v1/courses/c1/assessments", json=assessment)).status_code == 201
    await grant(tenant, "c1", "p1", "planner")
    await grant(tenant, "c1", "pub", "publisher")
    r = await tenant.put(
        "/v1/courses/c1/members/quizpub", json={"roles": ["publisher"], "publish_assessments": ["quiz"]}
    )
    assert r.status_code == 200, r.text
    planner, publisher, quiz_publisher = [await user_token(tenant, u) for u in ("p1", "pub", "quizpub")]
    now = datetime.now(UTC).replace(microsecond=0)
    body = {"external_id": "r1", "starts_at": _at(now), "ends_at": _at(now + timedelta(hours=1))}

    r = await tenant.post(REVIEWS, json=body, as_=publisher)
    assert r.status_code == 201 and r.json()["created_by"] == "pub", r.text
    assert (await tenant.patch(f"{REVIEWS}/r1", json={"title": "T"}, as_=publisher)).status_code == 200
    # A publisher limited to the quiz schedules reviews of the quiz only.
    assert_problem(await tenant.post(REVIEWS, json={**body, "external_id": "r2"}, as_=quiz_publisher), 403)
    assert_problem(await tenant.delete(f"{REVIEWS}/r1", as_=quiz_publisher), 403)
    quiz = "/v1/courses/c1/assessments/quiz/review-sessions"
    assert (await tenant.post(quiz, json=body, as_=quiz_publisher)).status_code == 201
    # Planners read the schedule but do not release results; graders and learners see none of it.
    assert [s["external_id"] for s in (await tenant.get(REVIEWS, as_=planner)).json()["items"]] == ["r1"]
    assert_problem(await tenant.post(REVIEWS, json={**body, "external_id": "r3"}, as_=planner), 403)
    assert_problem(await tenant.patch(f"{REVIEWS}/r1", json={"title": "x"}, as_=planner), 403)
    for method, url in (("GET", REVIEWS), ("GET", f"{REVIEWS}/r1"), ("DELETE", f"{REVIEWS}/r1")):
        assert_problem(await tenant.request(method, url, as_=tokens["g1"]), 403)
        assert_problem(await tenant.request(method, url, as_=tokens["ann"]), 404)
        assert_problem(await other_tenant.request(method, url), 404)
    assert (await tenant.delete(f"{REVIEWS}/r1", as_=publisher)).status_code == 204


async def test_review_window_edges(tenant: Tenant) -> None:
    tokens = await _course(tenant)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    end = start + timedelta(hours=2)
    await _schedule(tenant, "r1", start, end, title="Exam review")
    try:
        clock.freeze(start - US)
        r = await tenant.get(REVIEW, as_=tokens["ann"])
        problem = assert_problem(r, 403)
        assert problem["next_opens_at"] == start.isoformat()
        [listed] = (await tenant.get(f"{MINE}/results", as_=tokens["ann"])).json()["review_sessions"]
        assert (listed["review"], listed["assessment"], listed["open"]) == ("r1", "exam", False)
        assert (listed["starts_at"], listed["ends_at"], listed["title"]) == (_at(start), _at(end), "Exam review")

        for inside in (start, end - US):
            clock.freeze(inside)
            r = await tenant.get(REVIEW, as_=tokens["ann"])
            assert r.status_code == 200, (inside, r.text)
            assert r.json()["review_session"]["review"] == "r1"
            [listed] = (await tenant.get(f"{MINE}/results", as_=tokens["ann"])).json()["review_sessions"]
            assert listed["open"] is True

        clock.freeze(end)
        assert_problem(await tenant.get(REVIEW, as_=tokens["ann"]), 404)  # over, and none to come
        assert (await tenant.get(f"{MINE}/results", as_=tokens["ann"])).json()["review_sessions"] == []
        # Another session later on: outside both windows, the answer says when the next one opens.
        await _schedule(tenant, "r2", end + timedelta(days=1), end + timedelta(days=2))
        assert (
            assert_problem(await tenant.get(REVIEW, as_=tokens["ann"]), 403)["next_opens_at"]
            == (end + timedelta(days=1)).isoformat()
        )
    finally:
        clock.freeze(None)


async def test_audience_by_learner_group_cohort_or_everyone_published(tenant: Tenant) -> None:
    tokens = await _course(tenant)
    now = datetime.now(UTC)
    for audience, expected in (
        ({}, {"ann", "bob", "cid"}),  # dan's result is not published: no review for him
        ({"learners": ["ann", "dan"]}, {"ann"}),
        ({"groups": ["g2"]}, {"cid"}),
        ({"cohorts": ["B"]}, {"bob", "cid"}),
        ({"groups": ["g1"], "cohorts": ["B"]}, {"ann", "bob", "cid"}),
        ({"groups": ["nobody"]}, set()),
    ):
        review = await _schedule(tenant, "r", now - timedelta(minutes=1), now + timedelta(hours=1), audience=audience)
        assert review["learners"] == len(expected), audience
        assert await _reviewers(tenant, tokens) == expected, audience
        listed = {u for u in LEARNERS if (await tenant.get(f"{MINE}/results", as_=tokens[u])).json()["review_sessions"]}
        assert listed == expected, audience
        assert (await tenant.delete(f"{REVIEWS}/r")).status_code == 204
    assert await _reviewers(tenant, tokens) == set()


async def test_learners_review_only_their_own_published_result(tenant: Tenant, other_tenant: Tenant) -> None:
    tokens = await _course(tenant)
    now = datetime.now(UTC)
    await _schedule(tenant, "r1", now - timedelta(minutes=1), now + timedelta(hours=1))

    r = await tenant.get(REVIEW, as_=tokens["ann"])
    assert r.status_code == 200, r.text
    ann = r.json()
    assert (ann["assessment"], ann["title"], ann["earned"], ann["possible"], ann["excused"]) == (
        "exam",
        "Final exam",
        1 + 5,
        10,
        False,
    )
    assert ann["feedback"] == "Well argued."
    assert [(i["item"], i["number"], i["title"], i["earned"], i["possible"], i["feedback"]) for i in ann["items"]] == [
        ("q1", "1", "Kinematics", 1, 4, None),
        ("q2", "2", "Proof", 5, 6, "Check the base case."),
    ]
    # The markers' comments and names never reach a learner; neither does anyone else's result.
    bob = (await tenant.get(REVIEW, as_=tokens["bob"])).json()
    for shown in (ann, bob, (await tenant.get(f"{MINE}/results", as_=tokens["ann"])).json()):
        assert "PRIVATE" not in str(shown) and "g1" not in str(shown)
    assert bob["earned"] == 2 + 5 and bob["feedback"] is None and "Well argued" not in str(bob)
    assert [i["feedback"] for i in bob["items"]] == [None, None]

    # Not published (dan), not enrolled, an API key, another organization: no review.
    assert_problem(await tenant.get(REVIEW, as_=tokens["dan"]), 404)
    assert_problem(await tenant.get(REVIEW, as_=await user_token(tenant, "zed")), 404)
    assert_problem(await tenant.get(REVIEW), 403)
    assert_problem(await other_tenant.get(REVIEW, as_=await user_token(other_tenant, "ann")), 404)
    assert_problem(await tenant.get(f"{MINE}/assessments/nope/review", as_=tokens["ann"]), 404)

    # A change since publication keeps the published total and withholds the item detail until the
    # result is published again; a retracted result has no review.
    r = await tenant.put(f"{EXAM}/scores/bob", json={"items": [{"item": "q1", "earned": 4}]})
    assert r.status_code == 200, r.text
    assert (await tenant.get(REVIEW, as_=tokens["bob"])).json()["items"] is None  # awaits confirmation
    assert (await tenant.post(f"{EXAM}/confirmations", json={"learners": ["bob"]})).status_code == 200
    bob = (await tenant.get(REVIEW, as_=tokens["bob"])).json()
    assert (bob["earned"], bob["items"]) == (7, None)  # confirmed, but not published again
    republish = {"assessments": ["exam"], "audience": {"learners": ["bob"]}}
    assert (await tenant.post("/v1/courses/c1/publications", json=republish)).json()["changed"] == 1
    bob = (await tenant.get(REVIEW, as_=tokens["bob"])).json()
    assert (bob["earned"], [i["earned"] for i in bob["items"]]) == (9, [4, 5])
    retract = {"action": "retract", "assessments": ["exam"], "audience": {"learners": ["ann"]}}
    assert (await tenant.post("/v1/courses/c1/publications", json=retract)).status_code == 201
    assert_problem(await tenant.get(REVIEW, as_=tokens["ann"]), 404)
    assert (await tenant.get(f"{MINE}/results", as_=tokens["ann"])).json()["review_sessions"] == []


async def test_items_published_with_the_result_are_reviewed_as_published(tenant: Tenant) -> None:
    tokens = await _course(tenant)
    publication = {"assessments": ["exam"], "audience": {"learners": ["ann"]}, "show": "with_items"}
    assert (await tenant.post("/v1/courses/c1/publications", json=publication)).json()["changed"] == 1
    assert (await tenant.put(f"{EXAM}/feedback/ann/q2", json={"text": "Rewritten later."})).status_code == 200
    now = datetime.now(UTC)
    await _schedule(tenant, "r1", now - timedelta(minutes=1), now + timedelta(hours=1), audience={"learners": ["ann"]})
    ann = (await tenant.get(REVIEW, as_=tokens["ann"])).json()
    assert [(i["item"], i["earned"], i["feedback"]) for i in ann["items"]] == [
        ("q1", 1, None),
        ("q2", 5, "Check the base case."),
    ]
