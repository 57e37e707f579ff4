"""One look-up at a time per key: concurrent callers asking for the same key while it is being looked up share
that one look-up (the fast lanes' credential checks, when their one-second cache entry has just ended)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class SingleFlight(Generic[Value]):
    def __init__(self) -> None:
        self.flights: dict[Hashable, asyncio.Future[Value]] = {}

    async def do(self, key: Hashable, look_up: Callable[[], Awaitable[Value]]) -> Value:
        """`look_up()`'s value, from the look-up of `key` in flight if there is one."""
        flight = self.flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(look_up())
            self.flights[key] = flight
            flight.add_done_callback(lambda _: self.flights.pop(key, None))
        # Shielded: one caller going away does not cancel the look-up the others wait for.
        return await asyncio.shield(flight)
