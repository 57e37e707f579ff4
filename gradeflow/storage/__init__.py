"""Object storage (any S3 API) with presigned URLs."""

from gradeflow.storage.s3 import ObjectStore, open_store

__all__ = ["ObjectStore", "open_store"]
