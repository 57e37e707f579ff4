"""certifications (pass rule and diploma per course or assessment), diploma images, revocable
assessment certificates with rendered diplomas, and candidate mailings with their letters and documents

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 09:38:58.163947
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "certificate_images",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("content_type", sa.String(length=16), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=255), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "content_type IN ('image/png', 'image/jpeg')", name=op.f("ck_certificate_images_content_type")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_certificate_images_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_images")),
        sa.UniqueConstraint("organization_id", "name", name=op.f("uq_certificate_images_organization_id_name")),
    )
    op.create_table(
        "candidate_mailings",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("course_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('reports', 'certificates')", name=op.f("ck_candidate_mailings_kind")),
        sa.CheckConstraint(
            "status IN ('queued', 'preparing', 'sending', 'done', 'cancelled')",
            name=op.f("ck_candidate_mailings_status"),
        ),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_candidate_mailings_course_id_courses"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidate_mailings")),
    )
    op.create_index("ix_candidate_mailings_course_id_id", "candidate_mailings", ["course_id", "id"], unique=False)
    op.create_index(
        "ix_candidate_mailings_open",
        "candidate_mailings",
        ["status"],
        unique=False,
        postgresql_where="status IN ('queued', 'preparing', 'sending')",
    )
    op.create_table(
        "certifications",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("course_id", sa.BigInteger(), nullable=False),
        sa.Column("assessment_id", sa.BigInteger(), nullable=True),
        sa.Column("rule", sa.String(length=24), nullable=False),
        sa.Column("threshold", sa.Numeric(precision=7, scale=4), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=35), server_default="en", nullable=False),
        sa.Column("signatory_name", sa.Text(), nullable=True),
        sa.Column("signatory_title", sa.Text(), nullable=True),
        sa.Column("logo_image", sa.String(length=100), nullable=True),
        sa.Column("signature_image", sa.String(length=100), nullable=True),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "(rule = 'assessment_percent') = (assessment_id IS NOT NULL)", name=op.f("ck_certifications_rule_scope")
        ),
        sa.CheckConstraint("(rule = 'course_passing') = (threshold IS NULL)", name=op.f("ck_certifications_threshold")),
        sa.CheckConstraint(
            "rule IN ('course_passing', 'course_percent', 'assessment_percent')", name=op.f("ck_certifications_rule")
        ),
        sa.CheckConstraint(
            "threshold IS NULL OR threshold BETWEEN 0 AND 100", name=op.f("ck_certifications_threshold_range")
        ),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name=op.f("fk_certifications_assessment_id_assessments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_certifications_course_id_courses"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certifications")),
        sa.UniqueConstraint(
            "course_id",
            "assessment_id",
            name=op.f("uq_certifications_course_id_assessment_id"),
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_table(
        "learner_documents",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("course_id", sa.BigInteger(), nullable=False),
        sa.Column("enrollment_id", sa.BigInteger(), nullable=False),
        sa.Column("assessment_id", sa.BigInteger(), nullable=True),
        sa.Column("mailing_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('individual_report')", name=op.f("ck_learner_documents_kind")),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name=op.f("fk_learner_documents_assessment_id_assessments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_learner_documents_course_id_courses"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_learner_documents_enrollment_id_enrollments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mailing_id"],
            ["candidate_mailings.id"],
            name=op.f("fk_learner_documents_mailing_id_candidate_mailings"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learner_documents")),
    )
    op.create_index("ix_learner_documents_enrollment_id_id", "learner_documents", ["enrollment_id", "id"], unique=False)
    op.create_table(
        "candidate_letters",
        sa.Column("mailing_id", sa.BigInteger(), nullable=False),
        sa.Column("enrollment_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), server_default="preparing", nullable=False),
        sa.Column("document_id", sa.BigInteger(), nullable=True),
        sa.Column("certificate_id", sa.BigInteger(), nullable=True),
        sa.Column("tries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('preparing', 'queued', 'sending', 'sent', 'failed', 'skipped')",
            name=op.f("ck_candidate_letters_status"),
        ),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.id"],
            name=op.f("fk_candidate_letters_certificate_id_certificates"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["learner_documents.id"],
            name=op.f("fk_candidate_letters_document_id_learner_documents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_candidate_letters_enrollment_id_enrollments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mailing_id"],
            ["candidate_mailings.id"],
            name=op.f("fk_candidate_letters_mailing_id_candidate_mailings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailing_id", "enrollment_id", name=op.f("pk_candidate_letters")),
    )
    op.create_index(
        "ix_candidate_letters_due",
        "candidate_letters",
        ["next_try_at"],
        unique=False,
        postgresql_where="status = 'queued'",
    )
    op.add_column("certificate_generations", sa.Column("assessment_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_certificate_generations_assessment_id_assessments"),
        "certificate_generations",
        "assessments",
        ["assessment_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.add_column("certificates", sa.Column("assessment_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "certificates",
        sa.Column(
            "code",
            sa.String(length=32),
            server_default=sa.text("upper(substr(replace(gen_random_uuid()::text, '-', ''), 1, 16))"),
            nullable=False,
        ),
    )
    op.add_column("certificates", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("certificates", sa.Column("revoked_by", sa.String(length=255), nullable=True))
    op.add_column("certificates", sa.Column("revoke_reason", sa.Text(), nullable=True))
    op.add_column("certificates", sa.Column("diploma_key", sa.Text(), nullable=True))
    op.add_column("certificates", sa.Column("diploma_digest", sa.String(length=64), nullable=True))
    op.add_column("certificates", sa.Column("diploma_bytes", sa.Integer(), nullable=True))
    op.drop_constraint(op.f("uq_certificates_enrollment_id"), "certificates", type_="unique")
    op.create_unique_constraint(op.f("uq_certificates_code"), "certificates", ["code"])
    op.create_unique_constraint(
        op.f("uq_certificates_enrollment_id_assessment_id"),
        "certificates",
        ["enrollment_id", "assessment_id"],
        postgresql_nulls_not_distinct=True,
    )
    op.create_foreign_key(
        op.f("fk_certificates_assessment_id_assessments"),
        "certificates",
        "assessments",
        ["assessment_id"],
        ["id"],
        ondelete="CASCADE",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_certificates_assessment_id_assessments"), "certificates", type_="foreignkey")
    op.execute("DELETE FROM certificates WHERE assessment_id IS NOT NULL")
    op.drop_constraint(op.f("uq_certificates_enrollment_id_assessment_id"), "certificates", type_="unique")
    op.drop_constraint(op.f("uq_certificates_code"), "certificates", type_="unique")
    op.create_unique_constraint(op.f("uq_certificates_enrollment_id"), "certificates", ["enrollment_id"])
    op.drop_column("certificates", "diploma_bytes")
    op.drop_column("certificates", "diploma_digest")
    op.drop_column("certificates", "diploma_key")
    op.drop_column("certificates", "revoke_reason")
    op.drop_column("certificates", "revoked_by")
    op.drop_column("certificates", "revoked_at")
    op.drop_column("certificates", "code")
    op.drop_column("certificates", "assessment_id")
    op.drop_constraint(
        op.f("fk_certificate_generations_assessment_id_assessments"), "certificate_generations", type_="foreignkey"
    )
    op.drop_column("certificate_generations", "assessment_id")
    op.drop_index("ix_candidate_letters_due", table_name="candidate_letters", postgresql_where="status = 'queued'")
    op.drop_table("candidate_letters")
    op.drop_index("ix_learner_documents_enrollment_id_id", table_name="learner_documents")
    op.drop_table("learner_documents")
    op.drop_table("certifications")
    op.drop_index(
        "ix_candidate_mailings_open",
        table_name="candidate_mailings",
        postgresql_where="status IN ('queued', 'preparing', 'sending')",
    )
    op.drop_index("ix_candidate_mailings_course_id_id", table_name="candidate_mailings")
    op.drop_table("candidate_mailings")
    op.drop_table("certificate_images")
