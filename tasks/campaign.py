"""Campaign tasks: `campaign.chunk` generates one chunk of rows; `campaign.finalize` merges the outputs.

A chunk is idempotent by (campaign, index): its outputs go to deterministic keys and it is
counted once (a Redis set of done chunks), so a redelivered or reaped chunk changes nothing.
The finalizer is enqueued exactly once, by whoever counts the last chunk or cancels, without
chords; it waits for chunks still running, then writes output.jsonl, output.csv, errors.jsonl.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import secrets

from celery import shared_task

from core.campaigns import CampaignCounters, chunk_key, chunk_lease_key, jsonl_bytes, settings_key
from core.clock import now_iso, parse_iso
from core.errors import AigcError
from core.textfiles import text_lines
from core.jobs import CANCELED, QUEUED, RUNNING, SUCCEEDED, TERMINAL, archive_record
from core.storage import artifact_key
from models.text import (GenerationParams, PromptTooLong, generate_batch, sequences_per_call,
                         sequences_per_prompt)
from tasks.model_loading import load_cached
from workers.runtime import get_runtime

log = logging.getLogger(__name__)
# Sequences per generate call (rows x variants), fewer if their KV cache would not fit
# (models.text.sequences_per_call). For GPT-2 small on a 2-core CPU, 64 measured ~1.5x the
# throughput of 16, and 128 another ~8%: each decoding step streams every weight from memory once
# for the whole batch. Rows are sorted by length so padding stays small.
BATCH_SEQUENCES = 128


def _read_jsonl(storage, key: str) -> list[dict]:
    return [json.loads(line) for line in text_lines(storage.get_bytes(key).decode()) if line]


def generate_rows(model, rows: list[dict], params: GenerationParams) -> tuple[list[dict], list[dict]]:
    """Generate for each row (batched, shortest prompts together); a row that fails alone is an error."""
    outputs, errors = [], []
    ordered = sorted(rows, key=lambda r: len(r["prompt"]))
    # The longest prompt by characters sizes the batches' KV cache (close enough to the most tokens).
    longest = len(model.tokenizer(ordered[-1]["prompt"])["input_ids"]) if ordered else 0
    per_batch = max(1, sequences_per_call(model, longest + params.max_new_tokens, BATCH_SEQUENCES)
                    // sequences_per_prompt(params))
    for start in range(0, len(ordered), per_batch):
        batch = ordered[start:start + per_batch]
        try:
            results = generate_batch(model, [r["prompt"] for r in batch], params)
        except PromptTooLong:
            # One long prompt spoils the batch: retry its rows one by one to find the culprits.
            results = []
            for row in batch:
                try:
                    results += generate_batch(model, [row["prompt"]], params)
                except PromptTooLong as exc:
                    results.append(exc)
        for row, result in zip(batch, results):
            if isinstance(result, Exception):
                errors.append({"row": row["index"], "id": row["id"], "error": {"code": "prompt_too_long",
                                                                               "message": str(result)}})
                continue
            for choice in result["choices"]:
                outputs.append({"row": row["index"], "id": row["id"], "variant": choice["index"],
                                "text": choice["text"], "finish_reason": choice["finish_reason"],
                                "prompt_tokens": result["prompt_tokens"],
                                "completion_tokens": result["completion_tokens"]})
    outputs.sort(key=lambda o: (o["row"], o["variant"]))
    return outputs, errors


@shared_task(name="campaign.chunk", bind=True, max_retries=None)
def campaign_chunk(self, campaign_id: str, index: int) -> str:
    rt = get_runtime()
    store, counters = rt.store, CampaignCounters(rt.redis)
    job = store.get(campaign_id)
    if job["status"] in TERMINAL or counters.is_done(campaign_id, index):
        return "duplicate"
    if job["cancel_requested"]:
        return "skipped"  # the canceling path finalizes with what is done
    token = secrets.token_hex(8)
    lease = chunk_lease_key(campaign_id, index)
    if not rt.redis.set(lease, token, nx=True, ex=max(60, rt.settings.lease_ttl_s * 10)):
        raise self.retry(countdown=rt.settings.lease_ttl_s, max_retries=None)
    try:
        store.transition(campaign_id, RUNNING, only_from=(QUEUED,), started_at=now_iso())
        rt.redis.sadd(store.ACTIVE_KEY, campaign_id)  # the reaper watches running campaigns
        inp = job["input"]
        rows = _read_jsonl(rt.storage, chunk_key(campaign_id, "input", index))
        model = load_cached(inp["model"], job["owner"])
        outputs, errors = [], []
        # Rows may carry their own settings (OpenAI batch lines do): generate each group apart.
        groups: dict[str, list[dict]] = {}
        for row in rows:
            groups.setdefault(settings_key(row), []).append(row)
        for key, group in groups.items():
            gen = {**inp["generation"], "n": inp["n"], **json.loads(key)}
            params = GenerationParams(max_new_tokens=gen["max_new_tokens"], temperature=gen["temperature"],
                                      top_p=gen["top_p"], top_k=gen["top_k"], n=gen["n"],
                                      seed=gen["seed"] + index, stop=tuple(gen["stop"]))
            group_out, group_err = generate_rows(model, group, params)
            outputs += group_out
            errors += group_err
        outputs.sort(key=lambda o: (o["row"], o["variant"]))
        rt.storage.put_bytes(chunk_key(campaign_id, "output", index), jsonl_bytes(outputs), "application/x-ndjson")
        rt.storage.put_bytes(chunk_key(campaign_id, "errors", index), jsonl_bytes(errors), "application/x-ndjson")
        outcome = counters.complete(campaign_id, index, len(rows) - len(errors), len(errors), inp["chunks"])
        counts = counters.counts(campaign_id)
        done = counts["completed"] + counts["failed"]
        store.update(campaign_id, progress={"completed": done, "total": inp["rows"], "unit": "rows", "eta_s": None})
        if outcome == "finalize":
            campaign_finalize.delay(campaign_id)
        return outcome
    finally:
        if rt.redis.get(lease) == token:
            rt.redis.delete(lease)


@shared_task(name="campaign.finalize", bind=True, max_retries=None)
def campaign_finalize(self, campaign_id: str) -> str:
    """Merge the finished chunks in row order; canceled campaigns keep what was done."""
    rt = get_runtime()
    store, counters = rt.store, CampaignCounters(rt.redis)
    job = store.get(campaign_id)
    if job["status"] in TERMINAL:
        return "duplicate"
    inp = job["input"]
    if any(rt.redis.exists(chunk_lease_key(campaign_id, i)) for i in range(inp["chunks"])):
        raise self.retry(countdown=1, max_retries=None)  # a chunk is still being written
    columns = json.loads(rt.storage.get_bytes(f"campaigns/{campaign_id}/columns.json"))
    done = counters.done_chunks(campaign_id)
    # Chunks hold rows bucketed by prompt length (web/campaigns_api.py): merge back into row order.
    rows, outputs, errors = {}, [], []
    for index in sorted(done):
        rows.update((r["index"], r) for r in _read_jsonl(rt.storage, chunk_key(campaign_id, "input", index)))
        outputs += _read_jsonl(rt.storage, chunk_key(campaign_id, "output", index))
        errors += _read_jsonl(rt.storage, chunk_key(campaign_id, "errors", index))
    outputs.sort(key=lambda o: (o["row"], o["variant"]))
    errors.sort(key=lambda e: e["row"])
    out_csv = io.StringIO()
    out_csv.write("\ufeff")  # so spreadsheet programs read UTF-8 (Chinese text included)
    writer = csv.writer(out_csv)
    writer.writerow(columns + (["variant"] if inp["n"] > 1 else []) + ["generated_text"])
    for o in outputs:
        values = [rows[o["row"]]["columns"].get(c, "") for c in columns]
        writer.writerow(values + ([o["variant"]] if inp["n"] > 1 else []) + [o["text"]])
    out_jsonl, err_jsonl = jsonl_bytes(outputs), jsonl_bytes(errors)
    artifacts = []
    for name, data, ctype in (("output.jsonl", out_jsonl, "application/x-ndjson"),
                              ("output.csv", out_csv.getvalue().encode(), "text/csv; charset=utf-8"),
                              ("errors.jsonl", err_jsonl, "application/x-ndjson")):
        rt.storage.put_bytes(artifact_key(campaign_id, name), data, ctype)
        artifacts.append({"name": name, "bytes": len(data), "content_type": ctype})
    counts = counters.counts(campaign_id)
    status = CANCELED if job["cancel_requested"] else SUCCEEDED
    output = {"rows": inp["rows"], "completed": counts["completed"], "failed": counts["failed"],
              "chunks_done": len(done), "chunks": inp["chunks"]}
    if inp.get("batch"):
        output.update(write_batch_files(rt, job, out_jsonl, err_jsonl))
    progress = {"completed": counts["completed"] + counts["failed"], "total": inp["rows"], "unit": "rows",
                "eta_s": 0.0}
    outcome, previous = store.transition(campaign_id, status, output=output, artifacts=artifacts,
                                         progress=progress)
    if outcome != "ok":
        raise AigcError(f"campaign {campaign_id} could not be finalized from {previous}")
    archive_record(store, rt.storage, campaign_id)
    return status


def write_batch_files(rt, job: dict, outputs: bytes, errors: bytes) -> dict:
    """OpenAI Batch output and error files (one line per request), as files of the owner."""
    from core.files import FileStore

    cid, model = job["id"], job["input"]["model"]
    created = int(parse_iso(job["created_at"]).timestamp())
    by_row: dict[int, list[dict]] = {}
    for o in map(json.loads, filter(None, text_lines(outputs.decode()))):
        by_row.setdefault(o["row"], []).append(o)
    lines = []
    for row, choices in sorted(by_row.items()):
        first = choices[0]
        body = {"id": f"cmpl-{cid}-{row}", "object": "text_completion", "created": created, "model": model,
                "choices": [{"text": c["text"], "index": c["variant"], "logprobs": None,
                             "finish_reason": c["finish_reason"]} for c in choices],
                "usage": {"prompt_tokens": first["prompt_tokens"], "completion_tokens": first["completion_tokens"],
                          "total_tokens": first["prompt_tokens"] + first["completion_tokens"]}}
        lines.append({"id": f"batch_req_{cid}_{row}", "custom_id": first["id"],
                      "response": {"status_code": 200, "request_id": f"req_{cid}_{row}", "body": body},
                      "error": None})
    error_lines = [{"id": f"batch_req_{cid}_{e['row']}", "custom_id": e["id"], "response": None,
                    "error": e["error"]} for e in map(json.loads, filter(None, text_lines(errors.decode())))]
    files = FileStore(rt.redis, rt.storage)
    suffix = cid.split("_", 1)[1]
    out = files.create(job["owner"], f"{cid}_output.jsonl", "batch_output", jsonl_bytes(lines), f"file_{suffix}_out")
    err = files.create(job["owner"], f"{cid}_errors.jsonl", "batch_output", jsonl_bytes(error_lines),
                       f"file_{suffix}_err")
    return {"output_file_id": out["id"], "error_file_id": err["id"]}
