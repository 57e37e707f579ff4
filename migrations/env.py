"""Alembic environment: async engine, URL from the one Settings object (or the Config's option)."""

from __future__ import annotations

import asyncio
import re

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from gradeflow.core.settings import get_settings, to_async_url
from gradeflow.db import models  # noqa: F401  (registers every table)
from gradeflow.db.base import Base

config = context.config
target_metadata = Base.metadata

# How long a migration's statement waits for a table's lock before the whole upgrade fails (and is rolled back:
# all pending revisions run in one transaction). Without it, an ALTER TABLE on attempts, item_scores,
# course_grades, audit_log or enrollments queued behind a long transaction would hold up every request touching
# the table until it got the lock. Run it again at a quieter moment, or wait longer with `-x lock_timeout=60s`
# (`0`: no limit).
LOCK_TIMEOUT = context.get_x_argument(as_dictionary=True).get("lock_timeout", "10s")
if not re.fullmatch(r"\d+(ms|s|min|h)?", LOCK_TIMEOUT):
    raise SystemExit(f"-x lock_timeout={LOCK_TIMEOUT!r}: a duration such as 10s, 500ms, 2min or 0")


def _url() -> str:
    return to_async_url(config.get_main_option("sqlalchemy.url") or get_settings().async_database_url)


def _bounded_lock_waits() -> None:
    context.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        _bounded_lock_waits()
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        _bounded_lock_waits()
        context.run_migrations()
else:
    asyncio.run(_run_async())
