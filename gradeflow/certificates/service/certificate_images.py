"""Certificate images: an organization's logos and signatures, uploaded once, kept in object storage and
named by certifications (their diplomas print them).

An upload is decoded before it is kept (a PNG or a JPEG of sensible size, whose bytes say what its
Content-Type says), so a diploma never fails on an image later. The object's key holds the image's
sha256: replacing an image writes a new object, and a diploma's digest, which reads the sha256, sees
the change. Every change is on the organization's audit trail (no course)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
from dataclasses import dataclass
from datetime import datetime, timedelta

from PIL import Image, UnidentifiedImageError
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow import jobs
from gradeflow.audit import service as audit
from gradeflow.certificates.repository import images as repository
from gradeflow.certificates.repository.images import ImageRow, Upload
from gradeflow.certificates.service import diplomas
from gradeflow.core import clock
from gradeflow.core.errors import Conflict, NotFound, TooLarge, UnsupportedMediaType, ValidationFailed
from gradeflow.core.paging import Page
from gradeflow.storage.s3 import ObjectStore

MAX_BYTES = 2 * 1024 * 1024
MAX_SIDE = 4096  # pixels: more than a diploma can print
# Pixels in all: what decoding may take (Pillow holds at most 4 bytes a pixel: 64 MB), read from the
# header before the image is decoded. 4000 x 4000 fits; 4096 x 4096 does not.
MAX_PIXELS = 16_000_000
CONTENT_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}  # what Pillow calls each format
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg"}


@dataclass(frozen=True, slots=True)
class _Audited(Upload):
    """What an image's audit entries say of it."""

    name: str


@dataclass(frozen=True, slots=True)
class ImageLink(ImageRow):
    """An image with a download link minted for this answer (never stored)."""

    download_url: str
    download_expires_at: datetime


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
) -> ImageRow:
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
    old = await repository.image_named(session, organization_id, name, lock=True)
    if old is not None and (old.sha256, old.content_type) == (sha256, content_type):
        await session.commit()
        return old
    # The object first: a row never names an object that is not there (an orphan object is harmless).
    await store.put_bytes(key, data, content_type)
    upload = Upload(content_type=content_type, bytes=len(data), width=width, height=height, sha256=sha256)
    await repository.save_image(session, organization_id, name, upload, key, actor, clock.now())
    await audit.record(
        session,
        organization_id,
        None,
        actor,
        "certificate_image.set",
        old=None if old is None else _audited(name, old),
        new=_audited(name, upload),
    )
    printing = await repository.courses_printing(session, organization_id, name)
    await session.commit()
    await diplomas.request_render_of_courses(queue, printing)
    if old is not None:
        await _forget(session, store, old.object_key)
    found = await repository.image_named(session, organization_id, name)
    assert found is not None
    return found


def _audited(name: str, image: Upload) -> _Audited:
    return _Audited(**{f.name: getattr(image, f.name) for f in dataclasses.fields(Upload)}, name=name)


async def get(
    session: AsyncSession, store: ObjectStore, organization_id: int, name: str, actor: str, link_seconds: int
) -> ImageLink:
    """The image's description with a download link minted now (valid `link_seconds`, never stored);
    its issuance is audited, as a report's is."""
    row = await repository.image_named(session, organization_id, name)
    if row is None:
        raise NotFound(f"Certificate image {name!r} not found.")
    issued = clock.now()
    url = await store.presign_get(row.object_key, link_seconds, f"{name}.{EXTENSIONS[row.content_type]}")
    await audit.record(
        session,
        organization_id,
        None,
        actor,
        "certificate_image.link_issued",
        new={"name": name, "sha256": row.sha256, "valid_seconds": link_seconds},
    )
    await session.commit()
    return ImageLink(
        **dataclasses.asdict(row), download_url=url, download_expires_at=issued + timedelta(seconds=link_seconds)
    )


async def list_images(session: AsyncSession, organization_id: int, limit: int, cursor: str | None) -> Page[ImageRow]:
    """The organization's images in the order they were first uploaded (no links: read one for its link)."""
    return await repository.images(session, organization_id, limit, cursor)


async def delete(session: AsyncSession, store: ObjectStore, organization_id: int, name: str, actor: str) -> None:
    """Remove an image: 404 when there is none of that name, 409 while a certification prints it (so
    no diploma changes when it goes: nothing to render again)."""
    row = await repository.image_named(session, organization_id, name, lock=True)
    if row is None:
        raise NotFound(f"Certificate image {name!r} not found.")
    users = await repository.certifications_printing(session, organization_id, name)
    if users:
        named = ", ".join(u.course if u.assessment is None else f"{u.course} ({u.assessment})" for u in users[:5])
        raise Conflict(
            f"{len(users)} certification{'s' if len(users) != 1 else ''} print{'' if len(users) != 1 else 's'}"
            f" the image {name!r} ({named}): change them first.",
            extra={"certifications": len(users)},
        )
    await repository.delete_image(session, row.id)
    await audit.record(session, organization_id, None, actor, "certificate_image.deleted", old=_audited(name, row))
    await session.commit()
    await _forget(session, store, row.object_key)


async def _forget(session: AsyncSession, store: ObjectStore, key: str) -> None:
    """Delete an object no image names any more (the same bytes under two names share one)."""
    named = await repository.object_named(session, key)
    await session.commit()
    if not named:
        await store.delete(key)
