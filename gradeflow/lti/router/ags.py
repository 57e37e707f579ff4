"""Assignment and Grade Services 2.0 for tools (LTI access token): line items, scores, results of a course.

Answers carry the AGS media types (clients sending `Accept: application/json` get the same JSON). Bodies are
taken as the AGS media type or as application/json; anything else is 415. Next pages are announced in a
`Link: <...>; rel="next"` header whose URL keeps the filters and carries them in a lower-case hex cursor
(a client that lower-cases the link, as PyLTI1p3 2.0 does, pages on unchanged).
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator

from gradeflow.core.errors import UnsupportedMediaType, ValidationFailed
from gradeflow.core.paging import BIGINT
from gradeflow.core.validation import clean_text
from gradeflow.http.deps import RecordId, RedisDep, SessionDep, SettingsDep
from gradeflow.http.errors import CONFLICT, UNSUPPORTED_MEDIA
from gradeflow.lti.router.deps import LtiGrant, base_url, course_for, require
from gradeflow.lti.schemas.ags import (
    LINE_ITEM_CONTAINER_MEDIA_TYPE,
    LINE_ITEM_MEDIA_TYPE,
    RESULT_CONTAINER_MEDIA_TYPE,
    SCORE_MEDIA_TYPE,
    LineItemBody,
    LineItemOut,
    ResultOut,
    ScoreBody,
    line_item_json,
    result_json,
)
from gradeflow.lti.scopes import Scope
from gradeflow.lti.service import ags, line_items, results
from gradeflow.lti.service.line_items import LineItemFilters
from gradeflow.scores.service import external

router = APIRouter(prefix="/lti/courses/{course}", tags=["lti"])

ReadLineItems = Annotated[LtiGrant, require(Scope.AGS_LINEITEM, Scope.AGS_LINEITEM_READONLY)]
WriteLineItems = Annotated[LtiGrant, require(Scope.AGS_LINEITEM)]
PostScores = Annotated[LtiGrant, require(Scope.AGS_SCORE)]
ReadResults = Annotated[LtiGrant, require(Scope.AGS_RESULT_READONLY)]

ToolFilter = Annotated[str | None, Query(max_length=255), AfterValidator(clean_text)]
PageCursor = Annotated[
    str | None, Query(max_length=2048, pattern="^[0-9a-f]+$", description="From the previous page's next link.")
]
LineItemLimit = Annotated[int, Query(ge=1, le=1000, description="Page size (at most 1000).")]
# PyLTI1p3 2.0 reads one page of results only: the default page holds a large course.
ResultLimit = Annotated[int, Query(ge=1, le=10_000, description="Page size (at most 10,000).")]


def _body_of(media_type: str) -> Any:
    """A dependency refusing (415) a body sent as anything but `media_type` or application/json."""

    async def check(request: Request) -> None:
        sent = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if sent not in (media_type, "application/json"):
            raise UnsupportedMediaType(f"Send the body as {media_type} (or application/json).")

    return Depends(check)


def _courses_url(request: Request, settings: SettingsDep, course: str) -> str:
    return f"{base_url(request, settings)}/lti/courses/{quote(course, safe='')}"


def line_item_url(request: Request, settings: SettingsDep, course: str, line_item: int) -> str:
    """A line item's id: the absolute URL of its resource."""
    return f"{_courses_url(request, settings, course)}/lineitems/{line_item}"


def score_answer(line_item: str, learner: str) -> dict[str, str]:
    """What a score POST answers: where the learner's result is read."""
    return {"resultUrl": f"{line_item}/results?{urlencode({'user_id': learner})}"}


def _encode(key: list[Any]) -> str:
    return json.dumps(key, separators=(",", ":")).encode().hex()


def _decode(cursor: str | None, size: int) -> list[Any] | None:
    """The key a cursor holds ([after id, filters...]); 422 for one this API did not issue."""
    if cursor is None:
        return None
    try:
        key = clean_text(json.loads(bytes.fromhex(cursor)))  # text PostgreSQL cannot take is refused here
    except ValueError as exc:
        raise _not_ours() from exc
    if not (
        isinstance(key, list)
        and len(key) == size
        and type(key[0]) is int
        and key[0] in BIGINT
        and all(k is None or (isinstance(k, str) and len(k) <= 255) for k in key[1:])
    ):
        raise _not_ours()
    return key


def _not_ours() -> ValidationFailed:
    return ValidationFailed.one("cursor", "Not a cursor this API issued.", "query")


class LineItemJSON(JSONResponse):
    media_type = LINE_ITEM_MEDIA_TYPE


class LineItemContainerJSON(JSONResponse):
    media_type = LINE_ITEM_CONTAINER_MEDIA_TYPE


class ResultContainerJSON(JSONResponse):
    media_type = RESULT_CONTAINER_MEDIA_TYPE


def _next_link(url: str, query: dict[str, Any]) -> dict[str, str]:
    kept = {k: v for k, v in query.items() if v is not None}
    return {"Link": f'<{url}?{urlencode(kept)}>; rel="next"'}


@router.get("/lineitems", response_model=list[LineItemOut], response_class=LineItemContainerJSON)
async def list_line_items(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    grant: ReadLineItems,
    course: str,
    resource_link_id: ToolFilter = None,
    resource_id: ToolFilter = None,
    tag: ToolFilter = None,
    limit: LineItemLimit = 100,
    cursor: PageCursor = None,
) -> Response:
    """The course's line items this tool sees: those it created and the assessments a planner exposed to tools."""
    ref = await course_for(session, grant, course)
    key = _decode(cursor, 4)
    after = 0
    if key is not None:  # the cursor's filters (the link's may have been lower-cased)
        after, resource_link_id, resource_id, tag = key
    filters = LineItemFilters(resource_link_id, resource_id, tag)
    rows, next_after = await line_items.page(session, ref, grant.tool_id, filters, after, limit)
    url = f"{_courses_url(request, settings, course)}/lineitems"
    headers = None
    if next_after is not None:
        query = {"resource_link_id": resource_link_id, "resource_id": resource_id, "tag": tag, "limit": limit}
        headers = _next_link(url, {**query, "cursor": _encode([next_after, resource_link_id, resource_id, tag])})
    body = [line_item_json(r, f"{url}/{r.id}") for r in rows]
    return LineItemContainerJSON(body, headers=headers)


@router.post(
    "/lineitems",
    status_code=201,
    response_model=LineItemOut,
    response_class=LineItemJSON,
    responses=UNSUPPORTED_MEDIA,
    dependencies=[_body_of(LINE_ITEM_MEDIA_TYPE)],
)
async def create_line_item(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    queue: RedisDep,
    grant: WriteLineItems,
    course: str,
    body: Annotated[LineItemBody, Body(media_type=LINE_ITEM_MEDIA_TYPE)],
) -> Response:
    """Create a line item: a new assessment of the course (label: its title, scoreMaximum: its points)."""
    ref = await course_for(session, grant, course)
    row = await line_items.create(session, queue, ref, grant.tool_id, body.command(), grant.actor)
    url = line_item_url(request, settings, course, row.id)
    return LineItemJSON(line_item_json(row, url), status_code=201, headers={"Location": url})


@router.get("/lineitems/{line_item}", response_model=LineItemOut, response_class=LineItemJSON)
async def get_line_item(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    grant: ReadLineItems,
    course: str,
    line_item: RecordId,
) -> Response:
    ref = await course_for(session, grant, course)
    row = await line_items.get(session, ref, grant.tool_id, line_item)
    url = line_item_url(request, settings, course, row.id)
    return LineItemJSON(line_item_json(row, url))


@router.put(
    "/lineitems/{line_item}",
    response_model=LineItemOut,
    response_class=LineItemJSON,
    responses=UNSUPPORTED_MEDIA,
    dependencies=[_body_of(LINE_ITEM_MEDIA_TYPE)],
)
async def update_line_item(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    queue: RedisDep,
    grant: WriteLineItems,
    course: str,
    line_item: RecordId,
    body: Annotated[LineItemBody, Body(media_type=LINE_ITEM_MEDIA_TYPE)],
) -> Response:
    """Update the tool's own line item: label and scoreMaximum (the assessment's title and points), and the
    tool's fields it sends (those it omits stay). An exposed assessment is the planner's: 403."""
    ref = await course_for(session, grant, course)
    row = await line_items.update(session, queue, ref, grant.tool_id, line_item, body.command(), grant.actor)
    url = line_item_url(request, settings, course, row.id)
    return LineItemJSON(line_item_json(row, url))


@router.delete("/lineitems/{line_item}", status_code=204)
async def delete_line_item(session: SessionDep, grant: WriteLineItems, course: str, line_item: RecordId) -> Response:
    """Remove the tool's own line item. Its assessment and every score on it stay in the course."""
    ref = await course_for(session, grant, course)
    await line_items.delete(session, ref, grant.tool_id, line_item, grant.actor)
    return Response(status_code=204)


@router.post(
    "/lineitems/{line_item}/scores", responses=CONFLICT | UNSUPPORTED_MEDIA, dependencies=[_body_of(SCORE_MEDIA_TYPE)]
)
async def post_score(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    queue: RedisDep,
    grant: PostScores,
    course: str,
    line_item: RecordId,
    body: Annotated[ScoreBody, Body(media_type=SCORE_MEDIA_TYPE)],
) -> dict[str, str]:
    """Post a learner's score (AGS Score): rescaled to the line item's points, written as the native score PUT
    writes. Timestamps per learner must increase: an older or equal one is 409 and changes nothing."""
    ref = await course_for(session, grant, course)
    ags.remember_course(ref)
    command = body.command(ref, grant.tool_id, line_item)
    await external.post_tool_score(session, queue, ref, command, grant.actor)
    return score_answer(line_item_url(request, settings, course, line_item), body.user_id)


@router.get("/lineitems/{line_item}/results", response_model=list[ResultOut], response_class=ResultContainerJSON)
async def list_results(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    grant: ReadResults,
    course: str,
    line_item: RecordId,
    user_id: ToolFilter = None,
    limit: ResultLimit = 1000,
    cursor: PageCursor = None,
) -> Response:
    """Each learner's result as Gradeflow holds it (after overrides and the late policy; resultScore absent until
    final), out of the line item's points, with the learner's feedback as comment."""
    ref = await course_for(session, grant, course)
    key = _decode(cursor, 2)
    after = 0
    if key is not None:
        after, user_id = key
    _, rows, next_after = await results.page(session, ref, grant.tool_id, line_item, user_id, after, limit)
    url = line_item_url(request, settings, course, line_item)
    headers = None
    if next_after is not None:
        query = {"user_id": user_id, "limit": limit, "cursor": _encode([next_after, user_id])}
        headers = _next_link(f"{url}/results", query)
    return ResultContainerJSON([result_json(r, url) for r in rows], headers=headers)
