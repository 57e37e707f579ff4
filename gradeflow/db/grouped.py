"""Group commit: single-row writes that concurrent requests reach in the same turn of the event loop go to the
database together, as one statement (one round trip, one commit), instead of one statement and one commit each.
The score PUT's and the LTI score POST's common cases write this way (each domain's repository says how to write
a group: `write(driver, rows)` -> one result per row, in order).

Nothing waits to fill a group: a write joins the group that is forming, and the group leaves at the end of the
loop's turn; while it is being written, the next one forms and leaves on another connection. Each request is
answered only once its group is committed. A group fails or succeeds whole (one statement): if it fails, every
request in it gets the error, and its caller then takes its general path for each, which writes on its own and
answers any error itself. Two rows with the same key cannot share a group (an upsert changes a row once): the
later waits for the earlier's group and joins the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from gradeflow.core import metrics

Row = TypeVar("Row")
Result = TypeVar("Result")

# A group's size cap: past it, the group leaves at once (bounded statements and arrays).
MAX_GROUP = 128


def _future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


@dataclass
class _Write(Generic[Row, Result]):
    row: Row
    done: asyncio.Future[Result] = field(default_factory=_future)


class GroupCommit(Generic[Row, Result]):
    """One per process and kind of write (the API's lifespan makes them), on the engine's pool: `write` writes
    a group on an asyncpg connection outside any transaction (the statement is its own); `key` names what a
    row changes; `kind` names the writes in the group-size metric."""

    def __init__(
        self,
        kind: str,
        engine: AsyncEngine,
        write: Callable[[Any, list[Row]], Awaitable[list[Result]]],
        key: Callable[[Row], Hashable],
    ) -> None:
        self.engine, self.write, self.key = engine, write, key
        self.sizes = metrics.GROUP_ROWS.labels(kind=kind)  # the metric of `kind`'s group sizes
        self.forming: dict[Hashable, _Write[Row, Result]] = {}
        self.writing: set[asyncio.Task[None]] = set()  # referenced until done

    async def put(self, row: Row) -> Result:
        """Write `row` with the others of its group: its result. Raises what writing the group raised."""
        key = self.key(row)
        while (earlier := self.forming.get(key)) is not None:
            await asyncio.wait([earlier.done])
        write: _Write[Row, Result] = _Write(row)
        self.forming[key] = write
        if len(self.forming) == 1:
            asyncio.get_running_loop().call_soon(self._send)
        elif len(self.forming) >= MAX_GROUP:
            self._send()
        return await write.done

    def _send(self) -> None:
        if not self.forming:
            return  # sent already, full
        group, self.forming = list(self.forming.values()), {}
        self.sizes.observe(len(group))
        task = asyncio.ensure_future(self._write(group))
        self.writing.add(task)
        task.add_done_callback(self.writing.discard)

    async def _write(self, group: list[_Write[Row, Result]]) -> None:
        try:
            async with self.engine.connect() as connection:
                results = await self.write(await driver_connection(connection), [write.row for write in group])
        except BaseException as exc:
            failed = exc if isinstance(exc, Exception) else RuntimeError("the group's write was cancelled")
            for write in group:
                if not write.done.done():
                    write.done.set_exception(failed)
            if failed is not exc:
                raise
            return
        for write, result in zip(group, results, strict=True):
            if not write.done.done():  # its request may have gone away meanwhile
                write.done.set_result(result)


def columns(rows: Sequence[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    """Rows' values as one list per column: a group statement's array parameters."""
    return tuple(list(column) for column in zip(*rows, strict=True))


async def fetch_in(session: AsyncSession, sql: str, rows: Sequence[tuple[Any, ...]]) -> list[Mapping[Any, Any]]:
    """A group statement's answer for `rows` outside a group: in the session's transaction when it has one (never on
    a second connection: a request holding one connection and waiting for another could exhaust the pool), which
    the caller commits; else on a connection of the pool, as its own transaction."""
    if session.in_transaction():
        result = await (await session.connection()).exec_driver_sql(sql, columns(rows))
        return list(result.mappings())
    engine = session.bind
    assert isinstance(engine, AsyncEngine)
    async with engine.connect() as connection:
        return list(await (await driver_connection(connection)).fetch(sql, *columns(rows)))


async def driver_connection(connection: AsyncConnection) -> Any:
    """The driver's own connection under `connection`, outside any transaction (asyncpg runs a statement as its
    own transaction then): SQLAlchemy starts none as long as nothing runs through it, so the pool takes the
    connection back without a round trip."""
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    return driver
