"""LTI AGS score posts against the native single score PUT, in the same run against the same `gradeflow api`.

A registered tool (inline JWKS) takes an access token once at POST /lti/token and posts scores with it
(`POST /lti/courses/bench/lineitems/{id}/scores`, application/vnd.ims.lis.v1.score+json, each learner once, a
score out of 100 on a line item of 100 points, timestamps increasing); the native client PUTs the same number
of single scores (`PUT /v1/courses/bench/assessments/a{n}/scores/u{n}`) with the organization's API key. Both
from the same lean keep-alive clients (bench/ingest.py put_latency: a plain asyncio stream per connection),
interleaved in halves (native, AGS, native, AGS) so a load change on a shared machine reaches both.

    .venv/bin/python -m bench.lti [--posts 10000] [--learners 12000] [--clients 32] [--workers 2]

Last line: lti_ratio=<AGS score POST/s / native single PUT/s> (goal >= 0.8), after both one's p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import asyncpg
import httpx
import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.common import Request, Server, api_server, drive, figures, mean_group
from bench.ingest import score_put

SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
BATCH = 10_000


async def setup(c: httpx.AsyncClient, learners: int) -> None:
    (await c.post("/v1/courses", json={"external_id": "bench", "title": "Bench"})).raise_for_status()
    for a in range(3):
        body = {"external_id": f"a{a}", "title": f"A{a}", "category": "Homework", "points_possible": 100}
        (await c.post("/v1/courses/bench/assessments", json=body)).raise_for_status()
    for start in range(0, learners, BATCH):
        rows = [{"external_id": f"u{i}"} for i in range(start, min(learners, start + BATCH))]
        (await c.post("/v1/courses/bench/enrollments:batch", json={"enrollments": rows})).raise_for_status()
    policy = {
        "categories": [{"name": "Homework", "weight": 1, "drop_lowest": 1}, {"name": "LTI", "weight": 1}],
        "cutoffs": [{"grade": "P", "min": 0.5}, {"grade": "F", "min": 0}],
    }
    (await c.put("/v1/courses/bench/policy", json=policy)).raise_for_status()


async def tool_token(c: httpx.AsyncClient) -> tuple[str, str]:
    """Register a tool, take its access token as the tool does (RFC 7523 client assertion), create its line item:
    (token, line item URL path)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    r = await c.post("/v1/lti/tools", json={"name": "Bench tool", "jwks": {"keys": [{**jwk, "kid": "k1"}]}})
    r.raise_for_status()
    tool = r.json()
    now = int(time.time())
    claims = {"iss": tool["client_id"], "sub": tool["client_id"], "aud": tool["token_url"]}
    assertion = jwt.encode(
        {**claims, "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}, key, algorithm="RS256", headers={"kid": "k1"}
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        "scope": f"{SCORE_SCOPE} {LINEITEM_SCOPE}",
    }
    async with httpx.AsyncClient(base_url=str(c.base_url), timeout=120) as as_tool:
        r = await as_tool.post("/lti/token", data=form)
        r.raise_for_status()
        token = r.json()["access_token"]
        r = await as_tool.post(
            "/lti/courses/bench/lineitems",
            content=orjson.dumps({"label": "Bench quiz", "scoreMaximum": 100}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/vnd.ims.lis.v2.lineitem+json"},
        )
        r.raise_for_status()
    return token, urlsplit(r.json()["id"]).path


async def run(server: Server, args: argparse.Namespace) -> None:
    headers = {"Authorization": f"Bearer {server.key}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=120) as c:
        await setup(c, args.learners)
        token, line_item = await tool_token(c)
    conn = await asyncpg.connect(server.database_url)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    learners = args.learners
    start = datetime.now(UTC)

    native = score_put(server, learners)

    def ags(n: int) -> Request:
        body = {
            "userId": f"u{(n * 31) % learners}",
            "scoreGiven": n % 100,
            "scoreMaximum": 100,
            "activityProgress": "Completed",
            "gradingProgress": "FullyGraded",
            "timestamp": (start + timedelta(milliseconds=n)).isoformat(timespec="milliseconds"),
        }
        return "POST", f"{line_item}/scores", token, SCORE_TYPE, orjson.dumps(body)

    warm = 500
    await drive(server, range(warm), args.clients, native)
    await drive(server, range(warm), args.clients, ags)
    measured: dict[str, tuple[list[float], float]] = {"native": ([], 0.0), "ags": ([], 0.0)}
    half = args.posts // 2
    cpu = {"native": 0.0, "ags": 0.0}
    for part in range(2):
        numbers = range(warm + part * half, warm + (part + 1) * half)
        for name, request_for in (("native", native), ("ags", ags)):
            used = server.cpu_seconds()
            latencies, elapsed = await drive(server, numbers, args.clients, request_for)
            cpu[name] += server.cpu_seconds() - used
            measured[name] = (measured[name][0] + latencies, measured[name][1] + elapsed)
    native_rate = figures(f"native single PUT ({args.workers} workers)", *measured["native"], args.clients)
    ags_rate = figures(f"AGS score POST ({args.workers} workers)", *measured["ags"], args.clients)
    for name in ("native", "ags"):
        print(f"API CPU per {name} request: {cpu[name] / len(measured[name][0]) * 1000:.2f} ms")
    groups = {kind: await mean_group(server, kind) for kind in ("score_put", "lti_score_post")}
    print(f"writes per group commit (one API process): native {groups['score_put']}, AGS {groups['lti_score_post']}")
    print(f"lti_ratio={ags_rate / native_rate:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--learners", type=int, default=12_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    args = parser.parse_args()
    if args.learners <= args.posts + 500:
        parser.error("--learners must exceed --posts + 500 (each learner is posted to once)")
    with api_server("gradeflow_bench_lti", workers=args.workers) as server:
        asyncio.run(run(server, args))


if __name__ == "__main__":
    main()
