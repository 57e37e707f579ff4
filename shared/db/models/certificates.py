"""Course certificates: the allow list, and who was eligible when certificates were generated."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, CreatedAt, IdPk


class CertificateAllowance(Base):
    """A learner on the course's allow list: eligible for a certificate whatever their grade or track."""

    __tablename__ = "certificate_allowlist"
    __table_args__ = (UniqueConstraint("enrollment_id"),)

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    enrollment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("enrollments.id", ondelete="CASCADE"))
    notes: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]


class CertificateGeneration(Base):
    """One `certificates:generate` run of a course: when, by whom, under which served grades."""

    __tablename__ = "certificate_generations"

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    policy_version: Mapped[int | None] = mapped_column(Integer)
    eligible: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]


class Certificate(Base):
    """A learner's certificate, issued by the latest generation that found them eligible."""

    __tablename__ = "certificates"
    __table_args__ = (
        UniqueConstraint("enrollment_id"),
        Index("ix_certificates_course_id_enrollment_id", "course_id", "enrollment_id"),
        CheckConstraint("reason IN ('passing', 'allowlist')", name="reason"),
    )

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"))
    enrollment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("enrollments.id", ondelete="CASCADE"))
    generation_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("certificate_generations.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))  # the learner's track when it was generated
    reason: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[CreatedAt]
