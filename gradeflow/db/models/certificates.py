"""Certificates: what a course or an assessment certifies (its pass rule and diploma), the allow list,
generation runs, the certificates themselves and the images diplomas print."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.db.base import Base, CreatedAt, IdPk

CERTIFICATION_RULES = ("course_passing", "course_percent", "assessment_percent")


class Certification(Base):
    """What a course (assessment_id null) or one assessment certifies: who passes, and what the diploma
    says. A course without one certifies as Open edX does (a passing course grade, the default diploma)."""

    __tablename__ = "certifications"
    __table_args__ = (
        UniqueConstraint("course_id", "assessment_id", postgresql_nulls_not_distinct=True),
        CheckConstraint(f"rule IN {CERTIFICATION_RULES}", name="rule"),
        CheckConstraint("(rule = 'assessment_percent') = (assessment_id IS NOT NULL)", name="rule_scope"),
        CheckConstraint("(rule = 'course_passing') = (threshold IS NULL)", name="threshold"),
        CheckConstraint("threshold IS NULL OR threshold BETWEEN 0 AND 100", name="threshold_range"),
    )

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"))
    assessment_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("assessments.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(24))
    threshold: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))  # percent, 0-100
    title: Mapped[str] = mapped_column(Text)  # "Certificate of achievement"
    body: Mapped[str | None] = mapped_column(Text)  # the sentence under the learner's name
    language: Mapped[str] = mapped_column(String(35), server_default="en")
    signatory_name: Mapped[str | None] = mapped_column(Text)
    signatory_title: Mapped[str | None] = mapped_column(Text)
    logo_image: Mapped[str | None] = mapped_column(String(100))  # names in certificate_images
    signature_image: Mapped[str | None] = mapped_column(String(100))
    revision: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[CreatedAt]


class CertificateImage(Base):
    """An organization's logo or signature, uploaded once and kept in object storage; diplomas name it."""

    __tablename__ = "certificate_images"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        CheckConstraint("content_type IN ('image/png', 'image/jpeg')", name="content_type"),
    )

    id: Mapped[IdPk]
    organization_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    content_type: Mapped[str] = mapped_column(String(16))
    bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(Text)
    uploaded_by: Mapped[str] = mapped_column(String(255))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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
    """One `certificates:generate` run of a course's (or an assessment's) certification."""

    __tablename__ = "certificate_generations"

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    assessment_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("assessments.id", ondelete="CASCADE"))
    policy_version: Mapped[int | None] = mapped_column(Integer)
    eligible: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]


class Certificate(Base):
    """A learner's certificate of the course (assessment_id null) or of one assessment, issued by the
    latest generation that found them eligible. A revoked one stays, revoked, until reinstated: the
    next generation does not issue it again. The diploma PDF is rendered by the worker and kept in
    object storage; `diploma_digest` says what it was rendered from (stale when it differs)."""

    __tablename__ = "certificates"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "assessment_id", postgresql_nulls_not_distinct=True),
        UniqueConstraint("code"),
        Index("ix_certificates_course_id_enrollment_id", "course_id", "enrollment_id"),
        CheckConstraint("reason IN ('passing', 'allowlist')", name="reason"),
        CheckConstraint("(revoked_at IS NULL) = (revoked_by IS NULL)", name="revoked"),
    )

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"))
    enrollment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("enrollments.id", ondelete="CASCADE"))
    assessment_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("assessments.id", ondelete="CASCADE"))
    generation_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("certificate_generations.id", ondelete="CASCADE"))
    # What the diploma prints and anyone can quote to check it: 16 hex digits, random.
    code: Mapped[str] = mapped_column(
        String(32), server_default=text("upper(substr(replace(gen_random_uuid()::text, '-', ''), 1, 16))")
    )
    type: Mapped[str] = mapped_column(String(64))  # the learner's track when it was generated
    reason: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[CreatedAt]
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(255))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    diploma_key: Mapped[str | None] = mapped_column(Text)
    diploma_digest: Mapped[str | None] = mapped_column(String(64))
    diploma_bytes: Mapped[int | None] = mapped_column(Integer)
