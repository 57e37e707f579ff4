"""Organizations (tenants) and their API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.db.base import Base, CreatedAt, IdPk


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[IdPk]
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The LMS signs user tokens with one of these; they are verification material, not our secrets.
    jwt_hs256_secret: Mapped[str | None] = mapped_column(Text)
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # When set, user tokens must name it in `aud`; when NULL their `aud` is not checked.
    token_audience: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("role IN ('admin', 'service')", name="role"),)

    id: Mapped[IdPk]
    organization_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[CreatedAt]
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
