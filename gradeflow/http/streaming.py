"""Streamed bodies whose first chunk is built before the response starts, so an error in it (a bad
filter, a lost database) is still answered as problem+json instead of a broken download."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


async def primed(chunks: AsyncIterator[T]) -> AsyncIterator[T]:
    first = await anext(chunks, None)

    async def body() -> AsyncIterator[T]:
        if first is not None:
            yield first
        async for chunk in chunks:
            yield chunk

    return body()
