"""LTI 1.3 Advantage tools and the courses each may reach

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 19:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lti_tools",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("deployment_id", sa.String(length=64), nullable=False),
        sa.Column("jwks_url", sa.Text(), nullable=True),
        sa.Column("jwks", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("fetched_jwks", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("all_courses", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("(jwks_url IS NULL) <> (jwks IS NULL)", name=op.f("ck_lti_tools_jwks_source")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_lti_tools_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_tools")),
        sa.UniqueConstraint("client_id", name=op.f("uq_lti_tools_client_id")),
    )
    op.create_index(op.f("ix_lti_tools_organization_id"), "lti_tools", ["organization_id"], unique=False)
    op.create_table(
        "lti_tool_courses",
        sa.Column("tool_id", sa.BigInteger(), nullable=False),
        sa.Column("course_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_lti_tool_courses_course_id_courses"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tool_id"], ["lti_tools.id"], name=op.f("fk_lti_tool_courses_tool_id_lti_tools"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tool_id", "course_id", name=op.f("pk_lti_tool_courses")),
    )
    op.create_index("ix_lti_tool_courses_course_id", "lti_tool_courses", ["course_id"], unique=False)
    op.create_table(
        "lti_access_tokens",
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("tool_id", sa.BigInteger(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tool_id"], ["lti_tools.id"], name=op.f("fk_lti_access_tokens_tool_id_lti_tools"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("secret_hash", name=op.f("pk_lti_access_tokens")),
    )
    op.create_index(
        "ix_lti_access_tokens_tool_id_expires_at", "lti_access_tokens", ["tool_id", "expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_lti_access_tokens_tool_id_expires_at", table_name="lti_access_tokens")
    op.drop_table("lti_access_tokens")
    op.drop_index("ix_lti_tool_courses_course_id", table_name="lti_tool_courses")
    op.drop_table("lti_tool_courses")
    op.drop_index(op.f("ix_lti_tools_organization_id"), table_name="lti_tools")
    op.drop_table("lti_tools")
