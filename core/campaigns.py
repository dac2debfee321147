"""Campaigns: rows in, one prompt per row from a template; rows live in storage as fixed-size chunks.

Pure parsing and rendering here; the counters that make completion exactly-once live in Redis
(`CampaignCounters`), the chunk plan in core/campaign_plan.py, the chunk work in tasks/campaign.py.
"""

from __future__ import annotations

import csv
import io
import json
import string
from dataclasses import dataclass

import redis

from core.errors import InvalidInput
from core.jobs import JobStore
from core.textfiles import decode_text, first_line, jsonl_objects
from core.redisdb import PREFIX

CHUNK_ROWS = 128  # rows per chunk task: one full batch (tasks/campaign.py), small enough to redo cheaply
FINALIZE_TASK = "campaign.finalize"


@dataclass
class Table:
    columns: list[str]
    rows: list[dict]


def parse_table(data: bytes) -> Table:
    """A CSV with a header (UTF-8, BOM or not) or JSONL of objects, as columns and rows."""
    text = decode_text(data)
    first = first_line(text)
    if first is None:
        raise InvalidInput("The file has no rows", param="file")
    if first.lstrip().startswith("{"):
        return table_from_rows([obj for _, obj in jsonl_objects(text)], "file")
    reader = csv.reader(io.StringIO(text))
    header = next((row for row in reader if any(c.strip() for c in row)), [])
    columns = [c.strip() for c in header]
    if not columns or any(not c for c in columns) or len(set(columns)) != len(columns):
        raise InvalidInput("The first row must be a header of unique, non-empty column names "
                           f"(got {header[:8]!r})", param="file")
    rows = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines are not rows
        if len(row) > len(columns):
            raise InvalidInput(f"row {len(rows) + 1} has {len(row)} fields but the header has {len(columns)}",
                               param="file")
        rows.append(dict(zip(columns, row + [""] * (len(columns) - len(row)))))
    if not rows:
        raise InvalidInput("The file has a header but no rows", param="file")
    return Table(columns, rows)


def table_from_rows(rows, param: str = "rows") -> Table:
    """Inline rows (or JSONL objects): scalar values only; columns in order of first appearance."""
    if not isinstance(rows, list) or not rows:
        raise InvalidInput(f"{param} must be a non-empty list of objects", param=param)
    columns: dict[str, None] = {}
    clean = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not all(
                isinstance(v, (str, int, float, bool)) or v is None for v in row.values()):
            raise InvalidInput(f"{param}[{i}] must be an object of strings and numbers", param=f"{param}[{i}]")
        clean.append({str(k): "" if v is None else str(v) for k, v in row.items()})
        columns.update(dict.fromkeys(clean[-1]))
    return Table(list(columns), clean)


def placeholders(template: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise InvalidInput(f"template is not valid: {exc} (write {{{{ and }}}} for literal braces)",
                           param="template") from None


def check_template(template, columns: list[str]) -> None:
    if not isinstance(template, str) or not template.strip():
        raise InvalidInput("template must be a non-empty string with {column} placeholders", param="template")
    unknown = sorted({n for n in placeholders(template) if n not in columns})
    if unknown:
        raise InvalidInput(f"template names unknown columns: {', '.join(repr(n) for n in unknown)} "
                           f"(columns: {', '.join(columns)})", param="template")


def render(template: str, row: dict) -> str:
    """Each {name} is the column's text, looked up literally (no attribute or format tricks)."""
    out = []
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        out.append(literal)
        if name is not None:
            out.append(row.get(name, ""))
    return "".join(out)


def chunk_part(index: int) -> str:
    """A chunk as a part of its campaign's job record, leased on its own (JobStore.start_part)."""
    return f"chunk:{index}"


def chunk_parts(chunks: int) -> list[str]:
    return [chunk_part(i) for i in range(chunks)]


def chunk_lease_key(campaign_id: str, index: int) -> str:
    """Held while a worker generates a chunk; the finalizer and the reaper wait on it."""
    return JobStore.part_lease_key(campaign_id, chunk_part(index))


def chunk_key(campaign_id: str, part: str, index: int) -> str:
    return f"campaigns/{campaign_id}/{part}/{index:05d}.jsonl"


def columns_key(campaign_id: str) -> str:
    """The sheet's column names in order, for output.csv."""
    return f"campaigns/{campaign_id}/columns.json"


def enqueue_finalize(send_task, campaign_id: str) -> None:
    """The one way to send a campaign's finalizer (`send_task`: a Celery app's). Only a caller that
    took the finalize flag (CampaignCounters), or the reaper re-sending a lost one, sends it."""
    send_task(FINALIZE_TASK, args=[campaign_id])


def jsonl_bytes(records) -> bytes:
    """Chunks and outputs as stored: one JSON object per line, UTF-8 as is."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def settings_key(record: dict) -> str:
    """Rows with equal keys share generation settings (a batch line may carry its own): one
    generate call serves them together."""
    return json.dumps(record.get("params") or {}, sort_keys=True)


class CampaignCounters:
    """Exactly-once completion: a chunk counts only the first time it is added to the done set, and
    only while its lease (KEYS[4]) is held by the counting worker's token (ARGV[5])."""

    _COMPLETE_LUA = """
if redis.call('GET', KEYS[4]) ~= ARGV[5] then return {'fenced', 0} end
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return {'duplicate', 0} end
redis.call('HINCRBY', KEYS[2], 'completed', ARGV[2])
redis.call('HINCRBY', KEYS[2], 'failed', ARGV[3])
local done = redis.call('SCARD', KEYS[1])
if done >= tonumber(ARGV[4]) and redis.call('SET', KEYS[3], '1', 'NX') then return {'finalize', done} end
return {'counted', done}
"""

    def __init__(self, client: redis.Redis):
        self.r = client
        self._complete = client.register_script(self._COMPLETE_LUA)

    @staticmethod
    def keys(campaign_id: str) -> tuple[str, str, str]:
        base = f"{PREFIX}campaign:{campaign_id}"
        return f"{base}:done", f"{base}:counts", f"{base}:finalize"

    def complete(self, campaign_id: str, index: int, completed: int, failed: int, chunks: int, token: str) -> str:
        """Count a finished chunk under its lease `token`; returns fenced (another worker holds the
        chunk now) | duplicate | counted | finalize (the last, exactly once)."""
        keys = [*self.keys(campaign_id), chunk_lease_key(campaign_id, index)]
        return self._complete(keys=keys, args=[index, completed, failed, chunks, token])[0]

    def claim_finalize(self, campaign_id: str) -> bool:
        """For a cancel: the one caller that gets True enqueues the finalizer."""
        return bool(self.r.set(self.keys(campaign_id)[2], "1", nx=True))

    def is_done(self, campaign_id: str, index: int) -> bool:
        return bool(self.r.sismember(self.keys(campaign_id)[0], index))

    def done_chunks(self, campaign_id: str) -> set[int]:
        return {int(i) for i in self.r.smembers(self.keys(campaign_id)[0])}

    def counts(self, campaign_id: str) -> dict:
        raw = self.r.hgetall(self.keys(campaign_id)[1])
        return {"completed": int(raw.get("completed", 0)), "failed": int(raw.get("failed", 0))}
