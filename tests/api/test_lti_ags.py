"""LTI AGS 2.0 by hand: line items (created by tools, exposed by planners), scores through the one score path,
results, and every error a tool can meet."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import Tenant, assert_problem
from tests.helpers import assessment, course, enroll, user_token

LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
RESULTS = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
AGS = [LINEITEM, LINEITEM_READONLY, RESULTS, SCORE]

LINE_ITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
CONTAINER_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
RESULTS_TYPE = "application/vnd.ims.lis.v2.resultcontainer+json"


class Tool:
    """A registered tool holding an access token, speaking AGS with it."""

    def __init__(self, t: Tenant, registered: dict[str, Any], token: str) -> None:
        self.t = t
        self.id: int = registered["id"]
        self.token = token

    def headers(self, content_type: str | None = None, accept: str = "application/json") -> dict[str, str]:
        sent = {"Authorization": f"Bearer {self.token}", "Accept": accept}
        return sent | ({"Content-Type": content_type} if content_type else {})

    async def get(self, url: str, **kw: Any) -> Any:
        return await self.t.client.get(
            path(url), headers=self.headers(accept=kw.pop("accept", "application/json")), **kw
        )

    async def send(self, method: str, url: str, body: Any, content_type: str) -> Any:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.t.client.request(method, path(url), content=data, headers=self.headers(content_type))

    async def create(self, course_ext: str, **fields: Any) -> dict[str, Any]:
        body = {"label": "Quiz", "scoreMaximum": 10, **fields}
        r = await self.send("POST", f"/lti/courses/{course_ext}/lineitems", body, LINE_ITEM_TYPE)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def score(self, line_item: str, user: str, **fields: Any) -> Any:
        body = {
            "userId": user,
            "activityProgress": "Completed",
            "gradingProgress": "FullyGraded",
            "timestamp": _now(),
            **fields,
        }
        return await self.send(
            "POST", f"{line_item}/scores", {k: v for k, v in body.items() if v is not None}, SCORE_TYPE
        )


def path(url: str) -> str:
    """An absolute URL the API answered, as the in-process client sends it."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


_CLOCK = [time.time()]


def _now() -> str:
    """Strictly increasing timestamps (a millisecond apart), as a tool's clock gives them."""
    _CLOCK[0] += 0.001
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(_CLOCK[0])) + f".{int(_CLOCK[0] * 1000) % 1000:03d}Z"


async def register(t: Tenant, scopes: list[str] | None = None, courses: list[str] | None = None) -> Tool:
    """Register a tool (inline JWKS) and get an access token through POST /lti/token."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    kid = uuid.uuid4().hex
    body: dict[str, Any] = {"name": "Quiz tool", "jwks": {"keys": [{**jwk, "kid": kid, "alg": "RS256", "use": "sig"}]}}
    body["courses"] = courses
    if scopes is not None:
        body["scopes"] = scopes
    r = await t.post("/v1/lti/tools", json=body)
    assert r.status_code == 201, r.text
    tool = r.json()
    now = int(time.time())
    claims = {
        "iss": tool["client_id"],
        "sub": tool["client_id"],
        "aud": tool["token_url"],
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    assertion = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        "scope": " ".join(scopes or AGS),
    }
    r = await t.client.post("/lti/token", data=form)
    assert r.status_code == 200, r.text
    return Tool(t, tool, r.json()["access_token"])


async def _score_of(t: Tenant, course_ext: str, assessment_ext: str, learner: str) -> dict[str, Any]:
    r = await t.get(f"/v1/courses/{course_ext}/assessments/{assessment_ext}/scores/{learner}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _with_assessment(t: Tenant, course_ext: str, line_item: dict[str, Any]) -> str:
    """The assessment a line item is (as staff see it)."""
    r = await t.get(f"/v1/courses/{course_ext}/lti/line-items", params={"limit": 1000})
    assert r.status_code == 200, r.text
    return next(str(x["assessment"]) for x in r.json()["items"] if x["id"] == line_item["id"])


# --- line items -------------------------------------------------------------------------------------------------


async def test_a_tool_creates_reads_pages_updates_and_deletes_line_items(tenant: Tenant) -> None:
    await course(tenant, "c1")
    await enroll(tenant, "c1", "ann")
    tool = await register(tenant)
    made = []
    for n in range(3):
        made.append(await tool.create("c1", label=f"Quiz {n}", tag="quiz" if n else "exam", resourceLinkId="rl-1"))
    first = made[0]
    assert first["id"].startswith("http") and first["id"].endswith(
        f"/lti/courses/c1/lineitems/{first['id'].split('/')[-1]}"
    )
    assert first == {"id": first["id"], "label": "Quiz 0", "scoreMaximum": 10, "tag": "exam", "resourceLinkId": "rl-1"}

    r = await tool.get("/lti/courses/c1/lineitems", accept=CONTAINER_TYPE)
    assert r.headers["content-type"] == CONTAINER_TYPE and [x["label"] for x in r.json()] == [
        "Quiz 0",
        "Quiz 1",
        "Quiz 2",
    ]
    # Filters, and paging whose next link keeps them (and survives being lower-cased).
    r = await tool.get("/lti/courses/c1/lineitems", params={"tag": "quiz", "limit": 1, "resource_link_id": "rl-1"})
    assert [x["label"] for x in r.json()] == ["Quiz 1"]
    link = r.headers["link"]
    assert 'rel="next"' in link and "tag=quiz" in link and "resource_link_id=rl-1" in link
    r = await tool.get(link[1 : link.index(">")].lower())
    assert [x["label"] for x in r.json()] == ["Quiz 2"] and "link" not in r.headers
    assert (await tool.get("/lti/courses/c1/lineitems", params={"resource_id": "none"})).json() == []

    r = await tool.get(first["id"], accept=LINE_ITEM_TYPE)
    assert r.status_code == 200 and r.headers["content-type"] == LINE_ITEM_TYPE and r.json() == first

    # PUT: label and scoreMaximum change the assessment; the tool's fields it omits stay.
    body = {"id": first["id"], "label": "Final exam", "scoreMaximum": 40, "resourceId": "ex-1"}
    r = await tool.send("PUT", first["id"], body, LINE_ITEM_TYPE)
    assert r.status_code == 200, r.text
    assert r.json() == {**first, "label": "Final exam", "scoreMaximum": 40, "resourceId": "ex-1"}
    ext = await _with_assessment(tenant, "c1", first)
    view = (await tenant.get(f"/v1/courses/c1/assessments/{ext}")).json()
    assert view["title"] == "Final exam" and view["points_possible"] == 40 and view["category"] == "LTI"

    # DELETE keeps the assessment and its scores (no mark is lost); the tool no longer sees the line item.
    assert (await tool.score(first["id"], "ann", scoreGiven=30, scoreMaximum=40)).status_code == 200
    r = await tool.t.client.delete(path(first["id"]), headers=tool.headers())
    assert r.status_code == 204, r.text
    assert_problem(await tool.get(first["id"]), 404)
    assert_problem(await tool.score(first["id"], "ann", scoreGiven=1, scoreMaximum=1), 404)
    assert (await _score_of(tenant, "c1", ext, "ann"))["earned"] == 30

    actions = [
        (e["action"], e["actor"])
        for e in (await tenant.get("/v1/courses/c1/audit", params={"limit": 1000})).json()["items"]
    ]
    actor = f"lti_tool:{tool.id}"
    for action in (
        "assessment.created",
        "line_item.created",
        "line_item.updated",
        "assessment.updated",
        "score.set",
        "line_item.deleted",
    ):
        assert (action, actor) in actions, action


async def test_planners_expose_assessments_to_every_tool_and_tools_see_only_their_own(tenant: Tenant) -> None:
    await course(tenant, "c1")
    await enroll(tenant, "c1", "ann")
    await assessment(tenant, "c1", "hw", points_possible=20)
    one, two = await register(tenant), await register(tenant)
    own = await one.create("c1", label="One's quiz")
    r = await tenant.put("/v1/courses/c1/lti/line-items/hw", json={"resource_link_id": "rl-9", "tag": "homework"})
    assert r.status_code == 200, r.text
    exposed = r.json()
    assert exposed["assessment"] == "hw" and exposed["tool"] is None and exposed["score_maximum"] == 20
    assert [x["label"] for x in (await one.get("/lti/courses/c1/lineitems")).json()] == ["One's quiz", "HW"]
    assert [x["label"] for x in (await two.get("/lti/courses/c1/lineitems")).json()] == ["HW"]
    # Another tool's line item is not there for this one (the same answer as an unknown one).
    assert_problem(await two.get(own["id"]), 404)
    assert_problem(await two.score(own["id"], "ann", scoreGiven=1, scoreMaximum=1), 404)
    # Both post to the exposed one; only the planner changes or removes it.
    assert (await two.score(exposed["id"], "ann", scoreGiven=5, scoreMaximum=10)).status_code == 200
    assert (await _score_of(tenant, "c1", "hw", "ann"))["earned"] == 10
    assert_problem(await two.send("PUT", exposed["id"], {"label": "x", "scoreMaximum": 1}, LINE_ITEM_TYPE), 403)
    assert_problem(await two.t.client.delete(path(exposed["id"]), headers=two.headers()), 403)
    # A tool's own line item is the tool's: the planner cannot take it over.
    ext = await _with_assessment(tenant, "c1", own)
    assert_problem(await tenant.put(f"/v1/courses/c1/lti/line-items/{ext}", json={}), 409)
    assert_problem(await tenant.delete(f"/v1/courses/c1/lti/line-items/{ext}"), 409)
    assert_problem(await tenant.put("/v1/courses/c1/lti/line-items/nope", json={}), 404)
    # Un-exposing: tools no longer see it; the scores stay.
    assert (await tenant.delete("/v1/courses/c1/lti/line-items/hw")).status_code == 204
    assert_problem(await two.get(exposed["id"]), 404)
    assert_problem(await tenant.delete("/v1/courses/c1/lti/line-items/hw"), 404)
    assert (await _score_of(tenant, "c1", "hw", "ann"))["earned"] == 10
    # Planners only (a grader's token is refused).
    await tenant.put("/v1/courses/c1/members/g1", json={"roles": ["grader"]})
    assert_problem(await tenant.get("/v1/courses/c1/lti/line-items", as_=await user_token(tenant, "g1")), 403)


# --- scores and results -----------------------------------------------------------------------------------------


async def test_scores_are_rescaled_written_as_native_scores_and_read_back_as_results(tenant: Tenant) -> None:
    await course(tenant, "c1")
    await enroll(tenant, "c1", "ann", "bob", "cy")
    tool = await register(tenant)
    item = await tool.create("c1", scoreMaximum=50)
    ext = await _with_assessment(tenant, "c1", item)
    r = await tool.score(item["id"], "ann", scoreGiven=8, scoreMaximum=10)
    assert r.status_code == 200 and r.json()["resultUrl"].endswith("/results?user_id=ann"), r.text
    ann = await _score_of(tenant, "c1", ext, "ann")
    assert (ann["earned"], ann["possible"], ann["status"], ann["graded_by"]) == (
        40,
        50,
        "graded",
        f"lti_tool:{tool.id}",
    )
    # Above the maximum is accepted (extra credit), a third is kept to 6 decimals.
    assert (await tool.score(item["id"], "bob", scoreGiven=12, scoreMaximum=10)).status_code == 200
    assert (await _score_of(tenant, "c1", ext, "bob"))["earned"] == 60
    assert (await tool.score(item["id"], "cy", scoreGiven=1, scoreMaximum=3)).status_code == 200
    assert (await _score_of(tenant, "c1", ext, "cy"))["earned"] == pytest.approx(16.666667)

    # An override by staff is the final result the tool reads; a later tool score keeps it standing.
    r = await tenant.put(f"/v1/courses/c1/assessments/{ext}/scores/bob", json={"earned": 45, "source": "override"})
    assert r.status_code == 200, r.text
    assert (await tool.score(item["id"], "bob", scoreGiven=1, scoreMaximum=10)).status_code == 200
    r = await tool.get(f"{item['id']}/results", accept=RESULTS_TYPE)
    assert r.status_code == 200 and r.headers["content-type"] == RESULTS_TYPE
    found = {x["userId"]: x for x in r.json()}
    assert found["ann"]["resultScore"] == 40 and found["ann"]["resultMaximum"] == 50
    assert found["ann"]["scoreOf"] == item["id"] and found["bob"]["resultScore"] == 45
    # user_id filter and paging (the next link survives being lower-cased).
    assert [x["userId"] for x in (await tool.get(f"{item['id']}/results", params={"user_id": "cy"})).json()] == ["cy"]
    r = await tool.get(f"{item['id']}/results", params={"limit": 2})
    link = r.headers["link"]
    rest = await tool.get(link[1 : link.index(">")].lower())
    assert [x["userId"] for x in r.json()] + [x["userId"] for x in rest.json()] == ["ann", "bob", "cy"]


async def test_progress_maps_to_the_attempt_and_no_score_clears_it(tenant: Tenant) -> None:
    await course(tenant, "c1")
    await enroll(tenant, "c1", "ann")
    tool = await register(tenant)
    item = await tool.create("c1")
    ext = await _with_assessment(tenant, "c1", item)
    status = f"/v1/courses/c1/assessments/{ext}/attempts/ann"
    cases: list[tuple[dict[str, Any], str, int | None]] = [
        ({"activityProgress": "Started", "gradingProgress": "NotReady"}, "in_progress", None),
        ({"activityProgress": "Submitted", "gradingProgress": "PendingManual"}, "pending_grading", None),
        (
            {"activityProgress": "Completed", "gradingProgress": "FullyGraded", "scoreGiven": 7, "scoreMaximum": 10},
            "graded",
            7,
        ),
        (
            {"activityProgress": "Completed", "gradingProgress": "Pending", "scoreGiven": 6, "scoreMaximum": 10},
            "pending_grading",
            6,
        ),
        ({"activityProgress": "Completed", "gradingProgress": "Failed"}, "submitted", None),
        ({"activityProgress": "Initialized", "gradingProgress": "NotReady"}, "to_be_taken", None),
    ]
    for fields, expected, earned in cases:
        r = await tool.score(item["id"], "ann", **fields)
        assert r.status_code == 200, r.text
        attempt = (await tenant.get(status)).json()
        assert (attempt["status"], attempt["earned"]) == (expected, earned), fields
    actions = [
        e["action"] for e in (await tenant.get("/v1/courses/c1/audit", params={"learner": "ann"})).json()["items"]
    ]
    assert "score.cleared" in actions and "score.set" in actions


async def test_timestamps_must_increase_per_learner(tenant: Tenant) -> None:
    await course(tenant, "c1")
    await enroll(tenant, "c1", "ann", "bob")
    tool = await register(tenant)
    item = await tool.create("c1")
    ext = await _with_assessment(tenant, "c1", item)
    # Lenient formats: no fraction, +0000, +00:00, Z, more than 6 fraction digits.
    for stamp, given in (
        ("2030-01-01T10:00:00+0000", 1),
        ("2030-01-01T10:00:00.5+00:00", 2),
        ("2030-01-01T10:00:01Z", 3),
        ("2030-01-01T10:00:01.123456789Z", 4),
    ):
        r = await tool.score(item["id"], "ann", scoreGiven=given, scoreMaximum=10, timestamp=stamp)
        assert r.status_code == 200, (stamp, r.text)
    for stamp in ("2030-01-01T10:00:01.123456Z", "2029-12-31T23:00:00Z"):  # equal, then older: nothing changes
        body = assert_problem(await tool.score(item["id"], "ann", scoreGiven=9, scoreMaximum=10, timestamp=stamp), 409)
        assert body["type"].endswith("score-outdated") and body["last_timestamp"].startswith("2030-01-01T10:00:01")
    # The general path (a comment) keeps the same order.
    r = await tool.score(
        item["id"], "ann", scoreGiven=9, scoreMaximum=10, comment="x", timestamp="2030-01-01T09:00:00Z"
    )
    assert_problem(r, 409)
    assert (await _score_of(tenant, "c1", ext, "ann"))["earned"] == 4
    # Per learner: an older timestamp for another learner is fine.
    assert (
        await tool.score(item["id"], "bob", scoreGiven=5, scoreMaximum=10, timestamp="2020-01-01T00:00:00Z")
    ).status_code == 200


async def test_a_comment_is_feedback_the_learner_sees_once_published(tenant: Tenant) -> None:
    await course(tenant, "c1")
    await enroll(tenant, "c1", "ann")
    tool = await register(tenant)
    item = await tool.create("c1")
    ext = await _with_assessment(tenant, "c1", item)
    r = await tool.score(item["id"], "ann", scoreGiven=8, scoreMaximum=10, comment="Good work.")
    assert r.status_code == 200, r.text
    feedback = (await tenant.get(f"/v1/courses/c1/assessments/{ext}/feedback/ann")).json()["feedback"]
    assert feedback["text"] == "Good work." and feedback["updated_by"] == f"lti_tool:{tool.id}"
    token = await user_token(tenant, "ann")
    mine = (await tenant.get("/v1/me/courses/c1/results", as_=token)).json()["results"]
    assert all(x.get("feedback") is None for x in mine)
    r = await tenant.post("/v1/courses/c1/publications", json={"assessments": [ext], "audience": {"all": True}})
    assert r.status_code in (200, 201), r.text
    mine = (await tenant.get("/v1/me/courses/c1/results", as_=token)).json()["results"]
    assert [(x["earned"], x["feedback"]) for x in mine] == [(8, "Good work.")]
    results = (await tool.get(f"{item['id']}/results")).json()
    assert results[0]["comment"] == "Good work."


async def test_scores_take_the_general_path_under_a_late_policy_and_refuse_assessments_with_items(
    tenant: Tenant,
) -> None:
    await course(tenant, "c1")
    await enroll(tenant, "c1", "ann")
    policy = {"late_submission_deduction_enabled": True, "late_submission_deduction": 10}
    assert (await tenant.put("/v1/courses/c1/late-policy", json=policy)).status_code == 200
    tool = await register(tenant)
    item = await tool.create("c1")
    ext = await _with_assessment(tenant, "c1", item)
    assert (await tool.score(item["id"], "ann", scoreGiven=6, scoreMaximum=10)).status_code == 200
    assert (await _score_of(tenant, "c1", ext, "ann"))["entered"] == 6
    await assessment(tenant, "c1", "ex", items=[{"external_id": "q1", "points_possible": 5}])
    exposed = (await tenant.put("/v1/courses/c1/lti/line-items/ex", json={})).json()
    assert_problem(await tool.score(exposed["id"], "ann", scoreGiven=1, scoreMaximum=5), 409)


# --- errors ------------------------------------------------------------------------------------------------------


async def test_scope_not_granted_is_403_and_no_token_is_401(tenant: Tenant) -> None:
    await course(tenant, "c1")
    await enroll(tenant, "c1", "ann")
    reader = await register(tenant, scopes=[LINEITEM_READONLY])
    writer = await register(tenant)
    item = await writer.create("c1")
    await tenant.put("/v1/courses/c1/lti/line-items/" + await _with_assessment(tenant, "c1", item), json={})
    assert (await reader.get("/lti/courses/c1/lineitems")).status_code == 200
    for r in (
        await reader.score(item["id"], "ann", scoreGiven=1, scoreMaximum=1),
        await reader.send("POST", "/lti/courses/c1/lineitems", {"label": "x", "scoreMaximum": 1}, LINE_ITEM_TYPE),
        await reader.get(f"{item['id']}/results"),
    ):
        assert r.status_code == 403 and "insufficient_scope" in r.headers["www-authenticate"], r.text
    r = await tenant.client.get("/lti/courses/c1/lineitems")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    # An API key is not an LTI token.
    assert (await tenant.client.get("/lti/courses/c1/lineitems", headers=tenant.headers)).status_code == 401


async def test_bad_scores_name_the_field(tenant: Tenant) -> None:
    await course(tenant, "c1")
    await enroll(tenant, "c1", "ann")
    tool = await register(tenant)
    item = await tool.create("c1")
    assert_problem(await tool.score(item["id"], "ann", scoreGiven=5), 422, "/scoreMaximum")
    assert_problem(await tool.score(item["id"], "nobody", scoreGiven=5, scoreMaximum=10), 422, "/userId")
    assert_problem(await tool.score(item["id"], "nobody"), 422, "/userId")  # the general path too
    assert_problem(await tool.score(item["id"], "ann", scoreGiven=-1, scoreMaximum=10), 422, "/scoreGiven")
    assert_problem(await tool.score(item["id"], "ann", scoreGiven=1, scoreMaximum=0), 422, "/scoreMaximum")
    assert_problem(await tool.score(item["id"], "ann", scoreGiven="NaN", scoreMaximum=10), 422, "/scoreGiven")
    assert_problem(await tool.score(item["id"], "ann", scoreGiven=1e30, scoreMaximum=10), 422, "/scoreGiven")
    assert_problem(await tool.score(item["id"], "ann", scoreGiven=999999, scoreMaximum=0.000001), 422, "/scoreGiven")
    assert_problem(await tool.score(item["id"], "ann", timestamp="yesterday"), 422, "/timestamp")
    assert_problem(await tool.score(item["id"], "ann", timestamp="99999-01-01T00:00:00Z"), 422, "/timestamp")
    assert_problem(await tool.score(item["id"], "ann", gradingProgress="Done"), 422, "/gradingProgress")
    assert_problem(await tool.score(item["id"], "ann", activityProgress=None), 422, "/activityProgress")
    assert_problem(await tool.score(item["id"], "ann", comment="x" * 5001), 422, "/comment")
    body = {"userId": "ann", "activityProgress": "Completed", "gradingProgress": "NotReady", "timestamp": _now()}
    assert_problem(await tool.send("POST", f"{item['id']}/scores", body, "text/plain"), 415)
    assert_problem(await tool.send("POST", f"{item['id']}/scores", b"{not json", SCORE_TYPE), 400)
    assert_problem(await tool.send("POST", f"{item['id']}/scores", [], SCORE_TYPE), 422)
    numbered = {"userId": 42, "activityProgress": "Started", "gradingProgress": "NotReady", "timestamp": _now()}
    r = await tool.send("POST", f"{item['id']}/scores", numbered, SCORE_TYPE)
    assert "User '42'" in assert_problem(r, 422, "/userId")["errors"][0]["detail"]  # a number is the id as text
    # Extensions a tool adds are ignored.
    extended = {**body, "https://canvas.instructure.com/lti/submission": {"new_submission": True}}
    assert (await tool.send("POST", f"{item['id']}/scores", extended, "application/json")).status_code == 200


async def test_bad_line_items_name_the_field(tenant: Tenant) -> None:
    await course(tenant, "c1")
    tool = await register(tenant)
    url = "/lti/courses/c1/lineitems"
    for body, pointer in (
        ({"scoreMaximum": 10}, "/label"),
        ({"label": "x"}, "/scoreMaximum"),
        ({"label": "x", "scoreMaximum": 0}, "/scoreMaximum"),
        ({"label": "", "scoreMaximum": 1}, "/label"),
        ({"label": "x" * 501, "scoreMaximum": 1}, "/label"),
        ({"label": "x", "scoreMaximum": 1, "tag": "t" * 256}, "/tag"),
        ({"label": "x", "scoreMaximum": 1, "startDateTime": "soon"}, "/startDateTime"),
        (
            {
                "label": "x",
                "scoreMaximum": 1,
                "startDateTime": "2030-01-02T00:00:00Z",
                "endDateTime": "2030-01-01T00:00:00Z",
            },
            "/endDateTime",
        ),
        ({"label": "x\u0000", "scoreMaximum": 1}, "/label"),
    ):
        assert_problem(await tool.send("POST", url, body, LINE_ITEM_TYPE), 422, pointer)
    assert_problem(await tool.send("POST", url, {"label": "x", "scoreMaximum": 1}, "application/xml"), 415)
    assert_problem(await tool.get(url, params={"cursor": "zz"}), 422, "cursor")
    assert_problem(await tool.get(url, params={"cursor": "7b7d"}), 422, "cursor")
    assert_problem(await tool.get(url, params={"cursor": json.dumps([1, "\u0000", None, None]).encode().hex()}), 422)
    assert_problem(await tool.get(url, params={"tag": "\u0000"}), 422, "tag")
    assert_problem(await tool.get(url, params={"limit": 0}), 422, "limit")
    assert_problem(await tool.get(f"{url}/0"), 422)
    assert_problem(await tool.get(f"{url}/12345678901"), 404)


async def test_other_courses_and_organizations_are_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    await course(tenant, "c1")
    await course(tenant, "c2")
    await course(other_tenant, "c9")
    await enroll(tenant, "c1", "ann")
    tool = await register(tenant)
    limited = await register(tenant, courses=["c2"])
    item = await tool.create("c1")
    number = item["id"].split("/")[-1]
    # The line item through another course of the organization is not there.
    assert_problem(await tool.get(f"/lti/courses/c2/lineitems/{number}"), 404)
    body = {"userId": "ann", "activityProgress": "Completed", "gradingProgress": "NotReady", "timestamp": _now()}
    assert_problem(await tool.send("POST", f"/lti/courses/c2/lineitems/{number}/scores", body, SCORE_TYPE), 404)
    # Another organization's course, an unknown one, and one the tool is not registered for: the same 404.
    for r in (
        await tool.get("/lti/courses/c9/lineitems"),
        await tool.get("/lti/courses/nope/lineitems"),
        await limited.get("/lti/courses/c1/lineitems"),
        await limited.get(item["id"]),
        await limited.send("POST", f"{item['id']}/scores", body, SCORE_TYPE),
        await limited.send("POST", "/lti/courses/c1/lineitems", {"label": "x", "scoreMaximum": 1}, LINE_ITEM_TYPE),
    ):
        assert_problem(r, 404)
    assert_problem(await other_tenant.get("/v1/courses/c1/lti/line-items"), 404)
    assert_problem(await other_tenant.put("/v1/courses/c9/lti/line-items/x", json={}), 404)


async def test_the_common_score_is_answered_by_the_lane(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """gradeflow/lti/router/score_lane.py, in front of the app's routing."""
    from gradeflow.scores.service import external

    await course(tenant, "c1")
    await enroll(tenant, "c1", "ann", "bob")
    tool = await register(tenant)
    item = await tool.create("c1")
    ext = await _with_assessment(tenant, "c1", item)
    routed: list[str] = []
    post = external.post_tool_score

    async def counted(*args: Any, **kwargs: Any) -> None:
        routed.append(args[3].score.learner)
        await post(*args, **kwargs)

    monkeypatch.setattr(external, "post_tool_score", counted)
    for learner in ("ann", "bob", "ann"):
        r = await tool.score(item["id"], learner, scoreGiven=3, scoreMaximum=10)
        assert r.status_code == 200 and r.json()["resultUrl"].endswith(f"?user_id={learner}"), r.text
    # The first resolves the course through the route; the others are the lane's, with the same effect.
    assert routed == ["ann"]
    assert (await _score_of(tenant, "c1", ext, "bob"))["earned"] == 3
    # Anything else is the route's answer: an unknown learner, an outdated timestamp, feedback removed.
    assert_problem(await tool.score(item["id"], "nobody", scoreGiven=1, scoreMaximum=10), 422, "/userId")
    old = "2000-01-01T00:00:00Z"
    assert_problem(await tool.score(item["id"], "ann", scoreGiven=1, scoreMaximum=10, timestamp=old), 409)
    assert (await tool.score(item["id"], "ann", scoreGiven=1, scoreMaximum=10, comment="ok")).status_code == 200
    assert (await tool.score(item["id"], "ann", scoreGiven=1, scoreMaximum=10, comment=" ")).status_code == 200
    assert routed == ["ann", "nobody", "ann", "ann"]
    texts = (await tenant.get("/v1/courses/c1/audit", params={"learner": "ann", "action": "feedback.set"})).json()
    assert [(e["old"]["text"], e["new"]["text"]) for e in texts["items"]] == [(None, "ok"), ("ok", None)]
    params = {"learner": "bob", "action": "score.set"}
    actions = (await tenant.get("/v1/courses/c1/audit", params=params)).json()["items"]
    assert [(e["actor"], e["new"]["earned"]) for e in actions] == [(f"lti_tool:{tool.id}", 3)]


async def test_a_deleted_tool_leaves_its_assessments_and_scores(tenant: Tenant) -> None:
    await course(tenant, "c1")
    await enroll(tenant, "c1", "ann", "bob")
    tool = await register(tenant)
    item = await tool.create("c1")
    ext = await _with_assessment(tenant, "c1", item)
    assert (await tool.score(item["id"], "ann", scoreGiven=4, scoreMaximum=10)).status_code == 200
    # A cancelled attempt takes no score from a tool either.
    r = await tenant.put(f"/v1/courses/c1/assessments/{ext}/attempts/bob", json={"status": "cancelled"})
    assert r.status_code == 200, r.text
    assert_problem(await tool.score(item["id"], "bob", scoreGiven=4, scoreMaximum=10), 409)
    assert (await tenant.delete(f"/v1/lti/tools/{tool.id}")).status_code == 204
    assert (await tenant.get("/v1/courses/c1/lti/line-items")).json()["items"] == []
    assert (await _score_of(tenant, "c1", ext, "ann"))["earned"] == 4
    # Its assessment is an ordinary one now: a planner may expose it to the other tools.
    assert (await tenant.put(f"/v1/courses/c1/lti/line-items/{ext}", json={})).status_code == 200


async def test_results_wait_for_confirmation_and_leave_out_the_excused(tenant: Tenant) -> None:
    await course(tenant, "c1")
    await enroll(tenant, "c1", "ann", "bob")
    await assessment(tenant, "c1", "ex", items=[{"external_id": "q1", "points_possible": 5, "marking": "manual"}])
    tool = await register(tenant)
    exposed = (await tenant.put("/v1/courses/c1/lti/line-items/ex", json={})).json()
    for learner in ("ann", "bob"):
        r = await tenant.put(
            f"/v1/courses/c1/assessments/ex/scores/{learner}", json={"items": [{"item": "q1", "earned": 4}]}
        )
        assert r.status_code == 200, r.text
    assert (await tenant.put("/v1/courses/c1/assessments/ex/excused/bob")).status_code in (200, 204)

    async def results() -> dict[str, Any]:
        r = await tool.get(f"{exposed['id']}/results")
        assert r.status_code == 200, r.text
        return {x["userId"]: x.get("resultScore") for x in r.json()}

    assert await results() == {"ann": None, "bob": None}  # marked, not confirmed: no final result yet
    r = await tenant.post("/v1/courses/c1/assessments/ex/confirmations", json={"learners": ["ann", "bob"]})
    assert r.status_code == 200, r.text
    assert await results() == {"ann": 4, "bob": None}  # bob is excused


async def test_concurrent_posts_with_one_timestamp_write_once(tenant: Tenant) -> None:
    await course(tenant, "c1")
    await enroll(tenant, "c1", "ann")
    tool = await register(tenant)
    item = await tool.create("c1")
    stamp = _now()
    answers = await asyncio.gather(
        *(tool.score(item["id"], "ann", scoreGiven=n, scoreMaximum=10, timestamp=stamp) for n in range(1, 7))
    )
    assert sorted(r.status_code for r in answers) == [200] + [409] * 5
    params = {"learner": "ann", "action": "score.set"}
    assert len((await tenant.get("/v1/courses/c1/audit", params=params)).json()["items"]) == 1


async def test_concurrent_posts_are_written_together_and_each_answered_as_alone(
    app: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The AGS lane writes the common-case posts of concurrent requests as one statement (group commit): each
    keeps its own score, comment, audit entries and refusal."""
    from gradeflow.scores.repository import external as external_sql

    learners = [f"m{i}" for i in range(10)]
    await course(tenant, "c1")
    await enroll(tenant, "c1", "ann", *learners)
    tool = await register(tenant)
    item = await tool.create("c1")
    ext = await _with_assessment(tenant, "c1", item)
    assert (await tool.score(item["id"], "ann", scoreGiven=1, scoreMaximum=10)).status_code == 200  # course known
    groups: list[int] = []

    async def counted(driver: Any, posts: list[Any]) -> Any:
        groups.append(len(posts))
        return await external_sql.post_scores(driver, posts)

    monkeypatch.setattr(app.state.tool_score_writes, "write", counted)
    first, later = _now(), _now()
    posts = [tool.score(item["id"], m, scoreGiven=n, scoreMaximum=10, comment=f"c{n}") for n, m in enumerate(learners)]
    posts += [
        tool.score(item["id"], "ann", scoreGiven=5, scoreMaximum=10, timestamp=first),
        tool.score(item["id"], "ann", scoreGiven=6, scoreMaximum=10, timestamp=later),  # after the first
        tool.score(item["id"], "nobody", scoreGiven=1, scoreMaximum=10),  # the route's 422
    ]
    answers = await asyncio.gather(*posts)
    assert [r.status_code for r in answers] == [200] * 12 + [422]
    assert sum(groups) == 13 and len(groups) < 6, groups  # the unknown learner too, not written there
    for n, m in enumerate(learners):
        assert (await _score_of(tenant, "c1", ext, m))["earned"] == n
    assert (await _score_of(tenant, "c1", ext, "ann"))["earned"] == 6
    audit = (await tenant.get("/v1/courses/c1/audit", params={"action": "feedback.set", "limit": 100})).json()
    assert sorted((e["learner"], e["new"]["text"]) for e in audit["items"]) == [
        (m, f"c{n}") for n, m in enumerate(learners)
    ]
    params = {"learner": "ann", "action": "score.set"}
    ann = (await tenant.get("/v1/courses/c1/audit", params=params)).json()["items"]
    assert [e["new"]["earned"] for e in ann] == [1, 5, 6]
