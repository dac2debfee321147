"""Models produced here (`ft:` fine-tunes, `gan:` GANs, `vae:` VAEs): owner-scoped records in Redis, weights in storage."""

from __future__ import annotations

import json
import time

import redis

from core.clock import now_iso
from core.errors import NotFound
from core.jobs import SUCCEEDED, JobStore
from core.redisdb import PREFIX


def model_prefix(job_id: str, epoch: int) -> str:
    """Where a job's final model lives: per attempt (fencing epoch), so a worker that lost its
    lease can never overwrite the files the registered model points at."""
    return f"models/{job_id}/e{epoch}"


class ModelRegistry:
    def __init__(self, client: redis.Redis):
        self.r = client

    @staticmethod
    def _key(model_id: str) -> str:
        return f"{PREFIX}model:{model_id}"

    @staticmethod
    def _owner_key(owner: str) -> str:
        return f"{PREFIX}owner:{owner}:models"

    def add(self, model_id: str, owner: str, kind: str, base: str, job_id: str, prefix: str,
            manifest: dict, info: dict | None = None) -> dict:
        """Register (or re-register, idempotently) a model whose files are already in storage.

        It stays invisible until its job has succeeded: a job canceled or failed after this
        write leaves no usable model behind. info: what validation needs to know without
        loading the model (an image model's architecture, size and class names).
        """
        record = {"id": model_id, "owner": owner, "kind": kind, "base": base, "job_id": job_id,
                  "prefix": prefix, "manifest": json.dumps(manifest), "info": json.dumps(info or {}),
                  "created_at": now_iso()}
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self._key(model_id), mapping=record)
        pipe.zadd(self._owner_key(owner), {model_id: time.time()}, nx=True)
        pipe.execute()
        return self._decode(record)

    def get(self, model_id: str, owner: str | None = None) -> dict:
        record = self.r.hgetall(self._key(model_id)) if model_id else {}
        if not record or (owner is not None and record["owner"] != owner) or not self._ready(record):
            raise NotFound(f"No model {model_id!r}", param="model")
        return self._decode(record)

    def exists(self, model_id: str, owner: str) -> bool:
        record = self.r.hgetall(self._key(model_id))
        return bool(record) and record["owner"] == owner and self._ready(record)

    def _ready(self, record: dict) -> bool:
        return self.r.hget(JobStore.job_key(record["job_id"]), "status") == SUCCEEDED

    def list(self, owner: str) -> list[dict]:
        out = []
        for model_id in self.r.zrevrange(self._owner_key(owner), 0, -1):
            record = self.r.hgetall(self._key(model_id))
            if record and self._ready(record):
                out.append(self._decode(record))
        return out

    def delete(self, model_id: str, owner: str) -> dict:
        record = self.get(model_id, owner)
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self._key(model_id))
        pipe.zrem(self._owner_key(owner), model_id)
        pipe.execute()
        return record

    @staticmethod
    def _decode(record: dict) -> dict:
        # Records written before `info` existed have none.
        return {**record, "manifest": json.loads(record["manifest"]), "info": json.loads(record.get("info") or "{}")}


def public_model(record: dict) -> dict:
    source = "fine-tune" if record["kind"] == "text" else "training"
    return {"id": record["id"], "object": "model", "kind": record["kind"], "source": source,
            "base": record["base"], "job_id": record["job_id"], "created_at": record["created_at"],
            **({"image": record["info"]} if record["info"] else {})}
