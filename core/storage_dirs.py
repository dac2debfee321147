"""Whole directories in storage (model weights, checkpoints): upload with a manifest, download verified."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from core.errors import AigcError
from core.storage import Storage


class IntegrityError(AigcError):
    code = "integrity_error"


def upload_dir(storage: Storage, local: Path, prefix: str) -> dict:
    """Upload every file under `local` to `prefix/`; returns {name: {"sha256", "bytes"}}."""
    manifest = {}
    for path in sorted(p for p in Path(local).rglob("*") if p.is_file()):
        name = str(path.relative_to(local))
        data = path.read_bytes()
        storage.put_bytes(f"{prefix}/{name}", data)
        manifest[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    return manifest


def download_dir(storage: Storage, prefix: str, manifest: dict, dest: Path) -> Path:
    """Fetch the files a manifest names, checking each hash; files already there and whole are kept."""
    dest = Path(dest)
    for name, meta in manifest.items():
        target = dest / name
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == meta["sha256"]:
            continue
        data = storage.get_bytes(f"{prefix}/{name}")
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise IntegrityError(f"{prefix}/{name} does not match its recorded SHA-256; refusing to load it")
        target.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own: two processes fetching the same model must not share a temp file.
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
        tmp.write_bytes(data)
        tmp.replace(target)
    return dest
