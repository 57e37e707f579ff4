"""E-mail to learners when their results are published: one message per (publication, learner).

Each message is claimed (status `sending`, committed) before it goes to the SMTP server and marked
`sent` after, so a message is sent at most once even if the worker dies: a claim left behind by a
dead worker is marked failed ("interrupted") by the sweep, never sent again. A refusal or an
unreachable server puts the message back in the queue with back-off; a permanent refusal (5xx) or
the last try marks it failed. The counts show on the publication.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosmtplib
import jinja2
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import clock, metrics
from shared.settings import SmtpSettings

log = logging.getLogger(__name__)

MAX_TRIES = 6
BACKOFF = [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=6)]

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


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


def compose(letter: Letter, settings: SmtpSettings, link_template: str, message_id: str) -> EmailMessage:
    """The plain-text and HTML message for a letter, with a link to the LMS (never a file link)."""
    link = link_template.format(course=quote(letter.course, safe=""), learner=quote(letter.learner, safe=""))
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
    message["Subject"] = f"New results in {letter.course_title}"
    message["From"] = settings.sender
    message["To"] = formataddr((letter.name, letter.to))
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


_CLAIM = text(
    """
    UPDATE notifications n SET status = 'sending', tries = n.tries + 1, claimed_at = :now
    WHERE (n.publication_id, n.enrollment_id) = (
      SELECT publication_id, enrollment_id FROM notifications
      WHERE publication_id = :p AND status = 'queued' AND next_try_at <= :now
      ORDER BY enrollment_id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING n.enrollment_id, n.tries
    """
)

_LETTER = text(
    """
    SELECT e.email, coalesce(e.full_name, e.username, e.external_id) AS name, e.external_id AS learner,
           c.external_id AS course, c.title AS course_title,
           (SELECT coalesce(jsonb_agg(jsonb_build_object('title', a.title, 'earned', pr.earned, 'possible', pr.possible,
                                                         'items', pr.items) ORDER BY a.position, a.id), '[]')
            FROM published_results pr JOIN assessments a ON a.id = pr.assessment_id
            WHERE pr.enrollment_id = e.id AND pr.publication_id = :p) AS results,
           (SELECT jsonb_build_object('percent', pg.percent, 'grade', pg.grade) FROM published_grades pg
            WHERE pg.enrollment_id = e.id AND pg.publication_id = :p) AS grade
    FROM enrollments e JOIN courses c ON c.id = e.course_id WHERE e.id = :e
    """
)

_OUTCOME = text(
    """
    UPDATE notifications SET status = :status, next_try_at = :next, error = :error, sent_at = :sent
    WHERE publication_id = :p AND enrollment_id = :e
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
    connection = Connection(smtp)
    try:
        while True:
            async with sessionmaker() as session:
                claimed = (await session.execute(_CLAIM, {"p": publication_id, "now": clock.now()})).first()
                if claimed is None:
                    break
                enrollment_id, tries = claimed
                row = (await session.execute(_LETTER, {"p": publication_id, "e": enrollment_id})).mappings().one()
                await session.commit()
            outcome = await _send_one(connection, smtp, link_template, publication_id, enrollment_id, tries, row)
            metrics.EMAILS.labels(outcome="retry" if outcome["status"] == "queued" else outcome["status"]).inc()
            async with sessionmaker() as session:
                await session.execute(_OUTCOME, {"p": publication_id, "e": enrollment_id, **outcome})
                await session.commit()
    finally:
        await connection.close()
    async with sessionmaker() as session:
        next_due: datetime | None = await session.scalar(
            text("SELECT min(next_try_at) FROM notifications WHERE publication_id = :p AND status = 'queued'"),
            {"p": publication_id},
        )
    return next_due


async def _send_one(
    connection: Connection,
    smtp: SmtpSettings,
    link_template: str,
    publication_id: int,
    enrollment_id: int,
    tries: int,
    row: Any,
) -> dict[str, Any]:
    now = clock.now()
    if row["email"] is None or (not row["results"] and row["grade"] is None):
        why = "no e-mail address" if row["email"] is None else "nothing of this publication is visible any more"
        return failed(now, why)
    letter = Letter(
        to=row["email"],
        name=row["name"],
        course=row["course"],
        course_title=row["course_title"],
        learner=row["learner"],
        results=row["results"],
        grade=row["grade"],
    )
    try:
        message = compose(letter, smtp, link_template, message_id(f"gradeflow.{publication_id}.{enrollment_id}", smtp))
    except (KeyError, IndexError, ValueError) as exc:
        return failed(now, f"results_url_template is invalid: {exc!r}")
    outcome = await deliver(connection, message, tries)
    if outcome["status"] == "sent":
        log.info("sent results e-mail for publication %s to enrollment %s", publication_id, enrollment_id)
    return outcome


async def deliver(connection: Connection, message: EmailMessage, tries: int) -> dict[str, Any]:
    """Hand one claimed message (its `tries`-th try) to the SMTP server; the outcome to write on its
    row (status, next, error, sent): `sent`; `queued` again with back-off after a refusal or an
    unreachable server; `failed` after a permanent refusal (5xx) or the last try. Every sender of
    claimed messages (results e-mails, candidate mailings) goes through here."""
    now = clock.now()
    try:
        await connection.send(message)
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code >= 500 or tries >= MAX_TRIES:
            return failed(now, f"SMTP {exc.code}: {exc.message}")
        return _retry(now, tries, f"SMTP {exc.code}: {exc.message}")
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        if tries >= MAX_TRIES:
            return failed(now, f"{type(exc).__name__}: {exc}")
        return _retry(now, tries, f"{type(exc).__name__}: {exc}")
    return {"status": "sent", "next": now, "error": None, "sent": now}


def failed(now: datetime, error: str) -> dict[str, Any]:
    """The outcome of a message that will never be sent, with why."""
    return {"status": "failed", "next": now, "error": error[:1000], "sent": None}


def message_id(key: str, smtp: SmtpSettings) -> str:
    """A Message-ID naming what the message is for (`key`), in the sender's domain."""
    domain = smtp.sender.rpartition("@")[2].rstrip(">") or "gradeflow.invalid"
    return make_msgid(key, domain)


# A claim older than the lease whose message was never marked sent: the worker died mid-send.
INTERRUPTED = "interrupted while sending (worker lost); not retried so that it is never sent twice"


def _retry(now: datetime, tries: int, error: str) -> dict[str, Any]:
    return {
        "status": "queued",
        "next": now + BACKOFF[min(tries, len(BACKOFF)) - 1],
        "error": error[:1000],
        "sent": None,
    }


async def fail_interrupted(session: AsyncSession, lease: timedelta) -> list[tuple[int, bool]]:
    """Claims left by a worker that died mid-send: the message may or may not have gone, so it is never
    sent again (at most once); it counts as failed with the reason. Returns the publications that
    still have e-mails queued, for the sweep to re-enqueue, each with whether a sender died on it."""
    now = clock.now()
    interrupted = set(
        (
            await session.scalars(
                text(
                    """
                    UPDATE notifications SET status = 'failed', error = :why
                    WHERE status = 'sending' AND claimed_at < :t
                    RETURNING publication_id
                    """
                ),
                {"t": now - lease, "why": INTERRUPTED},
            )
        ).all()
    )
    due = await session.scalars(
        text("SELECT DISTINCT publication_id FROM notifications WHERE status = 'queued' AND next_try_at <= :n"),
        {"n": now},
    )
    return [(p, p in interrupted) for p in due.all()]
