"""Artifact storage behind one interface: a local directory or any S3-compatible store (boto3)."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from core.config import Settings
from core.errors import ConfigError, InvalidInput, NotFound, Unavailable

# Keys are built by the server only; this is the last line of defence against traversal.
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def validate_key(key: str) -> str:
    parts = key.split("/")
    if not key or any(not _SEGMENT_RE.match(p) or p in (".", "..") or ".." in p for p in parts):
        raise InvalidInput(f"Invalid storage key {key!r}", param="key")
    return key


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    bytes: int


class Storage:
    """The contract both backends keep; `tests/integration/test_storage_contract.py` checks it."""

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> int:
        raise NotImplementedError

    def get_bytes(self, key: str) -> bytes:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def list(self, prefix: str) -> list[ObjectInfo]:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def presigned_get(self, key: str, expires_s: int) -> str:
        raise NotImplementedError

    def check(self) -> None:
        """Raise Unavailable if the store cannot be reached."""
        raise NotImplementedError


class LocalStorage(Storage):
    """Files under a root directory; downloads are signed, expiring links served by the web app."""

    def __init__(self, root: Path, secret_key: str, public_url: str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.public_url = public_url
        self._signer = URLSafeTimedSerializer(secret_key, salt="aigc-local-storage")

    def path_for(self, key: str) -> Path:
        return self.root / validate_key(key)

    def put_bytes(self, key, data, content_type="application/octet-stream"):
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: readers never see half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return len(data)

    def get_bytes(self, key):
        try:
            return self.path_for(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"No object {key!r}", param="key") from None

    def exists(self, key):
        return self.path_for(key).is_file()

    def list(self, prefix):
        base = self.root / validate_key(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not base.is_dir():
            return []
        return sorted(
            (ObjectInfo(str(p.relative_to(self.root)), p.stat().st_size)
             for p in base.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")),
            key=lambda o: o.key,
        )

    def delete(self, key):
        self.path_for(key).unlink(missing_ok=True)

    def presigned_get(self, key, expires_s):
        token = self._signer.dumps({"k": validate_key(key), "e": expires_s})
        return f"{self.public_url}/v1/storage/{token}"

    def resolve_token(self, token: str) -> str:
        """The key a signed link points at, or NotFound when forged or expired."""
        try:
            payload = self._signer.loads(token, max_age=3600 * 24 * 7)
            self._signer.loads(token, max_age=payload["e"])
        except (BadSignature, SignatureExpired, KeyError, TypeError):
            raise NotFound("This link is invalid or has expired") from None
        return validate_key(payload["k"])

    def check(self):
        if not os.access(self.root, os.W_OK):
            raise Unavailable(f"Storage directory {self.root} is not writable")


class S3Storage(Storage):
    """An S3 bucket and key prefix; downloads are presigned GET URLs."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str = "us-east-1", public_endpoint_url: str | None = None):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")

        def client(endpoint):
            return boto3.client(
                "s3", endpoint_url=endpoint, region_name=region,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}, signature_version="s3v4",
                              s3={"addressing_style": "path"} if endpoint else None))

        self.client = client(endpoint_url)
        # Workers reach MinIO at an internal name; people's browsers need the public one.
        self.presign_client = client(public_endpoint_url) if public_endpoint_url else self.client

    def _full(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_bytes(self, key, data, content_type="application/octet-stream"):
        self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data, ContentType=content_type)
        return len(data)

    def get_bytes(self, key):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise NotFound(f"No object {key!r}", param="key") from None

    def exists(self, key):
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._full(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def list(self, prefix):
        full = self._full(prefix.rstrip("/")) + "/" if prefix.strip("/") else (self.prefix + "/" if self.prefix else "")
        cut = len(self.prefix) + 1 if self.prefix else 0
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            out += [ObjectInfo(o["Key"][cut:], o["Size"]) for o in page.get("Contents", [])]
        return sorted(out, key=lambda o: o.key)

    def delete(self, key):
        self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def presigned_get(self, key, expires_s):
        return self.presign_client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._full(key)}, ExpiresIn=expires_s)

    def check(self):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable(f"S3 bucket {self.bucket!r} is not reachable: {exc}") from None


def make_storage(settings: Settings) -> Storage:
    url = urlparse(settings.storage_url)
    if url.scheme == "file":
        return LocalStorage(Path(url.path), settings.secret_key, settings.public_url)
    if url.scheme == "s3":
        if not url.netloc:
            raise ConfigError("AIGC_STORAGE_URL needs a bucket: s3://bucket/prefix", param="AIGC_STORAGE_URL")
        return S3Storage(url.netloc, url.path, settings.s3_endpoint_url, settings.s3_region,
                         settings.s3_public_endpoint_url)
    raise ConfigError(f"Unsupported storage URL {settings.storage_url!r}", param="AIGC_STORAGE_URL")


def job_json_key(job_id: str) -> str:
    """Where a finished job's whole record is kept."""
    return f"jobs/{job_id}/job.json"


def artifact_key(job_id: str, name: str) -> str:
    return f"jobs/{job_id}/artifacts/{name}"
