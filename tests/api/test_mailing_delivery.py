"""Candidate letters at the edges: internationalised addresses (sent with SMTPUTF8, or failed saying
why), unenrolled learners (skipped, at the request and at the claim), one sending loop for results
e-mails and letters (a bad URL template blamed on the template), a preparing worker that stays alive
is not replaced, and the download name of a learner's document under the one Content-Disposition rule."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import text

from gradeflow import jobs
from gradeflow.core import clock
from gradeflow.core.settings import Settings, SmtpSettings
from gradeflow.devstack.infra import free_port
from gradeflow.devstack.mailsink import Memory
from gradeflow.mailings import service as mailings
from gradeflow.storage.s3 import attachment
from gradeflow.system import tasks as system_tasks
from tests.api.letters import letter_states
from tests.conftest import Tenant, run_worker
from tests.helpers import course, email, user_token

C = "/v1/courses/c1"


async def _course(t: Tenant, *learners: tuple[str, str | None]) -> None:
    """Course c1, Homework 1 (10 points), each learner (id, e-mail) scored 8, the results published."""
    await course(t)
    rows = [{"external_id": x, "full_name": f"{x.title()} Lee", "email": mail} for x, mail in learners]
    assert (await t.post(f"{C}/enrollments:batch", json={"enrollments": rows})).status_code == 200
    body = {"external_id": "hw1", "title": "Homework 1", "category": "Homework", "points_possible": 10}
    assert (await t.post(f"{C}/assessments", json=body)).status_code == 201
    for x, _ in learners:
        assert (await t.put(f"{C}/assessments/hw1/scores/{x}", json={"earned": 8})).status_code == 200
    r = await t.post(f"{C}/publications", json={"assessments": ["hw1"], "audience": {"all": True}})
    assert r.status_code == 201, r.text


async def _request(t: Tenant, **body: Any) -> dict[str, Any]:
    r = await t.post(f"{C}/mailings", json=body)
    assert r.status_code == 202, r.text
    return dict(r.json())


@contextmanager
def _ascii_only_server(handler: Memory) -> Iterator[int]:
    """An SMTP server that does not offer SMTPUTF8 (aiosmtpd's Controller offers it unless told not to)."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


async def test_an_internationalised_address_goes_with_smtputf8_or_fails_saying_so(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    jurgen = f"jürgen@{tenant.slug}.example.org"
    await _course(tenant, ("jurgen", jurgen), ("ann", email(tenant, "ann")))

    # A server without SMTPUTF8: failed for good at the first try (no retries), saying why; others go.
    handler = Memory()
    with _ascii_only_server(handler) as port:
        ascii_only = settings.model_copy(update={"smtp": SmtpSettings(host="127.0.0.1", port=port, timeout_seconds=5)})
        m = await _request(tenant, kind="reports", assessment="hw1")
        await run_worker(ascii_only)
    letters = await letter_states(sessionmaker, m["id"])
    status, error = letters["jurgen"]
    assert status == "failed" and "SMTPUTF8" in (error or ""), error
    assert letters["ann"] == ("sent", None) and len(handler.to(email(tenant, "ann"))) == 1

    # A server that offers it: the letter goes, to that address, with the name in To.
    again = await _request(tenant, kind="reports", assessment="hw1", learners=["jurgen"])
    await run_worker(settings)
    assert (await letter_states(sessionmaker, again["id"]))["jurgen"] == ("sent", None)
    [message] = mailbox.to(jurgen)
    assert str(message["To"]) == f"Jurgen Lee <{jurgen}>"


async def test_a_bad_documents_url_template_is_blamed_on_the_template(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    await _course(tenant, ("ann", email(tenant, "ann")))
    m = await _request(tenant, kind="reports", assessment="hw1")
    await run_worker(settings.model_copy(update={"documents_url_template": "https://lms/{nope}"}))
    status, error = (await letter_states(sessionmaker, m["id"]))["ann"]
    assert status == "failed" and (error or "").startswith("documents_url_template is invalid: KeyError"), error
    assert mailbox.to(email(tenant, "ann")) == []


async def test_unenrolled_learners_get_no_report_letter(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    await _course(tenant, ("ann", email(tenant, "ann")), ("bob", email(tenant, "bob")), ("cid", email(tenant, "cid")))
    r = await tenant.patch(f"{C}/enrollments/bob", json={"status": "unenrolled"})
    assert r.status_code == 200, r.text
    m = await _request(tenant, kind="reports", assessment="hw1")
    assert m["counts"]["preparing"] == 2 and m["counts"]["skipped"] == 1
    assert (await letter_states(sessionmaker, m["id"]))["bob"] == ("skipped", mailings.UNENROLLED)

    # Unenrolled after the request, before the letter goes: skipped when it is claimed.
    r = await tenant.patch(f"{C}/enrollments/cid", json={"status": "unenrolled"})
    assert r.status_code == 200, r.text
    await run_worker(settings)
    letters = await letter_states(sessionmaker, m["id"])
    assert letters["ann"] == ("sent", None) and letters["cid"] == ("skipped", mailings.UNENROLLED)
    assert mailbox.to(email(tenant, "bob")) == [] and mailbox.to(email(tenant, "cid")) == []


async def test_a_preparing_worker_that_is_alive_keeps_its_job(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    """The sweep hands a preparing mailing to a new job only once no letter was stamped for LOST_AFTER,
    and gives it the same new id on every sweep until it moves (no pile of jobs)."""
    await _course(tenant, ("ann", email(tenant, "ann")))
    m = await _request(tenant, kind="reports", assessment="hw1")
    async with sessionmaker() as session:
        await session.execute(
            text(
                "UPDATE candidate_mailings SET status = 'preparing', created_at = now() - interval '1 hour'"
                " WHERE id = :m"
            ),
            {"m": m["id"]},
        )
        await session.execute(
            text("UPDATE candidate_letters SET claimed_at = now() - interval '30 seconds' WHERE mailing_id = :m"),
            {"m": m["id"]},
        )
        await session.commit()
        assert dict(await mailings.recover(session, timedelta(minutes=10)))[m["id"]] == mailings.job_id(m["id"])
        await session.execute(
            text("UPDATE candidate_letters SET claimed_at = now() - interval '3 minutes' WHERE mailing_id = :m"),
            {"m": m["id"]},
        )
        first = dict(await mailings.recover(session, timedelta(minutes=10)))[m["id"]]
        clock.freeze(clock.now() + timedelta(minutes=1))
        try:
            second = dict(await mailings.recover(session, timedelta(minutes=10)))[m["id"]]
        finally:
            clock.freeze(None)
        await session.rollback()
    assert first != mailings.job_id(m["id"]) and first == second

    # The replacing job prepares and sends it.
    redis = await jobs.connect(settings.redis_url)
    try:
        await system_tasks.sweep_jobs({"sessionmaker": sessionmaker, "settings": settings, "redis": redis})
    finally:
        await redis.aclose()
    await run_worker(settings)
    assert (await letter_states(sessionmaker, m["id"]))["ann"] == ("sent", None)


async def test_a_learners_document_downloads_under_its_name_in_any_script(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    """The one rule for downloads (reports, diplomas, documents): an ASCII `filename`, and the real name
    as RFC 6266 `filename*` when it is not ASCII; the header itself is plain ASCII."""
    await _course(tenant, ("jürgen", email(tenant, "jurgen")))
    await _request(tenant, kind="reports", assessment="hw1")
    await run_worker(settings)
    me = await user_token(tenant, "jürgen")
    [doc] = (await tenant.get("/v1/me/courses/c1/documents", as_=me)).json()["items"]
    assert doc["file_name"] == "c1_hw1_jürgen.pdf"
    link = (await tenant.get(f"/v1/me/courses/c1/documents/{doc['id']}", as_=me)).json()
    async with httpx.AsyncClient() as http:
        response = await http.get(link["download_url"])
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition.isascii()
    assert disposition == attachment("c1_hw1_jürgen.pdf")
    assert 'filename="c1_hw1_jurgen.pdf"' in disposition
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "c1_hw1_jürgen.pdf"
