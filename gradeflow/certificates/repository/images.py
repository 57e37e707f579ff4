"""The SQL of certificate images: an organization's logos and signatures, and the certifications that
print them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core.paging import Page, last_id_after, page_of


@dataclass(frozen=True, slots=True)
class Upload:
    """What an upload stores of an image (beside its name and object)."""

    content_type: str
    bytes: int
    width: int
    height: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ImageRow(Upload):
    """An uploaded image, and the object that holds its bytes."""

    id: int
    name: str
    uploaded_by: str
    uploaded_at: datetime
    object_key: str


_COLUMNS = "content_type, bytes, width, height, sha256, id, name, uploaded_by, uploaded_at, object_key"
_IMAGE = f"SELECT {_COLUMNS} FROM certificate_images WHERE organization_id = :o AND name = :n"  # noqa: S608
_READ = text(_IMAGE)
_READ_LOCKED = text(_IMAGE + " FOR UPDATE")


async def image_named(session: AsyncSession, organization_id: int, name: str, lock: bool = False) -> ImageRow | None:
    """The organization's image `name` (None: it has none), locked FOR UPDATE if `lock`."""
    row = (await session.execute(_READ_LOCKED if lock else _READ, {"o": organization_id, "n": name})).first()
    return None if row is None else ImageRow(*row)


_IMAGES = text(
    f"SELECT {_COLUMNS} FROM certificate_images WHERE organization_id = :o AND id > :after"  # noqa: S608
    " ORDER BY id LIMIT :lim"
)


async def images(session: AsyncSession, organization_id: int, limit: int, cursor: str | None) -> Page[ImageRow]:
    """The organization's images in the order they were first uploaded."""
    rows = await session.execute(_IMAGES, {"o": organization_id, "after": last_id_after(cursor), "lim": limit + 1})
    return page_of([ImageRow(*r) for r in rows], limit, lambda i: i.id)


_SAVE = text(
    """
    INSERT INTO certificate_images AS i (organization_id, name, content_type, bytes, width, height, sha256,
                                         object_key, uploaded_by, uploaded_at)
    VALUES (:o, :name, :content_type, :bytes, :width, :height, :sha256, :key, :actor, :now)
    ON CONFLICT ON CONSTRAINT uq_certificate_images_organization_id_name DO UPDATE SET
      content_type = excluded.content_type, bytes = excluded.bytes, width = excluded.width,
      height = excluded.height, sha256 = excluded.sha256, object_key = excluded.object_key,
      uploaded_by = excluded.uploaded_by, uploaded_at = excluded.uploaded_at
    """
)


async def save_image(
    session: AsyncSession, organization_id: int, name: str, upload: Upload, key: str, actor: str, now: datetime
) -> None:
    """Create the organization's image `name`, or replace it."""
    await session.execute(
        _SAVE,
        {
            "o": organization_id,
            "name": name,
            "content_type": upload.content_type,
            "bytes": upload.bytes,
            "width": upload.width,
            "height": upload.height,
            "sha256": upload.sha256,
            "key": key,
            "actor": actor,
            "now": now,
        },
    )


_COURSES_PRINTING = text(
    """
    SELECT DISTINCT x.course_id FROM certifications x JOIN courses c ON c.id = x.course_id
    WHERE c.organization_id = :o AND (x.logo_image = :n OR x.signature_image = :n)
      AND EXISTS (SELECT 1 FROM certificates k WHERE k.course_id = x.course_id
                  AND k.assessment_id IS NOT DISTINCT FROM x.assessment_id AND k.revoked_at IS NULL)
    ORDER BY x.course_id
    """
)


async def courses_printing(session: AsyncSession, organization_id: int, name: str) -> list[int]:
    """The courses with valid certificates whose certifications print the image `name`."""
    return list(await session.scalars(_COURSES_PRINTING, {"o": organization_id, "n": name}))


@dataclass(frozen=True, slots=True)
class Printer:
    """A certification that prints an image: its course and, for an assessment's, the assessment."""

    course: str
    assessment: str | None


_PRINTERS = text(
    """
    SELECT c.external_id AS course, a.external_id AS assessment
    FROM certifications x JOIN courses c ON c.id = x.course_id
    LEFT JOIN assessments a ON a.id = x.assessment_id
    WHERE c.organization_id = :o AND (x.logo_image = :n OR x.signature_image = :n)
    ORDER BY c.external_id, a.external_id NULLS FIRST
    """
)


async def certifications_printing(session: AsyncSession, organization_id: int, name: str) -> list[Printer]:
    """Every certification of the organization that prints the image `name`."""
    return [Printer(*r) for r in await session.execute(_PRINTERS, {"o": organization_id, "n": name})]


_DELETE = text("DELETE FROM certificate_images WHERE id = :id")


async def delete_image(session: AsyncSession, image_id: int) -> None:
    await session.execute(_DELETE, {"id": image_id})


_OBJECT_NAMED = text("SELECT 1 FROM certificate_images WHERE object_key = :k LIMIT 1")


async def object_named(session: AsyncSession, key: str) -> bool:
    """Whether an image still names the object `key` (the same bytes under two names share one)."""
    return await session.scalar(_OBJECT_NAMED, {"k": key}) is not None
