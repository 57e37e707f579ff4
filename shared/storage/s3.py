"""S3 client wrapper: private objects, presigned GETs, a readiness ping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from shared.settings import S3Settings

PART_SIZE = 16 * 1024 * 1024

# Errors worth trying again later: the store is unreachable or said something transient.
TRANSIENT = (BotoCoreError, ClientError, OSError)


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

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    async def get_bytes(self, key: str) -> bytes:
        response = await self._client.get_object(Bucket=self.bucket, Key=key)
        async with response["Body"] as stream:
            data: bytes = await stream.read()
        return data

    async def upload_file(self, key: str, path: Path, content_type: str, part_size: int = PART_SIZE) -> None:
        """Upload a file as a private object: one PUT when small, a multipart upload otherwise (aborted
        on failure, so no half object is left behind)."""
        size = path.stat().st_size  # noqa: ASYNC240 (one stat; the reads below are in parts)
        if size <= part_size:
            await self.put_bytes(key, await asyncio.to_thread(path.read_bytes), content_type)
            return
        upload = await self._client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        upload_id = upload["UploadId"]
        parts = []
        try:
            with path.open("rb") as f:
                number = 1
                while chunk := await asyncio.to_thread(f.read, part_size):
                    r = await self._client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                    )
                    parts.append({"ETag": r["ETag"], "PartNumber": number})
                    number += 1
            await self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            await self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    async def delete(self, key: str) -> None:
        await self._client.delete_object(Bucket=self.bucket, Key=key)

    async def presign_get(self, key: str, expires_in: int, filename: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        url: str = await self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return url


@asynccontextmanager
async def open_store(settings: S3Settings) -> AsyncIterator[ObjectStore]:
    """An S3 client for the life of a process (API lifespan, worker)."""
    session = get_session()
    config = AioConfig(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
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
