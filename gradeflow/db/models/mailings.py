"""Sending candidates their documents: one request ("send each candidate their report / certificate"),
one letter per candidate of it (sent at most once), and the report files the letters point to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.core.statuses import LETTER_STATUSES, MAILING_STATUSES, sql_in
from gradeflow.db.base import Base, CreatedAt, IdPk

MAILING_KINDS = ("reports", "certificates")


class CandidateMailing(Base):
    """One request to send each candidate their individual report (with their certificate, where they
    hold one) or their certificate; the counts are the letters'."""

    __tablename__ = "candidate_mailings"
    __table_args__ = (
        CheckConstraint(f"kind IN {MAILING_KINDS}", name="kind"),
        CheckConstraint(sql_in("status", MAILING_STATUSES), name="status"),
        Index("ix_candidate_mailings_course_id_id", "course_id", "id"),
        Index("ix_candidate_mailings_open", "status", postgresql_where="status IN ('queued', 'preparing', 'sending')"),
    )

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), server_default="queued")
    requested_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)


class LearnerDocument(Base):
    """A file made for one learner and kept in object storage (an individual report sent to them); the
    learner downloads it through a signed link while what it shows is still published to them."""

    __tablename__ = "learner_documents"
    __table_args__ = (
        CheckConstraint("kind IN ('individual_report')", name="kind"),
        Index("ix_learner_documents_enrollment_id_id", "enrollment_id", "id"),
    )

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"))
    enrollment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("enrollments.id", ondelete="CASCADE"))
    assessment_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("assessments.id", ondelete="CASCADE"))
    mailing_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("candidate_mailings.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(24))
    language: Mapped[str] = mapped_column(String(35))
    object_key: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(Text)
    bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CandidateLetter(Base):
    """The one e-mail a mailing owes a candidate. Claimed (`sending`, committed) before it goes to the
    SMTP server and `sent` after, like result e-mails: at most once, retried with back-off."""

    __tablename__ = "candidate_letters"
    __table_args__ = (
        CheckConstraint(sql_in("status", LETTER_STATUSES), name="status"),
        Index("ix_candidate_letters_due", "next_try_at", postgresql_where="status = 'queued'"),
    )

    mailing_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("candidate_mailings.id", ondelete="CASCADE"), primary_key=True
    )
    enrollment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(12), server_default="preparing")
    document_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("learner_documents.id", ondelete="SET NULL"))
    certificate_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("certificates.id", ondelete="SET NULL"))
    tries: Mapped[int] = mapped_column(Integer, server_default="0")
    next_try_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
