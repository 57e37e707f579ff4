"""Review 19a: defects found in course sessions, archivable learner groups and the dashboard (commit
72388a1). Each test fails on that commit and says what a user would notice; the fix makes it pass.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Tenant, assert_problem
from tests.helpers import assessment, course, grant, user_token

C = "/v1/courses/c1"
S = f"{C}/sessions"


def _pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {"attempts": [{"assessment": a, "learner": learner} for a, learner in pairs]}


async def _enrol(t: Tenant, rows: list[dict[str, Any]]) -> None:
    r = await t.post(f"{C}/enrollments:batch", json={"enrollments": rows})
    assert r.status_code == 200, r.text


async def _scores(t: Tenant, rows: list[tuple[str, str, float]]) -> None:
    body = {"scores": [{"assessment": a, "learner": lr, "earned": e} for lr, a, e in rows]}
    r = await t.post(f"{C}/scores:batch", json=body)
    assert r.status_code == 200, r.text


def _cursor(key: str) -> str:
    """A cursor as the API encodes them (base64 of JSON), holding a key no page ever ends on."""
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


# Catches: the session filter means two things. The results table, its counts and the dashboard keep the
# attempts in the session (`t.session_id = ...` in results_table._where); the statistics keep the
# learners with an attempt in it (sessions.with_attempt_in in statistics._who) and then count every
# result of theirs, even at an assessment they sat outside the session. So for one assessment and one
# session the statistics count a result the results table, the dashboard and the group report (which
# calls it "not taken") all leave out. ann sat the quiz in `morning` and the exam elsewhere (40 %); bob
# sat the exam in `morning` (60 %). Expected for exam x morning: 1 result, 60 %; got 2 results, mean 50.
async def test_an_assessments_statistics_in_a_session_are_the_results_tables(tenant: Tenant) -> None:
    await course(tenant)
    await _enrol(tenant, [{"external_id": "ann"}, {"external_id": "bob"}])
    await assessment(tenant, "c1", "quiz")
    await assessment(tenant, "c1", "exam")
    await _scores(tenant, [("ann", "quiz", 8), ("ann", "exam", 4), ("bob", "exam", 6)])
    assert (await tenant.post(S, json={"external_id": "morning"})).status_code == 201
    r = await tenant.put(f"{S}/morning/attempts", json=_pairs([("quiz", "ann"), ("exam", "bob")]))
    assert r.status_code == 200, r.text
    only = {"assessment": "exam", "session": "morning"}

    table = (await tenant.get(f"{C}/results", params=only)).json()["items"]
    assert [(x["learner"], x["percent"]) for x in table] == [("bob", 60.0)]
    dashboard = (await tenant.get(f"{C}/dashboard", params=only)).json()["total"]["scores"]
    assert (dashboard["count"], dashboard["mean"]) == (1, 60.0)
    stats = (await tenant.get(f"{C}/statistics", params=only)).json()
    assert (stats["count"], stats["mean"], stats["min"]) == (1, 60.0, 60.0)


# Catches: a group whose name has a slash cannot be archived. Enrollments take any group name
# (ShortText: "2024/25", "Class 3/B" are common), GET /groups lists it, but PUT /groups/{group} takes the
# name as a path segment (routers/groups.py): the encoded slash is decoded before routing, no route
# matches, and the answer is a bare 404 "Not Found" (instance /groups/2024/25). Expected: archived.
async def test_a_group_with_a_slash_in_its_name_can_be_archived(tenant: Tenant) -> None:
    await course(tenant)
    await _enrol(tenant, [{"external_id": "ann", "groups": ["2024/25"]}, {"external_id": "bob"}])
    (listed,) = (await tenant.get(f"{C}/groups")).json()["items"]
    assert listed["name"] == "2024/25"
    r = await tenant.put(f"{C}/groups/{quote(listed['name'], safe='')}", json={"archived": True})
    assert r.status_code == 200, r.text
    assert r.json()["archived"] is True
    (listed,) = (await tenant.get(f"{C}/groups")).json()["items"]
    assert listed["archived"] is True


# Catches: the dashboard's row of a group counts an attempt twice when the learner's `groups` names the
# group twice. Enrollments keep ["g1", "g1"] as sent (no de-duplication), and dashboard._groups unnests
# e.groups as it is, so the g1 row says 2 attempts (and doubles its scores) while the total says 1 and
# GET /groups counts 1 learner (count(DISTINCT e.id)). Expected: the g1 row is the total, 1 attempt.
async def test_a_dashboard_group_row_counts_each_attempt_once(tenant: Tenant) -> None:
    await course(tenant)
    await _enrol(tenant, [{"external_id": "ann", "groups": ["g1", "g1"]}])
    await assessment(tenant, "c1", "quiz")
    await _scores(tenant, [("ann", "quiz", 8)])
    assert [(g["name"], g["learners"]) for g in (await tenant.get(f"{C}/groups")).json()["items"]] == [("g1", 1)]
    body = (await tenant.get(f"{C}/dashboard", params={"by": "group"})).json()
    assert body["total"]["attempts"] == 1
    assert [(r["key"], r["attempts"], r["scores"]["count"]) for r in body["rows"]] == [("g1", 1, 1)]


# Catches: two planners (or an LMS retrying into another sitting) putting the same new pairs in two
# sessions at once both answer "created": N and both write a per-attempt `session.attempt_added` with
# old = null, although the attempts were made once and the second request moved them out of the first
# session. sessions._ADD reads `before` in the statement's snapshot, which cannot see the other
# request's rows; the INSERT then waits for them and takes the DO UPDATE branch. The learner's history
# never shows the move. Expected: N attempts created in all, and the mover's entries name the session
# the attempts left; got created N + N and no entry naming the first session.
async def test_concurrent_puts_of_new_pairs_create_each_attempt_once(tenant: Tenant) -> None:
    n = 2000
    await course(tenant)
    await _enrol(tenant, [{"external_id": f"u{i}"} for i in range(n)])
    await assessment(tenant, "c1", "quiz")
    for name in ("a", "b"):
        assert (await tenant.post(S, json={"external_id": name})).status_code == 201
    pairs = [("quiz", f"u{i}") for i in range(n)]
    answers = await asyncio.gather(*(tenant.put(f"{S}/{s}/attempts", json=_pairs(pairs)) for s in ("a", "b")))
    assert [r.status_code for r in answers] == [200, 200]
    held = {x["external_id"]: x["attempts"] for x in (await tenant.get(S)).json()["items"]}
    assert sorted(held.values()) == [0, n]  # the attempts are in one session: the later request's
    assert sum(r.json()["created"] for r in answers) == n
    r = await tenant.get(f"{C}/audit", params={"action": "session.attempt_added", "learner": "u0"})
    moves = [(e["old"], e["new"]) for e in r.json()["items"]]
    first = "a" if held["b"] == n else "b"
    assert moves[-1][0] == {"session": first}


# Catches: a forged GET /groups cursor holding a NUL or a lone surrogate is a 500. groups.list_groups
# checks only that the decoded key is a str and sends it to PostgreSQL, which refuses it. Every other
# cursor that is not the API's is a 422 at `cursor` (paging.not_ours); nothing a client sends may be a 500.
@pytest.mark.parametrize("key", ['"a\\u0000b"', '"\\ud800"'])
async def test_a_forged_groups_cursor_is_refused_not_a_500(tenant: Tenant, key: str) -> None:
    await course(tenant)
    await _enrol(tenant, [{"external_id": "ann", "groups": ["g"]}])
    assert json.loads(key)  # a JSON string, as the API's own group cursors are
    assert_problem(await tenant.get(f"{C}/groups", params={"cursor": _cursor(key)}), 422, "cursor")


# Catches (older than 72388a1, found on the gradebook's new filters): the gradebook's cursor is a 500
# in the same way, for the name sort (a text key, gradebook._cursor checks only its type).
@pytest.mark.parametrize("key", ['["a\\u0000b",1]', '["\\ud800",1]'])
async def test_a_forged_gradebook_cursor_is_refused_not_a_500(tenant: Tenant, key: str) -> None:
    await course(tenant)
    await _enrol(tenant, [{"external_id": "ann"}])
    assert_problem(await tenant.get(f"{C}/gradebook", params={"cursor": _cursor(key)}), 422, "cursor")


# Catches: grader scoping. A grader sees only the attempts allocated to them in the results table and
# the dashboard (ResultScope), but GET /sessions and GET /sessions/{session} give every session's count
# of all its attempts (sessions._SELECT has no scope): gus, allocated nothing, reads "2 attempts" in
# `morning` while his results table and dashboard for `morning` show 0. Expected: the count he may see.
async def test_a_graders_sessions_count_only_the_attempts_they_see(tenant: Tenant) -> None:
    await course(tenant)
    await _enrol(tenant, [{"external_id": "ann"}, {"external_id": "bob"}])
    await assessment(tenant, "c1", "quiz")
    assert (await tenant.post(S, json={"external_id": "morning"})).status_code == 201
    r = await tenant.put(f"{S}/morning/attempts", json=_pairs([("quiz", "ann"), ("quiz", "bob")]))
    assert r.status_code == 200, r.text
    await grant(tenant, "c1", "gus", "grader")
    gus = await user_token(tenant, "gus")
    dashboard = (await tenant.get(f"{C}/dashboard", params={"session": "morning"}, as_=gus)).json()
    assert dashboard["total"]["attempts"] == 0
    assert [x["attempts"] for x in (await tenant.get(S, as_=gus)).json()["items"]] == [0]
    assert (await tenant.get(f"{S}/morning", as_=gus)).json()["attempts"] == 0
