"""Campaign tasks: `campaign.chunk` generates one chunk of rows; `campaign.finalize` merges the outputs.

A chunk is idempotent by (campaign, index): its outputs go to deterministic keys and it is
counted once (a Redis set of done chunks), so a redelivered or reaped chunk changes nothing.
A chunk runs as a part of its campaign's job under its own lease (tasks/runner.run_part): renewed
by a heartbeat, fencing its count and progress, released with a compare-and-delete.
The finalizer is enqueued exactly once, by whoever counts the last chunk or cancels, without
chords; it waits for chunks still running, then writes output.jsonl, output.csv, errors.jsonl.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import replace

from celery import shared_task

from core import logs
from core.campaigns import (CampaignCounters, chunk_key, chunk_part, chunk_parts, columns_key, enqueue_finalize,
                            jsonl_bytes, settings_key)
from core.clock import unix_seconds
from core.errors import AigcError, LeaseLost
from core.file_checks import CHAT_ENDPOINT
from core.textfiles import text_lines
from core.jobs import CANCELED, SUCCEEDED, TERMINAL, archive_record
from core.storage import artifact_key
from models.chat import chat_prompt, chat_stops
from models.engine import Request, RequestTooLarge, engine_for
from models.text import GenerationParams, PromptTooLong
from tasks.model_loading import load_cached
from tasks.runner import PartLease, run_part
from workers.runtime import get_runtime

log = logging.getLogger(__name__)

NDJSON = "application/x-ndjson; charset=utf-8"  # a download says how its text is encoded
# The in-process batch the campaign benchmark compares with (bench/platform_generation.py): for
# GPT-2 small on a 2-core CPU, 64 sequences a call measured ~1.5x the throughput of 16, and 128
# another ~8%.
BATCH_SEQUENCES = 128


def _read_jsonl(storage, key: str) -> list[dict]:
    return [json.loads(line) for line in text_lines(storage.get_bytes(key).decode()) if line]


def rows_output(model, rows: list[dict], params: GenerationParams, lease: PartLease | None = None
                ) -> tuple[list[dict], list[dict]]:
    """Generate for each row on the model's engine (models/engine.py): rows join as others finish,
    each with a seed of its own (the chunk's seed and the row's index), so a row's text does not
    depend on what shared its batch. A row too long for the model is an error of that row alone.
    With a lease, generation stops once another worker took the chunk over."""
    outputs, errors = [], []
    engine = engine_for(model, get_runtime().settings.kv_cache_bytes)
    requests = []
    for row in rows:
        ids = model.tokenizer(row["prompt"])["input_ids"]
        request = Request(ids, params, seed=(params.seed * 1_000_003 + row["index"]) % 2**32, adapter=model.adapter,
                          tag=row)
        try:
            engine.check(request)
        except (PromptTooLong, RequestTooLarge) as exc:
            errors.append({"row": row["index"], "id": row["id"], "error": {
                "code": "prompt_too_long" if isinstance(exc, PromptTooLong) else "request_too_large",
                "message": str(exc)}})
            continue
        requests.append(request)
    with engine.serving():
        for request in requests:
            engine.add(request)
        while not all(request.done for request in requests):
            engine.step()
            if lease:
                lease.check()
    for request in requests:
        row, result = request.tag, request.result
        for choice in result["choices"]:
            outputs.append({"row": row["index"], "id": row["id"], "variant": choice["index"],
                            "text": choice["text"], "finish_reason": choice["finish_reason"],
                            "prompt_tokens": result["prompt_tokens"],
                            "completion_tokens": result["completion_tokens"]})
    outputs.sort(key=lambda o: (o["row"], o["variant"]))
    return outputs, errors


def chunk_output(model, job: dict, index: int, rows: list[dict], lease: PartLease | None = None
                 ) -> tuple[list[dict], list[dict]]:
    """A chunk's outputs and row errors. Rows may carry their own settings (OpenAI batch lines do):
    each group of like rows is generated apart, seeded by the campaign's seed plus the chunk index."""
    inp = job["input"]
    chat = (inp.get("batch") or {}).get("endpoint") == CHAT_ENDPOINT
    outputs, errors = [], []
    if chat:  # a chat batch's rows hold their messages; the model's template makes the prompt
        rows, errors = _chat_rows(model, rows)
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(settings_key(row), []).append(row)
    for key, group in groups.items():
        gen = {**inp["generation"], "n": inp["n"], **json.loads(key)}
        params = GenerationParams.from_input(gen, seed=gen["seed"] + index)
        if chat:
            params = replace(params, stop=params.stop + chat_stops(model.tokenizer))
        group_out, group_err = rows_output(model, group, params, lease)
        outputs += group_out
        errors += group_err
    outputs.sort(key=lambda o: (o["row"], o["variant"]))
    errors.sort(key=lambda e: e["row"])
    return outputs, errors


def _chat_rows(model, rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Rows with their messages rendered by the chat template, and an error for each row the
    template refuses (that row alone)."""
    out, errors = [], []
    for row in rows:
        try:
            out.append({**row, "prompt": chat_prompt(model.tokenizer, json.loads(row["prompt"]))})
        except Exception as exc:  # a model's template raises what it likes
            errors.append({"row": row["index"], "id": row["id"], "error": {
                "code": "invalid_input", "message": f"The model cannot take these messages: {exc}"}})
    return out, errors


@shared_task(name="campaign.chunk", bind=True, max_retries=None)
def campaign_chunk(self, campaign_id: str, index: int) -> str:
    rt = get_runtime()
    job = rt.store.get(campaign_id)
    if job["status"] in TERMINAL or CampaignCounters(rt.redis).is_done(campaign_id, index):
        return "duplicate"
    # Cancel requested: skipped (the canceling path finalizes with what is done).
    with logs.about_jobs([job]):
        return run_part(self, campaign_id, chunk_part(index), lambda lease: _run_chunk(self, lease, job, index))


def _run_chunk(task, lease: PartLease, job: dict, index: int) -> str:
    """Generate, store and count one chunk; the count and the progress bar are fenced by its lease."""
    rt, cid, inp = lease.rt, lease.id, job["input"]
    rows = _read_jsonl(rt.storage, chunk_key(cid, "input", index))
    model = load_cached(inp["model"], job["owner"])
    outputs, errors = chunk_output(model, job, index, rows, lease)
    lease.check()  # no writes once another worker owns the chunk
    rt.storage.put_bytes(chunk_key(cid, "output", index), jsonl_bytes(outputs), "application/x-ndjson")
    rt.storage.put_bytes(chunk_key(cid, "errors", index), jsonl_bytes(errors), "application/x-ndjson")
    counters = CampaignCounters(rt.redis)
    outcome = counters.complete(cid, index, len(rows) - len(errors), len(errors), inp["chunks"], lease.token)
    if outcome == "fenced":
        raise LeaseLost(f"lease of chunk {index} of {cid} lost before it was counted")
    counts = counters.counts(cid)
    done = counts["completed"] + counts["failed"]
    progress = {"completed": done, "total": inp["rows"], "unit": "rows", "eta_s": None}
    # With an event: one per chunk, what the campaign page's live stream wakes on.
    event = {"type": "progress", **progress, "chunk": index, "worker": getattr(task.request, "hostname", "") or ""}
    if lease.update(event=event, progress=progress) == "fenced":
        # Counted already, so whoever holds the chunk now finds it done; the next count or the
        # finalizer writes the bar.
        log.warning("campaign %s: chunk %s lost its lease after it was counted", cid, index)
    if outcome == "finalize":
        enqueue_finalize(task.app.send_task, cid)
    return outcome


@shared_task(name="campaign.finalize", bind=True, max_retries=None)
def campaign_finalize(self, campaign_id: str) -> str:
    """Merge the finished chunks in row order; canceled campaigns keep what was done."""
    rt = get_runtime()
    store, counters = rt.store, CampaignCounters(rt.redis)
    job = store.get(campaign_id)
    if job["status"] in TERMINAL:
        return "duplicate"
    inp = job["input"]
    if store.parts_alive(campaign_id, chunk_parts(inp["chunks"])):
        raise self.retry(countdown=1, max_retries=None)  # a chunk is still being written
    columns = json.loads(rt.storage.get_bytes(columns_key(campaign_id)))
    done = counters.done_chunks(campaign_id)
    # Chunks hold rows bucketed by prompt length (core/campaign_plan.py): merge back into row order.
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
        # The sheet is for people: a cell holds the ad without the line break a completion starts
        # with (output.jsonl keeps the text exactly as generated).
        writer.writerow(values + ([o["variant"]] if inp["n"] > 1 else []) + [o["text"].strip()])
    out_jsonl, err_jsonl = jsonl_bytes(outputs), jsonl_bytes(errors)
    artifacts = []
    for name, data, ctype in (("output.jsonl", out_jsonl, NDJSON),
                              ("output.csv", out_csv.getvalue().encode(), "text/csv; charset=utf-8"),
                              ("errors.jsonl", err_jsonl, NDJSON)):
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
    created = unix_seconds(job["created_at"])
    by_row: dict[int, list[dict]] = {}
    for o in map(json.loads, filter(None, text_lines(outputs.decode()))):
        by_row.setdefault(o["row"], []).append(o)
    lines = []
    chat = job["input"]["batch"]["endpoint"] == CHAT_ENDPOINT
    for row, choices in sorted(by_row.items()):
        first = choices[0]
        usage = {"prompt_tokens": first["prompt_tokens"], "completion_tokens": first["completion_tokens"],
                 "total_tokens": first["prompt_tokens"] + first["completion_tokens"]}
        if chat:
            body = {"id": f"chatcmpl-{cid}-{row}", "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": c["variant"], "message": {"role": "assistant", "content": c["text"]},
                                 "logprobs": None, "finish_reason": c["finish_reason"]} for c in choices],
                    "usage": usage}
        else:
            body = {"id": f"cmpl-{cid}-{row}", "object": "text_completion", "created": created, "model": model,
                    "choices": [{"text": c["text"], "index": c["variant"], "logprobs": None,
                                 "finish_reason": c["finish_reason"]} for c in choices],
                    "usage": usage}
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
