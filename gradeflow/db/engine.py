"""Engine and session factory, built by the process that owns them (lifespan, worker startup)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from gradeflow.core.settings import Settings

# Per-connection scratch tables, created once when a connection opens (not on every request).
# ON COMMIT DELETE ROWS empties them at the end of every transaction.
SCRATCH_TABLES = [
    """
    CREATE TEMP TABLE IF NOT EXISTS score_in (
      rn int, earned numeric, possible numeric, source text, scored_by text, item_ext text,
      assessment_id bigint, a_possible numeric, enrollment_id bigint, item_id bigint, i_possible numeric,
      item_revision int, has_items bool, assessment_ext text, learner_ext text
    ) ON COMMIT DELETE ROWS
    """,
]


def make_engine(settings: Settings) -> AsyncEngine:
    # No pre-ping: a dropped connection fails its request with a 503 and is replaced, instead of
    # every request paying one more round trip.
    engine = create_async_engine(
        settings.async_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _scratch(dbapi_connection: Any, _record: Any) -> None:
        for ddl in SCRATCH_TABLES:
            dbapi_connection.run_async(lambda conn, ddl=ddl: conn.execute(ddl))

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
