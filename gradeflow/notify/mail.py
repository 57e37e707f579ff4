"""E-mail to learners when their results are published: one message per (publication, learner).

Each message is claimed (status `sending`, committed) before it goes to the SMTP server and marked
`sent` after, so a message is sent at most once even if the worker dies: a claim left behind by a
dead worker is marked failed ("interrupted") by the sweep, never sent again. A refusal or an
unreachable server puts the message back in the queue with back-off; a permanent refusal (5xx) or
the last try marks it failed. The counts show on the publication.

The claim, the outcome, the back-off and the sweep of interrupted claims are written once here
(`Outbox`, `send_queue`, `deliver`, `interrupted`): candidate mailings (gradeflow/mailings/service.py)
send their letters through the same code, from their own table.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from email.errors import MessageError
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Any, Literal, TypedDict
from urllib.parse import quote

import aiosmtplib
import jinja2
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow.core import clock, metrics, names
from gradeflow.core.settings import SmtpSettings

log = logging.getLogger(__name__)

MAX_TRIES = 6
BACKOFF = [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=6)]

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


class Outcome(TypedDict):
    """What is written on a claimed message's row instead of (or after) sending it: its status, when it is due
    again (None: never), why it was not sent, when it was."""

    status: Literal["sent", "queued", "failed", "skipped"]
    next: datetime | None
    error: str | None
    sent: datetime | None


@dataclass
class Letter:
    """What one learner is told, already limited to what the publication shows."""

    to: str
    name: str
    course: str
    course_title: str
    learner: str
    results: list[dict[str, Any]]
    grade: dict[str, Any] | None


def _points(x: Any) -> str:
    return format(Decimal(str(x)).normalize(), "f")


def one_line(value: str) -> str:
    """`value` for a header: line breaks (and runs of any white space) as one space. A title or a name
    from the LMS may hold CR/LF; a header must not (it would end it, or inject another)."""
    return " ".join(value.split())


def recipient(name: str, address: str) -> str:
    """The To header of a message to `address` in `name`'s name (on one line, quoted or encoded as
    needed). A name that holds an address ('@', '<', '>') is left out: shown as the recipient, it would
    pass for another address. An internationalised address (non-ASCII local part) is kept as is: it
    goes with SMTPUTF8 where the server offers it (`deliver` fails it, saying so, where it does not)."""
    name = one_line(name)
    if any(c in name for c in "@<>"):
        name = ""
    if address.isascii():
        return formataddr((name, address))
    if not name:
        return address
    return f"{formataddr((name, 'x@x.invalid')).removesuffix(' <x@x.invalid>')} <{address}>"


class TemplateInvalid(Exception):
    """A settings URL template could not be filled in (the operator's to fix, not the learner's)."""


def link_of(template: str, course: str, learner: str) -> str:
    """The LMS page a message links to: a settings URL template filled with the course and the learner
    (quoted); TemplateInvalid when the template is invalid."""
    try:
        return template.format(course=quote(course, safe=""), learner=quote(learner, safe=""))
    except (KeyError, IndexError, ValueError) as exc:
        raise TemplateInvalid from exc


def composed(setting: str, build: Callable[[], EmailMessage], address: str | None) -> EmailMessage | Outcome:
    """The message `build` makes, or the `failed` outcome that says why it cannot be made: the URL
    template named `setting` is invalid, or the message cannot be addressed to `address`."""
    try:
        return build()
    except TemplateInvalid as exc:
        return failed(clock.now(), f"{setting} is invalid: {exc.__cause__!r}")
    except (ValueError, MessageError) as exc:  # a header the e-mail library refuses (UnicodeError is a ValueError)
        return failed(clock.now(), f"cannot compose the e-mail to {address!r}: {exc!r}")


def compose(letter: Letter, settings: SmtpSettings, link_template: str, message_id: str) -> EmailMessage:
    """The plain-text and HTML message for a letter, with a link to the LMS (never a file link). Raises
    TemplateInvalid when the link template cannot be filled in."""
    link = link_of(link_template, letter.course, letter.learner)
    results = [
        {
            "title": r["title"],
            "earned": None if r["earned"] is None else _points(r["earned"]),  # None: excused
            "possible": _points(r["possible"]),
            "items": [
                {
                    "label": i.get("number") or i.get("title") or i["item"],
                    "earned": _points(i["earned"] or 0),
                    "possible": _points(i["possible"]),
                }
                for i in (r["items"] or [])
            ],
        }
        for r in letter.results
    ]
    grade = None
    if letter.grade is not None:
        g = letter.grade
        percent = "" if g["percent"] is None else f"{Decimal(str(g['percent'])).normalize():f} %"
        grade = {"text": " ".join(x for x in (g["grade"] or "", f"({percent})" if percent else "") if x)}
    context = {
        "name": letter.name,
        "course_title": letter.course_title,
        "results": results,
        "grade": grade,
        "link": link,
    }
    message = EmailMessage()
    message["Subject"] = one_line(f"New results in {letter.course_title}")
    message["From"] = settings.sender
    message["To"] = recipient(letter.name, letter.to)
    message["Message-ID"] = message_id
    message.set_content(TEMPLATES.get_template("results_published.txt").render(context))
    message.add_alternative(TEMPLATES.get_template("results_published.html").render(context), subtype="html")
    return message


async def send_simple(smtp: SmtpSettings, to: str, subject: str, body: str) -> None:
    """One plain-text message (e.g. "your report is ready"), sent at once."""
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, smtp.sender, to
    message.set_content(body)
    connection = Connection(smtp)
    try:
        await connection.send(message)
    finally:
        await connection.close()


_LETTER = text(
    f"""
    SELECT e.email, {names.learner_name_sql("e")} AS name, e.external_id AS learner,
           c.external_id AS course, c.title AS course_title,
           (SELECT coalesce(jsonb_agg(jsonb_build_object('title', a.title, 'earned', pr.earned, 'possible', pr.possible,
                                                         'items', pr.items) ORDER BY a.position, a.id), '[]')
            FROM published_results pr JOIN assessments a ON a.id = pr.assessment_id
            WHERE pr.enrollment_id = e.id AND pr.publication_id = :p) AS results,
           (SELECT jsonb_build_object('percent', pg.percent, 'grade', pg.grade) FROM published_grades pg
            WHERE pg.enrollment_id = e.id AND pg.publication_id = :p) AS grade
    FROM enrollments e JOIN courses c ON c.id = e.course_id WHERE e.id = :e
    """  # noqa: S608  (constant SQL)
)


@dataclass(frozen=True)
class Outbox:
    """A table of messages sent under these rules, one row per (`parent`, enrollment) with status,
    tries, next_try_at, claimed_at, sent_at and error. `stopped` is SQL (row alias `x`) true when the
    row's parent was stopped: a message put back in the queue then is skipped ('cancelled')."""

    table: str
    parent: str
    stopped: str = "false"

    @property
    def claim(self) -> TextClause:
        """The next due message of parent :k, claimed (`sending`, one more try): (enrollment_id, tries)."""
        return text(
            f"""
            UPDATE {self.table} x SET status = 'sending', tries = x.tries + 1, claimed_at = :now
            WHERE ({self.parent}, enrollment_id) = (
              SELECT {self.parent}, enrollment_id FROM {self.table}
              WHERE {self.parent} = :k AND status = 'queued' AND next_try_at <= :now
              ORDER BY enrollment_id LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING x.enrollment_id, x.tries
            """  # noqa: S608  (table and column names are this module's constants)
        )

    @property
    def outcome(self) -> TextClause:
        """Write an outcome (status, next, error, sent) on message (:k, :e)."""
        return text(
            f"""
            UPDATE {self.table} x SET
              status = CASE WHEN :status = 'queued' AND {self.stopped} THEN 'skipped' ELSE :status END,
              error = CASE WHEN :status = 'queued' AND {self.stopped} THEN 'cancelled' ELSE :error END,
              next_try_at = :next, sent_at = :sent
            WHERE {self.parent} = :k AND enrollment_id = :e
            """  # noqa: S608
        )

    @property
    def next_due(self) -> TextClause:
        """When parent :k's next queued message is due (null: none is queued)."""
        return text(
            f"SELECT min(next_try_at) FROM {self.table} WHERE {self.parent} = :k AND status = 'queued'"  # noqa: S608
        )

    @property
    def fail_interrupted(self) -> TextClause:
        """Claims older than :t never marked sent fail with :why; returns their parents."""
        return text(
            f"UPDATE {self.table} SET status = 'failed', error = :why"  # noqa: S608
            f" WHERE status = 'sending' AND claimed_at < :t RETURNING {self.parent}"
        )


NOTIFICATIONS = Outbox("notifications", "publication_id")
# Publications with results e-mails due at :n (found by the due index), each with whether its sender is gone:
# it claimed messages, the last before :t (a live sender claims the next due message as soon as it has marked
# one, and a claim in flight past the lease is an interruption), yet due messages remain.
_DUE_PUBLICATIONS = text(
    """
    SELECT d.publication_id,
           coalesce((SELECT max(x.claimed_at) FROM notifications x WHERE x.publication_id = d.publication_id) < :t,
                    false) AS gone
    FROM (SELECT DISTINCT publication_id FROM notifications WHERE status = 'queued' AND next_try_at <= :n) d
    """
)


class Connection:
    """One SMTP connection for a run, opened on first use and reopened after a failure."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.client: aiosmtplib.SMTP | None = None

    async def send(self, message: EmailMessage) -> None:
        if self.client is None or not self.client.is_connected:
            s = self.settings
            self.client = aiosmtplib.SMTP(
                hostname=s.host,
                port=s.port,
                use_tls=s.security == "tls",
                start_tls=s.security == "starttls",
                username=s.username,
                password=s.password.get_secret_value() if s.password else None,
                timeout=s.timeout_seconds,
            )
            await self.client.connect()
        try:
            await self.client.send_message(message)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self.client is not None and self.client.is_connected:
            try:
                await self.client.quit()
            except (aiosmtplib.SMTPException, OSError):
                self.client.close()
        self.client = None


async def send_due(
    sessionmaker: async_sessionmaker[AsyncSession], smtp: SmtpSettings, link_template: str, publication_id: int
) -> datetime | None:
    """Send the publication's due e-mails one by one; return when the next retry is due (or None)."""

    async def letter(session: AsyncSession, enrollment_id: int) -> EmailMessage | Outcome:
        row = (await session.execute(_LETTER, {"p": publication_id, "e": enrollment_id})).mappings().one()
        if row["email"] is None:
            return failed(clock.now(), "no e-mail address")
        if not row["results"] and row["grade"] is None:
            return failed(clock.now(), "nothing of this publication is visible any more")
        letter = Letter(
            to=row["email"],
            name=row["name"],
            course=row["course"],
            course_title=row["course_title"],
            learner=row["learner"],
            results=row["results"],
            grade=row["grade"],
        )
        key = f"gradeflow.{publication_id}.{enrollment_id}"
        return composed(
            "results_url_template", lambda: compose(letter, smtp, link_template, message_id(key, smtp)), row["email"]
        )

    return await send_queue(sessionmaker, smtp, NOTIFICATIONS, publication_id, letter)


async def send_queue(
    sessionmaker: async_sessionmaker[AsyncSession],
    smtp: SmtpSettings,
    outbox: Outbox,
    parent: int,
    letter: Callable[[AsyncSession, int], Awaitable[EmailMessage | Outcome]],
) -> datetime | None:
    """Send `parent`'s due messages of `outbox` one by one, each claimed (committed) before the SMTP
    server hears of it and its outcome written after; return when the next retry is due (or None).
    `letter` reads what one claimed message says, in the claim's transaction, and returns the message,
    or the outcome (`failed`, `skipped`) that is written with the claim instead of sending."""
    connection = Connection(smtp)
    try:
        while True:
            async with sessionmaker() as session:
                claimed = (await session.execute(outbox.claim, {"k": parent, "now": clock.now()})).first()
                if claimed is None:
                    break
                enrollment_id, tries = claimed
                made = await letter(session, enrollment_id)
                if not isinstance(made, EmailMessage):
                    await session.execute(outbox.outcome, {"k": parent, "e": enrollment_id, **made})
                await session.commit()
            if isinstance(made, EmailMessage):
                outcome = await deliver(connection, made, tries)
                async with sessionmaker() as session:
                    await session.execute(outbox.outcome, {"k": parent, "e": enrollment_id, **outcome})
                    await session.commit()
                if outcome["status"] == "sent":
                    log.info("sent %s %s to enrollment %s", outbox.table, parent, enrollment_id)
            else:
                outcome = made
            if outcome["status"] != "skipped":
                metrics.EMAILS.labels(outcome="retry" if outcome["status"] == "queued" else outcome["status"]).inc()
    finally:
        await connection.close()
    async with sessionmaker() as session:
        next_due: datetime | None = await session.scalar(outbox.next_due, {"k": parent})
    return next_due


async def deliver(connection: Connection, message: EmailMessage, tries: int) -> Outcome:
    """Hand one claimed message (its `tries`-th try) to the SMTP server; the outcome to write on its
    row (status, next, error, sent): `sent`; `queued` again with back-off after a refusal or an
    unreachable server; `failed` after a permanent refusal (5xx) or the last try. Every sender of
    claimed messages (results e-mails, candidate mailings) goes through here."""
    now = clock.now()
    try:
        await connection.send(message)
    except aiosmtplib.SMTPNotSupported as exc:  # e.g. an internationalised address, no SMTPUTF8: for good
        return failed(now, f"SMTP server: {exc}")
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code >= 500 or tries >= MAX_TRIES:
            return failed(now, f"SMTP {exc.code}: {exc.message}")
        return _retry(now, tries, f"SMTP {exc.code}: {exc.message}")
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        if tries >= MAX_TRIES:
            return failed(now, f"{type(exc).__name__}: {exc}")
        return _retry(now, tries, f"{type(exc).__name__}: {exc}")
    return {"status": "sent", "next": now, "error": None, "sent": now}


def failed(now: datetime, error: str) -> Outcome:
    """The outcome of a message that will never be sent, with why."""
    return {"status": "failed", "next": now, "error": error[:1000], "sent": None}


def skipped(why: str) -> Outcome:
    """The outcome of a message that must not go (what it announces no longer holds), with why."""
    return {"status": "skipped", "next": None, "error": why[:1000], "sent": None}


def message_id(key: str, smtp: SmtpSettings) -> str:
    """A Message-ID naming what the message is for (`key`), in the sender's domain."""
    domain = smtp.sender.rpartition("@")[2].rstrip(">") or "gradeflow.invalid"
    return make_msgid(key, domain)


# A claim older than the lease whose message was never marked sent: the worker died mid-send.
INTERRUPTED = "interrupted while sending (worker lost); not retried so that it is never sent twice"


def _retry(now: datetime, tries: int, error: str) -> Outcome:
    return {
        "status": "queued",
        "next": now + BACKOFF[min(tries, len(BACKOFF)) - 1],
        "error": error[:1000],
        "sent": None,
    }


async def interrupted(session: AsyncSession, outbox: Outbox, lease: timedelta) -> set[int]:
    """Claims of `outbox` left by a worker that died mid-send (older than the lease, never marked): the
    message may or may not have gone, so it is never sent again (at most once); it counts as failed
    with the reason. Returns the parents they belong to."""
    rows = await session.scalars(outbox.fail_interrupted, {"t": clock.now() - lease, "why": INTERRUPTED})
    return set(rows.all())


async def fail_interrupted(session: AsyncSession, lease: timedelta) -> list[tuple[int, bool]]:
    """Results e-mails whose sender died mid-send fail (`interrupted`). Returns the publications that
    still have e-mails queued, for the sweep to re-enqueue, each with whether its sender died (mid-send,
    or between two messages: its job id is then still taken in the queue, so the sweep needs a new one)."""
    lost = await interrupted(session, NOTIFICATIONS, lease)
    now = clock.now()
    due = await session.execute(_DUE_PUBLICATIONS, {"n": now, "t": now - lease})
    return [(p, p in lost or gone) for p, gone in due.all()]
