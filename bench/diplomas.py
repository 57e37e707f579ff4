"""Diplomas at size: 1,000 certificates of a course whose certification prints a logo and a signature.

Times, through the API and a worker process: the `certificates_zip` report (POST to succeeded: 1,000
diplomas drawn and zipped), against baselines timed in the same run: the `individual_reports_zip` of
the same 1,000 learners, and zipping 1,000 copies of one diploma drawn once (the ZIP's floor); then
`render_diplomas` storing each diploma (the certification put, to the last diploma's link ready).

    .venv/bin/python -m bench.diplomas [--certificates 1000]

Last line: certificates_zip_s=<s> goal_s=60. Goal: 1,000 diplomas zipped in under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import struct
import tempfile
import time
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from bench.common import api_server, wait_until_done, worker_process
from bench.report import timed_report
from gradeflow.certificates.service.diplomas import Diploma, Image
from gradeflow.certificates.writers.diplomas import diploma


def png(width: int, height: int, seed: int) -> bytes:
    """A photo-like PNG (noisy gradient: it compresses poorly, as a scanned signature or a logo does)."""
    rnd = random.Random(seed)
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            n = rnd.randrange(24)
            row += bytes(((x * 255 // width + n) % 256, (y * 255 // height + n) % 256, (128 + n) % 256))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


LOGO = png(480, 240, 1)
SIGNATURE = png(480, 120, 2)


CERTIFICATION = {
    "title": "Certificate of Achievement",
    "body": "In recognition of the knowledge and skills demonstrated throughout the course.",
    "language": "en",
    "signatory_name": "Grace Hopper",
    "signatory_title": "Dean of Studies",
    "logo_image": "logo",
    "signature_image": "signature",
}


async def seed(c: httpx.AsyncClient, database_url: str, certificates: int) -> None:
    """The course and its images through the API; learners and their certificates straight into the
    tables (set-up only). The certification comes last, in `run`: putting it has the worker draw every
    diploma, which is timed."""
    (
        await c.post("/v1/courses", json={"external_id": "big", "title": "Introduction to Thermodynamics"})
    ).raise_for_status()
    for name, content in (("logo", LOGO), ("signature", SIGNATURE)):
        r = await c.put(f"/v1/certificate-images/{name}", content=content, headers={"Content-Type": "image/png"})
        r.raise_for_status()
    conn = await asyncpg.connect(database_url)
    try:
        course = await conn.fetchval("SELECT id FROM courses WHERE external_id = 'big'")
        await conn.execute(
            """
            INSERT INTO enrollments (course_id, external_id, username, full_name, track, cohort)
            SELECT $1, 'u' || i, 'user' || i, 'Learner ' || i || ' Example', 'verified', 'first-thousand'
            FROM generate_series(1, $2) i
            """,
            course,
            certificates,
        )
        generation = await conn.fetchval(
            "INSERT INTO certificate_generations (course_id, eligible, created_by, created_at)"
            " VALUES ($1, $2, 'bench', now()) RETURNING id",
            course,
            certificates,
        )
        await conn.execute(
            """
            INSERT INTO certificates (course_id, enrollment_id, generation_id, type, reason, created_at)
            SELECT $1, e.id, $2, 'verified', 'passing', now() FROM enrollments e WHERE e.course_id = $1
            """,
            course,
            generation,
        )
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


def copies_floor(n: int) -> tuple[float, float]:
    """One diploma drawn once, then n copies of it zipped: (seconds to draw one, seconds to zip n)."""
    d = Diploma(
        certificate_id=1,
        learner="u1",
        name="Learner 1 Example",
        code="0123456789ABCDEF",
        issued_on=datetime.now(UTC).date(),
        course="Introduction to Thermodynamics",
        assessment=None,
        title="Certificate of Achievement",
        body="In recognition of the knowledge and skills demonstrated throughout the course.",
        language="en",
        signatory_name="Grace Hopper",
        signatory_title="Dean of Studies",
        logo=Image("a" * 64, "image/png", LOGO),
        signature=Image("b" * 64, "image/png", SIGNATURE),
        digest="x",
    )
    diploma(d)  # the fonts and the template loaded
    t0 = time.perf_counter()
    content = diploma(d)
    one = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        # Stored, as certificates_zip stores its diplomas (their images are compressed already).
        with zipfile.ZipFile(Path(folder) / "copies.zip", "w", compression=zipfile.ZIP_STORED) as archive:
            for i in range(n):
                archive.writestr(f"copy_{i}.pdf", content)
        return one, time.perf_counter() - t0


async def run(server: object, certificates: int) -> None:
    base_url, key, database_url, env = (getattr(server, a) for a in ("base_url", "key", "database_url", "env"))
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as c:
        with worker_process(env):
            await seed(c, database_url, certificates)
            print(
                f"certificates={certificates}, logo {len(LOGO) / 1e3:.0f} kB, signature {len(SIGNATURE) / 1e3:.0f} kB"
            )
            one, floor = copies_floor(certificates)
            drawn = f"one diploma drawn in-process (a second time: caches warm): {one * 1e3:.1f} ms"
            print(f"{drawn}; {certificates:,} copies zipped: {floor:.2f} s")

            # Putting the certification has the worker draw and store every diploma ahead of time.
            t0 = time.perf_counter()
            (await c.put("/v1/courses/big/certification", json=CERTIFICATION)).raise_for_status()
            last = f"/v1/courses/big/certificates/u{certificates}/diploma"
            await wait_until_done(c, last, lambda body: "running" if body.get("status") == "rendering" else "done")
            print(f"render_diplomas: {certificates:,} diplomas drawn and stored in {time.perf_counter() - t0:.2f} s")

            zip_s, z = await timed_report(c, "certificates_zip")
            with zipfile.ZipFile(io.BytesIO((await httpx.AsyncClient().get(z["download_url"])).content)) as archive:
                entries = len(archive.namelist())
            print(
                f"certificates_zip: {z['rows']:,} diplomas ({entries:,} entries)"
                f" in {zip_s:.2f} s ({z['bytes'] / 1e6:.1f} MB)"
            )

            base_s, b = await timed_report(c, "individual_reports_zip", cohort="first-thousand")
            print(f"baseline individual_reports_zip, same learners: {b['rows']:,} PDFs in {base_s:.2f} s")

    print(f"certificates_zip_s={zip_s:.2f} goal_s=60")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--certificates", type=int, default=1000)
    args = parser.parse_args()
    with api_server("gradeflow_bench_diplomas") as server:
        asyncio.run(run(server, args.certificates))


if __name__ == "__main__":
    main()
