"""Reading and staging candidate letters straight in the database, for the mailing tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text


async def letter_states(sessionmaker: Any, mailing_id: int) -> dict[str, tuple[str, str | None]]:
    """Each letter of the mailing by learner id: its status and error."""
    async with sessionmaker() as session:
        rows = await session.execute(
            text(
                "SELECT e.external_id, l.status, l.error FROM candidate_letters l"
                " JOIN enrollments e ON e.id = l.enrollment_id WHERE l.mailing_id = :m"
            ),
            {"m": mailing_id},
        )
    return {r[0]: (r[1], r[2]) for r in rows}


async def interrupt(sessionmaker: Any, mailing_id: int, learner: str) -> None:
    """Leave `learner`'s letter as a worker that died while sending it would: claimed an hour ago, sending."""
    async with sessionmaker() as session:
        await session.execute(
            text(
                "UPDATE candidate_letters l SET status = 'sending', claimed_at = now() - interval '1 hour'"
                " FROM enrollments e WHERE e.id = l.enrollment_id AND e.external_id = :l AND l.mailing_id = :m"
            ),
            {"m": mailing_id, "l": learner},
        )
        await session.commit()
