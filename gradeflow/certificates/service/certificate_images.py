"""Certificate images: an organization's logos and signatures, uploaded once, kept in object storage and
named by certifications (their diplomas print them).

An upload is decoded before it is kept (a PNG or a JPEG of sensible size, whose bytes say what its
Content-Type says), so a diploma never fails on an image later. The object's key holds the image's
sha256: replacing an image writes a new object, and a diploma's digest, which reads the sha256, sees
the change. Every change is on the organization's audit trail (no course)."""

from __future__ import annotations

import asyncio
import hashlib
import io
from datetime import timedelta
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow import jobs
from gradeflow.audit import service as audit
from gradeflow.certificates.service import diplomas
from gradeflow.core import clock
from gradeflow.core.errors import Conflict, NotFound, TooLarge, UnsupportedMediaType, ValidationFailed
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.storage.s3 import ObjectStore

MAX_BYTES = 2 * 1024 * 1024
MAX_SIDE = 4096  # pixels: more than a diploma can print
# Pixels in all: what decoding may take (Pillow holds at most 4 bytes a pixel: 64 MB), read from the
# header before the image is decoded. 4000 x 4000 fits; 4096 x 4096 does not.
MAX_PIXELS = 16_000_000
CONTENT_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}  # what Pillow calls each format
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg"}

_COLUMNS = "id, name, content_type, bytes, width, height, sha256, uploaded_by, uploaded_at"


def media_type(header: str | None) -> str:
    """The body's media type from its Content-Type header (parameters dropped); 415 unless PNG or JPEG."""
    kind = (header or "").split(";", 1)[0].strip().lower()
    if kind not in CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"Send the image as the raw body with Content-Type image/png or image/jpeg (not {kind or 'none'!r})."
        )
    return kind


def _decode(data: bytes, content_type: str) -> tuple[int, int]:
    """The image's width and height, once the whole image has decoded as `content_type` says."""
    try:
        with Image.open(io.BytesIO(data), formats=[CONTENT_TYPES[content_type]]) as image:
            width, height = image.size
            # From the header: nothing is decoded yet.
            if width > MAX_SIDE or height > MAX_SIDE:
                raise ValidationFailed.one("", f"The image is {width}x{height} pixels; at most {MAX_SIDE} a side.")
            if width * height > MAX_PIXELS:
                raise ValidationFailed.one(
                    "", f"The image is {width}x{height} pixels; at most {MAX_PIXELS:,} pixels in all."
                )
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, ValidationFailed):
            raise
        raise ValidationFailed.one("", f"The body is not a readable {content_type} image.") from exc
    return width, height


async def put(
    session: AsyncSession,
    store: ObjectStore,
    queue: jobs.Queue,
    organization_id: int,
    name: str,
    content_type: str,
    data: bytes,
    actor: str,
) -> dict[str, Any]:
    """Upload or replace the organization's image `name`. The same bytes again change nothing. A
    replaced image changes the diplomas of every certification printing it: those courses' diplomas
    are rendered again ahead of time."""
    if len(data) > MAX_BYTES:
        raise TooLarge(f"An image is at most {MAX_BYTES} bytes ({len(data)} sent).")
    if not data:
        raise ValidationFailed.one("", "The body is empty: send the image.")
    width, height = await asyncio.to_thread(_decode, data, content_type)
    sha256 = hashlib.sha256(data).hexdigest()
    key = f"certificate-images/{organization_id}/{sha256}.{EXTENSIONS[content_type]}"
    old = await _get(session, organization_id, name, lock=True)
    if old is not None and (old["sha256"], old["content_type"]) == (sha256, content_type):
        await session.commit()
        return old
    # The object first: a row never names an object that is not there (an orphan object is harmless).
    await store.put_bytes(key, data, content_type)
    new = {
        "content_type": content_type,
        "bytes": len(data),
        "width": width,
        "height": height,
        "sha256": sha256,
    }
    await session.execute(
        text(
            """
            INSERT INTO certificate_images AS i (organization_id, name, content_type, bytes, width, height, sha256,
                                                 object_key, uploaded_by, uploaded_at)
            VALUES (:o, :name, :content_type, :bytes, :width, :height, :sha256, :key, :actor, :now)
            ON CONFLICT ON CONSTRAINT uq_certificate_images_organization_id_name DO UPDATE SET
              content_type = excluded.content_type, bytes = excluded.bytes, width = excluded.width,
              height = excluded.height, sha256 = excluded.sha256, object_key = excluded.object_key,
              uploaded_by = excluded.uploaded_by, uploaded_at = excluded.uploaded_at
            """
        ),
        {"o": organization_id, "name": name, **new, "key": key, "actor": actor, "now": clock.now()},
    )
    await audit.record(
        session,
        organization_id,
        None,
        actor,
        "certificate_image.set",
        old=None if old is None else {"name": name, **{k: old[k] for k in new}},
        new={"name": name, **new},
    )
    printing = await _courses_printing(session, organization_id, name)
    await session.commit()
    await diplomas.request_render_of_courses(queue, printing)
    if old is not None:
        await _forget(session, store, old["object_key"])
    found = await _get(session, organization_id, name)
    assert found is not None
    return found


async def _courses_printing(session: AsyncSession, organization_id: int, name: str) -> list[int]:
    """The courses with valid certificates whose certifications print the image `name`."""
    rows = await session.scalars(
        text(
            """
            SELECT DISTINCT x.course_id FROM certifications x JOIN courses c ON c.id = x.course_id
            WHERE c.organization_id = :o AND (x.logo_image = :n OR x.signature_image = :n)
              AND EXISTS (SELECT 1 FROM certificates k WHERE k.course_id = x.course_id
                          AND k.assessment_id IS NOT DISTINCT FROM x.assessment_id AND k.revoked_at IS NULL)
            ORDER BY x.course_id
            """
        ),
        {"o": organization_id, "n": name},
    )
    return list(rows)


async def _get(session: AsyncSession, organization_id: int, name: str, lock: bool = False) -> dict[str, Any] | None:
    sql = f"SELECT {_COLUMNS}, object_key FROM certificate_images WHERE organization_id = :o AND name = :n"  # noqa: S608
    row = (
        (await session.execute(text(sql + (" FOR UPDATE" if lock else "")), {"o": organization_id, "n": name}))
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


async def get(
    session: AsyncSession, store: ObjectStore, organization_id: int, name: str, actor: str, link_seconds: int
) -> dict[str, Any]:
    """The image's description with a download link minted now (valid `link_seconds`, never stored);
    its issuance is audited, as a report's is."""
    row = await _get(session, organization_id, name)
    if row is None:
        raise NotFound(f"Certificate image {name!r} not found.")
    issued = clock.now()
    url = await store.presign_get(row["object_key"], link_seconds, f"{name}.{EXTENSIONS[row['content_type']]}")
    await audit.record(
        session,
        organization_id,
        None,
        actor,
        "certificate_image.link_issued",
        new={"name": name, "sha256": row["sha256"], "valid_seconds": link_seconds},
    )
    await session.commit()
    return {**row, "download_url": url, "download_expires_at": issued + timedelta(seconds=link_seconds)}


async def list_images(session: AsyncSession, organization_id: int, limit: int, cursor: str | None) -> Page[Any]:
    """The organization's images in the order they were first uploaded (no links: read one for its link)."""
    rows = await session.execute(
        text(
            f"SELECT {_COLUMNS} FROM certificate_images WHERE organization_id = :o AND id > :after"  # noqa: S608
            " ORDER BY id LIMIT :lim"
        ),
        {"o": organization_id, "after": last_id_after(cursor), "lim": limit + 1},
    )
    return page_of([dict(r) for r in rows.mappings()], limit, lambda r: r["id"])


async def delete(session: AsyncSession, store: ObjectStore, organization_id: int, name: str, actor: str) -> None:
    """Remove an image: 404 when there is none of that name, 409 while a certification prints it (so
    no diploma changes when it goes: nothing to render again)."""
    row = await _get(session, organization_id, name, lock=True)
    if row is None:
        raise NotFound(f"Certificate image {name!r} not found.")
    users = (
        await session.execute(
            text(
                """
                SELECT c.external_id AS course, a.external_id AS assessment
                FROM certifications x JOIN courses c ON c.id = x.course_id
                LEFT JOIN assessments a ON a.id = x.assessment_id
                WHERE c.organization_id = :o AND (x.logo_image = :n OR x.signature_image = :n)
                ORDER BY c.external_id, a.external_id NULLS FIRST
                """
            ),
            {"o": organization_id, "n": name},
        )
    ).all()
    if users:
        named = ", ".join(
            course if assessment is None else f"{course} ({assessment})" for course, assessment in users[:5]
        )
        raise Conflict(
            f"{len(users)} certification{'s' if len(users) != 1 else ''} print{'' if len(users) != 1 else 's'}"
            f" the image {name!r} ({named}): change them first.",
            extra={"certifications": len(users)},
        )
    await session.execute(text("DELETE FROM certificate_images WHERE id = :id"), {"id": row["id"]})
    await audit.record(
        session,
        organization_id,
        None,
        actor,
        "certificate_image.deleted",
        old={"name": name, **{k: row[k] for k in ("content_type", "bytes", "width", "height", "sha256")}},
    )
    await session.commit()
    await _forget(session, store, row["object_key"])


async def _forget(session: AsyncSession, store: ObjectStore, key: str) -> None:
    """Delete an object no image names any more (the same bytes under two names share one)."""
    named = await session.scalar(text("SELECT 1 FROM certificate_images WHERE object_key = :k LIMIT 1"), {"k": key})
    await session.commit()
    if named is None:
        await store.delete(key)
