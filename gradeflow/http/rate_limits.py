"""Per-credential rate limits, counted in Redis so that every API replica shares them.

One sliding-window counter per API key (or per LMS user, for user tokens) for each limit in
`GRADEFLOW_RATE_LIMIT` (e.g. "6000/minute;200/second"). Over the limit: 429 with Retry-After.
If Redis cannot be reached the request goes ahead (the limit protects the service, it must not
become the outage), and the failure is logged.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from gradeflow.access.identity import Principal
from gradeflow.core import metrics
from gradeflow.core.errors import RateLimited

log = logging.getLogger("gradeflow.api")


def _storage_uri(redis_url: str) -> str:
    if redis_url.startswith("unix://"):
        return "async+redis+" + redis_url
    return "async+" + redis_url


class RateLimiter:
    def __init__(self, redis_url: str, limits: str) -> None:
        self.items: list[RateLimitItem] = parse_many(limits) if limits.strip() else []
        self.storage = RedisStorage(_storage_uri(redis_url), implementation="redispy", key_prefix="gradeflow-rl")
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)

    async def check(self, principal: Principal) -> None:
        """Count one request of `principal`; RateLimited when a limit is used up."""
        if not self.items:
            return
        who = (str(principal.organization_id), principal.kind, principal.subject)
        try:
            for item in self.items:
                if not await self.strategy.hit(item, *who):
                    reset_time, _ = await self.strategy.get_window_stats(item, *who)
                    metrics.REJECTED.labels(reason="rate_limit").inc()
                    raise RateLimited(
                        f"More than {item} for this credential.",
                        retry_after=max(1, math.ceil(reset_time - time.time())),
                    )
        except RateLimited:
            raise
        except Exception as exc:  # an unreachable Redis must not stop the API
            log.warning("rate limit not checked: %s", type(exc).__name__)
