"""Which queued jobs a worker may run as one batch: the batch list a job joins when it is submitted."""

from __future__ import annotations

import hashlib
import json

from core.job_kinds import KINDS
from core.redisdb import PREFIX

# Every batch list that may hold jobs, for the reaper (workers/reaper.py) to look after.
BATCH_LISTS_KEY = f"{PREFIX}batch-lists"
_LIST_PREFIX = f"{PREFIX}batch:"
OWNED_MODEL_PREFIXES = ("ft:", "gan:", "vae:")


def batch_list_key(owner: str, kind: str, input: dict, model_group: str | None = None) -> str:
    """The Redis list of queued jobs batchable with this one, or '' for a kind that is not batched.

    Built-in and hub models are shared by every owner; a model trained here (ft:, gan:, vae:) is
    its owner's alone. model_group: what stands for the model in the key (a LoRA adapter's base:
    the owner's adapters of one base run in one batch, each row with its own adapter).
    """
    # The kind's registry entry names what must match (for text: the model only).
    shared_settings = KINDS[kind].batch_on if kind in KINDS else ()
    if not shared_settings:
        return ""
    shared = [model_group if name == "model" and model_group else input.get(name) for name in shared_settings]
    scope = owner if str(input.get("model", "")).startswith(OWNED_MODEL_PREFIXES) else ""
    group = KINDS[kind].batch_group or kind
    digest = hashlib.sha256(json.dumps([group, scope, shared]).encode()).hexdigest()[:24]
    return f"{_LIST_PREFIX}{group}:{digest}"


def batch_kind(list_key: str) -> str:
    """The task that serves a batch list: its kind's, or its group's first kind's."""
    name = list_key.removeprefix(_LIST_PREFIX).rsplit(":", 1)[0]
    return name if name in KINDS else next(k.name for k in KINDS.values() if k.batch_group == name)
