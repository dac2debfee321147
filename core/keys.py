"""API keys: random, stored only as SHA-256 hashes, compared in constant time, revocable."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import redis

from core.clock import now_iso
from core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from core.redisdb import PREFIX

KEY_PREFIX = "aigc_"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """Keys by name; each key acts for one owner (the name unless given)."""

    def __init__(self, client: redis.Redis):
        self.r = client

    @staticmethod
    def _by_hash(digest: str) -> str:
        return f"{PREFIX}apikey:{digest}"

    @staticmethod
    def _by_name(name: str) -> str:
        return f"{PREFIX}apikey-name:{name}"

    def create(self, name: str, owner: str | None = None) -> str:
        """Make a key and return it; this is the only time the plain key exists."""
        if not _NAME_RE.match(name):
            raise InvalidInput("Key names are 1-64 letters, digits, '_', '.' or '-'", param="name")
        owner = owner or name
        if not _NAME_RE.match(owner):
            raise InvalidInput("Owners are 1-64 letters, digits, '_', '.' or '-'", param="owner")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        digest = key_digest(key)
        existing = self.r.get(self._by_name(name))
        if existing and not self.r.hget(self._by_hash(existing), "revoked_at"):
            raise Conflict(f"A key named {name!r} exists; revoke it or pick another name", param="name")
        self.r.set(self._by_name(name), digest)
        self.r.hset(self._by_hash(digest), mapping={
            "name": name, "owner": owner, "hash": digest, "created_at": now_iso(), "revoked_at": "",
        })
        return key

    def authenticate(self, key: str | None) -> str:
        """The owner a key acts for, or Unauthorized for a missing, wrong or revoked key."""
        if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
            raise Unauthorized("Missing or malformed API key: send 'Authorization: Bearer <key>'")
        return self.owner_for_digest(key_digest(key))

    def owner_for_digest(self, digest: str) -> str:
        """The owner behind a key's digest (what a signed session cookie holds), or Unauthorized."""
        record = self.r.hgetall(self._by_hash(digest))
        # The lookup is by hash already; compare_digest keeps the final check constant-time.
        if not record or not hmac.compare_digest(record.get("hash", ""), digest):
            raise Unauthorized("Invalid API key")
        if record.get("revoked_at"):
            raise Unauthorized("This API key was revoked")
        return record["owner"]

    def list(self) -> list[dict]:
        out = []
        for name_key in sorted(self.r.scan_iter(f"{PREFIX}apikey-name:*", count=500)):
            record = self.r.hgetall(self._by_hash(self.r.get(name_key) or ""))
            if record:
                out.append({k: record[k] for k in ("name", "owner", "created_at", "revoked_at")})
        return out

    def revoke(self, name: str) -> None:
        digest = self.r.get(self._by_name(name))
        if not digest:
            raise NotFound(f"No key named {name!r}", param="name")
        self.r.hset(self._by_hash(digest), "revoked_at", now_iso())
