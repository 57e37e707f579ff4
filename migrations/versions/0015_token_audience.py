"""organizations: the audience (`aud`) user tokens must carry, when the organization sets one

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 23:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: tokens are not checked for an audience (as before this column existed).
    op.add_column("organizations", sa.Column("token_audience", sa.String(length=255), nullable=True))


def downgrade() -> None:
    op.drop_column("organizations", "token_audience")
