"""People across an organization's courses: learners (one id however many courses they take) and
the staff directory (what a user's token said of them: the names reports print beside their id)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.db.base import Base, IdPk

ExternalId = String(255)


class Learner(Base):
    """One learner of an organization: its id is stable across courses (Inspera's `UserID`).

    Rows are added by a trigger on enrollments (migration 0019), so no write path has to remember."""

    __tablename__ = "learners"
    __table_args__ = (UniqueConstraint("organization_id", "external_id"),)

    id: Mapped[IdPk]
    organization_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(ExternalId)


class StaffMember(Base):
    """A staff user of an organization as its tokens describe them (`preferred_username`, `name`)."""

    __tablename__ = "staff"
    __table_args__ = (UniqueConstraint("organization_id", "user_id"),)

    id: Mapped[IdPk]
    organization_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ExternalId)
    username: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
