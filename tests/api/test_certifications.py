"""Certifications (what a course or an assessment certifies), certificate images, generation per
certification, revoking and reinstating, the certificates list and its filters, and the grade report's
certificate columns."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import orjson
from PIL import Image

from gradeflow.core.settings import Settings
from tests.conftest import Receiver, Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, grant, user_token

C = "/v1/courses/c1"
CERT = f"{C}/certification"
EXAM_CERT = f"{C}/assessments/exam/certification"
BASE = f"{C}/certificates"
IMAGES = "/v1/certificate-images"
DIPLOMA = {"title": "Certificate of achievement", "body": "has completed Physics 101 with distinction."}


def _png(size: tuple[int, int] = (40, 20), color: str = "navy") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def _jpeg(size: tuple[int, int] = (30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "white").save(out, format="JPEG")
    return out.getvalue()


async def _put_image(t: Tenant, name: str, data: bytes, content_type: str, **kw: Any) -> httpx.Response:
    return await t.put(f"{IMAGES}/{name}", content=data, headers={"Content-Type": content_type}, **kw)


async def _audit(t: Tenant, action: str, url: str = f"{C}/audit") -> list[dict[str, Any]]:
    r = await t.get(url, params={"action": action, "limit": 1000})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def _held(t: Tenant, **params: Any) -> list[str]:
    r = await t.get(BASE, params=params)
    assert r.status_code == 200, r.text
    return [c["learner"] for c in r.json()["items"]]


# --- definitions ----------------------------------------------------------------------------------


async def test_certification_definitions_are_validated_revised_and_audited(tenant: Tenant) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "exam", points_possible=10)

    default = (await tenant.get(CERT)).json()
    assert (default["defined"], default["rule"], default["threshold"], default["title"], default["revision"]) == (
        False,
        "course_passing",
        None,
        None,
        0,
    )
    assert_problem(await tenant.get(EXAM_CERT), 404)  # an assessment certifies only once given a certification

    bad = [
        ({**DIPLOMA, "rule": "course_passing", "threshold": 50}, "/threshold"),
        ({**DIPLOMA, "rule": "course_percent"}, "/threshold"),
        ({**DIPLOMA, "threshold": 100.5}, "/threshold"),
        ({**DIPLOMA, "threshold": -1}, "/threshold"),
        ({**DIPLOMA, "rule": "assessment_percent", "threshold": 50}, "/rule"),
        ({**DIPLOMA, "rule": "nope"}, "/rule"),
        ({**DIPLOMA, "title": "x" * 201}, "/title"),
        ({"body": "no title"}, "/title"),
        ({**DIPLOMA, "body": "x" * 2001}, "/body"),
        ({**DIPLOMA, "language": "xx"}, "/language"),
        ({**DIPLOMA, "language": "not a tag"}, "/language"),
        ({**DIPLOMA, "logo_image": "missing"}, "/logo_image"),
        ({**DIPLOMA, "signature_image": "../etc"}, "/signature_image"),
        ({**DIPLOMA, "signatory_name": ""}, "/signatory_name"),
        ({**DIPLOMA, "titel": "typo"}, "/titel"),
    ]
    for body, pointer in bad:
        assert_problem(await tenant.put(CERT, json=body), 422, pointer)
    assert_problem(
        await tenant.put(EXAM_CERT, json={**DIPLOMA, "rule": "course_percent", "threshold": 5}), 422, "/rule"
    )
    assert_problem(await tenant.put(EXAM_CERT, json=DIPLOMA), 422, "/threshold")
    assert_problem(await tenant.put(f"{C}/assessments/nope/certification", json=DIPLOMA), 404)

    first = await tenant.put(CERT, json={**DIPLOMA, "threshold": 60, "language": "fr", "signatory_name": "Dr Who"})
    assert first.status_code == 200, first.text
    got = first.json()
    assert (got["defined"], got["rule"], got["threshold"], got["language"], got["revision"]) == (
        True,
        "course_percent",
        60.0,
        "fr",
        1,
    )
    same = await tenant.put(CERT, json={**DIPLOMA, "threshold": "60.0", "language": "fr", "signatory_name": "Dr Who"})
    assert same.json()["revision"] == 1  # nothing changed: no new revision, no audit entry
    changed = await tenant.put(CERT, json={**DIPLOMA, "rule": "course_passing"})
    assert (changed.json()["rule"], changed.json()["threshold"], changed.json()["revision"]) == (
        "course_passing",
        None,
        2,
    )
    assert (await tenant.get(CERT)).json() == changed.json()

    exam = await tenant.put(EXAM_CERT, json={**DIPLOMA, "threshold": 70})
    assert exam.status_code == 200, exam.text
    assert (exam.json()["assessment"], exam.json()["rule"], exam.json()["revision"]) == (
        "exam",
        "assessment_percent",
        1,
    )
    assert (await tenant.get(EXAM_CERT)).json()["threshold"] == 70.0

    updates = await _audit(tenant, "certification.updated")
    assert [(e["assessment"], (e["old"] or {}).get("rule"), e["new"]["rule"]) for e in updates] == [
        (None, None, "course_percent"),
        (None, "course_percent", "course_passing"),
        ("exam", None, "assessment_percent"),
    ]
    assert updates[0]["new"]["signatory_name"] == "Dr Who"

    assert (await tenant.delete(EXAM_CERT)).status_code == 204
    assert_problem(await tenant.delete(EXAM_CERT), 404)
    assert (await tenant.delete(CERT)).status_code == 204
    assert (await tenant.delete(CERT)).status_code == 204  # already the default: nothing recorded
    assert (await tenant.get(CERT)).json()["defined"] is False
    deleted = await _audit(tenant, "certification.deleted")
    assert [(e["assessment"], e["old"]["rule"]) for e in deleted] == [
        ("exam", "assessment_percent"),
        (None, "course_passing"),
    ]

    # Planners manage certifications; those who oversee results read them; graders do neither.
    for user, role in (("p1", "planner"), ("v1", "viewer"), ("pub", "publisher"), ("g1", "grader")):
        await grant(tenant, "c1", user, role)
    planner, viewer, publisher, grader = [await user_token(tenant, u) for u in ("p1", "v1", "pub", "g1")]
    assert (await tenant.put(CERT, json=DIPLOMA, as_=planner)).status_code == 200
    for token in (viewer, publisher):
        assert (await tenant.get(CERT, as_=token)).status_code == 200
        assert (await tenant.get(BASE, as_=token)).status_code == 200
        assert_problem(await tenant.put(CERT, json=DIPLOMA, as_=token), 403)
    assert_problem(await tenant.get(CERT, as_=grader), 403)
    assert_problem(await tenant.get(BASE, as_=grader), 403)


# --- images ---------------------------------------------------------------------------------------


async def test_images_are_decoded_kept_in_object_storage_and_guarded(tenant: Tenant, other_tenant: Tenant) -> None:
    await course(tenant)
    logo = _png((40, 20))
    r = await _put_image(tenant, "logo", logo, "image/png")
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("name", "content_type", "bytes", "width", "height")} == {
        "name": "logo",
        "content_type": "image/png",
        "bytes": len(logo),
        "width": 40,
        "height": 20,
    }
    first_sha = r.json()["sha256"]
    assert (await _put_image(tenant, "logo", logo, "image/png")).json()["sha256"] == first_sha  # unchanged
    signature = _jpeg((30, 30))
    assert (await _put_image(tenant, "signature", signature, "image/jpeg; charset=binary")).status_code == 200

    # The link downloads exactly the bytes sent; it is never cached.
    got = await tenant.get(f"{IMAGES}/logo")
    assert got.status_code == 200, got.text
    assert got.headers["cache-control"] == "no-store"
    async with httpx.AsyncClient() as http:
        assert (await http.get(got.json()["download_url"])).content == logo
    listed = (await tenant.get(IMAGES)).json()["items"]
    assert [(i["name"], i["content_type"], i["width"]) for i in listed] == [
        ("logo", "image/png", 40),
        ("signature", "image/jpeg", 30),
    ]
    assert "download_url" not in listed[0]

    # Replacing writes a new object (its key holds the sha256): the link gives the new bytes.
    bigger = _png((64, 32), "maroon")
    replaced = (await _put_image(tenant, "logo", bigger, "image/png")).json()
    assert (replaced["width"], replaced["sha256"] != first_sha) == (64, True)
    async with httpx.AsyncClient() as http:
        assert (await http.get((await tenant.get(f"{IMAGES}/logo")).json()["download_url"])).content == bigger

    # What is not a PNG or JPEG, or not what its Content-Type says, is refused.
    assert_problem(await _put_image(tenant, "x", b"not an image at all", "image/png"), 422, "")
    assert_problem(await _put_image(tenant, "x", signature, "image/png"), 422, "")  # a JPEG sent as PNG
    assert_problem(await _put_image(tenant, "x", logo[: len(logo) // 2], "image/png"), 422, "")  # truncated
    assert_problem(await _put_image(tenant, "x", b"", "image/png"), 422, "")
    assert_problem(await _put_image(tenant, "x", logo, "image/gif"), 415)
    assert_problem(await tenant.put(f"{IMAGES}/x", json={"image": "base64"}), 415)
    assert_problem(await _put_image(tenant, "x", b"\x89PNG" + b"0" * (2 * 1024 * 1024), "image/png"), 413)
    assert_problem(await _put_image(tenant, "a b", logo, "image/png"), 422, "name")
    assert_problem(await tenant.get(f"{IMAGES}/x"), 404)
    assert [i["name"] for i in (await tenant.get(IMAGES)).json()["items"]] == ["logo", "signature"]

    # Organization-level: API keys only; another organization does not see them.
    await grant(tenant, "c1", "p1", "planner")
    planner = await user_token(tenant, "p1")
    assert_problem(await _put_image(tenant, "logo", logo, "image/png", as_=planner), 403)
    assert_problem(await tenant.get(IMAGES, as_=planner), 403)
    assert_problem(await tenant.get(f"{IMAGES}/logo", as_=other_tenant.key), 404)
    assert (await tenant.get(IMAGES, as_=other_tenant.key)).json()["items"] == []

    # A certification prints it: not deleted until the certification stops naming it.
    r = await tenant.put(CERT, json={**DIPLOMA, "logo_image": "logo", "signature_image": "signature"})
    assert r.status_code == 200, r.text
    conflict = assert_problem(await tenant.delete(f"{IMAGES}/logo"), 409)
    assert "c1" in conflict["detail"]
    assert_problem(await tenant.put(CERT, json={**DIPLOMA, "logo_image": "logo"}, as_=other_tenant.key), 404)
    assert (await tenant.put(CERT, json={**DIPLOMA, "signature_image": "signature"})).status_code == 200
    assert (await tenant.delete(f"{IMAGES}/logo")).status_code == 204
    assert_problem(await tenant.delete(f"{IMAGES}/logo"), 404)
    assert [i["name"] for i in (await tenant.get(IMAGES)).json()["items"]] == ["signature"]

    sets = await _audit(tenant, "certificate_image.set", "/v1/audit")
    assert [(e["new"]["name"], e["new"]["width"], (e["old"] or {}).get("width")) for e in sets] == [
        ("logo", 40, None),
        ("signature", 30, None),
        ("logo", 64, 40),
    ]
    assert [e["old"]["name"] for e in await _audit(tenant, "certificate_image.deleted", "/v1/audit")] == ["logo"]
    assert len(await _audit(tenant, "certificate_image.link_issued", "/v1/audit")) == 2


# --- generation of an assessment's certification, revoking, reinstating ---------------------------


async def _exam_course(t: Tenant) -> None:
    await course(t)
    await assessment(t, "c1", "exam", points_possible=10)
    rows = [
        {"external_id": x, "full_name": f"{x.title()} Example", "track": "verified" if x != "edge" else "audit"}
        for x in ("edge", "below", "top", "excused", "gone", "none")
    ]
    rows[4]["status"] = "unenrolled"
    assert (await t.post(f"{C}/enrollments:batch", json={"enrollments": rows})).status_code == 200
    scores = {"edge": "7", "below": "6.999999", "top": "10", "excused": "9", "gone": "9"}
    batch = [{"assessment": "exam", "learner": x, "earned": p} for x, p in scores.items()]
    r = await t.post(f"{C}/scores:batch", json={"scores": batch})
    assert r.status_code == 200, r.text
    assert (await t.put(f"{C}/assessments/exam/excused/excused")).status_code in (200, 204)


async def test_an_assessment_certification_issues_at_its_threshold_and_revoked_stays_revoked(
    tenant: Tenant, settings: Settings, receiver: Receiver
) -> None:
    await _exam_course(tenant)
    assert_problem(await tenant.post(f"{BASE}:generate", json={"assessment": "exam"}), 404)  # no certification
    assert_problem(await tenant.post(f"{BASE}:generate", json={"assessment": "nope"}), 404)
    assert_problem(await tenant.post(f"{BASE}:generate", json={"assesment": "exam"}), 422, "/assesment")
    assert (await tenant.put(EXAM_CERT, json={**DIPLOMA, "threshold": 70})).status_code == 200
    hook = await tenant.post(
        "/v1/webhooks",
        json={"url": receiver.base + "/c", "events": ["certificate.revoked", "certificate.reinstated"]},
    )
    assert hook.status_code == 201, hook.text

    r = await tenant.post(f"{BASE}:generate", json={"assessment": "exam"})
    assert r.status_code == 201, r.text
    g1 = r.json()
    # 7 of 10 is exactly 70 %: it passes; 6.999999 does not; excused never passes; an unenrolled learner,
    # a learner without a result and the track (audit) play no part.
    assert (g1["assessment"], g1["policy_version"], g1["eligible"], g1["issued"], g1["removed"]) == (
        "exam",
        None,
        2,
        2,
        0,
    )
    assert await _held(tenant, assessment="exam") == ["edge", "top"]
    assert await _held(tenant) == []  # the course certificate is another certification
    rows = (await tenant.get(BASE, params={"assessment": "exam"})).json()["items"]
    assert [(c["name"], c["assessment"], c["type"], c["reason"], c["generation_id"]) for c in rows] == [
        ("Edge Example", "exam", "audit", "passing", g1["id"]),
        ("Top Example", "exam", "verified", "passing", g1["id"]),
    ]
    assert len({c["code"] for c in rows}) == 2 and all(len(c["code"]) == 16 for c in rows)
    top_code = rows[1]["code"]

    # Revoked: no longer in the valid list; generations leave it revoked whatever the result says.
    revoke = f"{BASE}/top:revoke"
    assert_problem(await tenant.post(revoke, json={"assessment": "exam"}), 422, "/reason")
    assert_problem(await tenant.post(revoke, json={"assessment": "exam", "reason": "x" * 501}), 422, "/reason")
    assert_problem(await tenant.post(f"{BASE}/below:revoke", json={"assessment": "exam", "reason": "r"}), 404)
    assert_problem(await tenant.post(f"{BASE}/ghost:revoke", json={"assessment": "exam", "reason": "r"}), 404)
    assert_problem(await tenant.post(revoke, json={"reason": "r"}), 404)  # holds no course certificate
    r = await tenant.post(revoke, json={"assessment": "exam", "reason": "Impersonation at the exam"})
    assert r.status_code == 200, r.text
    assert (r.json()["code"], r.json()["revoke_reason"], r.json()["revoked_by"]) == (
        top_code,
        "Impersonation at the exam",
        "key:" + r.json()["revoked_by"].removeprefix("key:"),
    )
    assert r.json()["revoked_at"] is not None
    assert_problem(await tenant.post(revoke, json={"assessment": "exam", "reason": "again"}), 409)
    assert await _held(tenant, assessment="exam") == ["edge"]
    assert await _held(tenant, assessment="exam", revoked="true") == ["top"]

    g2 = (await tenant.post(f"{BASE}:generate", json={"assessment": "exam"})).json()
    assert (g2["eligible"], g2["issued"], g2["removed"]) == (1, 0, 0)
    assert await _held(tenant, assessment="exam", revoked="true") == ["top"]
    assert await _held(tenant, assessment="exam") == ["edge"]

    # Reinstated: valid again at once, with its code.
    reinstate = f"{BASE}/top:reinstate"
    assert_problem(await tenant.post(f"{BASE}/edge:reinstate", json={"assessment": "exam"}), 409)
    r = await tenant.post(reinstate, json={"assessment": "exam"})
    assert r.status_code == 200, r.text
    assert (r.json()["code"], r.json()["revoked_at"], r.json()["revoke_reason"]) == (top_code, None, None)
    assert_problem(await tenant.post(reinstate, json={"assessment": "exam"}), 409)
    assert await _held(tenant, assessment="exam") == ["edge", "top"]
    g3 = (await tenant.post(f"{BASE}:generate", json={"assessment": "exam"})).json()
    assert (g3["eligible"], g3["issued"], g3["removed"]) == (2, 0, 0)

    # While certificates of it exist, the assessment's certification stays.
    conflict = assert_problem(await tenant.delete(EXAM_CERT), 409)
    assert "2 valid certificates" in conflict["detail"]

    # On the record, and announced.
    [revoked] = [e for e in await _audit(tenant, "certificate.revoked") if e["new"].get("revoke_reason")]
    assert (revoked["learner"], revoked["assessment"], revoked["old"]["code"]) == ("top", "exam", top_code)
    [back] = await _audit(tenant, "certificate.reinstated")
    assert (back["learner"], back["old"]["revoke_reason"], back["new"]["revoked_at"]) == (
        "top",
        "Impersonation at the exam",
        None,
    )
    generated = await _audit(tenant, "certificates.generated")
    assert [e["assessment"] for e in generated] == ["exam"] * 3
    generations = (await tenant.get(f"{BASE}/generations")).json()["items"]
    assert [(g["id"], g["assessment"]) for g in generations] == [
        (g3["id"], "exam"),
        (g2["id"], "exam"),
        (g1["id"], "exam"),
    ]

    await run_worker(settings)
    events = [orjson.loads(r["body"]) for r in receiver.to("/c")]
    assert sorted(e["type"] for e in events) == ["certificate.reinstated", "certificate.revoked"]
    by_type = {e["type"]: e["data"] for e in events}
    assert by_type["certificate.revoked"] == {
        "course": "c1",
        "learner": "top",
        "assessment": "exam",
        "code": top_code,
        "reason": "Impersonation at the exam",
        "actor": revoked["actor"],
    }
    assert (by_type["certificate.reinstated"]["learner"], by_type["certificate.reinstated"]["reason"]) == ("top", None)


async def test_course_percent_rule_uses_the_course_grade_threshold(tenant: Tenant, settings: Settings) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "hw", points_possible=10)
    policy = {"categories": [{"name": "Homework", "weight": 1}], "cutoffs": [{"grade": "P", "min": 0.5}]}
    rows = [{"external_id": x, "track": "verified"} for x in ("ann", "bob", "cid")]
    assert (await tenant.post(f"{C}/enrollments:batch", json={"enrollments": rows})).status_code == 200
    assert (await tenant.put(f"{C}/policy", json=policy)).status_code == 200
    await run_worker(settings)
    batch = [{"assessment": "hw", "learner": x, "earned": p} for x, p in (("ann", 8), ("bob", 6), ("cid", 4))]
    assert (await tenant.post(f"{C}/scores:batch", json={"scores": batch})).status_code == 200

    assert (await tenant.post(f"{BASE}:generate")).json()["eligible"] == 2  # passing: 50 % and up
    assert (await tenant.put(CERT, json={**DIPLOMA, "threshold": 80})).status_code == 200
    r = await tenant.post(f"{BASE}:generate", json={})
    assert (r.json()["eligible"], r.json()["removed"]) == (1, 1)
    assert await _held(tenant) == ["ann"]


# --- the list -------------------------------------------------------------------------------------


async def test_the_list_filters_like_the_results_table(tenant: Tenant) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "quiz")
    rows = [
        {"external_id": "ann", "full_name": "Ann Ünal", "groups": ["old"], "email": "ann@example.org"},
        {"external_id": "bob", "full_name": "Bob Stone", "groups": ["old", "new"], "cohort": "K1"},
        {"external_id": "cid", "full_name": "Cid Ødegård", "cohort": "K1"},
        {"external_id": "dan", "username": "dbe", "groups": ["new"]},
    ]
    assert (await tenant.post(f"{C}/enrollments:batch", json={"enrollments": rows})).status_code == 200
    for learner in ("ann", "bob", "cid", "dan"):
        assert (await tenant.put(f"{BASE}/allowlist/{learner}", json={})).status_code == 200
        assert (await tenant.put(f"{C}/assessments/quiz/scores/{learner}", json={"earned": 5})).status_code == 200
    assert (await tenant.post(f"{C}/sessions", json={"external_id": "morning"})).status_code == 201
    pairs = {"attempts": [{"assessment": "quiz", "learner": x} for x in ("ann", "cid")]}
    assert (await tenant.put(f"{C}/sessions/morning/attempts", json=pairs)).status_code == 200
    generated = await tenant.post(f"{BASE}:generate")
    assert generated.status_code == 201, generated.text

    assert await _held(tenant) == ["ann", "bob", "cid", "dan"]
    assert await _held(tenant, group="new") == ["bob", "dan"]
    assert await _held(tenant, cohort="K1") == ["bob", "cid"]
    assert await _held(tenant, session="morning") == ["ann", "cid"]
    assert await _held(tenant, search="ØDEG") == ["cid"]
    assert await _held(tenant, search="example.org") == ["ann"]
    assert await _held(tenant, search="dbe") == ["dan"]
    issued_at = generated.json()["created_at"]
    assert await _held(tenant, since=issued_at) == ["ann", "bob", "cid", "dan"]
    assert await _held(tenant, until=issued_at) == []
    assert await _held(tenant, since="2000-01-01T00:00:00Z", until="2001-01-01T00:00:00Z") == []

    # An archived group's learners are hidden unless asked for (bob is also in "new").
    assert (await tenant.put(f"{C}/groups/old", json={"archived": True})).status_code == 200
    assert await _held(tenant) == ["bob", "cid", "dan"]
    assert await _held(tenant, include_archived="true") == ["ann", "bob", "cid", "dan"]

    assert (await tenant.post(f"{BASE}/cid:revoke", json={"reason": "Duplicate account"})).status_code == 200
    assert await _held(tenant) == ["bob", "dan"]
    revoked = (await tenant.get(BASE, params={"revoked": "true"})).json()["items"]
    assert [(c["learner"], c["revoke_reason"]) for c in revoked] == [("cid", "Duplicate account")]

    page = (await tenant.get(BASE, params={"limit": 1, "include_archived": "true"})).json()
    assert [c["learner"] for c in page["items"]] == ["ann"]
    rest = (await tenant.get(BASE, params={"cursor": page["next_cursor"], "include_archived": "true"})).json()
    assert [c["learner"] for c in rest["items"]] == ["bob", "dan"]

    assert_problem(await tenant.get(BASE, params={"session": "nope"}), 404)
    assert_problem(await tenant.get(BASE, params={"assessment": "nope"}), 404)
    assert_problem(await tenant.get(BASE, params={"since": "yesterday"}), 422, "since")
    assert_problem(await tenant.get(BASE, params={"revoked": "maybe"}), 422, "revoked")
    assert_problem(await tenant.get(BASE, params={"search": ""}), 422, "search")


# --- the Open edX grade report's certificate columns ----------------------------------------------


async def _grade_report(t: Tenant, settings: Settings) -> dict[str, dict[str, str]]:
    r = await t.post(f"{C}/reports", json={"kind": "grade_report"})
    assert r.status_code == 202, r.text
    await run_worker(settings)
    done = (await t.get(r.headers["location"])).json()
    assert done["status"] == "succeeded", done
    async with httpx.AsyncClient() as http:
        file = await http.get(done["download_url"])
    rows = list(csv.DictReader(io.StringIO(file.content.decode("utf-8"), newline="")))
    return {row["Student ID"]: row for row in rows}


async def test_the_grade_report_delivers_only_a_valid_course_certificate(tenant: Tenant, settings: Settings) -> None:
    await _exam_course(tenant)
    for learner in ("edge", "top"):
        assert (await tenant.put(f"{BASE}/allowlist/{learner}", json={})).status_code == 200
    assert (await tenant.post(f"{BASE}:generate")).status_code == 201
    assert (await tenant.put(EXAM_CERT, json={**DIPLOMA, "threshold": 70})).status_code == 200
    assert (await tenant.post(f"{BASE}:generate", json={"assessment": "exam"})).status_code == 201
    # below holds no course certificate; its exam certificate (none here) would not count either.
    r = await tenant.post(f"{BASE}/top:revoke", json={"reason": "Withdrawn by the board"})
    assert r.status_code == 200, r.text

    report = await _grade_report(tenant, settings)
    columns = ("Certificate Eligible", "Certificate Delivered", "Certificate Type")
    assert {x: tuple(report[x][c] for c in columns) for x in ("edge", "top", "below")} == {
        "edge": ("Y", "Y", "audit"),
        "top": ("Y", "N", "N/A"),  # revoked: not delivered, though both hold an exam certificate
        "below": ("N", "N", "N/A"),
    }


# --- review round fixes ---------------------------------------------------------------------------


async def _exam_passed_by(t: Tenant, *learners: str) -> None:
    """exam (10 points) certified at 50 %, passed (8 of 10) by `learners`, certificates generated."""
    await course(t)
    await assessment(t, "c1", "exam", points_possible=10)
    rows = [{"external_id": x, "full_name": x.title()} for x in learners]
    assert (await t.post(f"{C}/enrollments:batch", json={"enrollments": rows})).status_code == 200
    scores = [{"assessment": "exam", "learner": x, "earned": "8"} for x in learners]
    assert (await t.post(f"{C}/scores:batch", json={"scores": scores})).status_code == 200
    assert (await t.put(EXAM_CERT, json={**DIPLOMA, "threshold": 50})).status_code == 200
    assert (await t.post(f"{BASE}:generate", json={"assessment": "exam"})).status_code == 201


async def test_an_assessment_certification_whose_certificates_are_all_revoked_can_be_removed(tenant: Tenant) -> None:
    """409 only while valid certificates of it exist; the revoked ones go with it, each on the record."""
    await _exam_passed_by(tenant, "ann", "bob")
    assert (await tenant.post(f"{BASE}/ann:revoke", json={"assessment": "exam", "reason": "Copied"})).status_code == 200
    conflict = assert_problem(await tenant.delete(EXAM_CERT), 409)
    assert "1 valid certificate " in conflict["detail"] and conflict["certificates"] == 1
    assert (await tenant.post(f"{BASE}/bob:revoke", json={"assessment": "exam", "reason": "Absent"})).status_code == 200

    assert (await tenant.delete(EXAM_CERT)).status_code == 204
    assert_problem(await tenant.get(EXAM_CERT), 404)
    removed = await _audit(tenant, "certificate.removed")
    assert sorted((e["learner"], e["assessment"], e["old"]["revoke_reason"]) for e in removed) == [
        ("ann", "exam", "Copied"),
        ("bob", "exam", "Absent"),
    ]
    assert [e["assessment"] for e in await _audit(tenant, "certification.deleted")] == ["exam"]
    # Nothing of it is left: it can be certified afresh.
    assert (await tenant.put(EXAM_CERT, json={**DIPLOMA, "threshold": 50})).status_code == 200
    assert await _held(tenant, assessment="exam", revoked="true") == []


async def test_a_generation_decides_under_the_rule_committed_before_it(tenant: Tenant, sessionmaker: Any) -> None:
    """A generation that waits for a change of the certification (the course lock) applies the changed
    threshold, not the one it would have read before waiting."""
    import asyncio

    from sqlalchemy import text

    await _exam_passed_by(tenant, "ann")
    async with sessionmaker() as session:
        course_id = await session.scalar(
            text("SELECT id FROM courses WHERE organization_id = :o AND external_id = 'c1'"), {"o": tenant.id}
        )
        await session.execute(text("SELECT 1 FROM courses WHERE id = :c FOR NO KEY UPDATE"), {"c": course_id})
        await session.execute(
            text("UPDATE certifications SET threshold = 90 WHERE course_id = :c AND assessment_id IS NOT NULL"),
            {"c": course_id},
        )
        generation = asyncio.create_task(tenant.post(f"{BASE}:generate", json={"assessment": "exam"}))
        await asyncio.sleep(0.5)  # the generation is waiting for the lock
        assert not generation.done()
        await session.commit()
    r = await generation
    assert r.status_code == 201, r.text
    assert (r.json()["eligible"], r.json()["removed"]) == (0, 1)  # 8 of 10 is below 90 %


async def test_the_certificates_period_ends_after_it_starts(tenant: Tenant) -> None:
    await course(tenant)
    period = {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    assert_problem(await tenant.get(BASE, params=period), 422, "until")
    assert_problem(await tenant.get(BASE, params={**period, "until": period["since"]}), 422, "until")


async def test_a_diploma_line_of_spaces_is_refused(tenant: Tenant) -> None:
    await course(tenant)
    assert_problem(await tenant.put(CERT, json={"title": "   "}), 422, "/title")
    assert_problem(await tenant.put(CERT, json={**DIPLOMA, "signatory_name": " \t"}), 422, "/signatory_name")
    assert_problem(await tenant.put(CERT, json={**DIPLOMA, "body": "  "}), 422, "/body")
    r = await tenant.put(CERT, json={"title": "  Certificate of merit "})
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Certificate of merit"


async def test_an_image_of_too_many_pixels_is_refused_from_its_header(tenant: Tenant) -> None:
    """4096 x 4000 is within the side limit but over the pixel budget (16 M): refused before decoding."""
    big = io.BytesIO()
    Image.new("1", (4096, 4000), 1).save(big, format="PNG")
    r = await _put_image(tenant, "huge", big.getvalue(), "image/png")
    body = assert_problem(r, 422)
    assert "pixels in all" in body["detail"] or any("pixels in all" in e["detail"] for e in body.get("errors", []))
    assert (await _put_image(tenant, "fine", _png((4000, 4000)), "image/png")).status_code == 200


async def test_a_publisher_limited_to_an_assessment_reads_only_its_certificates(tenant: Tenant) -> None:
    """As they may send only those: their assessments' certificates and diplomas, never the course's or
    another assessment's (403); a full publisher, a viewer and a planner read all."""
    await _exam_passed_by(tenant, "ann")
    await assessment(tenant, "c1", "quiz", points_possible=10)
    assert (await tenant.put(f"{C}/assessments/quiz/certification", json={"threshold": 50, **DIPLOMA})).status_code
    assert (await tenant.put(f"{BASE}/allowlist/ann", json={})).status_code == 200
    assert (await tenant.post(f"{BASE}:generate")).status_code == 201
    r = await tenant.put(f"{C}/members/pub1", json={"roles": ["publisher"], "publish_assessments": ["exam"]})
    assert r.status_code == 200, r.text
    await grant(tenant, "c1", "pub2", "publisher")
    limited, full = await user_token(tenant, "pub1"), await user_token(tenant, "pub2")

    assert [
        c["learner"] for c in (await tenant.get(BASE, params={"assessment": "exam"}, as_=limited)).json()["items"]
    ] == ["ann"]
    assert (await tenant.get(f"{BASE}/ann/diploma", params={"assessment": "exam"}, as_=limited)).status_code == 202
    assert_problem(await tenant.get(BASE, as_=limited), 403)
    assert_problem(await tenant.get(BASE, params={"assessment": "quiz"}, as_=limited), 403)
    assert_problem(await tenant.get(f"{BASE}/ann/diploma", as_=limited), 403)
    assert await _held(tenant) == ["ann"]
    assert (await tenant.get(BASE, as_=full)).status_code == 200
    assert (await tenant.get(f"{BASE}/ann/diploma", as_=full)).status_code == 202


async def test_one_name_rule_in_sql_and_in_python(tenant: Tenant, sessionmaker: Any) -> None:
    """Full name, else given and family names, else username, else the id; blank counts as none."""
    from sqlalchemy import text

    from gradeflow.core import names

    cases = [
        {"external_id": "u1", "full_name": "Marie Curie", "given_name": "M", "family_name": "C", "username": "mc"},
        {"external_id": "u2", "full_name": " ", "given_name": "Marie", "family_name": "Curie", "username": "mc"},
        {"external_id": "u3", "full_name": None, "given_name": None, "family_name": "Curie", "username": "mc"},
        {"external_id": "u4", "full_name": None, "given_name": "", "family_name": " ", "username": "mc"},
        {"external_id": "u5", "full_name": None, "given_name": None, "family_name": None, "username": ""},
    ]
    async with sessionmaker() as session:
        for case in cases:
            row = (
                "SELECT CAST(:external_id AS text) AS external_id, CAST(:full_name AS text) AS full_name,"
                " CAST(:given_name AS text) AS given_name, CAST(:family_name AS text) AS family_name,"
                " CAST(:username AS text) AS username"
            )
            sql = f"SELECT {names.learner_name_sql('e')} FROM ({row}) e"  # noqa: S608  (constant SQL)
            assert await session.scalar(text(sql), case) == names.learner_name(case)
    assert [names.learner_name(c) for c in cases] == ["Marie Curie", "Marie Curie", "Curie", "mc", "u5"]
