"""Diplomas: drawn by the worker from what the certificate's certification says, stale when any of it
changes, downloaded through five-minute links by staff and by the learner who holds the certificate,
and zipped ("download all certificates")."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import struct
import zipfile
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pypdf
import pytest
from arq import Retry
from sqlalchemy import text

from gradeflow import jobs
from gradeflow.certificates.service import diplomas
from gradeflow.certificates.tasks import render_diplomas
from gradeflow.core import clock
from gradeflow.core.settings import Settings
from gradeflow.storage.s3 import open_store
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, grant, user_token
from tests.worker.test_pdf_documents import pdftotext

BASE = "/v1/courses/c1/certificates"
ISSUED = datetime(2026, 12, 3, 10, 30, tzinfo=UTC)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


LOGO = png(40, 20, (30, 80, 160))
SIGNATURE = png(60, 16, (10, 10, 10))


async def _course(t: Tenant) -> None:
    await course(t)
    people = [
        {"external_id": "ann", "full_name": "Ann Archer", "groups": ["A"]},
        {"external_id": "bob", "full_name": "Bob Brown", "groups": ["A"]},
        {"external_id": "cy", "username": "cy_user", "groups": ["B"]},
        {"external_id": "dee", "full_name": "Dee Dale", "groups": ["B"]},
    ]
    assert (await t.post("/v1/courses/c1/enrollments:batch", json={"enrollments": people})).status_code == 200
    await assessment(t, "c1", "exam", title="Final exam")


async def _image(sessionmaker: Any, settings: Settings, t: Tenant, name: str, content: bytes) -> None:
    key = f"certificate-images/{t.id}/{name}"
    async with open_store(settings.s3) as store:
        await store.put_bytes(key, content, "image/png")
    async with sessionmaker() as session:
        await session.execute(
            text(
                """
                INSERT INTO certificate_images (organization_id, name, content_type, bytes, width, height, sha256,
                                                object_key, uploaded_by, uploaded_at)
                VALUES (:o, :n, 'image/png', :b, 1, 1, :sha, :key, 'test', now())
                """
            ),
            {"o": t.id, "n": name, "b": len(content), "sha": hashlib.sha256(content).hexdigest(), "key": key},
        )
        await session.commit()


async def _certification(sessionmaker: Any, t: Tenant, assessment_: str | None = None, **fields: Any) -> None:
    """The course's (or an assessment's) certification row, as the certification API writes it."""
    values = {
        "title": "Certificate of Excellence",
        "body": None,
        "language": "en",
        "signatory_name": None,
        "signatory_title": None,
        "logo_image": None,
        "signature_image": None,
        **fields,
    }
    async with sessionmaker() as session:
        await session.execute(
            text(
                """
                INSERT INTO certifications (course_id, assessment_id, rule, threshold, title, body, language,
                  signatory_name, signatory_title, logo_image, signature_image, updated_by, updated_at)
                SELECT c.id, a.id, CASE WHEN a.id IS NULL THEN 'course_passing' ELSE 'assessment_percent' END,
                       CASE WHEN a.id IS NULL THEN NULL ELSE 50 END, :title, :body, :language, :signatory_name,
                       :signatory_title, :logo_image, :signature_image, 'test', now()
                FROM courses c LEFT JOIN assessments a ON a.course_id = c.id AND a.external_id = :a
                WHERE c.organization_id = :o AND c.external_id = 'c1'
                """
            ),
            {"o": t.id, "a": assessment_, **values},
        )
        await session.commit()


async def _certify(
    sessionmaker: Any, t: Tenant, learners: list[str], assessment_: str | None = None, at: datetime = ISSUED
) -> dict[str, str]:
    """Certificates for `learners` (of the course, or of the assessment), as a generation issues them;
    their codes by learner."""
    async with sessionmaker() as session:
        rows = await session.execute(
            text(
                """
                WITH c AS (SELECT id FROM courses WHERE organization_id = :o AND external_id = 'c1'),
                a AS (SELECT a.id FROM assessments a JOIN c ON a.course_id = c.id WHERE a.external_id = :a),
                g AS (
                  INSERT INTO certificate_generations (course_id, assessment_id, eligible, created_by, created_at)
                  SELECT c.id, (SELECT id FROM a), cardinality(CAST(:l AS text[])), 'test', :at FROM c RETURNING id
                )
                INSERT INTO certificates (course_id, enrollment_id, assessment_id, generation_id, type, reason,
                                          created_at)
                SELECT c.id, e.id, (SELECT id FROM a), g.id, 'verified', 'passing', :at
                FROM c JOIN enrollments e ON e.course_id = c.id CROSS JOIN g
                WHERE e.external_id = ANY(CAST(:l AS text[]))
                RETURNING (SELECT external_id FROM enrollments WHERE id = enrollment_id), code
                """
            ),
            {"o": t.id, "a": assessment_, "l": learners, "at": at},
        )
        codes = {learner: code for learner, code in rows}
        await session.commit()
    return codes


async def _revoke(sessionmaker: Any, code: str) -> None:
    async with sessionmaker() as session:
        await session.execute(
            text("UPDATE certificates SET revoked_at = now(), revoked_by = 'test' WHERE code = :c"), {"c": code}
        )
        await session.commit()


async def _ready(t: Tenant, settings: Settings, url: str, **kw: Any) -> dict[str, Any]:
    """Ask for a diploma: 202 while it is drawn (the worker runs), then 200 with a link."""
    first = await t.get(url, **kw)
    if first.status_code == 202:
        body = first.json()
        assert body["status"] == "rendering" and body["download_url"] is None
        assert first.headers["retry-after"] == str(diplomas.RETRY_AFTER)
        assert first.headers["cache-control"] == "no-store"
        await run_worker(settings, crons=False)
        first = await t.get(url, **kw)
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    body: dict[str, Any] = first.json()
    assert body["status"] == "ready"
    return body


async def _download(body: dict[str, Any]) -> bytes:
    async with httpx.AsyncClient() as http:
        r = await http.get(body["download_url"])
    assert r.status_code == 200, r.text
    assert len(r.content) == body["bytes"]
    assert body["file_name"] in r.headers["content-disposition"]
    return r.content


def _words(content: bytes) -> str:
    return " ".join(pdftotext(content).split())


def _images(content: bytes) -> list[tuple[int, int]]:
    page = pypdf.PdfReader(io.BytesIO(content)).pages[0]
    xobjects = page["/Resources"]["/XObject"]
    return sorted((int(x.get_object()["/Width"]), int(x.get_object()["/Height"])) for x in xobjects.values())


async def test_a_diploma_prints_the_certification_and_is_downloaded_through_a_short_link(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _course(tenant)
    await _image(sessionmaker, settings, tenant, "logo", LOGO)
    await _image(sessionmaker, settings, tenant, "dean", SIGNATURE)
    await _certification(
        sessionmaker,
        tenant,
        title="Attestation de réussite",
        body="Avec les félicitations du jury.",
        language="fr",
        signatory_name="Grace Hopper",
        signatory_title="Doyenne",
        logo_image="logo",
        signature_image="dean",
    )
    codes = await _certify(sessionmaker, tenant, ["ann", "cy"])

    body = await _ready(tenant, settings, f"{BASE}/ann/diploma")
    assert body["code"] == codes["ann"] and re.fullmatch(r"[0-9A-F]{16}", body["code"])
    assert "X-Amz-Expires=300&" in body["download_url"] or "X-Amz-Expires=300" in body["download_url"]
    expires = datetime.fromisoformat(body["download_expires_at"])
    assert 295 <= (expires - datetime.now(UTC)).total_seconds() <= 300
    content = await _download(body)
    words = _words(content)
    for printed in (
        "Attestation de réussite",
        "Ce certificat est décerné à",
        "Ann Archer",
        "pour avoir suivi avec succès Physics 101",
        "Avec les félicitations du jury.",
        "Délivré le 3 décembre 2026",
        f"Certificat n° {codes['ann']}",
        "Grace Hopper",
        "Doyenne",
    ):
        assert printed in words, (printed, words)
    assert _images(content) == [(40, 20), (60, 16)]  # the logo and the signature
    reader = pypdf.PdfReader(io.BytesIO(content))
    page = reader.pages[0]
    assert float(page.mediabox.width) > float(page.mediabox.height)  # landscape
    assert reader.metadata is not None and reader.metadata.title == "Attestation de réussite - Ann Archer"
    assert b"pdfuaid" in content  # tagged PDF/UA-1, like the reports

    # cy has no full name: the username, as the reports name learners.
    assert "cy_user" in _words(await _download(await _ready(tenant, settings, f"{BASE}/cy/diploma")))

    # Asking again: the same stored diploma, a new link, each issuance audited.
    again = (await tenant.get(f"{BASE}/ann/diploma")).json()
    assert again["status"] == "ready" and again["bytes"] == body["bytes"]
    audit = (await tenant.get("/v1/courses/c1/audit", params={"action": "diploma.link_issued"})).json()["items"]
    assert sorted(e["learner"] for e in audit) == ["ann", "ann", "cy"]
    assert all(e["new"]["valid_seconds"] == 300 and e["new"]["code"] in codes.values() for e in audit)

    assert_problem(await tenant.get(f"{BASE}/bob/diploma"), 404)  # no certificate
    assert_problem(await tenant.get(f"{BASE}/ghost/diploma"), 404)
    assert_problem(await tenant.get(f"{BASE}/ann/diploma", params={"assessment": "exam"}), 404)
    assert_problem(await tenant.get(f"{BASE}/ann/diploma", params={"assessment": "a/b"}), 422, "assessment")


async def test_a_course_without_a_certification_prints_the_default_diploma(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _course(tenant)
    codes = await _certify(sessionmaker, tenant, ["dee"])
    words = _words(await _download(await _ready(tenant, settings, f"{BASE}/dee/diploma")))
    assert "Certificate of Achievement" in words and "This certificate is awarded to Dee Dale" in words
    assert "for successfully completing Physics 101" in words and "Issued on December 3, 2026" in words
    assert f"Certificate no. {codes['dee']}" in words


async def test_a_stale_diploma_is_drawn_again_and_the_old_file_goes(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _course(tenant)
    await _certification(sessionmaker, tenant, title="Certificate of Excellence")
    await _certify(sessionmaker, tenant, ["ann", "bob"])
    first = await _ready(tenant, settings, f"{BASE}/ann/diploma")
    assert "Ann Archer" in _words(await _download(first))
    bob = await _ready(tenant, settings, f"{BASE}/bob/diploma")  # drawn by the same run: no 202 now

    # The learner's name changes: ann's diploma is stale (202), bob's is not.
    r = await tenant.patch("/v1/courses/c1/enrollments/ann", json={"full_name": "Ann Archer-Smith"})
    assert r.status_code == 200, r.text
    stale = await tenant.get(f"{BASE}/ann/diploma")
    assert stale.status_code == 202 and stale.json()["status"] == "rendering"
    assert (await tenant.get(f"{BASE}/bob/diploma")).status_code == 200
    renamed = await _ready(tenant, settings, f"{BASE}/ann/diploma")
    assert "Ann Archer-Smith" in _words(await _download(renamed))
    async with httpx.AsyncClient() as http:  # the replaced file is deleted: its old link serves nothing
        assert (await http.get(first["download_url"])).status_code == 404

    # The certification changes: every diploma of it is stale, drawn again in one run.
    async with sessionmaker() as session:
        await session.execute(
            text(
                "UPDATE certifications SET title = 'Certificate of Merit', revision = revision + 1"
                " WHERE course_id = (SELECT course_id FROM certificates WHERE code = :c)"
            ),
            {"c": bob["code"]},
        )
        await session.commit()
    assert (await tenant.get(f"{BASE}/ann/diploma")).status_code == 202
    await run_worker(settings, crons=False)
    for learner in ("ann", "bob"):
        r = await tenant.get(f"{BASE}/{learner}/diploma")
        assert r.status_code == 200
        assert "Certificate of Merit" in _words(await _download(r.json()))


async def test_rendering_is_idempotent_and_a_change_made_meanwhile_wins(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _course(tenant)
    await _certify(sessionmaker, tenant, ["ann", "bob", "cy", "dee"])
    async with sessionmaker() as session:
        course_id = await session.scalar(
            text("SELECT id FROM courses WHERE organization_id = :o AND external_id = 'c1'"), {"o": tenant.id}
        )
    redis = await jobs.connect(settings.redis_url)
    async with open_store(settings.s3) as store:
        ctx = {"sessionmaker": sessionmaker, "store": store, "redis": redis}
        assert await render_diplomas(ctx, course_id) == "4 diplomas rendered"
        assert await render_diplomas(ctx, course_id) == "0 diplomas rendered"  # nothing stale: nothing done
        async with sessionmaker() as session:
            rows = await diplomas.stale(session, course_id, 0)
            assert rows == []
            # A diploma drawn from what the certificate said before a change is not recorded.
            kept = (
                await session.execute(
                    text("SELECT id, diploma_key, diploma_digest FROM certificates WHERE course_id = :c ORDER BY id"),
                    {"c": course_id},
                )
            ).all()
            garbage = await diplomas.store_rendered(session, [(kept[0][0], "0" * 32, "diplomas/x/old.pdf", 10)])
            assert garbage == ["diplomas/x/old.pdf"]
            again = (
                await session.execute(
                    text("SELECT id, diploma_key, diploma_digest FROM certificates WHERE course_id = :c ORDER BY id"),
                    {"c": course_id},
                )
            ).all()
            assert again == kept
    await redis.aclose()


async def test_the_learner_sees_only_their_own_valid_certificates(
    tenant: Tenant, other_tenant: Tenant, settings: Settings, sessionmaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _course(tenant)
    await _certification(sessionmaker, tenant, "exam", title="Final exam passed")
    course_codes = await _certify(sessionmaker, tenant, ["ann", "bob"])
    exam_codes = await _certify(sessionmaker, tenant, ["ann"], "exam")
    ann, bob, dee = [await user_token(tenant, x) for x in ("ann", "bob", "dee")]

    # An assessment's certificate shows once the learner's result of it is published to them.
    before = (await tenant.get("/v1/me/courses/c1/certificates", as_=ann)).json()["certificates"]
    assert [c["code"] for c in before] == [course_codes["ann"]]
    early = f"/v1/me/courses/c1/certificates/{exam_codes['ann']}/diploma"
    assert_problem(await tenant.get(early, as_=ann), 404)
    assert (await tenant.put("/v1/courses/c1/assessments/exam/scores/ann", json={"earned": 1})).status_code == 200
    published = {"assessments": ["exam"], "audience": {"learners": ["ann"]}}
    assert (await tenant.post("/v1/courses/c1/publications", json=published)).status_code == 201

    mine = await tenant.get("/v1/me/courses/c1/certificates", as_=ann)
    assert mine.status_code == 200, mine.text
    listed = mine.json()["certificates"]
    assert [(c["code"], c["assessment"], c["title"]) for c in listed] == [
        (course_codes["ann"], None, "Certificate of Achievement"),
        (exam_codes["ann"], "exam", "Final exam passed"),
    ]
    assert all(c["diploma_ready"] is False for c in listed)

    monkeypatch.setattr(settings.reports, "link_seconds", 2)
    url = f"/v1/me/courses/c1/certificates/{exam_codes['ann']}/diploma"
    body = await _ready(tenant, settings, url, headers={"Authorization": f"Bearer {ann}"})
    assert "X-Amz-Expires=2&" in body["download_url"] or body["download_url"].endswith("X-Amz-Expires=2")
    words = _words(await _download(body))
    assert "Final exam passed" in words and "for passing Final exam in Physics 101" in words
    async with httpx.AsyncClient() as http:
        await asyncio.sleep(3)
        assert (await http.get(body["download_url"])).status_code == 403  # the link expired
    audit = (await tenant.get("/v1/courses/c1/audit", params={"action": "diploma.link_issued"})).json()["items"]
    assert [(e["actor"], e["learner"], e["assessment"]) for e in audit] == [("ann", "ann", "exam")]
    # The code is case-insensitive, as people type it.
    lower = await tenant.get(url.lower().replace("/v1/me/courses/c1", "/v1/me/courses/c1"), as_=ann)
    assert lower.status_code == 200

    # Someone else's certificate, an unknown code, a revoked one: not found for the learner.
    assert_problem(await tenant.get(f"/v1/me/courses/c1/certificates/{course_codes['bob']}/diploma", as_=ann), 404)
    assert_problem(await tenant.get("/v1/me/courses/c1/certificates/ABCDEF/diploma", as_=ann), 404)
    assert_problem(await tenant.get("/v1/me/courses/c1/certificates/not-hex/diploma", as_=ann), 422, "code")
    await _revoke(sessionmaker, course_codes["ann"])
    listed = (await tenant.get("/v1/me/courses/c1/certificates", as_=ann)).json()["certificates"]
    assert [c["code"] for c in listed] == [exam_codes["ann"]] and listed[0]["diploma_ready"] is True
    url = f"/v1/me/courses/c1/certificates/{course_codes['ann']}/diploma"
    assert_problem(await tenant.get(url, as_=ann), 404)
    # Staff are told it is revoked.
    body = assert_problem(await tenant.get(f"{BASE}/ann/diploma"), 409)
    assert "revoked" in body["detail"]

    assert (await tenant.get("/v1/me/courses/c1/certificates", as_=dee)).json()["certificates"] == []
    assert_problem(await tenant.get("/v1/me/courses/c1/certificates"), 403)  # an API key is no learner
    assert_problem(await tenant.get("/v1/me/courses/c1/certificates", as_=other_tenant.key), 403)
    assert_problem(await tenant.get("/v1/me/courses/nope/certificates", as_=bob), 404)


async def test_who_may_get_a_learners_diploma(tenant: Tenant, other_tenant: Tenant, sessionmaker: Any) -> None:
    await _course(tenant)
    await _certify(sessionmaker, tenant, ["ann"])
    await grant(tenant, "c1", "p1", "planner")
    await grant(tenant, "c1", "g1", "grader")
    await grant(tenant, "c1", "v1", "viewer")
    planner, viewer, grader, learner = [await user_token(tenant, u) for u in ("p1", "v1", "g1", "ann")]
    assert (await tenant.get(f"{BASE}/ann/diploma", as_=planner)).status_code == 202
    assert (await tenant.get(f"{BASE}/ann/diploma", as_=viewer)).status_code == 202  # who may list certificates
    assert_problem(await tenant.get(f"{BASE}/ann/diploma", as_=grader), 403)
    assert_problem(await tenant.get(f"{BASE}/ann/diploma", as_=learner), 404)
    assert_problem(await tenant.get(f"{BASE}/ann/diploma", as_=other_tenant.key), 404)


async def _zip(t: Tenant, settings: Settings, **params: Any) -> tuple[dict[str, Any], zipfile.ZipFile]:
    r = await t.post("/v1/courses/c1/reports", json={"kind": "certificates_zip", "params": params})
    assert r.status_code == 202, r.text
    await run_worker(settings, crons=False)
    body = (await t.get(r.headers["location"])).json()
    assert body["status"] == "succeeded", body
    async with httpx.AsyncClient() as http:
        content = (await http.get(body["download_url"])).content
    return body, zipfile.ZipFile(io.BytesIO(content))


async def test_download_all_certificates_zips_the_valid_ones_the_filters_select(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _course(tenant)
    await _image(sessionmaker, settings, tenant, "logo", LOGO)
    await _certification(sessionmaker, tenant, logo_image="logo")
    await _certification(sessionmaker, tenant, "exam", title="Exam certificate", language="nb")
    codes = await _certify(sessionmaker, tenant, ["ann", "bob", "cy"])
    codes |= await _certify(sessionmaker, tenant, ["dee"], at=datetime(2027, 1, 10, tzinfo=UTC))
    exam = await _certify(sessionmaker, tenant, ["bob", "dee"], "exam")
    await _revoke(sessionmaker, codes["bob"])

    body, archive = await _zip(tenant, settings)
    assert sorted(archive.namelist()) == sorted(
        [f"Ann_Archer_{codes['ann']}.pdf", f"cy_user_{codes['cy']}.pdf", f"Dee_Dale_{codes['dee']}.pdf"]
    )
    assert body["rows"] == 3 and body["file_name"].startswith("c1_certificates_")
    first = archive.read(f"Ann_Archer_{codes['ann']}.pdf")
    assert "Ann Archer" in _words(first) and codes["ann"] in _words(first) and _images(first) == [(40, 20)]

    _, archive = await _zip(tenant, settings, group="B")
    assert sorted(archive.namelist()) == sorted([f"cy_user_{codes['cy']}.pdf", f"Dee_Dale_{codes['dee']}.pdf"])
    _, archive = await _zip(tenant, settings, since="2027-01-01T00:00:00Z")
    assert archive.namelist() == [f"Dee_Dale_{codes['dee']}.pdf"]
    _, archive = await _zip(tenant, settings, learners=["ann", "bob"])
    assert archive.namelist() == [f"Ann_Archer_{codes['ann']}.pdf"]  # bob's is revoked
    body, archive = await _zip(tenant, settings, assessment="exam")
    assert sorted(archive.namelist()) == sorted([f"Bob_Brown_{exam['bob']}.pdf", f"Dee_Dale_{exam['dee']}.pdf"])
    words = _words(archive.read(f"Bob_Brown_{exam['bob']}.pdf"))
    assert "Exam certificate" in words and "Utstedt 3. desember 2026" in words and "Kursbevis nr." in words
    assert body["file_name"].startswith("c1_certificates_exam_")

    await assessment(tenant, "c1", "quiz")
    url = "/v1/courses/c1/reports"
    for params, pointer in (
        ({"assessment": "quiz"}, "/params/assessment"),
        ({"assessment": "nope"}, "/params/assessment"),
        ({"group": "Z"}, "/params/group"),
        ({"group": "A", "cohort": "x"}, "/params/cohort"),
        ({"since": "2027-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "/params/until"),
        ({"language": "fr"}, "/params/language"),
    ):
        assert_problem(await tenant.post(url, json={"kind": "certificates_zip", "params": params}), 422, pointer)


# --- rendering is asked for one way, ahead of time, and never lost; old files go -------------------


async def _course_id(sessionmaker: Any, t: Tenant) -> int:
    async with sessionmaker() as session:
        found = await session.scalar(
            text("SELECT id FROM courses WHERE organization_id = :o AND external_id = 'c1'"), {"o": t.id}
        )
    return int(found)


async def _render_jobs(settings: Settings, course_id: int) -> int:
    """Render jobs of the course waiting in the queue."""
    redis = await jobs.connect(settings.redis_url)
    try:
        queued = await redis.queued_jobs()
    finally:
        await redis.aclose()
    return sum(1 for j in queued if j.function == jobs.JobName.RENDER_DIPLOMAS and tuple(j.args) == (course_id,))


async def _stored(settings: Settings, course_id: int) -> set[str]:
    async with open_store(settings.s3) as store:
        return {key async for page in store.list_pages(diplomas.prefix(course_id)) for key, _ in page}


async def test_a_generation_and_a_link_share_one_render_job(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _course(tenant)
    course_id = await _course_id(sessionmaker, tenant)
    await _certify(sessionmaker, tenant, ["ann"])
    assert (await tenant.get(f"{BASE}/ann/diploma")).status_code == 202  # asks for a render
    for learner in ("ann", "bob"):
        assert (await tenant.put(f"{BASE}/allowlist/{learner}", json={})).status_code == 200
    assert (await tenant.post(f"{BASE}:generate")).status_code == 201  # asks again: the same job
    assert (await tenant.post(f"{BASE}:generate")).status_code == 201
    assert await _render_jobs(settings, course_id) == 1
    await run_worker(settings, crons=False)
    for learner in ("ann", "bob"):  # drawn ahead of time: no waiting
        assert (await tenant.get(f"{BASE}/{learner}/diploma")).status_code == 200


async def test_a_changed_certification_or_image_is_drawn_again_ahead_of_time(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _course(tenant)
    put = {"content": LOGO, "headers": {"Content-Type": "image/png"}}
    assert (await tenant.put("/v1/certificate-images/logo", **put)).status_code == 200
    cert = {"title": "Certificate of Excellence", "logo_image": "logo"}
    assert (await tenant.put("/v1/courses/c1/certification", json=cert)).status_code == 200
    await _certify(sessionmaker, tenant, ["ann", "bob"])
    await _ready(tenant, settings, f"{BASE}/ann/diploma")

    # The certification changes: its diplomas are drawn again before anybody asks.
    cert["title"] = "Certificate of Merit"
    assert (await tenant.put("/v1/courses/c1/certification", json=cert)).status_code == 200
    await run_worker(settings, crons=False)
    for learner in ("ann", "bob"):
        r = await tenant.get(f"{BASE}/{learner}/diploma")
        assert r.status_code == 200, r.text
        assert "Certificate of Merit" in _words(await _download(r.json()))

    # The logo it prints is replaced: likewise.
    put["content"] = png(50, 25, (200, 0, 0))
    assert (await tenant.put("/v1/certificate-images/logo", **put)).status_code == 200
    await run_worker(settings, crons=False)
    r = await tenant.get(f"{BASE}/bob/diploma")
    assert r.status_code == 200, r.text
    assert _images(await _download(r.json())) == [(50, 25)]

    # Back to the default certification: likewise.
    assert (await tenant.delete("/v1/courses/c1/certification")).status_code == 204
    await run_worker(settings, crons=False)
    r = await tenant.get(f"{BASE}/ann/diploma")
    assert r.status_code == 200, r.text
    assert "Certificate of Achievement" in _words(await _download(r.json()))


async def test_a_change_asked_for_while_a_render_runs_is_rendered(
    tenant: Tenant, settings: Settings, sessionmaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _course(tenant)
    course_id = await _course_id(sessionmaker, tenant)
    await _certify(sessionmaker, tenant, ["ann", "bob"])
    await _ready(tenant, settings, f"{BASE}/ann/diploma")
    r = await tenant.patch("/v1/courses/c1/enrollments/bob", json={"full_name": "Bob Brown-Jones"})
    assert r.status_code == 200, r.text
    assert (await tenant.get(f"{BASE}/bob/diploma")).status_code == 202

    # While the job renders bob's, ann's name changes and her page asks for her diploma: it asks just
    # after the job's last look for stale diplomas, before the job is over.
    original, asked = diplomas.stale, []

    async def stale_then_change(session: Any, course: int, after: int, limit: int = diplomas.CHUNK) -> list[Any]:
        rows = await original(session, course, after, limit)
        if course == course_id and after == 0 and not rows and not asked:  # a pass that finds nothing: the end
            r = await tenant.patch("/v1/courses/c1/enrollments/ann", json={"full_name": "Ann Archer-Smith"})
            assert r.status_code == 200, r.text
            asked.append((await tenant.get(f"{BASE}/ann/diploma")).status_code)
        return rows

    monkeypatch.setattr(diplomas, "stale", stale_then_change)
    await run_worker(settings, crons=False)
    assert asked == [202]
    assert (await tenant.get(f"{BASE}/bob/diploma")).status_code == 200
    await run_worker(settings, crons=False)  # the request was not lost: it has a job of its own
    r = await tenant.get(f"{BASE}/ann/diploma")
    assert r.status_code == 200, r.text
    assert "Ann Archer-Smith" in _words(await _download(r.json()))


async def test_diploma_files_whose_certificate_is_gone_are_deleted(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _course(tenant)
    course_id = await _course_id(sessionmaker, tenant)
    for learner in ("ann", "bob"):
        assert (await tenant.put(f"{BASE}/allowlist/{learner}", json={})).status_code == 200
    assert (await tenant.post(f"{BASE}:generate")).status_code == 201
    await run_worker(settings, crons=False)
    ann = await _ready(tenant, settings, f"{BASE}/ann/diploma")
    await _ready(tenant, settings, f"{BASE}/bob/diploma")
    async with sessionmaker() as session:
        keys = dict(
            (
                await session.execute(
                    text(
                        "SELECT e.external_id, k.diploma_key FROM certificates k"
                        " JOIN enrollments e ON e.id = k.enrollment_id WHERE k.course_id = :c"
                    ),
                    {"c": course_id},
                )
            ).all()
        )
        ann_id = await session.scalar(text("SELECT id FROM certificates WHERE diploma_key = :k"), {"k": keys["ann"]})
    assert await _stored(settings, course_id) == {keys["ann"], keys["bob"]}
    # A file a render has just uploaded and not recorded yet (or a replaced one whose deletion failed).
    pending = diplomas.object_key(course_id, ann_id, "f" * 32)
    async with open_store(settings.s3) as store:
        await store.put_bytes(pending, b"%PDF-", "application/pdf")

    # Bob is no longer eligible: the generation takes his certificate away, and his file goes with it.
    assert (await tenant.delete(f"{BASE}/allowlist/bob")).status_code == 204
    assert (await tenant.post(f"{BASE}:generate")).status_code == 201
    await run_worker(settings, crons=False)
    assert await _stored(settings, course_id) == {keys["ann"], pending}  # a render may still record it

    # Once no render can still be running, the unrecorded file goes too; ann's stays and downloads.
    clock.freeze(datetime.now(UTC) + timedelta(seconds=diplomas.RENDER_SECONDS + 60))
    try:
        assert (await tenant.post(f"{BASE}:generate")).status_code == 201
        await run_worker(settings, crons=False)
    finally:
        clock.freeze(None)
    assert await _stored(settings, course_id) == {keys["ann"]}
    assert "Ann Archer" in _words(await _download(ann))


async def test_one_render_of_a_course_at_a_time(tenant: Tenant, settings: Settings, sessionmaker: Any) -> None:
    """A render job that starts while another renders the course waits (deferred) instead of drawing the
    same stale diplomas a second time; requests made meanwhile join the waiting job. (Before: every poll
    of a stale link started one more job, and they all drew the same diplomas at once.)"""
    await _course(tenant)
    await _certify(sessionmaker, tenant, ["ann", "bob"])
    course_id = await _course_id(sessionmaker, tenant)
    redis = await jobs.connect(settings.redis_url)
    async with open_store(settings.s3) as store, diplomas.render_lock(sessionmaker, course_id) as first:
        assert first  # a job renders the course
        ctx = {"sessionmaker": sessionmaker, "store": store, "redis": redis}
        round_before = await redis.get(f"gradeflow:round:{diplomas._job_base(course_id)}")
        with pytest.raises(Retry):
            await render_diplomas(ctx, course_id)
        # It drew nothing and left the round alone: a link asked for now joins the waiting job.
        assert await redis.get(f"gradeflow:round:{diplomas._job_base(course_id)}") == round_before
        async with sessionmaker() as session:
            assert len(await diplomas.stale(session, course_id, 0)) == 2
    await redis.aclose()
