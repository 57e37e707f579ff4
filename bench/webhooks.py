"""Webhook delivery rate: N events owed to one fast local receiver, delivered by one worker.

    .venv/bin/python -m bench.webhooks [--events 5000]

Last line: deliveries_per_s=<n>. Goal >= 500 with one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import asyncpg
import httpx
from aiohttp import web

from bench.common import Server, api_server, worker_process
from gradeflow.devstack.infra import free_port


async def receiver(port: int) -> web.AppRunner:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def run(server: Server, events: int) -> None:
    port = free_port()
    runner = await receiver(port)
    headers = {"Authorization": f"Bearer {server.key}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as c:
        r = await c.post("/v1/webhooks", json={"url": f"http://127.0.0.1:{port}/hook", "events": ["grade.changed"]})
        r.raise_for_status()
    conn = await asyncpg.connect(server.database_url)
    try:
        org = await conn.fetchval("SELECT organization_id FROM webhooks LIMIT 1")
        await conn.execute(
            """
            WITH ev AS (
              INSERT INTO outbox_events (id, organization_id, type, data, created_at)
              SELECT 'evt_bench' || g, $1, 'grade.changed',
                     jsonb_build_object('course', 'c1', 'learner', 'u' || g, 'new', jsonb_build_object('percent', 80)),
                     now()
              FROM generate_series(1, $2) g RETURNING id)
            INSERT INTO webhook_deliveries (webhook_id, event_id, next_attempt_at)
            SELECT w.id, ev.id, now() FROM ev CROSS JOIN webhooks w
            """,
            org,
            events,
        )
        with worker_process({**os.environ, **server.env}):
            for _ in range(1200):  # 10 minutes at most
                if not await conn.fetchval("SELECT count(*) FROM webhook_deliveries WHERE status <> 'succeeded'"):
                    break
                await asyncio.sleep(0.5)
        first, last = await conn.fetchrow("SELECT min(at), max(at) FROM webhook_attempts")
    finally:
        await conn.close()
        await runner.cleanup()
    seconds = (last - first).total_seconds()
    print(f"events={events} one worker, receiver on loopback answering 204")
    print(f"first to last delivery: {seconds:.2f} s")
    print(f"deliveries_per_s={events / seconds:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    os.environ["GRADEFLOW_WEBHOOKS__ALLOW_PRIVATE"] = '["127.0.0.0/8"]'  # the receiver is on loopback
    with api_server("gradeflow_bench_webhooks") as server:
        asyncio.run(run(server, args.events))


if __name__ == "__main__":
    main()
