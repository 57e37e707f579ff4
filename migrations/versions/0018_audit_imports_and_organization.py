"""audit log: the import an entry belongs to, and organization-level entries by organization

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 23:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # What an import changed is known by the import's own id, never by a request id a client can choose.
    op.add_column("audit_log", sa.Column("import_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_audit_log_import", "audit_log", ["import_id"], postgresql_where=sa.text("import_id IS NOT NULL")
    )
    op.create_index(
        "ix_audit_log_organization",
        "audit_log",
        ["organization_id", "id"],
        postgresql_where=sa.text("course_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_organization", table_name="audit_log")
    op.drop_index("ix_audit_log_import", table_name="audit_log")
    op.drop_column("audit_log", "import_id")
