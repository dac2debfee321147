"""Uploaded files: owner-scoped records in Redis, content in storage under server-built keys."""

from __future__ import annotations

import secrets
import time

import redis

from core.clock import now_iso, unix_seconds
from core.errors import NotFound
from core.redisdb import PREFIX
from core.storage import Storage

_PUBLIC = ("id", "filename", "bytes", "purpose")


def file_content_key(file_id: str) -> str:
    return f"files/{file_id}/content"


def public_file(record: dict) -> dict:
    """OpenAI's file object: `created_at` in unix seconds; a stored file is whole, so `processed`."""
    return {"object": "file", **{k: record[k] for k in _PUBLIC},
            "created_at": unix_seconds(record["created_at"]), "status": "processed",
            "status_details": None}


class FileStore:
    def __init__(self, client: redis.Redis, storage: Storage):
        self.r, self.storage = client, storage

    @staticmethod
    def _key(file_id: str) -> str:
        return f"{PREFIX}file:{file_id}"

    @staticmethod
    def _owner_key(owner: str) -> str:
        return f"{PREFIX}owner:{owner}:files"

    def create(self, owner: str, filename: str, purpose: str, data: bytes, file_id: str | None = None) -> dict:
        """Content first, record second: a file is visible only once it is whole.

        A given `file_id` makes the write idempotent (a rerun replaces the same file).
        """
        file_id = file_id or "file_" + secrets.token_hex(12)
        self.storage.put_bytes(file_content_key(file_id), data)
        record = {"id": file_id, "owner": owner, "filename": filename[:255], "bytes": len(data),
                  "purpose": purpose, "created_at": now_iso()}
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self._key(file_id), mapping=record)
        pipe.zadd(self._owner_key(owner), {file_id: time.time()})
        pipe.execute()
        return record

    def get(self, file_id: str, owner: str | None = None) -> dict:
        record = self.r.hgetall(self._key(file_id)) if file_id else {}
        if not record or (owner is not None and record["owner"] != owner):
            raise NotFound(f"No file {file_id!r}", param="id")
        record["bytes"] = int(record["bytes"])
        return record

    def list(self, owner: str, purpose: str | None = None, limit: int = 100) -> list[dict]:
        return self.page(owner, purpose, limit)[0]

    def page(self, owner: str, purpose: str | None = None, limit: int = 100, after: str | None = None,
             newest_first: bool = True) -> tuple[list[dict], bool]:
        """(up to `limit` of the owner's files after the file `after`, whether more follow): the
        cursor pagination OpenAI's clients follow. An `after` that is not one of the owner's
        files is NotFound."""
        key = self._owner_key(owner)
        ids = self.r.zrevrange(key, 0, -1) if newest_first else self.r.zrange(key, 0, -1)
        start = 0
        if after is not None:
            if after not in ids:
                raise NotFound(f"No file {after!r} to list after", param="after")
            start = ids.index(after) + 1
        out = []
        for file_id in ids[start:]:
            record = self.r.hgetall(self._key(file_id))
            if record and (purpose is None or record["purpose"] == purpose):
                record["bytes"] = int(record["bytes"])
                out.append(record)
                if len(out) > limit:
                    break
        return out[:limit], len(out) > limit

    def read(self, file_id: str, owner: str | None = None) -> bytes:
        self.get(file_id, owner)
        return self.storage.get_bytes(file_content_key(file_id))

    def delete(self, file_id: str, owner: str) -> None:
        self.get(file_id, owner)
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self._key(file_id))
        pipe.zrem(self._owner_key(owner), file_id)
        pipe.execute()
        self.storage.delete(file_content_key(file_id))
