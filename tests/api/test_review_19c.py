"""Review of #19 (second half), R1: trust at the seams - e-mail safety, who may stop what reaches
learners, what a letter announces against what the learner's page shows, and a mailing whose worker
died halfway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from arq.jobs import Job
from sqlalchemy import text

from gradeflow import jobs
from gradeflow.core import clock
from gradeflow.core.settings import Settings, SmtpSettings
from gradeflow.devstack import mailsink
from gradeflow.devstack.mailsink import Memory
from gradeflow.system import tasks as system_tasks
from tests.api.letters import letter_states
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import course, email, user_token

C = "/v1/courses/c1"
MAILINGS = f"{C}/mailings"


async def _course(
    t: Tenant,
    *learners: tuple[str, str, str, float],
    title: str = "Physics 101",
    assessments: tuple[str, ...] = ("hw1",),
) -> None:
    """Course c1 with the assessments (10 points each, titled 'Homework N'); each learner (id, full name,
    e-mail, score) scored as given at each; every result published."""
    await course(t, title=title)
    rows = [{"external_id": x, "full_name": name, "email": mail} for x, name, mail, _ in learners]
    r = await t.post(f"{C}/enrollments:batch", json={"enrollments": rows})
    assert r.status_code == 200, r.text
    for n, a in enumerate(assessments, 1):
        body = {"external_id": a, "title": f"Homework {n}", "category": "Homework", "points_possible": 10}
        assert (await t.post(f"{C}/assessments", json=body)).status_code == 201
        for learner, _, _, earned in learners:
            r = await t.put(f"{C}/assessments/{a}/scores/{learner}", json={"earned": earned})
            assert r.status_code == 200, r.text
    r = await t.post(f"{C}/publications", json={"assessments": list(assessments), "audience": {"all": True}})
    assert r.status_code == 201, r.text


async def _request(t: Tenant, **body: Any) -> dict[str, Any]:
    r = await t.post(MAILINGS, json=body)
    assert r.status_code == 202, r.text
    return dict(r.json())


# --- e-mail safety ------------------------------------------------------------------------------------


async def test_a_course_title_with_a_line_break_does_not_lose_the_letter_nor_inject_a_header(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    """A course title pasted on two lines ('Physics 101\\r\\nBcc: ...', accepted by POST /v1/courses):
    today every candidate's letter of the mailing ends `failed` ("documents_url_template is invalid:
    ValueError('Header values may not contain linefeed...')") and nobody gets their report, while the
    operator is sent to fix a template that is fine. The subject should be folded onto one line (CR/LF
    as spaces): the letter goes, once, to the candidate only, with no injected header.
    Cause: gradeflow/mailings/service.py compose() puts course/assessment titles raw into Subject."""
    ann = email(tenant, "ann")
    await _course(tenant, ("ann", "Ann Lee", ann, 8), title="Physics 101\r\nBcc: spy@evil.example")
    m = await _request(tenant, kind="reports", assessment="hw1")
    await run_worker(settings)

    assert (await letter_states(sessionmaker, m["id"]))["ann"] == ("sent", None)
    [message] = mailbox.to(ann)
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    assert "Physics 101" in message["Subject"]
    assert message["Bcc"] is None
    assert mailbox.to("spy@evil.example") == []


async def test_a_learner_name_with_a_line_break_does_not_lose_the_letter_nor_inject_a_header(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    """A learner whose full name (from the LMS) holds CR/LF: their letter ends `failed`, blamed on
    documents_url_template, and they never get their certificate e-mail. The display name should be
    made one line (or dropped from To); the letter goes to their address only.
    Cause: gradeflow/mailings/service.py compose(), `formataddr((row["name"], ...))` and the greeting."""
    ann = email(tenant, "ann")
    await _course(tenant, ("ann", "Ann Lee\r\nBcc: spy@evil.example", ann, 8))
    m = await _request(tenant, kind="reports", assessment="hw1")
    await run_worker(settings)

    assert (await letter_states(sessionmaker, m["id"]))["ann"] == ("sent", None)
    [message] = mailbox.to(ann)
    assert "\n" not in message["To"] and message["Bcc"] is None
    assert mailbox.to("spy@evil.example") == []


async def test_a_letter_that_cannot_be_composed_says_why_instead_of_blaming_the_documents_template(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    """An enrollment address the API accepts ('jürgen@...' passes the Email pattern) cannot be put in
    the To header: the letter fails with "documents_url_template is invalid: UnicodeEncodeError(...)",
    so the operator looks at a template that is fine. It should either be sent (SMTPUTF8) or fail
    naming the address. Cause: gradeflow/mailings/service.py send_due(): `except (KeyError, IndexError,
    ValueError)` around compose() labels every ValueError as a template error."""
    await _course(tenant, ("jurgen", "Jürgen Lee", f"jürgen@{tenant.slug}.example.org", 8))
    m = await _request(tenant, kind="reports", assessment="hw1")
    await run_worker(settings)

    status, error = (await letter_states(sessionmaker, m["id"]))["jurgen"]
    assert status == "sent" or "documents_url_template" not in (error or ""), error


# --- who may stop what reaches learners ------------------------------------------------------------


async def test_a_publisher_limited_to_one_assessment_cannot_cancel_another_assessments_mailing(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    """A publisher limited to hw1 may not send hw2's reports (403), yet may cancel the hw2 mailing the
    course's full publisher asked for: every candidate's letter is skipped 'cancelled' and nobody gets
    their hw2 report. Cancelling should be held to the same scope as asking (403).
    Cause: gradeflow/mailings/service.py cancel() checks no publisher scope (create() does)."""
    ann = email(tenant, "ann")
    await _course(tenant, ("ann", "Ann Lee", ann, 8), assessments=("hw1", "hw2"))
    r = await tenant.put(f"{C}/members/pub1", json={"roles": ["publisher"], "publish_assessments": ["hw1"]})
    assert r.status_code == 200, r.text
    limited = await user_token(tenant, "pub1")
    assert_problem(await tenant.post(MAILINGS, json={"kind": "reports", "assessment": "hw2"}, as_=limited), 403)

    m = await _request(tenant, kind="reports", assessment="hw2")
    assert_problem(await tenant.post(f"{MAILINGS}/{m['id']}:cancel", as_=limited), 403)
    await run_worker(settings)
    assert len(mailbox.to(ann)) == 1


# --- what a letter announces against what the page shows --------------------------------------------


class _Refusing(Memory):
    """An SMTP server that answers 451 (try later) for the addresses holding `part`."""

    def __init__(self, part: str) -> None:
        super().__init__()
        self.part = part

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if any(self.part in to for to in envelope.rcpt_tos):
            return "451 4.3.0 try again later"
        return str(await super().handle_DATA(server, session, envelope))


async def test_a_retried_letter_never_announces_a_report_the_learners_page_no_longer_shows(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    """Ann's report is prepared, her letter is refused for now (451) and retried later; meanwhile hw1 is
    re-published with a changed score. The retry still goes out ("Your individual report of Homework 1
    is available... open your documents page"), but the page lists nothing: the document made from the
    old publication is superseded. The claim-time check should use the page's rule (result published
    as it was when the document was made): skip the letter, or prepare a new document, never announce
    what is not there. Cause: gradeflow/mailings/service.py _LETTER `published` ignores
    pr.published_at <= document created_at, which _MY_DOCUMENTS requires."""
    ann = email(tenant, "ann")
    await _course(tenant, ("ann", "Ann Lee", ann, 8))
    m = await _request(tenant, kind="reports", assessment="hw1")
    handler = _Refusing("ann@")
    with mailsink.running(handler) as port:
        refusing = settings.model_copy(update={"smtp": SmtpSettings(host="127.0.0.1", port=port, timeout_seconds=5)})
        await run_worker(refusing)
    assert (await letter_states(sessionmaker, m["id"]))["ann"][0] == "queued"

    # A correction, published again.
    assert (await tenant.put(f"{C}/assessments/hw1/scores/ann", json={"earned": 5})).status_code == 200
    r = await tenant.post(f"{C}/publications", json={"assessments": ["hw1"], "audience": {"all": True}})
    assert r.status_code == 201, r.text

    clock.freeze(datetime.now(UTC) + timedelta(minutes=15))
    try:
        await run_worker(settings)
    finally:
        clock.freeze(None)
    page = (await tenant.get("/v1/me/courses/c1/documents", as_=await user_token(tenant, "ann"))).json()["items"]
    announced = [msg for msg in mailbox.to(ann) if "individual report" in msg.get_body(("plain",)).get_content()]
    assert not announced or page, "the e-mail announces a report the learner's documents page does not list"


# --- a failure halfway -----------------------------------------------------------------------------


async def test_a_mailing_whose_worker_died_while_preparing_is_handed_to_another_worker(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    """A worker is killed (OOM, node lost) while preparing a mailing's reports. arq leaves that job in
    the queue, marked in progress for the job's timeout + 10 s (3 h 10 min for send_candidate_mailing),
    and the sweep re-enqueues the mailing under the SAME job id, which arq drops as a duplicate: the
    mailing stays `preparing` and no candidate gets anything for three hours. The sweep should give it
    a job no other worker holds (as it does for a sender that died, and for reports).
    Cause: gradeflow/mailings/service.py recover() flags only `sending` deaths as lost; a mailing stuck
    in `preparing` gets mailings.job_id(m, "")."""
    await _course(tenant, ("ann", "Ann Lee", email(tenant, "ann"), 8))
    m = await _request(tenant, kind="reports", assessment="hw1")
    redis = await jobs.connect(settings.redis_url)
    queued = {j.decode() for j in await redis.zrange("arq:queue", 0, -1)}
    [dead] = [j for j in queued if str(m["id"]) in j and "mail" in j]
    try:
        # The worker that took it died: its job is still queued and marked in progress for hours.
        await redis.psetex(f"arq:in-progress:{dead}", 3 * 3600 * 1000, b"1")
        async with sessionmaker() as session:
            await session.execute(
                text(
                    "UPDATE candidate_mailings SET status = 'preparing', created_at = now() - interval '5 minutes'"
                    " WHERE id = :m"
                ),
                {"m": m["id"]},
            )
            await session.commit()

        await system_tasks.sweep_jobs({"sessionmaker": sessionmaker, "settings": settings, "redis": redis})

        runnable = []
        for job_id in {j.decode() for j in await redis.zrange("arq:queue", 0, -1)} - {dead}:
            info = await Job(job_id, redis).info()
            ours = info is not None and info.function == jobs.JobName.SEND_MAILING and tuple(info.args) == (m["id"],)
            if ours and not await redis.exists(f"arq:in-progress:{job_id}"):
                runnable.append(job_id)
        assert runnable, "the mailing waits for the dead worker's job (3 h) instead of going on now"
    finally:
        # Leave no job for other tests' workers.
        for job_id in {j.decode() for j in await redis.zrange("arq:queue", 0, -1)}:
            info = await Job(job_id, redis).info()
            if info is not None and info.function == jobs.JobName.SEND_MAILING and tuple(info.args) == (m["id"],):
                await redis.zrem("arq:queue", job_id)
                await redis.delete(f"arq:job:{job_id}", f"arq:in-progress:{job_id}", f"arq:retry:{job_id}")
        await redis.aclose()
