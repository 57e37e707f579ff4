"""Bulk score imports (CSV), run by the worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, LargeBinary, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.core.statuses import IMPORT_STATUSES, sql_in
from gradeflow.db.base import Base, CreatedAt, IdPk


class ScoreImport(Base):
    __tablename__ = "score_imports"
    __table_args__ = (CheckConstraint(sql_in("status", IMPORT_STATUSES), name="status"),)

    id: Mapped[IdPk]
    organization_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), server_default="queued")
    dry_run: Mapped[bool] = mapped_column(Boolean)
    file_name: Mapped[str | None] = mapped_column(String(255))
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONB)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
