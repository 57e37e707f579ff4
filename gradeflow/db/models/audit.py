"""The audit log: append-only (a trigger refuses UPDATE, DELETE and TRUNCATE)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.db.base import Base


class AuditEntry(Base):
    """Who changed what, when, from which value to which. No foreign keys: entries outlive rows."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_course", "course_id", "id"),
        Index("ix_audit_log_course_learner", "course_id", "learner", "id"),
        Index("ix_audit_log_import", "import_id", postgresql_where=text("import_id IS NOT NULL")),
        Index("ix_audit_log_organization", "organization_id", "id", postgresql_where=text("course_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    organization_id: Mapped[int] = mapped_column(BigInteger)
    course_id: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    learner: Mapped[str | None] = mapped_column(String(255))
    assessment: Mapped[str | None] = mapped_column(String(255))
    item: Mapped[str | None] = mapped_column(String(255))
    old: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    new: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The score import whose applying wrote the entry (what its revert undoes).
    import_id: Mapped[int | None] = mapped_column(BigInteger)
