"""Sending candidates their documents: one e-mail per candidate per request (counted per recipient),
the claim/retry rules of results e-mails, revoked certificates and retracted results never sent, the
learner's documents and their links, cancelling."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pypdf
from sqlalchemy import text

from gradeflow.core import clock
from gradeflow.core.settings import Settings, SmtpSettings
from gradeflow.devstack import mailsink
from gradeflow.devstack.mailsink import Memory
from tests.api.letters import interrupt, letter_states
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import course, email, grant, user_token

MAILINGS = "/v1/courses/c1/mailings"


async def _course(t: Tenant, *learners: tuple[str, float | None, bool]) -> None:
    """Course c1 with Homework 1 (10 points); each learner (id, score or None, has an e-mail address)
    scored as given, and every result published."""
    await course(t)
    rows = [
        {"external_id": x, "full_name": x.title() + " Lee", **({"email": email(t, x)} if has_email else {})}
        for x, _, has_email in learners
    ]
    assert (await t.post("/v1/courses/c1/enrollments:batch", json={"enrollments": rows})).status_code == 200
    body = {"external_id": "hw1", "title": "Homework 1", "category": "Homework", "points_possible": 10}
    assert (await t.post("/v1/courses/c1/assessments", json=body)).status_code == 201
    for learner, earned, _ in learners:
        if earned is not None:
            r = await t.put(f"/v1/courses/c1/assessments/hw1/scores/{learner}", json={"earned": earned})
            assert r.status_code == 200, r.text
    r = await t.post("/v1/courses/c1/publications", json={"assessments": ["hw1"], "audience": {"all": True}})
    assert r.status_code == 201, r.text


async def _certify(sessionmaker: Any, t: Tenant, learners: list[str], assessment: str | None) -> None:
    """Valid certificates (of the course, or of `assessment`) for `learners`, as a generation issues them."""
    async with sessionmaker() as session:
        course_id, assessment_id = (
            await session.execute(
                text(
                    "SELECT c.id, a.id FROM courses c LEFT JOIN assessments a ON a.course_id = c.id"
                    " AND a.external_id = :a WHERE c.organization_id = :o AND c.external_id = 'c1'"
                ),
                {"o": t.id, "a": assessment},
            )
        ).one()
        generation = await session.scalar(
            text(
                "INSERT INTO certificate_generations (course_id, assessment_id, eligible, created_by)"
                " VALUES (:c, :a, :n, 'test') RETURNING id"
            ),
            {"c": course_id, "a": assessment_id, "n": len(learners)},
        )
        await session.execute(
            text(
                "INSERT INTO certificates (course_id, enrollment_id, assessment_id, generation_id, type, reason)"
                " SELECT :c, e.id, :a, :g, 'honor', 'passing' FROM enrollments e"
                " WHERE e.course_id = :c AND e.external_id = ANY(:l)"
            ),
            {"c": course_id, "a": assessment_id, "g": generation, "l": learners},
        )
        await session.commit()


async def _revoke(sessionmaker: Any, t: Tenant, learner: str) -> None:
    async with sessionmaker() as session:
        await session.execute(
            text(
                "UPDATE certificates SET revoked_at = now(), revoked_by = 'test', revoke_reason = 'cheating'"
                " FROM enrollments e JOIN courses c ON c.id = e.course_id"
                " WHERE e.id = certificates.enrollment_id AND c.organization_id = :o AND e.external_id = :l"
            ),
            {"o": t.id, "l": learner},
        )
        await session.commit()


async def _request(t: Tenant, **body: Any) -> dict[str, Any]:
    r = await t.post(MAILINGS, json=body)
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"{MAILINGS}/{r.json()['id']}"
    return dict(r.json())


async def _mailing(t: Tenant, mailing_id: int) -> dict[str, Any]:
    r = await t.get(f"{MAILINGS}/{mailing_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _counts(**nonzero: int) -> dict[str, int]:
    base = dict.fromkeys(("preparing", "queued", "sending", "sent", "failed", "skipped"), 0)
    return {"total": sum(nonzero.values()), **base, **nonzero}


def _pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages)


async def test_reports_go_once_to_each_candidate_with_a_published_result(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    await _course(tenant, ("ann", 8, True), ("bob", 6, True), ("cid", None, True), ("dan", 9, False))
    await _certify(sessionmaker, tenant, ["ann"], "hw1")
    # A change after publishing: the report shows what was published (8), never the change.
    assert (await tenant.put("/v1/courses/c1/assessments/hw1/scores/ann", json={"earned": 3})).status_code == 200

    m = await _request(tenant, kind="reports", assessment="hw1")
    assert m["status"] == "queued" and m["params"] == {"assessment": "hw1", "include_archived": False, "language": "en"}
    assert m["counts"] == _counts(preparing=2, skipped=2)
    letters = await letter_states(sessionmaker, m["id"])
    assert letters["cid"] == ("skipped", "no published result of the assessment")
    assert letters["dan"] == ("skipped", "no e-mail address")

    await run_worker(settings)
    await run_worker(settings)  # the job again (and the sweep): nothing more
    assert len(mailbox.to(email(tenant, "ann"))) == 1 and len(mailbox.to(email(tenant, "bob"))) == 1
    assert mailbox.to(email(tenant, "cid")) == []
    m = await _mailing(tenant, m["id"])
    assert m["status"] == "done" and m["done_at"] and m["counts"] == _counts(sent=2, skipped=2)

    [message] = mailbox.to(email(tenant, "ann"))
    assert message["Subject"] == "Your report of Homework 1 - Physics 101"
    assert message["To"] == f"Ann Lee <{email(tenant, 'ann')}>"
    plain = message.get_body(("plain",)).get_content()
    # hw1 has no certification row here: the certificate is named as its diploma names it.
    assert "Your individual report of Homework 1" in plain and "Your certificate: Certificate of Achievement" in plain
    assert "https://lms.invalid/courses/c1/documents" in plain
    assert "X-Amz" not in plain and "signature" not in plain.lower()  # a link to the LMS, never to a file
    html = message.get_body(("html",)).get_content()
    assert 'href="https://lms.invalid/courses/c1/documents"' in html
    bob_plain = mailbox.to(email(tenant, "bob"))[0].get_body(("plain",)).get_content()
    assert "Your individual report of Homework 1" in bob_plain and "certificate" not in bob_plain

    # Ann's page lists her report; its link downloads the PDF of her published result.
    ann = await user_token(tenant, "ann")
    r = await tenant.get("/v1/me/courses/c1/documents", as_=ann)
    assert r.status_code == 200, r.text
    [document] = r.json()["items"]
    assert document["assessment"] == "hw1" and document["file_name"] == "c1_hw1_ann.pdf"
    r = await tenant.get(f"/v1/me/courses/c1/documents/{document['id']}", as_=ann)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store" and r.json()["bytes"] == document["bytes"]
    async with httpx.AsyncClient() as http:
        content = (await http.get(r.json()["download_url"])).content
    pdf = _pdf_text(content)
    assert content.startswith(b"%PDF") and "Ann Lee" in pdf and "Homework 1" in pdf
    assert "Homework 1 8 10 80%" in pdf and "30%" not in pdf  # as published, not the unpublished 3
    audit = (await tenant.get("/v1/courses/c1/audit", params={"action": "document.link_issued"})).json()["items"]
    assert [(a["actor"], a["learner"]) for a in audit] == [("ann", "ann")]

    # Another learner's document does not exist for them; an API key is not a learner.
    bob = await user_token(tenant, "bob")
    assert_problem(await tenant.get(f"/v1/me/courses/c1/documents/{document['id']}", as_=bob), 404)
    assert [d["assessment"] for d in (await tenant.get("/v1/me/courses/c1/documents", as_=bob)).json()["items"]] == [
        "hw1"
    ]
    assert_problem(await tenant.get("/v1/me/courses/c1/documents"), 403)

    # A second request sends again, once per candidate.
    again = await _request(tenant, kind="reports", assessment="hw1", learners=["ann"])
    assert again["counts"] == _counts(preparing=1)
    await run_worker(settings)
    assert len(mailbox.to(email(tenant, "ann"))) == 2 and len(mailbox.to(email(tenant, "bob"))) == 1
    listed = (await tenant.get(MAILINGS)).json()["items"]
    assert [x["id"] for x in listed] == [again["id"], m["id"]]

    # Past its retention, the first report no longer shows; the hourly cron deletes it.
    assert len((await tenant.get("/v1/me/courses/c1/documents", as_=ann)).json()["items"]) == 2
    async with sessionmaker() as session:
        await session.execute(
            text("UPDATE learner_documents SET expires_at = now() - interval '1 day' WHERE id = :d"),
            {"d": document["id"]},
        )
        await session.commit()
    [newer] = (await tenant.get("/v1/me/courses/c1/documents", as_=ann)).json()["items"]
    assert newer["id"] != document["id"]
    assert_problem(await tenant.get(f"/v1/me/courses/c1/documents/{document['id']}", as_=ann), 404)
    await run_worker(settings)
    async with sessionmaker() as session:
        assert (
            await session.scalar(text("SELECT 1 FROM learner_documents WHERE id = :d"), {"d": document["id"]}) is None
        )
    document = newer

    # Retracted: the reports no longer show, nor download.
    retract = {"action": "retract", "assessments": ["hw1"], "audience": {"learners": ["ann"]}}
    assert (await tenant.post("/v1/courses/c1/publications", json=retract)).status_code == 201
    assert (await tenant.get("/v1/me/courses/c1/documents", as_=ann)).json()["items"] == []
    assert_problem(await tenant.get(f"/v1/me/courses/c1/documents/{document['id']}", as_=ann), 404)


class _Refusing(Memory):
    """An SMTP server that refuses some recipients: for a while (4xx) or for good (5xx)."""

    def __init__(self, answers: dict[str, str]) -> None:
        super().__init__()
        self.answers = answers

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for part, answer in self.answers.items():
            if any(part in to for to in envelope.rcpt_tos):
                return answer
        return await super().handle_DATA(server, session, envelope)


async def test_smtp_retries_failures_and_interrupted_letters(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    await _course(tenant, ("ann", 8, True), ("bob", 6, True), ("eve", 7, True))
    m = await _request(tenant, kind="reports", assessment="hw1")
    handler = _Refusing({"ann@": "451 4.3.0 try again later", "bob@": "550 5.1.1 no such mailbox"})
    with mailsink.running(handler) as port:
        refusing = settings.model_copy(update={"smtp": SmtpSettings(host="127.0.0.1", port=port, timeout_seconds=5)})
        # Eve's letter was claimed by a worker that died while sending it.
        await interrupt(sessionmaker, m["id"], "eve")
        await run_worker(refusing)
    letters = await letter_states(sessionmaker, m["id"])
    assert letters["ann"][0] == "queued" and "451" in (letters["ann"][1] or "")
    assert letters["bob"][0] == "failed" and "550" in (letters["bob"][1] or "")
    assert letters["eve"][0] == "failed" and "interrupted" in (letters["eve"][1] or "")
    assert (await _mailing(tenant, m["id"]))["counts"] == _counts(queued=1, failed=2)
    assert handler.messages == []

    # Ann's retry is due later; the sweep picks it up, and only hers goes.
    clock.freeze(datetime.now(UTC) + timedelta(minutes=15))
    try:
        await run_worker(settings)
        await run_worker(settings)
    finally:
        clock.freeze(None)
    assert len(mailbox.to(email(tenant, "ann"))) == 1
    assert mailbox.to(email(tenant, "bob")) == [] and mailbox.to(email(tenant, "eve")) == []
    m = await _mailing(tenant, m["id"])
    assert m["status"] == "done" and m["counts"] == _counts(sent=1, failed=2)


async def test_certificates_go_to_valid_holders_and_never_after_a_revoke(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    await _course(tenant, ("ann", 8, True), ("bob", 6, True), ("cid", 2, True), ("eve", 7, True))
    await _certify(sessionmaker, tenant, ["ann", "bob", "cid", "eve"], None)
    await _revoke(sessionmaker, tenant, "cid")  # revoked before: counted, skipped
    m = await _request(tenant, kind="certificates")
    assert m["counts"] == _counts(queued=3, skipped=1)
    assert (await letter_states(sessionmaker, m["id"]))["cid"] == ("skipped", "certificate revoked")
    await _revoke(sessionmaker, tenant, "bob")  # revoked after the request, before sending
    await run_worker(settings)
    await run_worker(settings)
    assert len(mailbox.to(email(tenant, "ann"))) == 1 and len(mailbox.to(email(tenant, "eve"))) == 1
    assert mailbox.to(email(tenant, "bob")) == [] and mailbox.to(email(tenant, "cid")) == []
    m = await _mailing(tenant, m["id"])
    assert m["status"] == "done" and m["counts"] == _counts(sent=2, skipped=2)
    assert (await letter_states(sessionmaker, m["id"]))["bob"] == ("skipped", "certificate revoked")
    [message] = mailbox.to(email(tenant, "ann"))
    assert message["Subject"] == "Your certificate - Physics 101"
    plain = message.get_body(("plain",)).get_content()
    # Named as its diploma names it (the course has no certification: the default title).
    assert "Your certificate: Certificate of Achievement" in plain and "report" not in plain

    # In French, where the catalogue has it.
    m = await _request(tenant, kind="certificates", learners=["ann"], language="fr")
    await run_worker(settings)
    french = mailbox.to(email(tenant, "ann"))[-1]
    assert french["Subject"] == "Votre certificat - Physics 101"
    # The certificate keeps its diploma's title (in the certification's language, English here).
    assert "Votre certificat : Certificate of Achievement" in french.get_body(("plain",)).get_content()


async def test_request_checks_roles_and_cancel(
    tenant: Tenant, other_tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    await _course(tenant, ("ann", 8, True), ("bob", 6, True))
    assert_problem(await tenant.post(MAILINGS, json={"kind": "reports"}), 422, "/assessment")
    assert_problem(await tenant.post(MAILINGS, json={"kind": "reports", "assessment": "nope"}), 422, "/assessment")
    assert_problem(await tenant.post(MAILINGS, json={"kind": "letters"}), 422, "/kind")
    bad = {"kind": "certificates", "language": "xx", "group": "nobody", "session": "s9"}
    assert_problem(await tenant.post(MAILINGS, json=bad), 422, "/language", "/group", "/session")
    assert_problem(await tenant.post(MAILINGS, json={"kind": "certificates", "learners": ["zed"]}), 422, "/learners/0")
    both = {"kind": "certificates", "group": "g", "cohort": "A"}
    assert_problem(await tenant.post(MAILINGS, json=both), 422, "/cohort")
    period = {"kind": "certificates", "since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    assert_problem(await tenant.post(MAILINGS, json=period), 422, "/until")
    # Publishers send; planners and other organizations do not.
    await grant(tenant, "c1", "pat", "planner")
    await grant(tenant, "c1", "pub", "publisher")
    assert_problem(await tenant.post(MAILINGS, json={"kind": "certificates"}, as_=await user_token(tenant, "pat")), 403)
    assert_problem(await other_tenant.post(MAILINGS, json={"kind": "certificates"}), 404)
    r = await tenant.post(MAILINGS, json={"kind": "reports", "assessment": "hw1"}, as_=await user_token(tenant, "pub"))
    assert r.status_code == 202, r.text
    m = r.json()
    assert m["requested_by"] == "pub" and m["counts"] == _counts(preparing=2)
    assert_problem(await other_tenant.get(f"/v1/courses/c1/mailings/{m['id']}"), 404)

    cancelled = (await tenant.post(f"{MAILINGS}/{m['id']}:cancel")).json()
    assert cancelled["status"] == "cancelled" and cancelled["counts"] == _counts(skipped=2)
    await run_worker(settings)
    assert mailbox.to(tenant.slug) == []
    assert_problem(await tenant.post(f"{MAILINGS}/{m['id']}:cancel"), 409)
    actions = [a["action"] for a in (await tenant.get("/v1/courses/c1/audit")).json()["items"]]
    assert "mailing.requested" in actions and "mailing.cancelled" in actions

    # Nobody holds a certificate: each candidate counted and skipped, done at once.
    empty = await _request(tenant, kind="certificates")
    assert empty["status"] == "done" and empty["counts"] == _counts(skipped=2)


async def test_a_document_shows_once_made_whatever_became_of_its_letter(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    await _course(tenant, ("ann", 8, True), ("eve", 7, True))
    m = await _request(tenant, kind="reports", assessment="hw1")
    handler = _Refusing({"eve@": "451 4.3.0 try again later"})
    with mailsink.running(handler) as port:
        refusing = settings.model_copy(update={"smtp": SmtpSettings(host="127.0.0.1", port=port, timeout_seconds=5)})
        await run_worker(refusing)
    assert (await letter_states(sessionmaker, m["id"]))["eve"][0] == "queued"  # to be tried again

    # Her report is made: her page shows it while its e-mail waits.
    eve = await user_token(tenant, "eve")
    [document] = (await tenant.get("/v1/me/courses/c1/documents", as_=eve)).json()["items"]
    assert document["assessment"] == "hw1" and document["file_name"] == "c1_hw1_eve.pdf"

    # The worker sending it dies mid-send: the letter fails (never sent twice), though the e-mail may
    # have reached her; the report still shows and downloads.
    await interrupt(sessionmaker, m["id"], "eve")
    await run_worker(settings)
    status, error = (await letter_states(sessionmaker, m["id"]))["eve"]
    assert status == "failed" and "interrupted" in (error or "")
    assert mailbox.to(email(tenant, "eve")) == []
    listed = (await tenant.get("/v1/me/courses/c1/documents", as_=eve)).json()["items"]
    assert [d["id"] for d in listed] == [document["id"]]
    r = await tenant.get(f"/v1/me/courses/c1/documents/{document['id']}", as_=eve)
    assert r.status_code == 200, r.text
    async with httpx.AsyncClient() as http:
        assert "Eve Lee" in _pdf_text((await http.get(r.json()["download_url"])).content)

    # Retracted, it no longer shows, whatever its letter.
    retract = {"action": "retract", "assessments": ["hw1"], "audience": {"learners": ["eve"]}}
    assert (await tenant.post("/v1/courses/c1/publications", json=retract)).status_code == 201
    assert (await tenant.get("/v1/me/courses/c1/documents", as_=eve)).json()["items"] == []


def test_reports_documents_and_diplomas_name_files_by_one_rule() -> None:
    from gradeflow.certificates.service import diplomas
    from gradeflow.core.names import safe_name
    from gradeflow.mailings import tasks as mailing_task
    from gradeflow.reports import tasks as report_task

    assert safe_name("Physics 101/é+x") == "Physics_101_é_x" and len(safe_name("x" * 300)) == 100
    assert not hasattr(report_task, "_safe_name") and not hasattr(mailing_task, "_safe_name")
    row = {"course_ref": "Physics 101", "learner": "jürgen/x", "assessment": None, "code": "K7"}
    assert diplomas.file_name(row) == "diploma_Physics_101_jürgen_x_K7.pdf"


async def test_an_assessments_certificate_is_sent_only_once_the_result_is_published_to_the_learner(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    """The certificate of hw2 never tells a learner their result before the result itself does: ann's
    hw2 result is published to her, bob's is not - bob's letter is skipped, his list does not show it."""
    await _course(tenant, ("ann", 8, True), ("bob", 9, True))
    body = {"external_id": "hw2", "title": "Homework 2", "category": "Homework", "points_possible": 10}
    assert (await tenant.post("/v1/courses/c1/assessments", json=body)).status_code == 201
    cert = {"title": "Homework 2 passed", "threshold": 50}
    assert (await tenant.put("/v1/courses/c1/assessments/hw2/certification", json=cert)).status_code == 200
    await _certify(sessionmaker, tenant, ["ann", "bob"], "hw2")
    assert (await tenant.put("/v1/courses/c1/assessments/hw2/scores/ann", json={"earned": 8})).status_code == 200
    published = {"assessments": ["hw2"], "audience": {"learners": ["ann"]}}
    assert (await tenant.post("/v1/courses/c1/publications", json=published)).status_code == 201

    m = await _request(tenant, kind="certificates", assessment="hw2")
    assert m["counts"] == _counts(queued=1, skipped=1)
    assert (await letter_states(sessionmaker, m["id"]))["bob"] == ("skipped", "no published result of the assessment")
    await run_worker(settings)
    [message] = mailbox.to(email(tenant, "ann"))
    assert "Your certificate: Homework 2 passed" in message.get_body(("plain",)).get_content()
    assert mailbox.to(email(tenant, "bob")) == []
    bob = await user_token(tenant, "bob")
    assert (await tenant.get("/v1/me/courses/c1/certificates", as_=bob)).json()["certificates"] == []
