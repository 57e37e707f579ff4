"""people and certificates: learners across courses, the staff directory, enrollment names, ID
verification and experiment groups, the certificate allow list and generations

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 03:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("enrollments", sa.Column("given_name", sa.String(255), nullable=True))
    op.add_column("enrollments", sa.Column("family_name", sa.String(255), nullable=True))
    op.add_column(
        "enrollments", sa.Column("id_verified", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.add_column(
        "enrollments",
        sa.Column("experiment_groups", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
    )

    op.create_table(
        "learners",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_learners_organization_id_organizations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_learners"),
        sa.UniqueConstraint("organization_id", "external_id", name="uq_learners_organization_id_external_id"),
    )
    # Every enrollment's learner exists, whichever path enrolled them (one statement per batch).
    op.execute(
        """
        CREATE FUNCTION learners_of_new_enrollments() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO learners (organization_id, external_id)
          SELECT DISTINCT c.organization_id, n.external_id FROM new_enrollments n JOIN courses c ON c.id = n.course_id
          ON CONFLICT DO NOTHING;
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER enrollments_learners AFTER INSERT ON enrollments
        REFERENCING NEW TABLE AS new_enrollments FOR EACH STATEMENT EXECUTE FUNCTION learners_of_new_enrollments()
        """
    )
    op.execute(
        """
        INSERT INTO learners (organization_id, external_id)
        SELECT DISTINCT c.organization_id, e.external_id FROM enrollments e JOIN courses c ON c.id = e.course_id
        ORDER BY 1, 2 ON CONFLICT DO NOTHING
        """
    )

    op.create_table(
        "staff",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("username", sa.String(255), nullable=True),
        sa.Column("name", sa.String(500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name="fk_staff_organization_id_organizations", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_staff"),
        sa.UniqueConstraint("organization_id", "user_id", name="uq_staff_organization_id_user_id"),
    )

    op.create_table(
        "certificate_allowlist",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("course_id", sa.BigInteger(), nullable=False),
        sa.Column("enrollment_id", sa.BigInteger(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name="fk_certificate_allowlist_course_id_courses", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name="fk_certificate_allowlist_enrollment_id_enrollments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_certificate_allowlist"),
        sa.UniqueConstraint("enrollment_id", name="uq_certificate_allowlist_enrollment_id"),
    )
    op.create_index("ix_certificate_allowlist_course_id", "certificate_allowlist", ["course_id"])

    op.create_table(
        "certificate_generations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("course_id", sa.BigInteger(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("eligible", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name="fk_certificate_generations_course_id_courses", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_certificate_generations"),
    )
    op.create_index("ix_certificate_generations_course_id", "certificate_generations", ["course_id"])

    op.create_table(
        "certificates",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("course_id", sa.BigInteger(), nullable=False),
        sa.Column("enrollment_id", sa.BigInteger(), nullable=False),
        sa.Column("generation_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("reason IN ('passing', 'allowlist')", name="ck_certificates_reason"),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name="fk_certificates_course_id_courses", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"], ["enrollments.id"], name="fk_certificates_enrollment_id_enrollments", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["certificate_generations.id"],
            name="fk_certificates_generation_id_certificate_generations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_certificates"),
        sa.UniqueConstraint("enrollment_id", name="uq_certificates_enrollment_id"),
    )
    op.create_index("ix_certificates_course_id_enrollment_id", "certificates", ["course_id", "enrollment_id"])


def downgrade() -> None:
    op.drop_table("certificates")
    op.drop_table("certificate_generations")
    op.drop_table("certificate_allowlist")
    op.drop_table("staff")
    op.execute("DROP TRIGGER enrollments_learners ON enrollments")
    op.execute("DROP FUNCTION learners_of_new_enrollments()")
    op.drop_table("learners")
    op.drop_column("enrollments", "experiment_groups")
    op.drop_column("enrollments", "id_verified")
    op.drop_column("enrollments", "family_name")
    op.drop_column("enrollments", "given_name")
