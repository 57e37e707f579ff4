"""pylti1p3next 2.0.2, a maintained LTI 1.3 tool library, speaking to the live API as a tool would: its
service classes (AssignmentsGradesService, NamesRolesProvisioningService) over its ServiceConnector, fed with the
claims an LMS puts in its launch. What the tool does is then checked through the native /v1 API.

The library is synchronous (requests): each call runs in a thread, so the event loop keeps serving what the API
process may ask of the test meanwhile (the tool's key set)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from aiohttp import web
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiServiceException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from pylti1p3.names_roles import NamesRolesProvisioningService

from gradeflow.core.settings import Settings
from gradeflow.lti.scopes import Scope
from tests.conftest import Tenant, run_worker
from tests.helpers import assessment, course, enroll, grant
from tests.lti.conftest import Connect, launch_claims, register
from tests.lti.tool import AGS_CLAIM, LEARNER, NRPS_CLAIM, Connector, ToolKey

T = TypeVar("T")
AGS_SCOPES = {Scope.AGS_LINEITEM, Scope.AGS_LINEITEM_READONLY, Scope.AGS_RESULT_READONLY, Scope.AGS_SCORE}


async def call(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


def with_query(url: str, **params: str | int) -> str:
    """`url` with `params` added to its query."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def score(user: str, given: float | None, maximum: float | None = None, **fields: str) -> Grade:
    grade = Grade().set_user_id(user).set_timestamp(datetime.now(UTC))
    grade.set_activity_progress(fields.get("activity", "Completed"))
    grade.set_grading_progress(fields.get("grading", "FullyGraded"))
    if given is not None:
        grade.set_score_given(given)
    if maximum is not None:
        grade.set_score_maximum(maximum)
    if "comment" in fields:
        grade.set_comment(fields["comment"])
    return grade


def ags_service(connector: Connector, claim: dict[str, Any], **changes: Any) -> AssignmentsGradesService:
    """The library's AGS service as a launch with `claim` (the AGS endpoint claim, `changes` applied) gives it."""
    return AssignmentsGradesService(connector, cast(Any, {**claim, **changes}))


def nrps_service(connector: Connector, memberships_url: str) -> NamesRolesProvisioningService:
    return NamesRolesProvisioningService(connector, {"context_memberships_url": memberships_url})


async def _tool(
    t: Tenant, key: ToolKey, connect: Connect, course_key: str = "c1", link: str = "rl-1", **fields: Any
) -> tuple[dict[str, Any], dict[str, Any], Connector]:
    """A tool registered in `t`, the launch claims for it in `course_key`, and its connector."""
    tool = await register(t, key, **fields)
    return tool, await launch_claims(t, course_key, tool, link), connect(tool, key)


async def test_token_from_a_signed_assertion_is_fetched_once_per_scope_set_and_reused(
    live: Tenant, tool_key: ToolKey, connect: Connect
) -> None:
    await course(live, "c1")
    await enroll(live, "c1", "ann")
    tool, claims, connector = await _tool(live, tool_key, connect)
    assert tool["token_url"] == str(live.client.base_url).rstrip("/") + "/lti/token"
    assert set(claims[AGS_CLAIM]["scope"]) == AGS_SCOPES
    assert claims[NRPS_CLAIM]["service_versions"] == ["2.0"]
    ags = ags_service(connector, claims[AGS_CLAIM])
    nrps = nrps_service(connector, claims[NRPS_CLAIM]["context_memberships_url"])
    for _ in range(3):
        assert await call(lambda: list(ags.get_lineitems())) == []
        assert [m["user_id"] for m in await call(nrps.get_members)] == ["ann"]
    tokens = connector.to("POST", tool["token_url"])
    assert [t.status for t in tokens] == [200, 200]  # one per scope set (AGS, NRPS), each reused
    assert all(t.headers["Cache-Control"] == "no-store" for t in tokens)
    ags_token, nrps_token = (json.loads(t.body) for t in tokens)
    assert ags_token["token_type"].lower() == "bearer" and ags_token["expires_in"] > 60
    assert set(ags_token["scope"].split()) == AGS_SCOPES
    assert nrps_token["scope"] == Scope.NRPS_MEMBERSHIPS
    assert len(connector.to("GET", claims[AGS_CLAIM]["lineitems"])) == 3


@pytest.fixture
async def jwks_server() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A tool's key set endpoint on loopback: its URL, and what it serves (`keys`) and was asked (`hits`)."""
    from gradeflow.devstack.infra import free_port

    served: dict[str, Any] = {"keys": [], "hits": 0}

    async def keys(request: web.Request) -> web.Response:
        served["hits"] += 1
        return web.json_response({"keys": served["keys"]})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", keys)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/.well-known/jwks.json", served
    await runner.cleanup()


async def test_a_key_set_served_at_a_url_verifies_the_assertion(
    live: Tenant, tool_key: ToolKey, connect: Connect, jwks_server: tuple[str, dict[str, Any]]
) -> None:
    url, served = jwks_server
    served["keys"] = tool_key.jwks()["keys"]
    await course(live, "c1")
    tool = await register(live, jwks_url=url)
    assert tool["jwks_url"] == url
    claims = await launch_claims(live, "c1", tool)
    ags = ags_service(connect(tool, tool_key), claims[AGS_CLAIM])
    assert await call(lambda: list(ags.get_lineitems())) == []
    assert served["hits"] >= 1


async def test_find_or_create_lineitem_creates_once_then_finds_it(
    live: Tenant, tool_key: ToolKey, connect: Connect
) -> None:
    await course(live, "c1")
    _, claims, connector = await _tool(live, tool_key, connect)
    ags = ags_service(connector, claims[AGS_CLAIM])
    wanted = (
        LineItem()
        .set_tag("quiz")
        .set_label("Quiz 1")
        .set_score_maximum(50)
        .set_resource_id("quiz-1")
        .set_resource_link_id("rl-1")
    )
    made = await call(ags.find_or_create_lineitem, wanted)
    line_id = made.get_id()
    assert line_id and line_id.startswith(f"{claims[AGS_CLAIM]['lineitems']}/")
    assert (made.get_label(), made.get_score_maximum(), made.get_tag()) == ("Quiz 1", 50, "quiz")
    assert (made.get_resource_id(), made.get_resource_link_id()) == ("quiz-1", "rl-1")
    again = await call(ags.find_or_create_lineitem, LineItem().set_tag("quiz").set_label("Other").set_score_maximum(9))
    assert again.get_id() == line_id and again.get_label() == "Quiz 1"
    assert len(connector.to("POST", claims[AGS_CLAIM]["lineitems"])) == 1
    by_link = await call(ags.find_or_create_lineitem, wanted, "resource_link_id")
    assert by_link.get_id() == line_id
    fetched = await call(ags.get_lineitem, line_id)
    assert (fetched.get_id(), fetched.get_score_maximum()) == (line_id, 50)
    # The line item is an assessment of the course.
    listed = (await live.get("/v1/courses/c1/assessments")).json()["items"]
    assert [(a["title"], a["points_possible"]) for a in listed] == [("Quiz 1", 50)]


async def test_get_lineitems_follows_next_links_keeping_the_filters(
    live: Tenant, tool_key: ToolKey, connect: Connect
) -> None:
    await course(live, "c1")
    _, claims, connector = await _tool(live, tool_key, connect)
    container = claims[AGS_CLAIM]["lineitems"]
    ags = ags_service(connector, claims[AGS_CLAIM])
    for n in range(5):
        line = LineItem().set_tag(f"t{n % 2}").set_label(f"Part {n}").set_score_maximum(10).set_resource_id(f"r{n}")
        await call(ags.create_lineitem, line)

    paged = ags_service(connector, claims[AGS_CLAIM], lineitems=with_query(container, limit=2))
    listed = await call(lambda: list(paged.get_lineitems()))
    assert sorted(x["label"] for x in listed) == [f"Part {n}" for n in range(5)]
    assert len({x["id"] for x in listed}) == 5
    pages = connector.to("GET", container)
    assert len(pages) == 3 and all(query_of(p.url)["limit"] == ["2"] for p in pages)

    tagged = ags_service(connector, claims[AGS_CLAIM], lineitems=with_query(container, tag="t0", limit=1))
    first, next_url = await call(tagged.get_lineitems_page)
    assert len(first) == 1 and next_url and query_of(next_url)["tag"] == ["t0"]
    everything = await call(lambda: list(tagged.get_lineitems()))
    assert sorted(x["label"] for x in everything) == ["Part 0", "Part 2", "Part 4"]
    assert {x["tag"] for x in everything} == {"t0"}


async def _exposed_homework(t: Tenant, link: str = "rl-hw") -> None:
    """Course c1 with ann and bob, a 10-point homework the planner exposes to tools, and a policy grading it."""
    await course(t, "c1")
    await enroll(t, "c1", "ann", "bob")
    await assessment(t, "c1", "hw", points_possible=10)
    r = await t.put("/v1/courses/c1/lti/line-items/hw", json={"resource_link_id": link, "tag": "hw"})
    assert r.status_code in (200, 201), r.text
    policy = {
        "preset": "standard",
        "categories": [{"name": "Homework", "weight": 1}],
        "cutoffs": [{"grade": "P", "min": 0.5}, {"grade": "F", "min": 0}],
    }
    assert (await t.put("/v1/courses/c1/policy", json=policy)).status_code == 200


async def test_put_grade_lands_as_a_score_by_the_tool(
    live: Tenant, tool_key: ToolKey, connect: Connect, settings: Settings
) -> None:
    await _exposed_homework(live)
    tool, claims, connector = await _tool(live, tool_key, connect, link="rl-hw")
    ags = ags_service(connector, claims[AGS_CLAIM])
    line = await call(ags.find_lineitem_by_tag, "hw")
    assert line is not None and line.get_score_maximum() == 10 and line.get_resource_link_id() == "rl-hw"
    assert claims[AGS_CLAIM].get("lineitem") == line.get_id()

    # scoreGiven 16 of 20 is 8 of the homework's 10 points; the library sends the timestamp as +0000.
    submitted = datetime.now(UTC) - timedelta(minutes=5)
    graded = score("ann", 16, 20, comment="Well argued.").set_started_at(submitted).set_submitted_at(submitted)
    answer = await call(ags.put_grade, graded, line)
    assert answer["body"] is None or isinstance(answer["body"], dict)
    stored = (await live.get("/v1/courses/c1/assessments/hw/scores/ann")).json()
    assert (stored["earned"], stored["possible"], stored["status"]) == (8, 10, "graded")
    entries = (await live.get("/v1/courses/c1/audit", params={"learner": "ann", "action": "score.set"})).json()
    actors = [e["actor"] for e in entries["items"]]
    assert actors == [f"lti_tool:{tool['id']}"]
    feedback = (await live.get("/v1/courses/c1/assessments/hw/feedback/ann")).json()
    assert feedback["feedback"]["text"] == "Well argued."
    await run_worker(settings)
    grade = (await live.get("/v1/courses/c1/learners/ann/grade")).json()
    assert grade["final"]["percent"] == 80, grade

    # Without scoreGiven the result is cleared (the claim's own line item is the default target). The library
    # sends whole seconds and an equal timestamp is refused (409): this one is a second later.
    clear = score("ann", None, grading="NotReady", activity="Initialized")
    await call(ags.put_grade, clear.set_timestamp(datetime.now(UTC) + timedelta(seconds=1)))
    cleared = (await live.get("/v1/courses/c1/assessments/hw/scores/ann")).json()
    assert cleared.get("earned") is None, cleared


async def test_get_grades_reads_final_results_page_by_page(live: Tenant, tool_key: ToolKey, connect: Connect) -> None:
    await _exposed_homework(live)
    _, claims, connector = await _tool(live, tool_key, connect, link="rl-hw")
    ags = ags_service(connector, claims[AGS_CLAIM])
    line = await call(ags.find_lineitem_by_tag, "hw")
    assert line is not None
    for user, given in (("ann", 7), ("bob", 2)):
        await call(ags.put_grade, score(user, given, 10), line)
    # An override through the native API is the final result the tool reads.
    r = await live.put("/v1/courses/c1/assessments/hw/scores/bob", json={"earned": 5, "source": "override"})
    assert r.status_code == 200, r.text

    results = await call(lambda: list(ags.get_grades(line)))
    got = {r["userId"]: (r["resultScore"], r["resultMaximum"]) for r in results}
    assert got == {"ann": (7, 10), "bob": (5, 10)}
    assert all(r["scoreOf"] == line.get_id() for r in results)

    line_id = str(line.get_id())
    paged = await call(lambda: list(ags.get_grades(LineItem({"id": with_query(line_id, limit=1)}))))
    assert sorted(r["userId"] for r in paged) == ["ann", "bob"]
    pages = connector.to("GET", f"{line_id}/results?")
    assert pages[0].url == f"{line_id}/results?limit=1" and len(pages) >= 2
    assert all(query_of(p.url)["limit"] == ["1"] for p in pages)
    only = await call(lambda: list(ags.get_grades(LineItem({"id": with_query(line_id, user_id="bob")}))))
    assert [(r["userId"], r["resultScore"]) for r in only] == [("bob", 5)]


async def test_get_members_pages_and_filters_by_role(live: Tenant, tool_key: ToolKey, connect: Connect) -> None:
    learners = [f"l{n}" for n in range(5)]
    await course(live, "c1", title="Physics 101")
    await enroll(live, "c1", *learners)
    await grant(live, "c1", "prof", "planner")
    _, claims, connector = await _tool(live, tool_key, connect)
    memberships = claims[NRPS_CLAIM]["context_memberships_url"]

    nrps = nrps_service(connector, with_query(memberships, limit=2))
    members = await call(nrps.get_members)
    by_id = {m["user_id"]: m for m in members}
    assert set(by_id) == {*learners, "prof"} and len(members) == 6
    assert all(by_id[x]["roles"] == [LEARNER] and by_id[x]["status"] == "Active" for x in learners)
    assert LEARNER not in by_id["prof"]["roles"] and by_id["prof"]["roles"]
    assert len(connector.to("GET", memberships)) >= 3
    context = await call(nrps.get_context)
    assert context["title"] == "Physics 101"
    # Members of a resource link (the library adds `rlid`): every member of the course may use the link.
    of_link = await call(nrps.get_members, "rl-1")
    assert sorted(m["user_id"] for m in of_link) == sorted(by_id)

    for role in (LEARNER, "Learner"):
        only = nrps_service(connector, with_query(memberships, role=role, limit=2))
        assert sorted(m["user_id"] for m in await call(only.get_members)) == learners


async def test_platform_errors_surface_as_the_library_exception(
    live: Tenant, other_tenant: Tenant, tool_key: ToolKey, connect: Connect
) -> None:
    await _exposed_homework(live)
    await course(live, "c2")
    tool, claims, connector = await _tool(live, tool_key, connect, link="rl-hw", courses=["c1"])
    ags = ags_service(connector, claims[AGS_CLAIM])
    line = await call(ags.find_lineitem_by_tag, "hw")
    assert line is not None

    async def refused(fn: Callable[..., Any], *args: Any) -> requests.Response:
        with pytest.raises(LtiServiceException) as caught:
            await call(fn, *args)
        return caught.value.response

    # A course the tool is not registered for, and another organization's course, are both unknown.
    await course(other_tenant, "c3")
    for other in ("c2", "c3"):
        elsewhere = claims[AGS_CLAIM]["lineitems"].replace("/courses/c1/", f"/courses/{other}/")
        lost = ags_service(connector, claims[AGS_CLAIM], lineitems=elsewhere)
        assert (await refused(lambda s=lost: list(s.get_lineitems()))).status_code == 404

    # scoreGiven without scoreMaximum; a learner not in the course.
    for bad, pointer in ((score("ann", 5), "/scoreMaximum"), (score("nobody", 5, 10), "/userId")):
        response = await refused(ags.put_grade, bad, line)
        assert response.status_code == 422 and response.json()["errors"][0]["pointer"] == pointer

    # A score older than the one stored changes nothing.
    newer = score("ann", 9, 10)
    await call(ags.put_grade, newer, line)
    older = score("ann", 1, 10).set_timestamp(datetime.now(UTC) - timedelta(hours=1))
    assert (await refused(ags.put_grade, older, line)).status_code == 409
    assert (await live.get("/v1/courses/c1/assessments/hw/scores/ann")).json()["earned"] == 9

    # An assertion signed by a key the tool never registered.
    stranger = connect(tool, ToolKey.generate())
    response = await refused(stranger.get_access_token, [Scope.AGS_SCORE])
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"


async def test_a_scope_the_tool_was_not_granted_is_refused(live: Tenant, tool_key: ToolKey, connect: Connect) -> None:
    await _exposed_homework(live)
    tool = await register(live, tool_key, scopes=[Scope.AGS_LINEITEM_READONLY])
    claims = await launch_claims(live, "c1", tool, "rl-hw")
    assert claims[AGS_CLAIM]["scope"] == [Scope.AGS_LINEITEM_READONLY]
    connector = connect(tool, tool_key)
    ags = ags_service(connector, claims[AGS_CLAIM])
    line = await call(ags.find_lineitem_by_tag, "hw")
    assert line is not None and not ags.can_put_grade()
    # A tool that asks anyway gets a token for what was granted, and the score endpoint refuses it.
    greedy = ags_service(connector, claims[AGS_CLAIM], scope=sorted(AGS_SCOPES))
    with pytest.raises(LtiServiceException) as caught:
        await call(greedy.put_grade, score("ann", 5, 10), line)
    assert caught.value.response.status_code == 403
    granted = json.loads(connector.to("POST", tool["token_url"])[-1].body)
    assert granted["scope"] == Scope.AGS_LINEITEM_READONLY


async def test_a_deleted_tool_loses_its_cached_token_within_a_second(
    live: Tenant, tool_key: ToolKey, connect: Connect
) -> None:
    await course(live, "c1")
    tool, claims, connector = await _tool(live, tool_key, connect)
    ags = ags_service(connector, claims[AGS_CLAIM])
    assert await call(lambda: list(ags.get_lineitems())) == []
    assert (await live.delete(f"/v1/lti/tools/{tool['id']}")).status_code == 204
    deadline = asyncio.get_running_loop().time() + 2
    while True:
        try:
            await call(lambda: list(ags.get_lineitems()))
        except LtiServiceException as e:
            assert e.response.status_code == 401 and "Bearer" in e.response.headers["WWW-Authenticate"]
            break
        assert asyncio.get_running_loop().time() < deadline, "the deleted tool's token still works after 2 s"
        await asyncio.sleep(0.1)
    assert len(connector.to("POST", tool["token_url"])) == 1  # the refusal came with the cached token


async def test_every_next_link_survives_lower_casing(live: Tenant, tool_key: ToolKey, connect: Connect) -> None:
    """PyLTI1p3 2.0.0 lower-cases the Link header: the page it asks for must be the same page."""
    await _exposed_homework(live)
    _, claims, connector = await _tool(live, tool_key, connect, link="rl-hw")
    ags = ags_service(connector, claims[AGS_CLAIM])
    await call(ags.create_lineitem, LineItem().set_label("Extra").set_score_maximum(5))
    line = await call(ags.find_lineitem_by_tag, "hw")
    assert line is not None
    for user in ("ann", "bob"):
        await call(ags.put_grade, score(user, 1, 10), line)
    containers = {
        with_query(claims[AGS_CLAIM]["lineitems"], limit=1): sorted(AGS_SCOPES),
        with_query(f"{line.get_id()}/results", limit=1): sorted(AGS_SCOPES),
        with_query(claims[NRPS_CLAIM]["context_memberships_url"], limit=1): [Scope.NRPS_MEMBERSHIPS],
    }
    for first, scopes in containers.items():
        next_url = (await call(connector.make_service_request, scopes, first))["next_page_url"]
        assert next_url, first
        as_sent = await call(connector.make_service_request, scopes, next_url)
        lowered = await call(connector.make_service_request, scopes, next_url.lower())
        assert as_sent["body"] == lowered["body"], next_url
