"""Content-addressed blob storage: a blob's key is the SM3 of its bytes.

Writing the same bytes twice yields the same key, and nothing is ever overwritten with
different content, so a signed revision, once stored, stays exactly as it was. The local
folder serves the embedded portal; an S3-compatible bucket serves production. Both sit
behind `BlobStore`, chosen by STORAGE_URL ("s3://bucket/prefix" or a folder path).
"""

import io
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from urllib.parse import urlparse

from flask import current_app
from peewee import CharField, IntegerField

from portal.crypto.sm3 import sm3
from portal.db import BaseModel, UTCDateTimeField


class BlobNotFound(KeyError):
    pass


class Blob(BaseModel):
    """What the database knows of a stored blob."""

    key = CharField(max_length=64, unique=True)
    size = IntegerField()
    media_type = CharField(max_length=128, default="application/octet-stream")
    created_at = UTCDateTimeField()


class BlobStore(ABC):
    @abstractmethod
    def put(self, data: bytes) -> str:
        """Store the bytes (if new) and return their key."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes under key, or BlobNotFound."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    def check(self) -> None:
        """Raise if the store cannot be written and read back (for /healthz)."""
        key = self.put(b"healthz")
        if self.get(key) != b"healthz":
            raise RuntimeError("storage returned different bytes")

    def open(self, key: str) -> io.BytesIO:
        return io.BytesIO(self.get(key))


def _check_key(key: str) -> str:
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise BlobNotFound(key)
    return key


class LocalBlobStore(BlobStore):
    """Files under root/ab/cd/<key>, written to a temporary file and renamed into place."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        key = _check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        key = sm3(data).hex()
        path = self._path(key)
        if path.exists():
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        return key

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()


class S3BlobStore(BlobStore):
    """An S3-compatible bucket (AWS, MinIO, Ceph, OSS…). Endpoint and credentials come from
    the usual AWS_* variables; S3_ENDPOINT_URL points at a non-AWS service."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None):
        import boto3

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url)

    def _name(self, key: str) -> str:
        key = _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, data: bytes) -> str:
        key = sm3(data).hex()
        if not self.exists(key):
            self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data)
        return key

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise BlobNotFound(key) from None

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
            return True
        except ClientError as e:
            if e.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise


def store_from_url(url: str) -> BlobStore:
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        return S3BlobStore(parsed.netloc, parsed.path, os.environ.get("S3_ENDPOINT_URL"))
    if parsed.scheme in {"", "file"}:
        return LocalBlobStore(parsed.path if parsed.scheme == "file" else url)
    raise ValueError(f"unsupported STORAGE_URL scheme: {parsed.scheme}")


def blob_store() -> BlobStore:
    return current_app.extensions["blob_store"]


def save(data: bytes, media_type: str = "application/octet-stream") -> Blob:
    """Store bytes and record them; storing the same bytes again returns the same Blob."""
    key = blob_store().put(data)
    blob, _ = Blob.get_or_create(key=key, defaults={"size": len(data), "media_type": media_type})
    return blob


def load(key: str) -> bytes:
    return blob_store().get(key)


def init_app(app):
    app.extensions["blob_store"] = store_from_url(app.config["STORAGE_URL"])
