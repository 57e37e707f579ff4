"""Reading ahead: chunks produced while the one before is consumed, by one reader or several sessions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.readside.repository.learners import Bounds

T = TypeVar("T")
_END = object()


async def ahead(source: AsyncIterator[T]) -> AsyncIterator[T]:
    """Run `source` one item ahead of the consumer, so producing the next item (waiting on the
    database) overlaps consuming this one (in a thread)."""
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)

    async def fill() -> None:
        try:
            async for item in source:
                await queue.put(item)
            await queue.put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            await queue.put(exc)

    task = asyncio.create_task(fill())
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def in_parallel(
    sessions: Sequence[AsyncSession], work: Sequence[Bounds], read: Callable[[AsyncSession, Bounds], Awaitable[T]]
) -> AsyncIterator[T]:
    """`read(session, bounds)` for every chunk, each session reading its share one chunk after the
    other, results yielded in the chunks' order. A session reads its next chunk once the consumer
    has taken its last one, so no more chunks than sessions wait in memory."""
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue(maxsize=1) for _ in sessions]

    async def reader(k: int) -> None:
        try:
            for bounds in work[k :: len(sessions)]:
                await queues[k].put(await read(sessions[k], bounds))
                await queues[k].join()
        except BaseException as exc:  # handed to the consumer, raised there
            await queues[k].put(exc)

    tasks = [asyncio.create_task(reader(k)) for k in range(len(sessions))]
    try:
        for i in range(len(work)):
            item = await queues[i % len(sessions)].get()
            queues[i % len(sessions)].task_done()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
