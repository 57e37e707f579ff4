"""Migrations wait a bounded time for a table's lock (migrations/env.py): checked on the SQL alembic emits
offline, so no database is needed."""

from __future__ import annotations

import io


def upgrade_sql(revisions: str, **x: str) -> str:
    from alembic import command  # here, not at the top: only the process that runs these tests pays for it

    from gradeflow.db.migrate import alembic_config

    cfg = alembic_config("postgresql+asyncpg://nobody@127.0.0.1:1/offline")
    cfg.output_buffer = io.StringIO()
    cfg.cmd_opts = type("Options", (), {"x": [f"{k}={v}" for k, v in x.items()]})()  # as `alembic -x k=v`
    command.upgrade(cfg, revisions, sql=True)
    return cfg.output_buffer.getvalue()


def test_every_upgrade_sets_a_lock_timeout_before_its_first_statement() -> None:
    sql = upgrade_sql("0023:0024")
    statements = [s.strip() for s in sql.split(";") if s.strip() and not s.strip().startswith("--")]
    assert statements[:2] == ["BEGIN", "SET LOCAL lock_timeout = '10s'"]
    assert sql.index("lock_timeout") < sql.index("ALTER TABLE attempts")


def test_an_operator_may_wait_longer() -> None:
    assert "SET LOCAL lock_timeout = '2min'" in upgrade_sql("0023:0024", lock_timeout="2min")
