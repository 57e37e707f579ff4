"""The operators' docs page, opened in headless Chromium (Debian's package) with the network cut
off but for loopback: every asset comes from the app, and Swagger UI lists every operation."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import httpx

# Everything that is not loopback (bypassed implicitly) goes to a dead proxy and resolves nowhere.
OFFLINE = [
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


async def _chromium(*args: str) -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Debian's chromium package is missing (make test installs it)"
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--virtual-time-budget=15000",
        *OFFLINE,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=90)
    return out.decode(errors="replace")


async def test_docs_page_renders_every_operation_offline(live_api: str, tmp_path: Path) -> None:
    async with httpx.AsyncClient() as http:
        document = (await http.get(f"{live_api}/openapi.json")).json()
    operations = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    events = sum(len(ops) for ops in document.get("webhooks", {}).values())  # listed as operations too
    dom = await _chromium("--dump-dom", f"{live_api}/docs")
    shown = set(re.findall(r'data-path="([^"]+)"', dom)) | set(
        re.findall(r'class="opblock-summary-path"[^>]*>\s*<a[^>]*><span>([^<]+)</span>', dom)
    )
    methods = re.findall(r'class="opblock-summary-method">([A-Z]+)<', dom)
    assert "Gradeflow" in dom and "swagger-ui" in dom
    assert len(methods) == len(operations) + events, f"{len(methods)} shown of {len(operations)} + {events}"
    assert {p for _, p in operations} <= {s.replace("\u200b", "") for s in shown}
    shot = tmp_path / "docs.png"
    await _chromium(f"--screenshot={shot}", "--window-size=1280,2000", f"{live_api}/docs")
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
