"""The job store: job records, per-owner index, events and leases in Redis, the source of truth."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Iterable, NamedTuple

import redis

from core.batches import BATCH_LISTS_KEY
from core.clock import now_iso
from core.errors import Conflict, InvalidInput, NotFound
from core.metrics import COUNTERS_KEY
from core.redisdb import PREFIX

QUEUED, RUNNING, CANCELING = "queued", "running", "canceling"
SUCCEEDED, FAILED, CANCELED = "succeeded", "failed", "canceled"
# A job that can checkpoint at any step (a fine-tune) may be paused: it keeps its last checkpoint,
# holds no worker, lease or queue place, and goes back to the queue when resumed.
PAUSED = "paused"
TERMINAL = (SUCCEEDED, FAILED, CANCELED)
STATUSES = (QUEUED, RUNNING, CANCELING, PAUSED) + TERMINAL

# Which statuses each status may be entered from; terminal statuses are never left.
ALLOWED_FROM = {
    QUEUED: (PAUSED,),  # resumed (a new job is created queued)
    RUNNING: (QUEUED, RUNNING),
    CANCELING: (QUEUED, RUNNING),  # a queued campaign cancels through its finalizer
    PAUSED: (QUEUED, RUNNING),
    SUCCEEDED: (RUNNING, CANCELING),
    FAILED: (QUEUED, RUNNING, CANCELING, PAUSED),
    CANCELED: (QUEUED, RUNNING, CANCELING, PAUSED),
}

_JSON_FIELDS = ("input", "output", "error", "progress", "artifacts", "metadata", "checkpoint")
_PUBLIC_FIELDS = ("id", "kind", "status", "created_at", "started_at", "finished_at", "input", "output",
                  "error", "progress", "artifacts", "metadata")

# Every event a script appends to a job's event list is also added to the job's live stream
# (`{job key}:live`, a Redis Stream), where readers block for what comes next instead of polling
# the record: the API's event stream, a waiting completion, a streamed reply (whose token deltas
# travel on the same stream, so they always arrive before the terminal status). Capped and
# expiring: the event list stays the record; the stream is only the wake-up and the token relay.
LIVE_MAXLEN = 2000
LIVE_TTL_MS = 24 * 3600 * 1000
_LIVE_LUA = f"""
local function live(jk, ev)
  redis.call('XADD', jk .. ':live', 'MAXLEN', '~', {LIVE_MAXLEN}, '*', 'e', ev)
  redis.call('PEXPIRE', jk .. ':live', {LIVE_TTL_MS})
end
"""

# Create a job; with an idempotency key, only if the key is new (else return what it holds). Its
# task messages are pushed in the same step, so a job is never recorded without its message nor
# queued without its record. With a batch list the job joins that list (and the list the set of
# lists) and the messages wake a worker only when the list was empty: a worker that takes jobs
# from the list leaves a message behind for whatever it did not take.
# KEYS: [1] the job hash, [2] the owner's index (sorted set), [3] the job's event list,
#       [4] the idempotency key ('' for none), [5] the batch list ('' for none), [6] the set of batch lists,
#       [7] the owner's open jobs (a set: queued or running, for the per-owner limit),
#       [8] the metrics counters (core/metrics.py: jobs_submitted_total by kind),
#       [9] the queue's waiting line (a sorted set by submission time, '' for none; the job's
#           `queued_in` field names it, and it leaves the line when claimed or ended).
# ARGV: [1] the idempotency value "{job id} {body hash}", [2] its lifetime (s), [3] the index score
#       (creation time, epoch s), [4] the first event (JSON), [5] the job id, [6] M, the number of
#       task messages, [7 .. 6+2M] their (queue, payload) pairs, then the record's (field, value) pairs.
# Returns {'created', ''} or {'exists', the idempotency value already stored}.
_CREATE_LUA = """
if KEYS[4] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing then return {'exists', existing} end
  redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[2])
end
local messages = tonumber(ARGV[6])
redis.call('HSET', KEYS[1], unpack(ARGV, 7 + 2 * messages))
for i = 7 + 2 * messages, #ARGV, 2 do
  if ARGV[i] == 'kind' then redis.call('HINCRBY', KEYS[8], 'jobs_submitted_total|kind=' .. ARGV[i + 1], 1) end
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
if KEYS[9] ~= '' then redis.call('ZADD', KEYS[9], ARGV[3], ARGV[5]) end
redis.call('SADD', KEYS[7], ARGV[5])
redis.call('RPUSH', KEYS[3], ARGV[4])
local wake = true
if KEYS[5] ~= '' then
  wake = redis.call('RPUSH', KEYS[5], ARGV[5]) == 1
  redis.call('SADD', KEYS[6], KEYS[5])
end
if wake then
  for i = 0, messages - 1 do redis.call('LPUSH', ARGV[7 + 2 * i], ARGV[8 + 2 * i]) end
end
return {'created', ''}
"""

# One atomic step for every write to a job: optional lease fence, optional status transition
# (checked against the allowed "from" list), the field writes, an event, and the active-set
# bookkeeping. Without a transition a terminal job is not written.
# KEYS: [1] the job hash, [2] its event list, [3] the active set, [4] the lease key that fences.
# ARGV: [1] the lease token ('' for an unfenced write), [2] the new status ('' for none),
#       [3] the statuses it may be entered from, comma-separated, [4] the event (JSON, '' for none),
#       [5] 'rem' to take the job out of the active set (a job joins it when claimed; with a token
#       the lease is dropped too), else '', [6] the job key prefix (KEYS[1] minus it is the id),
#       [7 ..] (field, value) pairs to write.
# A job's first terminal status is counted in the metrics (jobs_finished_total by kind and status).
# Returns {'ok'|'fenced'|'denied'|'missing', the status before}.
_UPDATE_LUA = _LIVE_LUA + """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {'missing', ''} end
if ARGV[1] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[1] then return {'fenced', st} end
local terminal = (st == 'succeeded' or st == 'failed' or st == 'canceled')
if ARGV[2] ~= '' then
  local allowed = false
  for s in string.gmatch(ARGV[3], '[^,]+') do if s == st then allowed = true end end
  if not allowed then return {'denied', st} end
  redis.call('HSET', KEYS[1], 'status', ARGV[2])
  local line = redis.call('HGET', KEYS[1], 'queued_in')
  if line and line ~= '' and ARGV[2] ~= 'queued' then
    redis.call('ZREM', line, string.sub(KEYS[1], string.len(ARGV[6]) + 1))
  end
  if not terminal and (ARGV[2] == 'succeeded' or ARGV[2] == 'failed' or ARGV[2] == 'canceled') then
    local kind = redis.call('HGET', KEYS[1], 'kind') or ''
    redis.call('HINCRBY', string.sub(ARGV[6], 1, -5) .. 'metrics',
               'jobs_finished_total|kind=' .. kind .. ',status=' .. ARGV[2], 1)
  end
elseif terminal then
  return {'denied', st}
end
for i = 7, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[4])
  live(KEYS[1], ARGV[4])
end
if ARGV[5] == 'rem' then
  local id = string.sub(KEYS[1], string.len(ARGV[6]) + 1)
  redis.call('SREM', KEYS[3], id)
  if ARGV[1] ~= '' then redis.call('DEL', KEYS[4]) end
  -- No longer open for its owner's limit: the key is built like JobStore.open_key (one Redis).
  local owner = redis.call('HGET', KEYS[1], 'owner')
  if owner then redis.call('SREM', string.sub(ARGV[6], 1, -5) .. 'owner:' .. owner .. ':open', id) end
end
return {'ok', st}
"""

# Start an attempt on a batch of jobs: the lead job and the rest, up to a limit in all, taken from
# the batch list. Claiming a job takes its lease (SET NX PX) and bumps its attempts and fencing
# epoch; jobs finished, canceled or leased meanwhile are reported, not taken, and progress stays as
# submitted. If jobs are left in the list, the continuation message is pushed so another worker (or
# this one, next) takes them. Job keys are built here from the key prefix: a single Redis, not a
# cluster.
# KEYS: [1] the batch list ('' for the lead job alone), [2] the active set.
# ARGV: [1] the lead job id ('' for none), [2] the most jobs to claim, [3] the lease lifetime (ms),
#       [4] now (ISO 8601), [5] the key prefix, [6] the status event (JSON; the attempt is spliced
#       in before its closing brace), [7] the continuation's queue ('' for none), [8] its payload,
#       [9 ..] one lease token per job looked at, in order (the i-th job's is ARGV[8 + i]).
# Returns one entry per job: {id, outcome, status, attempts, token, record}; a missing job's has
# no status, and only a claimed job's has the last three.
_CLAIM_BATCH_LUA = _LIVE_LUA + """
local ids = {}
if ARGV[1] ~= '' then table.insert(ids, ARGV[1]) end
if KEYS[1] ~= '' then
  if ARGV[1] ~= '' then redis.call('LREM', KEYS[1], 1, ARGV[1]) end
  local want = tonumber(ARGV[2]) - #ids
  if want > 0 then
    local popped = redis.call('LPOP', KEYS[1], want)
    if popped then for _, id in ipairs(popped) do table.insert(ids, id) end end
  end
  if ARGV[7] ~= '' and redis.call('LLEN', KEYS[1]) > 0 then redis.call('LPUSH', ARGV[7], ARGV[8]) end
end
local out = {}
for i, id in ipairs(ids) do
  local jk = ARGV[5] .. 'job:' .. id
  local st = redis.call('HGET', jk, 'status')
  if not st then
    table.insert(out, {id, 'missing'})
  elseif st == 'succeeded' or st == 'failed' or st == 'canceled' then
    table.insert(out, {id, 'terminal', st})
  elseif st == 'paused' then
    table.insert(out, {id, 'paused', st})
  elseif not redis.call('SET', ARGV[5] .. 'lease:' .. id, ARGV[8 + i], 'NX', 'PX', ARGV[3]) then
    table.insert(out, {id, 'busy', st})
  else
    local attempts = redis.call('HINCRBY', jk, 'attempts', 1)
    redis.call('HINCRBY', jk, 'epoch', 1)
    if st == 'queued' then
      redis.call('HSET', jk, 'status', 'running', 'started_at', ARGV[4])
      st = 'running'
      local line = redis.call('HGET', jk, 'queued_in')
      if line and line ~= '' then redis.call('ZREM', line, id) end
    end
    redis.call('HSET', jk, 'updated_at', ARGV[4])
    redis.call('SADD', KEYS[2], id)
    local ev = string.sub(ARGV[6], 1, -2) .. ', "attempt": ' .. attempts .. '}'
    redis.call('RPUSH', jk .. ':events', ev)
    live(jk, ev)
    table.insert(out, {id, 'claimed', st, tostring(attempts), ARGV[8 + i], redis.call('HGETALL', jk)})
  end
end
return out
"""

# Drop a batch list from the set of lists if it is still empty (a submission may refill it).
# KEYS: [1] the batch list, [2] the set of batch lists. No ARGV. Returns 1 if dropped, else 0.
_FORGET_LIST_LUA = """
if redis.call('LLEN', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], KEYS[1]) end
return 0
"""

# Extend a lease only while this token holds it (compare-and-renew).
# KEYS: [1] the lease key. ARGV: [1] the token, [2] the new lifetime (ms). Returns 1 if renewed, else 0.
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# Give the lease back; with a refund the attempt does not count (Redis blinked, nobody crashed).
# KEYS: [1] the lease key, [2] the job hash (its `attempts` is refunded).
# ARGV: [1] the token, [2] '1' to refund the attempt. Returns 1 if this token held the lease, else 0.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] == '1' then redis.call('HINCRBY', KEYS[2], 'attempts', -1) end
return 1
"""

# Start work on one part of a job (a campaign's chunk) under the part's own lease KEYS[4]: refused
# for a missing, terminal or cancel-requested job, or a part leased meanwhile; else the lease is
# taken (SET NX PX), a queued job becomes running (with its status event) and the job joins the
# active set KEYS[3], all in one step. Returns started | busy | terminal | canceled | missing.
# Resume a paused job: back in its queue's waiting line and its owner's open jobs, its task message
# pushed, in one step; a running job whose pause was requested but not yet taken just loses the
# request. KEYS: [1] the job hash, [2] its event list, [3] the owner's open jobs.
# ARGV: [1] now (ISO 8601), [2] the status event (JSON), [3] the score in the waiting line (epoch s),
#       [4] the task message's queue, [5] its payload. Returns 'resumed' | 'unpaused' | the status.
_RESUME_LUA = _LIVE_LUA + """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return 'missing' end
if st == 'running' and redis.call('HGET', KEYS[1], 'pause_requested') == '1' then
  redis.call('HSET', KEYS[1], 'pause_requested', '0')
  return 'unpaused'
end
if st ~= 'paused' then return st end
redis.call('HSET', KEYS[1], 'status', 'queued', 'pause_requested', '0', 'updated_at', ARGV[1])
local line = redis.call('HGET', KEYS[1], 'queued_in')
local id = redis.call('HGET', KEYS[1], 'id')
if line and line ~= '' then redis.call('ZADD', line, ARGV[3], id) end
redis.call('SADD', KEYS[3], id)
redis.call('RPUSH', KEYS[2], ARGV[2])
live(KEYS[1], ARGV[2])
redis.call('LPUSH', ARGV[4], ARGV[5])
return 'resumed'
"""

_START_PART_LUA = _LIVE_LUA + """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return 'missing' end
if st == 'succeeded' or st == 'failed' or st == 'canceled' then return 'terminal' end
if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then return 'canceled' end
if not redis.call('SET', KEYS[4], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'busy' end
if st == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[3], 'updated_at', ARGV[3])
  redis.call('RPUSH', KEYS[2], ARGV[4])
  live(KEYS[1], ARGV[4])
end
redis.call('SADD', KEYS[3], ARGV[5])
return 'started'
"""


def new_job_id(prefix: str = "job_") -> str:
    return prefix + secrets.token_hex(12)


@dataclass
class Claim:
    """The outcome of trying to start an attempt on a job."""

    outcome: str  # claimed | busy | terminal | paused | missing
    status: str = ""
    attempts: int = 0
    token: str = ""
    job_id: str = ""


class TerminalWrite(NamedTuple):
    """One job's terminal write for `finish_many`, fenced by its lease token; `progress`, if any,
    is written (with its event) just before the status."""

    job_id: str
    token: str
    status: str
    fields: dict
    progress: dict | None = None


class JobStore:
    """All reads and writes of job records go through here."""

    def __init__(self, client: redis.Redis):
        self.r = client
        self._create = client.register_script(_CREATE_LUA)
        self._update = client.register_script(_UPDATE_LUA)
        self._claim_batch = client.register_script(_CLAIM_BATCH_LUA)
        self._forget_list = client.register_script(_FORGET_LIST_LUA)
        self._renew = client.register_script(_RENEW_LUA)
        self._release = client.register_script(_RELEASE_LUA)
        self._start_part = client.register_script(_START_PART_LUA)
        self._resume = client.register_script(_RESUME_LUA)

    # -- keys ---------------------------------------------------------------------------
    @staticmethod
    def job_key(job_id: str) -> str:
        return f"{PREFIX}job:{job_id}"

    @staticmethod
    def events_key(job_id: str) -> str:
        return f"{PREFIX}job:{job_id}:events"

    @staticmethod
    def lease_key(job_id: str) -> str:
        return f"{PREFIX}lease:{job_id}"

    @staticmethod
    def owner_key(owner: str) -> str:
        return f"{PREFIX}owner:{owner}:jobs"

    @staticmethod
    def open_key(owner: str) -> str:
        """The owner's queued and running jobs (built the same way inside _UPDATE_LUA)."""
        return f"{PREFIX}owner:{owner}:open"

    ACTIVE_KEY = f"{PREFIX}jobs:active"

    # -- create and read ----------------------------------------------------------------
    def create(self, owner: str, kind: str, input: dict, metadata: dict | None = None,
               idempotency: tuple[str, str] | None = None, job_id: str | None = None,
               messages=(), batch_list: str = "", progress: dict | None = None,
               webhook_url: str = "", queue: str = "") -> tuple[dict, bool]:
        """Write a queued job and push its task messages; with (key, body_hash) the same pair
        returns the first job (and pushes nothing).

        job_id: the new job's id (default: a fresh one); a caller whose messages name the job picks
        it first with new_job_id(). messages: the task messages to push, (queue, payload) pairs
        (workers.task_messages). batch_list: the list of queued jobs that one worker may run
        together (the messages then wake a worker only if the list was empty). progress: the bar a
        queued job shows (its total known at submission), else empty. queue: the Celery queue the job
        waits in; the job joins that queue's waiting line, which gives its queue_position.
        Returns (job, created). A reused key with another body is a Conflict.
        """
        job_id = job_id or new_job_id()
        now = now_iso()
        record = {
            "id": job_id, "owner": owner, "kind": kind, "status": QUEUED,
            "input": json.dumps(input), "output": "null", "error": "null",
            "progress": json.dumps(progress or {"completed": 0, "total": None, "unit": None, "eta_s": None}),
            "artifacts": "[]", "metadata": json.dumps(metadata or {}), "checkpoint": "null",
            "attempts": 0, "epoch": 0, "cancel_requested": 0,
            "created_at": now, "started_at": "", "finished_at": "", "updated_at": now,
            "webhook_url": webhook_url, "queued_in": self.line_key(queue) if queue else "",
        }
        idem_key = self.idempotency_key(owner, idempotency[0]) if idempotency else ""
        fields = [x for pair in record.items() for x in pair]
        pushes = [x for message in messages for x in (message.queue, message.payload)]
        # One atomic step: a key never points at a job that is not written yet.
        res = self._create(
            keys=[self.job_key(job_id), self.owner_key(owner), self.events_key(job_id), idem_key, batch_list,
                  BATCH_LISTS_KEY, self.open_key(owner), COUNTERS_KEY, record["queued_in"]],
            args=[f"{job_id} {idempotency[1]}" if idempotency else "", 24 * 3600, time.time(),
                  _event("status", status=QUEUED), job_id, len(messages), *pushes, *fields])
        if res[0] == "exists":
            existing_id, _, body_hash = res[1].partition(" ")
            if body_hash != idempotency[1]:
                raise Conflict("Idempotency-Key was already used with a different request body",
                               param="Idempotency-Key", code="idempotency_key_reused")
            return self.get(existing_id, owner), False
        return self._decode(record), True

    @staticmethod
    def line_key(queue: str) -> str:
        """A queue's waiting line: its queued jobs by submission time, every owner's."""
        return f"{PREFIX}line:{queue}"

    def queue_position(self, job: dict) -> int | None:
        """1 for the next job its queue's workers take (by submission time; jobs run together in a
        batch may start sooner), None once it is not queued."""
        if job["status"] != QUEUED or not job.get("queued_in"):
            return None
        rank = self.r.zrank(job["queued_in"], job["id"])
        return None if rank is None else rank + 1

    @staticmethod
    def idempotency_key(owner: str, key: str) -> str:
        return f"{PREFIX}idem:{owner}:{key}"

    def get(self, job_id: str, owner: str | None = None) -> dict:
        """The job, or NotFound; with an owner, another owner's job is NotFound too."""
        raw = self.r.hgetall(self.job_key(job_id)) if job_id else {}
        if not raw or (owner is not None and raw.get("owner") != owner):
            raise NotFound(f"No job {job_id!r}", param="id")
        return self._decode(raw)

    def list(self, owner: str, kind: str | None = None, status: str | None = None,
             limit: int = 20, after: str | None = None) -> tuple[list[dict], str | None]:
        """Newest first; `after` is the last id of the previous page. Returns (jobs, next cursor)."""
        key = self.owner_key(owner)
        start = 0
        if after:
            rank = self.r.zrevrank(key, after)
            if rank is None:
                raise InvalidInput(f"Unknown cursor {after!r}: pass next_cursor from the last page",
                                   param="after")
            start = rank + 1
        found: list[dict] = []
        batch = max(limit * 2, 50)
        while len(found) < limit:
            ids = self.r.zrevrange(key, start, start + batch - 1)
            if not ids:
                break
            pipe = self.r.pipeline(transaction=False)
            for job_id in ids:
                pipe.hgetall(self.job_key(job_id))
            for job_id, raw in zip(ids, pipe.execute()):
                start += 1
                if not raw or (kind and raw["kind"] != kind) or (status and raw["status"] != status):
                    continue
                found.append(self._decode(raw))
                if len(found) == limit:
                    break
        more = len(found) == limit and self.r.zcard(key) > start
        return found, (found[-1]["id"] if more else None)

    def events(self, job_id: str, after: int = -1, limit: int = 500) -> list[dict]:
        raw = self.r.lrange(self.events_key(job_id), after + 1, after + limit)
        return [dict(json.loads(item), seq=after + 1 + i) for i, item in enumerate(raw)]

    def all_events(self, job_id: str) -> list[dict]:
        """Every event of a job, oldest first (one read; for a worker resuming a job)."""
        return [json.loads(item) for item in self.r.lrange(self.events_key(job_id), 0, -1)]

    # -- the life of a job ---------------------------------------------------------------
    def claim(self, job_id: str, ttl_s: float) -> Claim:
        """Take one job's lease and start an attempt (a batch of one)."""
        return self.claim_batch(job_id, "", 1, ttl_s)[0][0]

    def claim_batch(self, lead_id: str | None, batch_list: str, limit: int, ttl_s: float,
                    continuation=None, placement: dict | None = None) -> list[tuple[Claim, dict | None]]:
        """Claim the lead job and up to `limit` jobs in all from `batch_list`, in one step.

        continuation: the (queue, payload) message to push if jobs are left in the list.
        placement: added to each attempt's "running" event (which worker ran which attempt, on
        which device, at which precision).
        Returns (claim, job record or None) per job looked at, the lead first.
        """
        tokens = [secrets.token_hex(8) for _ in range(limit + 1)]
        running = _event("status", status=RUNNING, **(placement or {}))
        res = self._claim_batch(
            keys=[batch_list, self.ACTIVE_KEY],
            args=[lead_id or "", limit, int(ttl_s * 1000), now_iso(), PREFIX, running,
                  continuation.queue if continuation else "",
                  continuation.payload if continuation else "", *tokens])
        out = []
        for entry in res:
            if entry[1] != "claimed":
                out.append((Claim(entry[1], entry[2] if len(entry) > 2 else "", job_id=entry[0]), None))
                continue
            flat = entry[5]
            record = self._decode(dict(zip(flat[::2], flat[1::2])))
            out.append((Claim("claimed", entry[2], int(entry[3]), entry[4], job_id=entry[0]), record))
        return out

    def finish_many(self, items: list[TerminalWrite]) -> list[tuple[str, dict | None]]:
        """Terminal writes for several jobs in one round trip. Returns (outcome, record after the
        write) per job."""
        pipe = self.r.pipeline(transaction=False)
        for job_id, token, status, fields, progress in items:
            if progress is not None:
                self._write(job_id, {"progress": progress, "updated_at": now_iso()}, token=token,
                            event=_event("progress", **progress), client=pipe)
            now = now_iso()
            self._write(job_id, dict(fields, updated_at=now, finished_at=now), token=token, status=status,
                        allowed=ALLOWED_FROM[status], event=_event("status", status=status), terminal=True,
                        client=pipe)
            pipe.hgetall(self.job_key(job_id))
        replies = iter(pipe.execute())
        out = []
        for _job_id, _token, _status, _fields, progress in items:
            if progress is not None:
                next(replies)
            outcome = next(replies)[0]
            raw = next(replies)
            out.append((outcome, self._decode(raw) if outcome == "ok" else None))
        return out

    def waiting_batches(self) -> list[tuple[str, str]]:
        """(batch list, its oldest job id) for every list with jobs waiting; empty lists are forgotten."""
        out = []
        for list_key in sorted(self.r.smembers(BATCH_LISTS_KEY)):
            head = self.r.lindex(list_key, 0)
            if head is None:
                self._forget_list(keys=[list_key, BATCH_LISTS_KEY])
            else:
                out.append((list_key, head))
        return out

    def renew_many(self, leases: list[tuple[str, str]], ttl_s: float) -> list[tuple[bool, bool, bool]]:
        """Renew several leases and read their cancel and pause flags in one round trip:
        (renewed, cancel, pause) each."""
        pipe = self.r.pipeline(transaction=False)
        for job_id, token in leases:
            self._renew(keys=[self.lease_key(job_id)], args=[token, int(ttl_s * 1000)], client=pipe)
            pipe.hmget(self.job_key(job_id), "cancel_requested", "pause_requested")
        replies = pipe.execute()
        return [(bool(replies[i]), replies[i + 1][0] == "1", replies[i + 1][1] == "1")
                for i in range(0, len(replies), 2)]

    def release(self, job_id: str, token: str, refund_attempt: bool = False) -> None:
        self._release(keys=[self.lease_key(job_id), self.job_key(job_id)], args=[token, int(refund_attempt)])

    def lease_alive(self, job_id: str) -> bool:
        return bool(self.r.exists(self.lease_key(job_id)))

    def lease_left_s(self, job_id: str, part: str | None = None) -> float:
        """Seconds until a job's (or a part's) lease lapses unless renewed; 0 when it is not held."""
        key = self.part_lease_key(job_id, part) if part else self.lease_key(job_id)
        return max(0, self.r.pttl(key)) / 1000

    def transition(self, job_id: str, status: str, token: str = "", event: dict | None = None,
                   only_from: tuple[str, ...] | None = None, **fields) -> tuple[str, str]:
        """Move a job to `status` if allowed (narrowed by `only_from`); returns (outcome, previous)."""
        finishing = status in TERMINAL
        now = now_iso()
        fields["updated_at"] = now
        if finishing:
            fields["finished_at"] = now
        ev = _event("status", status=status, **(event or {}))
        allowed = [s for s in ALLOWED_FROM[status] if only_from is None or s in only_from]
        return self._write(job_id, fields, token=token, status=status, allowed=allowed, event=ev,
                           terminal=finishing)

    def update(self, job_id: str, token: str = "", event: dict | None = None, **fields) -> str:
        """Write fields (and an event) on a job that is not terminal; returns the outcome."""
        fields["updated_at"] = now_iso()
        ev = _event(event.pop("type"), **event) if event else ""
        return self._write(job_id, fields, token=token, event=ev)[0]

    def add_event(self, job_id: str, type: str, **payload) -> None:
        ev = _event(type, **payload)
        pipe = self.r.pipeline(transaction=False)
        pipe.rpush(self.events_key(job_id), ev)
        self._live(pipe, job_id, "e", ev)
        pipe.execute()

    # -- the live stream (see _LIVE_LUA) ----------------------------------------------------
    @staticmethod
    def live_key(job_id: str) -> str:
        return f"{PREFIX}job:{job_id}:live"

    def _live(self, pipe, job_id: str, field: str, value: str) -> None:
        key = self.live_key(job_id)
        pipe.xadd(key, {field: value}, maxlen=LIVE_MAXLEN, approximate=True)
        pipe.pexpire(key, LIVE_TTL_MS)

    def publish_deltas(self, deltas: dict[str, list[tuple[int, str]]]) -> None:
        """Streamed text for several jobs in one round trip: {job id: [(choice index, new text)]}."""
        pipe = self.r.pipeline(transaction=False)
        for job_id, pieces in deltas.items():
            self._live(pipe, job_id, "d", json.dumps(pieces, ensure_ascii=False))
        pipe.execute()

    def live_tail(self, job_id: str) -> str:
        """The id of the live stream's last entry ('0-0' when empty): read after it for what is new."""
        last = self.r.xrevrange(self.live_key(job_id), count=1)
        return last[0][0] if last else "0-0"

    def follow(self, job_id: str, after: str, block_ms: int | None) -> list[tuple[str, str, str]]:
        """Entries of the live stream after `after`, waiting up to `block_ms` for one (None: not at
        all): [(entry id, "e" (an event, JSON) | "d" (deltas, JSON), value)]."""
        reply = self.r.xread({self.live_key(job_id): after}, block=block_ms, count=500)
        out = []
        for _key, entries in reply or []:
            for entry_id, fields in entries:
                for field, value in fields.items():
                    out.append((entry_id, field, value))
        return out

    def request_cancel(self, job_id: str) -> dict:
        """Queued and paused jobs are canceled at once; running ones get the flag their loop checks."""
        outcome, _ = self.transition(job_id, CANCELED, only_from=(QUEUED, PAUSED), cancel_requested=1)
        if outcome != "ok":
            self.transition(job_id, CANCELING, only_from=(RUNNING,), cancel_requested=1)
        return self.get(job_id)

    def request_pause(self, job_id: str) -> dict:
        """A queued job is paused at once (its message, when taken, claims nothing); a running one
        gets the flag its worker acts on at its next step: checkpoint, then paused."""
        outcome, _ = self._write(job_id, {"updated_at": now_iso()}, status=PAUSED, allowed=(QUEUED,),
                                 event=_event("status", status=PAUSED), terminal=True)
        if outcome != "ok":
            self.update(job_id, pause_requested=1)
        return self.get(job_id)

    def pause_running(self, job_id: str, token: str, step: int | None = None) -> str:
        """The worker's side of a pause, fenced by its lease: paused, lease dropped, out of the
        active set and its owner's open jobs (the job holds nothing while it waits)."""
        event = _event("status", status=PAUSED, **({"step": step} if step is not None else {}))
        return self._write(job_id, {"updated_at": now_iso(), "pause_requested": 0}, token=token, status=PAUSED,
                           allowed=(RUNNING,), event=event, terminal=True)[0]

    def resume(self, job_id: str, message) -> str:
        """Back to the queue with `message` (a workers.task_messages message): resumed; a pending
        pause of a running job withdrawn: unpaused; else the status that cannot be resumed."""
        owner = self.r.hget(self.job_key(job_id), "owner") or ""
        return self._resume(keys=[self.job_key(job_id), self.events_key(job_id), self.open_key(owner)],
                            args=[now_iso(), _event("status", status=QUEUED, resumed=True), time.time(),
                                  message.queue, message.payload])

    def active_ids(self) -> list[str]:
        return sorted(self.r.smembers(self.ACTIVE_KEY))

    # -- part leases: one part of a job (a campaign's chunk) under its own lease -----------
    # The same lease life as a job's (SET NX PX, compare-and-renew heartbeat, compare-and-delete
    # release, writes fenced by the token), on a key of its own, so that several parts of one job
    # run at once on several workers.
    @staticmethod
    def part_lease_key(job_id: str, part: str) -> str:
        """Beside the job's own lease key: `lease:{job id}:{part}`."""
        return f"{PREFIX}lease:{job_id}:{part}"

    def start_part(self, job_id: str, part: str, ttl_s: float) -> tuple[str, str]:
        """Take a part's lease and mark its job running and active, in one step; (outcome, token),
        outcome one of started | busy | terminal | canceled | missing."""
        token = secrets.token_hex(8)
        outcome = self._start_part(
            keys=[self.job_key(job_id), self.events_key(job_id), self.ACTIVE_KEY, self.part_lease_key(job_id, part)],
            args=[token, int(ttl_s * 1000), now_iso(), _event("status", status=RUNNING), job_id])
        return outcome, token if outcome == "started" else ""

    def renew_parts(self, leases: list[tuple[str, str, str]], ttl_s: float) -> list[tuple[bool, bool]]:
        """The heartbeat of part leases, (job_id, part, token) each, in one round trip: (renewed,
        the job's cancel flag) each, as renew_many."""
        pipe = self.r.pipeline(transaction=False)
        for job_id, part, token in leases:
            self._renew(keys=[self.part_lease_key(job_id, part)], args=[token, int(ttl_s * 1000)], client=pipe)
            pipe.hget(self.job_key(job_id), "cancel_requested")
        replies = pipe.execute()
        return [(bool(replies[i]), replies[i + 1] == "1") for i in range(0, len(replies), 2)]

    def update_part(self, job_id: str, part: str, token: str, event: dict | None = None, **fields) -> str:
        """Write fields (and an event) on a job that is not terminal, fenced by a part's lease:
        "fenced" once another holder took the part over. Returns the outcome."""
        fields["updated_at"] = now_iso()
        ev = _event(event.pop("type"), **event) if event else ""
        args = [token, "", "", ev, "", f"{PREFIX}job:"]
        for name, value in fields.items():
            args += [name, json.dumps(value) if name in _JSON_FIELDS else value]
        keys = [self.job_key(job_id), self.events_key(job_id), self.ACTIVE_KEY, self.part_lease_key(job_id, part)]
        return self._update(keys=keys, args=args)[0]

    def release_part(self, job_id: str, part: str, token: str) -> bool:
        """Drop a part's lease if this token still holds it (compare-and-delete in one script)."""
        return bool(self._release(keys=[self.part_lease_key(job_id, part), self.job_key(job_id)], args=[token, 0]))

    def parts_alive(self, job_id: str, parts: list[str]) -> bool:
        """Whether any of these parts' leases is held (one round trip)."""
        return bool(parts) and self.r.exists(*(self.part_lease_key(job_id, p) for p in parts)) > 0

    # -- internals ------------------------------------------------------------------------
    def _write(self, job_id: str, fields: dict, *, token: str = "", status: str = "",
               allowed: Iterable[str] = (), event: str = "", terminal: bool = False, client=None):
        """Write `fields` on a job in one _UPDATE_LUA step: fenced by `token` (if given), moving it to
        `status` (if given) only from an `allowed` status, appending `event` (JSON, if given); a
        `terminal` write takes the job out of the active set and drops the lease.

        Returns (outcome, previous status); with a pipeline as `client`, the reply comes from it.
        """
        args = [token, status, ",".join(allowed), event, "rem" if terminal else "", f"{PREFIX}job:"]
        for name, value in fields.items():
            args += [name, json.dumps(value) if name in _JSON_FIELDS else value]
        res = self._update(
            keys=[self.job_key(job_id), self.events_key(job_id), self.ACTIVE_KEY, self.lease_key(job_id)],
            args=args, client=client,
        )
        return None if client is not None else (res[0], res[1])

    @staticmethod
    def _decode(raw: dict) -> dict:
        job = dict(raw)
        for name in _JSON_FIELDS:
            job[name] = json.loads(raw[name]) if isinstance(raw.get(name), str) else raw.get(name)
        for name in ("attempts", "epoch"):
            job[name] = int(raw.get(name) or 0)
        job["cancel_requested"] = str(raw.get("cancel_requested")) == "1"
        job["pause_requested"] = str(raw.get("pause_requested")) == "1"
        for name in ("started_at", "finished_at", "webhook_url"):
            job[name] = raw.get(name) or None
        return job


def public_job(job: dict) -> dict:
    """The job as the API shows it (no owner internals, no fencing epoch)."""
    out = {"object": "job"}
    out.update({name: job.get(name) for name in _PUBLIC_FIELDS})
    out["attempts"] = job["attempts"]
    out["webhook_url"] = job.get("webhook_url")
    out["cancel_requested"] = job["cancel_requested"]
    # The last committed checkpoint's step only; its storage layout is internal.
    out["checkpoint"] = {"step": job["checkpoint"]["step"]} if job.get("checkpoint") else None
    return out


def archive_record(store: JobStore, storage, job_id: str) -> None:
    """Finished records also live in storage (`jobs/{id}/job.json`): storage alone recovers results."""
    archive_job(storage, store.get(job_id))


def archive_job(storage, job: dict) -> None:
    """Write a finished record already in hand to storage."""
    from core.storage import job_json_key

    storage.put_bytes(job_json_key(job["id"]), json.dumps(public_job(job), indent=2).encode(), "application/json")


def _event(type: str, **payload) -> str:
    return json.dumps({"type": type, "ts": now_iso(), **payload})
