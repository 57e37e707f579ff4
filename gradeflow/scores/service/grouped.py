"""Group commit for the score PUT's common case: the single-score writes that concurrent requests reach in
the same turn of the event loop go to the database together, as one statement (`repository.put_scores`:
one round trip, one commit), instead of one statement and one commit each.

Nothing waits to fill a group: a write joins the group that is forming and the group leaves at the end of
the loop's turn; while it is being written, the next one forms and leaves on another connection. Each
request is answered only once its group is committed. A group fails or succeeds whole (one statement): if it
fails, every request in it gets the error, and the fast lane then leaves each to the app, which does the
write again on its own (the PUT is idempotent) and answers any error itself. The same score twice in a
group cannot be (an upsert changes a row once): the later write waits for the earlier's group and joins
the next.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from gradeflow.scores.repository import scores as repository
from gradeflow.scores.repository.scores import AttemptScore, SingleScore

# A group's size cap: past it, the group leaves at once (bounded statements and arrays).
MAX_GROUP = 128

_Key = tuple[int, str, str]


def _future() -> asyncio.Future[AttemptScore | None]:
    return asyncio.get_running_loop().create_future()


@dataclass
class _Write:
    score: SingleScore
    done: asyncio.Future[AttemptScore | None] = field(default_factory=_future)


class GroupedWrites:
    """One per process (the API's lifespan makes it), on the engine's pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.forming: dict[_Key, _Write] = {}
        self.writing: set[asyncio.Task[None]] = set()  # referenced until done

    async def put(self, score: SingleScore) -> AttemptScore | None:
        """Write `score` with the others of its group: the score as staff see it, or None when it is not the
        common case (nothing written). Raises what writing the group raised."""
        key = (score.course_id, score.assessment, score.learner)
        while (earlier := self.forming.get(key)) is not None:
            await asyncio.wait([earlier.done])
        write = self.forming[key] = _Write(score)
        if len(self.forming) == 1:
            asyncio.get_running_loop().call_soon(self._send)
        elif len(self.forming) >= MAX_GROUP:
            self._send()
        return await write.done

    def _send(self) -> None:
        if not self.forming:
            return  # sent already, full
        group, self.forming = list(self.forming.values()), {}
        task = asyncio.ensure_future(self._write(group))
        self.writing.add(task)
        task.add_done_callback(self.writing.discard)

    async def _write(self, group: list[_Write]) -> None:
        try:
            async with self.engine.connect() as connection:
                driver = await repository.driver_connection(connection)
                results = await repository.put_scores(driver, [write.score for write in group])
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
