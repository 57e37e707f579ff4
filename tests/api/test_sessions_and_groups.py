"""Course sessions (the test platform's test sessions) and archived groups, through the API, the
results table and the report files.

A hand-built course:
  learners   ann: groups old        bob: groups old, new      cid: no group      dan: groups new
  quiz       ann 8, bob 6, cid 4, dan 9 (of 10)
  exam       nobody has an attempt
  sessions   morning: (quiz, ann), (quiz, bob), (exam, cid) - cid's exam attempt made, to be taken
             resit:   (quiz, dan)
Archiving `old` hides ann alone: bob is still in `new`, cid is in no group, dan in `new` only.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import openpyxl
import pypdf

from gradeflow.core.settings import Settings
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, grant, user_token

C = "/v1/courses/c1"
S = f"{C}/sessions"
MORNING = [("quiz", "ann"), ("quiz", "bob"), ("exam", "cid")]


def _pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {"attempts": [{"assessment": a, "learner": learner} for a, learner in pairs]}


async def _course(t: Tenant) -> None:
    await course(t)
    rows = [
        {"external_id": "ann", "full_name": "Ann Ünal", "groups": ["old"]},
        {"external_id": "bob", "full_name": "Bob Stone", "groups": ["old", "new"]},
        {"external_id": "cid", "full_name": "Cid Ødegård"},
        {"external_id": "dan", "full_name": "Dan Berg", "groups": ["new"]},
    ]
    assert (await t.post(f"{C}/enrollments:batch", json={"enrollments": rows})).status_code == 200
    await assessment(t, "c1", "quiz", title="Quiz")
    await assessment(t, "c1", "exam", title="Exam")
    for learner, earned in (("ann", 8), ("bob", 6), ("cid", 4), ("dan", 9)):
        r = await t.put(f"{C}/assessments/quiz/scores/{learner}", json={"earned": earned})
        assert r.status_code == 200, r.text


async def _sessions(t: Tenant) -> None:
    for name in ("morning", "resit"):
        assert (await t.post(S, json={"external_id": name})).status_code == 201
    assert (await t.put(f"{S}/morning/attempts", json=_pairs(MORNING))).status_code == 200
    assert (await t.put(f"{S}/resit/attempts", json=_pairs([("quiz", "dan")]))).status_code == 200


async def _audit(t: Tenant, action: str) -> list[dict[str, Any]]:
    r = await t.get(f"{C}/audit", params={"action": action})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def _rows(t: Tenant, **params: Any) -> list[tuple[str, str]]:
    r = await t.get(f"{C}/results", params=params)
    assert r.status_code == 200, r.text
    return [(row["learner"], row["assessment"]) for row in r.json()["items"]]


async def _report(t: Tenant, settings: Settings, kind: str, **params: Any) -> tuple[dict[str, Any], bytes]:
    r = await t.post(f"{C}/reports", json={"kind": kind, "params": params})
    assert r.status_code == 202, r.text
    await run_worker(settings)
    body = (await t.get(r.headers["location"])).json()
    assert body["status"] == "succeeded", body
    async with httpx.AsyncClient() as http:
        return body, (await http.get(body["download_url"])).content


def _xlsx_rows(content: bytes) -> list[tuple[str, str]]:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    assert sheet is not None
    header, *rows = list(sheet.iter_rows(values_only=True))
    learner, assessment_at = header.index("Learner ID"), header.index("Assessment ID")
    return [(str(r[learner]), str(r[assessment_at])) for r in rows]


def _pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages)


# --- sessions -------------------------------------------------------------------------------------


async def test_sessions_are_created_listed_changed_and_deleted(tenant: Tenant) -> None:
    await _course(tenant)
    body = {"external_id": "morning", "title": "Morning sitting", "starts_at": "2026-05-04T08:00:00Z"}
    r = await tenant.post(S, json={**body, "ends_at": "2026-05-04T11:00:00Z"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["title"] == "Morning sitting" and created["attempts"] == 0
    assert created["ends_at"].startswith("2026-05-04T11:00:00")
    assert_problem(await tenant.post(S, json={"external_id": "morning"}), 409)
    assert (await tenant.post(S, json={"external_id": "resit"})).status_code == 201

    first = (await tenant.get(S, params={"limit": 1})).json()
    assert [s["external_id"] for s in first["items"]] == ["morning"] and first["next_cursor"]
    rest = (await tenant.get(S, params={"limit": 1, "cursor": first["next_cursor"]})).json()
    assert [s["external_id"] for s in rest["items"]] == ["resit"] and rest["next_cursor"] is None

    r = await tenant.patch(f"{S}/morning", json={"title": "Early sitting", "ends_at": None})
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Early sitting" and r.json()["ends_at"] is None
    assert r.json()["starts_at"].startswith("2026-05-04T08:00:00")
    # The window must end after it starts: checked against the stored start too.
    assert_problem(await tenant.patch(f"{S}/morning", json={"ends_at": "2026-05-04T07:00:00Z"}), 422, "/ends_at")
    bad = {"external_id": "x", "starts_at": "2026-05-04T08:00:00Z", "ends_at": "2026-05-04T08:00:00Z"}
    assert_problem(await tenant.post(S, json=bad), 422, "/ends_at")
    assert_problem(await tenant.post(S, json={"external_id": "a/b"}), 422, "/external_id")
    assert_problem(await tenant.patch(f"{S}/nope", json={"title": "x"}), 404)

    assert (await tenant.delete(f"{S}/resit")).status_code == 204
    assert_problem(await tenant.get(f"{S}/resit"), 404)
    assert [s["external_id"] for s in (await tenant.get(S)).json()["items"]] == ["morning"]

    assert [e["new"]["external_id"] for e in await _audit(tenant, "session.created")] == ["morning", "resit"]
    (updated,) = await _audit(tenant, "session.updated")
    assert updated["old"]["title"] == "Morning sitting" and updated["new"] == {
        "session": "morning",
        "title": "Early sitting",
        "ends_at": None,
    }
    (deleted,) = await _audit(tenant, "session.deleted")
    assert deleted["old"]["external_id"] == "resit"


async def test_attempts_go_in_and_out_of_a_session(tenant: Tenant) -> None:
    await _course(tenant)
    await _sessions(tenant)
    # cid had no exam attempt: putting it in the session made one, to be taken.
    r = await tenant.get(f"{C}/assessments/exam/attempts/cid")
    assert r.status_code == 200 and r.json()["status"] == "to_be_taken"
    assert (await tenant.get(f"{S}/morning")).json()["attempts"] == 3

    # Again: nothing changes; dan's quiz attempt moves from resit to morning.
    r = await tenant.put(f"{S}/morning/attempts", json=_pairs([*MORNING, ("quiz", "dan")]))
    assert r.status_code == 200, r.text
    assert r.json() == {"session": "morning", "asked": 4, "added": 1, "created": 0, "unchanged": 3}
    assert (await tenant.get(f"{S}/resit")).json()["attempts"] == 0

    r = await tenant.request("DELETE", f"{S}/morning/attempts", json=_pairs([("quiz", "dan"), ("exam", "ann")]))
    assert r.status_code == 200, r.text
    assert r.json() == {"session": "morning", "asked": 2, "removed": 1, "unchanged": 1}
    assert sorted(await _rows(tenant, session="morning")) == [("ann", "quiz"), ("bob", "quiz"), ("cid", "exam")]

    # All or nothing: each unknown assessment and learner is named, nothing is written.
    unknown = _pairs([("quiz", "dan"), ("essay", "ann"), ("quiz", "zoe")])
    assert_problem(
        await tenant.put(f"{S}/morning/attempts", json=unknown), 422, "/attempts/1/assessment", "/attempts/2/learner"
    )
    assert_problem(await tenant.put(f"{S}/morning/attempts", json=_pairs([MORNING[0], MORNING[0]])), 422, "/attempts/1")
    assert_problem(await tenant.put(f"{S}/morning/attempts", json={"attempts": []}), 422, "/attempts")
    assert_problem(await tenant.put(f"{S}/nope/attempts", json=_pairs(MORNING)), 404)
    assert (await tenant.get(f"{S}/morning")).json()["attempts"] == 3

    # Deleting the session keeps its attempts.
    assert (await tenant.delete(f"{S}/morning")).status_code == 204
    assert (await tenant.get(f"{C}/assessments/exam/attempts/cid")).status_code == 200

    added = await _audit(tenant, "session.attempts_added")
    assert [e["new"] for e in added] == [
        {"session": "morning", "asked": 3, "added": 3, "created": 1, "unchanged": 0},
        {"session": "resit", "asked": 1, "added": 1, "created": 0, "unchanged": 0},
        {"session": "morning", "asked": 4, "added": 1, "created": 0, "unchanged": 3},
    ]
    dan = [e for e in await _audit(tenant, "session.attempt_added") if e["learner"] == "dan"]
    assert [(e["old"], e["new"]) for e in dan] == [
        ({"session": None}, {"session": "resit"}),
        ({"session": "resit"}, {"session": "morning"}),
    ]
    (removed,) = await _audit(tenant, "session.attempt_removed")
    assert (removed["learner"], removed["assessment"]) == ("dan", "quiz")
    assert (await _audit(tenant, "session.attempts_removed"))[0]["new"]["removed"] == 1


async def test_only_planners_change_sessions_and_staff_read_them(tenant: Tenant) -> None:
    await _course(tenant)
    await _sessions(tenant)
    await grant(tenant, "c1", "g1", "grader")
    grader = await user_token(tenant, "g1")
    assert (await tenant.get(f"{S}/morning", as_=grader)).status_code == 200
    assert_problem(await tenant.put(f"{S}/morning/attempts", json=_pairs(MORNING), as_=grader), 403)
    assert_problem(await tenant.post(S, json={"external_id": "x"}, as_=grader), 403)


# --- the results table and the reports by session --------------------------------------------------


async def test_results_and_the_results_xlsx_filter_by_session(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)
    await _sessions(tenant)
    r = await tenant.get(f"{C}/results", params={"session": "morning"})
    assert r.status_code == 200, r.text
    assert sorted((x["learner"], x["assessment"]) for x in r.json()["items"]) == sorted(
        [("ann", "quiz"), ("bob", "quiz"), ("cid", "exam")]
    )
    assert r.json()["counts"]["graded"] == 2 and r.json()["counts"]["to_be_taken"] == 1
    assert await _rows(tenant, session="resit") == [("dan", "quiz")]
    problem = assert_problem(await tenant.get(f"{C}/results", params={"session": "nope"}), 404)
    assert "'nope'" in problem["detail"]

    _, content = await _report(tenant, settings, "results_xlsx", session="morning")
    assert sorted(_xlsx_rows(content)) == sorted([("ann", "quiz"), ("bob", "quiz"), ("cid", "exam")])
    r = await tenant.post(f"{C}/reports", json={"kind": "results_xlsx", "params": {"session": "nope"}})
    assert "'nope'" in str(assert_problem(r, 422, "/params/session")["errors"])


async def test_the_pdf_reports_cover_a_sessions_learners(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)
    await _sessions(tenant)
    # The group report ranks the session's learners on their quiz in it: ann and bob (cid's attempt in
    # the session is the exam's, so cid is a learner of the session who has not taken the quiz in it).
    body, content = await _report(tenant, settings, "group_report_pdf", assessment="quiz", session="morning")
    text = _pdf_text(content)
    assert body["rows"] == 2 and "Ann Ünal" in text and "Bob Stone" in text and "Dan Berg" not in text
    shown = (await tenant.get(f"{C}/gradebook", params={"session": "morning"})).json()["items"]
    assert [x["learner"] for x in shown] == ["ann", "bob", "cid"]
    stats = (await tenant.get(f"{C}/statistics", params={"assessment": "quiz", "session": "resit"})).json()
    assert stats["count"] == 1 and stats["mean"] == 90
    assert_problem(await tenant.get(f"{C}/gradebook", params={"session": "nope"}), 404)
    _, content = await _report(tenant, settings, "individual_reports_zip", session="resit")
    assert zipfile.ZipFile(io.BytesIO(content)).namelist() == ["dan.pdf"]
    r = await tenant.post(
        f"{C}/reports", json={"kind": "group_report_pdf", "params": {"assessment": "quiz", "session": "x"}}
    )
    assert_problem(r, 422, "/params/session")


# --- archived groups ------------------------------------------------------------------------------


async def test_groups_are_listed_and_archived(tenant: Tenant) -> None:
    await _course(tenant)
    r = await tenant.get(f"{C}/groups")
    assert r.status_code == 200, r.text
    assert [(g["name"], g["learners"], g["archived"]) for g in r.json()["items"]] == [
        ("new", 2, False),
        ("old", 2, False),
    ]
    r = await tenant.put(f"{C}/groups/old", json={"archived": True})
    assert r.status_code == 200, r.text
    assert r.json()["archived"] and r.json()["archived_at"] and r.json()["learners"] == 2
    assert (await tenant.put(f"{C}/groups/old", json={"archived": True})).status_code == 200  # no change
    page = (await tenant.get(f"{C}/groups", params={"limit": 1})).json()
    assert [g["name"] for g in page["items"]] == ["new"]
    page = (await tenant.get(f"{C}/groups", params={"limit": 1, "cursor": page["next_cursor"]})).json()
    assert [(g["name"], g["archived"]) for g in page["items"]] == [("old", True)] and page["next_cursor"] is None

    assert_problem(await tenant.put(f"{C}/groups/olde", json={"archived": True}), 404)
    assert_problem(await tenant.put(f"{C}/groups/old", json={"archived": "maybe"}), 422, "/archived")
    assert_problem(await tenant.put(f"{C}/groups/old", json={}), 422, "/archived")
    assert (await tenant.put(f"{C}/groups/old", json={"archived": False})).json()["archived"] is False

    (archived,) = await _audit(tenant, "group.archived")  # once: the repeat changed nothing
    assert archived["new"] == {"group": "old", "archived": True, "learners": 2}
    (unarchived,) = await _audit(tenant, "group.unarchived")
    assert unarchived["old"]["archived"] is True and unarchived["new"]["archived"] is False


async def test_archived_groups_are_hidden_unless_asked(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)
    assert (await tenant.put(f"{C}/groups/old", json={"archived": True})).status_code == 200
    # ann is only in `old`; bob is still in `new`; cid is in no group.
    assert {x for x, _ in await _rows(tenant)} == {"bob", "cid", "dan"}
    assert {x for x, _ in await _rows(tenant, include_archived=True)} == {"ann", "bob", "cid", "dan"}
    assert {x for x, _ in await _rows(tenant, group="old")} == {"bob"}

    _, content = await _report(tenant, settings, "results_xlsx")
    assert {x for x, _ in _xlsx_rows(content)} == {"bob", "cid", "dan"}
    _, content = await _report(tenant, settings, "results_xlsx", include_archived=True)
    assert {x for x, _ in _xlsx_rows(content)} == {"ann", "bob", "cid", "dan"}

    _, content = await _report(tenant, settings, "individual_reports_zip")
    assert sorted(zipfile.ZipFile(io.BytesIO(content)).namelist()) == ["bob.pdf", "cid.pdf", "dan.pdf"]
    # Named one by one, a learner is reported whatever their groups (was silently left out).
    _, content = await _report(tenant, settings, "individual_reports_zip", learners=["ann", "bob"])
    assert sorted(zipfile.ZipFile(io.BytesIO(content)).namelist()) == ["ann.pdf", "bob.pdf"]
    body, content = await _report(tenant, settings, "group_report_pdf", assessment="quiz", include_archived=True)
    assert body["rows"] == 4 and "Ann Ünal" in _pdf_text(content)
    body, content = await _report(tenant, settings, "group_report_pdf", assessment="quiz")
    assert body["rows"] == 3 and "Ann Ünal" not in _pdf_text(content)

    # The gradebook (and its CSV) and the statistics read the same rule.
    shown = (await tenant.get(f"{C}/gradebook")).json()["items"]
    assert [x["learner"] for x in shown] == ["bob", "cid", "dan"]
    shown = (await tenant.get(f"{C}/gradebook", params={"include_archived": "true"})).json()["items"]
    assert [x["learner"] for x in shown] == ["ann", "bob", "cid", "dan"]
    assert "ann" not in (await tenant.get(f"{C}/gradebook.csv")).text
    stats = (await tenant.get(f"{C}/statistics", params={"assessment": "quiz"})).json()
    assert (stats["count"], stats["min"], stats["max"]) == (3, 40, 90)  # bob 60, cid 40, dan 90: not ann 80

    # Both archived: bob goes too; cid, in no group, never does.
    assert (await tenant.put(f"{C}/groups/new", json={"archived": True})).status_code == 200
    assert {x for x, _ in await _rows(tenant)} == {"cid"}
