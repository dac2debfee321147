"""What a text.finetune job produces, by name: its model ids, its kept checkpoints, its results file."""

from __future__ import annotations

import hashlib


def model_id_for(job: dict) -> str:
    inp = job["input"]
    return f"ft:{inp['base_model']}:{inp['suffix']}:{job['id'][-8:]}"


def checkpoint_model_id(job: dict, step: int) -> str:
    return f"{model_id_for(job)}:ckpt-step-{step}"


def results_file_id(job_id: str) -> str:
    """The job's results file: named by the job, so a rerun replaces it rather than adding one."""
    return "file_" + hashlib.sha256(f"results:{job_id}".encode()).hexdigest()[:24]


def checkpoint_entry(pointer: dict) -> dict:
    """A committed checkpoint as the kept list holds it (a pointer written before the list existed
    is its own only entry)."""
    return {"step": pointer["step"], "prefix": pointer["prefix"], "manifest": pointer["manifest"],
            "metrics": pointer.get("metrics") or {}, "created_at": pointer.get("created_at", 0)}


def kept_checkpoints(job: dict) -> list[dict]:
    """The job's kept checkpoints, oldest first: {step, prefix, manifest, metrics, created_at} each."""
    pointer = job.get("checkpoint") or {}
    return pointer.get("kept") or ([checkpoint_entry(pointer)] if pointer else [])
