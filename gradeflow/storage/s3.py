"""S3 client wrapper: private objects, presigned GETs, a readiness ping."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from gradeflow.core.settings import S3Settings

PART_SIZE = 16 * 1024 * 1024

# Errors worth trying again later: the store is unreachable or said something transient.
TRANSIENT = (BotoCoreError, ClientError, OSError)


def attachment(filename: str) -> str:
    """The Content-Disposition of a download named `filename`, the one rule for every download
    (reports, diplomas, learners' documents), after RFC 6266: an ASCII `filename` (accents dropped,
    anything else not plain ASCII as '_') for clients that read only that, then, when the name is not
    plain ASCII, the name itself as `filename*` (UTF-8, percent-encoded). The header stays ASCII."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
        for c in unicodedata.normalize("NFKD", filename)
        if not unicodedata.combining(c)
    )
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class ObjectStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    async def ensure_bucket(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            await self._client.create_bucket(Bucket=self.bucket)

    async def ping(self) -> bool:
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError, OSError):
            return False
        return True

    async def get_bytes(self, key: str) -> bytes:
        response = await self._client.get_object(Bucket=self.bucket, Key=key)
        async with response["Body"] as stream:
            data: bytes = await stream.read()
        return data

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """A small private object in one PUT (an image, a rendered page)."""
        await self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def upload(self, key: str, content_type: str, part_size: int = PART_SIZE) -> Upload:
        """A private object uploaded from a file while the file is still being written (see Upload)."""
        return Upload(self._client, self.bucket, key, content_type, part_size)

    async def delete(self, key: str) -> None:
        await self._client.delete_object(Bucket=self.bucket, Key=key)

    async def delete_many(self, keys: list[str]) -> list[str]:
        """Delete the objects, 1,000 a request (S3's most); the keys that could not be deleted."""
        failed: list[str] = []
        for start in range(0, len(keys), 1000):
            objects = [{"Key": key} for key in keys[start : start + 1000]]
            response = await self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
            failed += [error["Key"] for error in response.get("Errors", [])]
        return failed

    async def list_pages(self, prefix: str) -> AsyncIterator[list[tuple[str, datetime]]]:
        """The objects whose key starts with `prefix`, a page (up to 1,000) at a time, in key order:
        (key, last modified)."""
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            objects = [(o["Key"], o["LastModified"]) for o in page.get("Contents", [])]
            if objects:
                yield objects

    async def presign_get(self, key: str, expires_in: int, filename: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = attachment(filename)
        url: str = await self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return url


class Upload:
    """Uploads a file that is still growing: `grown(path)` sends, in the background, every whole part
    written so far; `finish(path)` sends the rest and completes the object (one PUT when it is small).
    Leaving the block without finishing, or with an error, aborts the multipart upload, so no half
    object is left behind. The sha256 of the whole file is worked out on the way."""

    def __init__(self, client: Any, bucket: str, key: str, content_type: str, part_size: int) -> None:
        self._client, self.bucket, self.key, self.content_type = client, bucket, key, content_type
        self.part_size = part_size
        self.sent = 0  # bytes handed to the store (or to the part being sent)
        self._hash = hashlib.sha256()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._sending: asyncio.Task[None] | None = None
        self.sha256 = ""

    async def __aenter__(self) -> Upload:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sending is not None and not self._sending.done():
            self._sending.cancel()
            with contextlib.suppress(BaseException):
                await self._sending
        if self._upload_id is not None:
            await self._client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)

    def grown(self, path: Path) -> None:
        """Start sending the whole parts written since the last call, unless a send is under way."""
        if self._sending is not None and self._sending.done():
            self._sending.result()  # a failed part fails the upload now
            self._sending = None
        if self._sending is None and path.stat().st_size - self.sent >= self.part_size:
            self._sending = asyncio.create_task(self._send_parts(path, final=False))

    async def finish(self, path: Path) -> None:
        if self._sending is not None:
            await self._sending
            self._sending = None
        if self._upload_id is None and path.stat().st_size <= self.part_size:  # noqa: ASYNC240 (one stat)
            data = await asyncio.to_thread(path.read_bytes)
            self._hash.update(data)
            await self._client.put_object(Bucket=self.bucket, Key=self.key, Body=data, ContentType=self.content_type)
        else:
            await self._send_parts(path, final=True)
            await self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
            self._upload_id = None
        self.sha256 = self._hash.hexdigest()

    async def _send_parts(self, path: Path, final: bool) -> None:
        if self._upload_id is None:
            created = await self._client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type
            )
            self._upload_id = created["UploadId"]
        while True:
            size = path.stat().st_size  # noqa: ASYNC240 (one stat a part)
            if size - self.sent < (1 if final else self.part_size):
                return
            data = await asyncio.to_thread(self._read_part, path)
            number = len(self._parts) + 1
            r = await self._client.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=data
            )
            self._parts.append({"ETag": r["ETag"], "PartNumber": number})
            self.sent += len(data)

    def _read_part(self, path: Path) -> bytes:
        """The next part, added to the file's hash (in a thread: hashing 16 MB holds the event loop)."""
        with path.open("rb") as f:
            f.seek(self.sent)
            data = f.read(self.part_size)
        self._hash.update(data)
        return data


@asynccontextmanager
async def open_store(settings: S3Settings) -> AsyncIterator[ObjectStore]:
    """An S3 client for the life of a process (API lifespan, worker)."""
    session = get_session()
    config = AioConfig(
        signature_version="s3v4",
        # Parts carry a CRC32 checksum (botocore's default), so hashing each body once more for the
        # signature only costs CPU beside a report being built.
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        connect_timeout=3,
        read_timeout=30,
        retries={"max_attempts": 2},
    )
    async with session.create_client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key.get_secret_value() or None,
        aws_secret_access_key=settings.secret_key.get_secret_value() or None,
        config=config,
    ) as client:
        yield ObjectStore(client, settings.bucket)
