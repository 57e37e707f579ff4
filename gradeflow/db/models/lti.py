"""LTI 1.3 Advantage tools an organization registered, and the courses each may reach."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.db.base import Base, CreatedAt, IdPk


class LtiTool(Base):
    """A tool: how it proves who it is (its JWKS) and what it may do (scopes, courses)."""

    __tablename__ = "lti_tools"
    __table_args__ = (CheckConstraint("(jwks_url IS NULL) <> (jwks IS NULL)", name="jwks_source"),)

    id: Mapped[IdPk]
    organization_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # Ours, generated: the tool signs its client assertions with iss = sub = client_id.
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    deployment_id: Mapped[str] = mapped_column(String(64))
    # Exactly one of the two: where the tool publishes its keys, or the keys themselves.
    jwks_url: Mapped[str | None] = mapped_column(Text)
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The keys last fetched from jwks_url, and when.
    fetched_jwks: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # True: every course of the organization; otherwise the courses in lti_tool_courses.
    all_courses: Mapped[bool] = mapped_column(Boolean, server_default="true")
    # Bumped on every change, so issued access tokens re-read what they may do.
    revision: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LtiToolCourse(Base):
    """A course a tool registered for some courses may reach (its deployment)."""

    __tablename__ = "lti_tool_courses"
    __table_args__ = (Index("ix_lti_tool_courses_course_id", "course_id"),)

    tool_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("lti_tools.id", ondelete="CASCADE"), primary_key=True)
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)


class LtiAccessToken(Base):
    """An access token issued to a tool, by its secret's hash; it dies with its tool and is refused after expires_at.
    What it may do is the scopes granted at issue that the tool still holds, in the courses the tool may reach now."""

    __tablename__ = "lti_access_tokens"
    __table_args__ = (Index("ix_lti_access_tokens_tool_id_expires_at", "tool_id", "expires_at"),)

    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tool_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("lti_tools.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
