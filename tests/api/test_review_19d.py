"""Review R2 of #19 (certifications, diplomas, certificates_zip, candidate mailings): defects proven
against the issue, the product document and the API contract. Each test says what a user sees and what
should happen."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import pypdf

from gradeflow.core.settings import Settings
from gradeflow.devstack.mailsink import Memory
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, email, user_token

C = "/v1/courses/c1"
BASE = f"{C}/certificates"
MAILINGS = f"{C}/mailings"


async def _enroll(t: Tenant, *rows: dict[str, Any]) -> None:
    r = await t.post(f"{C}/enrollments:batch", json={"enrollments": list(rows)})
    assert r.status_code == 200, r.text


async def _held(t: Tenant, **params: Any) -> list[str]:
    r = await t.get(BASE, params=params)
    assert r.status_code == 200, r.text
    return [c["learner"] for c in r.json()["items"]]


async def _results(t: Tenant, **params: Any) -> list[str]:
    r = await t.get(f"{C}/results", params=params)
    assert r.status_code == 200, r.text
    return [row["learner"] for row in r.json()["items"]]


def _pdf_words(content: bytes) -> str:
    return " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(content)).pages).split())


# --- the certificates list -------------------------------------------------------------------------


async def test_revoking_the_certificate_of_a_learner_in_an_archived_group_answers_it(tenant: Tenant) -> None:
    """A planner revokes the certificate of a learner whose only group has been archived since: the
    revocation is committed but the answer is a 500 (the service re-reads the certificate through the
    list, whose default hides archived groups' learners, and takes items[0] of an empty page). It should
    answer 200 with the revoked certificate, and reinstating it likewise."""
    await course(tenant)
    await _enroll(tenant, {"external_id": "ann", "full_name": "Ann Archer", "groups": ["spring"]})
    assert (await tenant.put(f"{BASE}/allowlist/ann", json={})).status_code == 200
    assert (await tenant.post(f"{BASE}:generate")).status_code == 201
    assert (await tenant.put(f"{C}/groups/spring", json={"archived": True})).status_code == 200

    r = await tenant.post(f"{BASE}/ann:revoke", json={"reason": "Duplicate account"})
    assert r.status_code == 200, r.text
    assert (r.json()["learner"], r.json()["revoke_reason"]) == ("ann", "Duplicate account")
    r = await tenant.post(f"{BASE}/ann:reinstate", json={})
    assert r.status_code == 200, r.text
    assert r.json()["revoked_at"] is None


async def _exam_in_two_sittings(t: Tenant) -> None:
    """exam (10 points) certified at 50 %: ann sat it in the morning session, bob in the afternoon one
    but sat the quiz in the morning; both passed the exam."""
    await course(t)
    await assessment(t, "c1", "exam", points_possible=10)
    await assessment(t, "c1", "quiz", points_possible=10)
    await _enroll(
        t, {"external_id": "ann", "full_name": "Ann Archer"}, {"external_id": "bob", "full_name": "Bob Brown"}
    )
    scores = [{"assessment": a, "learner": x, "earned": "8"} for a in ("exam", "quiz") for x in ("ann", "bob")]
    assert (await t.post(f"{C}/scores:batch", json={"scores": scores})).status_code == 200
    for name, pairs in (("morning", [("exam", "ann"), ("quiz", "bob")]), ("afternoon", [("exam", "bob")])):
        assert (await t.post(f"{C}/sessions", json={"external_id": name})).status_code == 201
        body = {"attempts": [{"assessment": a, "learner": x} for a, x in pairs]}
        assert (await t.put(f"{C}/sessions/{name}/attempts", json=body)).status_code == 200
    r = await t.put(f"{C}/assessments/exam/certification", json={"title": "Exam passed", "threshold": 50})
    assert r.status_code == 200, r.text
    r = await t.post(f"{BASE}:generate", json={"assessment": "exam"})
    assert r.status_code == 201, r.text


async def test_an_assessments_certificates_by_session_are_those_who_sat_it_in_the_session(tenant: Tenant) -> None:
    """The Certificates view filtered on the exam's certificates and the morning session lists bob, who
    sat the exam in the afternoon (he only sat the quiz in the morning). The results table filtered on
    the exam and the morning session shows ann alone; the certificates list should too (an assessment's
    certificate comes from its attempt, so the session is that attempt's, as every per-assessment view
    reads it)."""
    await _exam_in_two_sittings(tenant)
    assert await _results(tenant, assessment="exam", session="morning") == ["ann"]
    assert await _held(tenant, assessment="exam") == ["ann", "bob"]
    assert await _held(tenant, assessment="exam", session="morning") == ["ann"]
    assert await _held(tenant, assessment="exam", session="afternoon") == ["bob"]


async def test_download_all_certificates_of_an_assessment_by_session(tenant: Tenant, settings: Settings) -> None:
    """ "Download all certificates" of the exam for the morning session zips bob's diploma too, though he
    sat the exam in the afternoon; it should hold the diplomas of those who sat the exam in the morning
    (ann), as the results table of that session shows."""
    await _exam_in_two_sittings(tenant)
    r = await tenant.post(
        f"{C}/reports", json={"kind": "certificates_zip", "params": {"assessment": "exam", "session": "morning"}}
    )
    assert r.status_code == 202, r.text
    await run_worker(settings, crons=False)
    report = (await tenant.get(r.headers["location"])).json()
    assert report["status"] == "succeeded", report
    async with httpx.AsyncClient() as http:
        content = (await http.get(report["download_url"])).content
    names = zipfile.ZipFile(io.BytesIO(content)).namelist()
    assert [n.split("_")[0] for n in names] == ["Ann"], names


# --- candidate mailings ----------------------------------------------------------------------------


async def test_sending_certificates_of_an_assessment_without_certification_is_refused(tenant: Tenant) -> None:
    """ "Send each candidate their certificate" for an assessment that has no certification is accepted
    (202, a mailing of 0 letters, 'done'), while "download all certificates" for the same assessment is
    422 naming /params/assessment. The same mistake should be told the same way: 422 naming /assessment."""
    await course(tenant)
    await assessment(tenant, "c1", "quiz", points_possible=10)
    zipped = await tenant.post(f"{C}/reports", json={"kind": "certificates_zip", "params": {"assessment": "quiz"}})
    assert_problem(zipped, 422, "/params/assessment")
    assert_problem(await tenant.post(MAILINGS, json={"kind": "certificates", "assessment": "quiz"}), 422, "/assessment")


async def test_certificate_e_mail_names_the_certificate_as_its_diploma_does(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    """A course without a certification of its own issues the default diploma, titled "Certificate of
    Achievement" (the learner's certificates list says so too). "Send each candidate their certificate"
    e-mails "Your certificate: Physics 101" (the course title): the candidate is told of a certificate
    whose name appears nowhere on it. The e-mail should name it by the title its diploma prints."""
    await course(tenant)
    await _enroll(tenant, {"external_id": "ann", "full_name": "Ann Archer", "email": email(tenant, "ann")})
    assert (await tenant.put(f"{BASE}/allowlist/ann", json={})).status_code == 200
    assert (await tenant.post(f"{BASE}:generate")).status_code == 201
    ann = await user_token(tenant, "ann")
    [mine] = (await tenant.get("/v1/me/courses/c1/certificates", as_=ann)).json()["certificates"]
    assert mine["title"] == "Certificate of Achievement"

    r = await tenant.post(MAILINGS, json={"kind": "certificates"})
    assert r.status_code == 202, r.text
    await run_worker(settings, crons=False)
    [message] = mailbox.to(email(tenant, "ann"))
    assert f"Your certificate: {mine['title']}" in message.get_body(("plain",)).get_content()


# --- the OpenAPI document --------------------------------------------------------------------------


async def test_the_openapi_document_lists_the_409s_the_new_routes_answer(tenant: Tenant) -> None:
    """An LMS integrator generating a client from /openapi.json finds no 409 on revoke (already
    revoked), reinstate (not revoked), deleting an assessment's certification (certificates of it exist)
    or deleting a certificate image (a certification prints it), though each route answers 409 and its
    own description says so. Each should document its 409 problem response, as the mailing's cancel does."""
    spec = (await tenant.client.get("/openapi.json")).json()["paths"]
    operations = {
        ("/v1/courses/{course}/certificates/{learner}:revoke", "post"),
        ("/v1/courses/{course}/certificates/{learner}:reinstate", "post"),
        ("/v1/courses/{course}/assessments/{assessment}/certification", "delete"),
        ("/v1/certificate-images/{name}", "delete"),
        ("/v1/courses/{course}/mailings/{mailing_id}:cancel", "post"),
    }
    undocumented = sorted((p, m) for p, m in operations if "409" not in spec[p][m]["responses"])
    assert undocumented == []


# --- diploma contents ------------------------------------------------------------------------------


async def test_a_diploma_names_a_learner_known_by_first_and_last_name(tenant: Tenant, settings: Settings) -> None:
    """An LMS that sends a learner's first and last name (the results table's "First name" / "Last name"
    columns) but no full name gets diplomas "awarded to u1042" - the learner's LMS id - and the ZIP
    entry is named after the id. A diploma is an official document: it should print "Marie Curie"."""
    await course(tenant)
    await _enroll(tenant, {"external_id": "u1042", "given_name": "Marie", "family_name": "Curie"})
    assert (await tenant.put(f"{BASE}/allowlist/u1042", json={})).status_code == 200
    assert (await tenant.post(f"{BASE}:generate")).status_code == 201
    [row] = (await tenant.get(BASE)).json()["items"]
    assert row["learner"] == "u1042"

    await run_worker(settings, crons=False)
    r = await tenant.get(f"{BASE}/u1042/diploma")
    if r.status_code == 202:
        await run_worker(settings, crons=False)
        r = await tenant.get(f"{BASE}/u1042/diploma")
    assert r.status_code == 200, r.text
    async with httpx.AsyncClient() as http:
        content = (await http.get(r.json()["download_url"])).content
    words = _pdf_words(content)
    assert "Marie Curie" in words, words
    assert row["name"] == "Marie Curie"


# --- candidate mailings: counts --------------------------------------------------------------------


async def test_certificate_mailing_counts_every_candidate_it_was_asked_for(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    """A publisher asks to send their certificate to ann, bob and cid (by name): ann holds one, bob holds
    none, cid's was revoked. The mailing answers total 1, queued 1: bob and cid are not in the counts at
    all, so the publisher cannot tell they were left out, or why. As the reports kind does (and as the
    module says: one letter per candidate, "a candidate with nothing to send gets a `skipped` letter
    saying why, so the counts add up"), it should count 3 letters, 2 of them skipped."""
    await course(tenant)
    await _enroll(
        tenant, *({"external_id": x, "full_name": x.title(), "email": email(tenant, x)} for x in ("ann", "bob", "cid"))
    )
    for x in ("ann", "cid"):
        assert (await tenant.put(f"{BASE}/allowlist/{x}", json={})).status_code == 200
    assert (await tenant.post(f"{BASE}:generate")).status_code == 201
    assert (await tenant.post(f"{BASE}/cid:revoke", json={"reason": "Duplicate"})).status_code == 200

    r = await tenant.post(MAILINGS, json={"kind": "certificates", "learners": ["ann", "bob", "cid"]})
    assert r.status_code == 202, r.text
    counts = r.json()["counts"]
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    assert (counts["total"], counts["queued"], counts["skipped"]) == (3, 1, 2)
