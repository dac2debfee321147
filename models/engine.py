"""Continuous batching: one decoding loop per loaded model that requests join at any step, each with its own sampling settings, and leave the moment they finish.

The loop is driven by its caller, a step at a time (`Engine.step`): a worker's serving task
(tasks/serving.py) admits queued jobs between steps, the campaign chunk and the benchmarks run their
rows to the end. Per step:

1. Requests that were canceled leave; their rows' cache slots are reused at once.
2. Waiting requests are admitted while the key/value-cache budget allows, and prefilled together,
   one forward pass per group of similar prompt length (left-padded within the group). Each
   request's first token is drawn from that pass, its `n` rows sharing the prompt's cache (copied,
   not recomputed).
3. One decoding forward pass over every running row, on a cache of preallocated slots
   (`SlotCache`: written in place, never concatenated), each row aligned to the right: row r holds
   its tokens in columns [start_r, T) and attends to nothing left of start_r.
4. Each row's next token under its own request's temperature, top-k and top-p, drawn from the
   request's own generator, so a seed gives the same text whatever shares the batch (up to the
   float rounding of a different batch shape). Rows that reach an end token, a stop string or
   `max_tokens` leave.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache, CacheLayerMixin

from models.engine_attention import fp32_attention, row_windows
from models.engine_matmul import PackedMatmuls
from models.engine_memory import IDLE_RELEASE_S, KEEP_IDLE_CACHE_FROM_BYTES, release_later, return_freed_memory
from models.sampling import choose_tokens
import models.text as text
from models.text import (KV_CACHE_BUDGET_BYTES, GenerationParams, TextModel, _cpu_threads, check_prompt_fits,
                         finish_choice, kv_bytes_per_token, sequences_per_prompt, stop_tail_tokens)

# Rows decoded together at most (the key/value budget may allow fewer): for GPT-2 small on a 2-core
# CPU, 64 rows a step gave ~1.5x the throughput of 16 and 128 another ~8% (a step streams every
# weight from memory once for all its rows); past that a step only gets longer.
MAX_ROWS = 128
# Prompt tokens prefilled in one step at most (a long prompt alone may exceed it): a flood of
# arrivals is taken in a few steps, so the running rows' next token is not held up for all of them.
PREFILL_TOKENS_PER_STEP = 2048
# A decoding step's attention reads the cache per group of this many rows, each from the first
# column one of them uses; rows are kept roughly in order of their first column (see _order_rows).
WINDOW_ROWS = 8
# Neighbouring windows are read as one where that reads at most this many more bytes of a layer's
# cache than reading them apart: an attention call costs 30-40 us on top of its reads on 2 AVX2
# cores, about what reading half a megabyte of the cache takes (a campaign's rows, of prompts of
# near-equal length, then take one or two calls a layer, not sixteen).
WINDOW_MERGE_BYTES = 512 << 10
# Rows are put back in order of their first column at most this often, and only where that cuts
# the cache a step reads by a fifth (the reordering copies the cache once: about two steps' reads).
REORDER_EVERY_STEPS = 16
REORDER_WHEN_READ_FALLS_TO = 0.8
# Padding tokens a prefill group may carry beyond a tenth of its area (see _by_length).
PREFILL_PAD_SLACK = 32


class RequestTooLarge(ValueError):
    """A request whose rows could never fit the engine's key/value-cache budget, even alone."""


@dataclass(eq=False)
class Request:
    """One prompt's `params.n` completions. The engine fills `result` (generate_batch's shape:
    choices, prompt_tokens, completion_tokens) when the last row finishes."""

    prompt_ids: list[int]
    params: GenerationParams
    seed: int = 0
    adapter: str | None = None  # the LoRA adapter its rows run with (None: the base)
    # Each step's new token of every row (choice order; a finished row repeats an end token).
    on_tokens: Callable[["Request", list[int]], None] | None = None
    tag: object = None  # the caller's own (a job context, a row index)
    # Filled by the engine:
    result: dict | None = None
    canceled: bool = False
    generated: int = 0  # tokens drawn so far (the longest row's)
    _rows: list["_Row"] = field(default_factory=list, repr=False)
    _generator: torch.Generator | None = field(default=None, repr=False)
    _added: bool = field(default=False, repr=False)

    @property
    def done(self) -> bool:
        return self.result is not None or self.canceled

    @property
    def rows(self) -> int:
        return sequences_per_prompt(self.params)

    @property
    def reserved_tokens(self) -> int:
        """The cache it may come to hold: every row at its full length."""
        return self.rows * (len(self.prompt_ids) + self.params.max_new_tokens)


@dataclass(eq=False)
class _Row:
    request: Request
    index: int  # which of the request's sequences
    start: int  # the first cache column it uses
    tokens: list[int] = field(default_factory=list)
    finished: bool = False


class _SlotLayer(CacheLayerMixin):
    """One layer's keys and values in preallocated [rows, heads, columns, head_dim] buffers, written
    in place at the engine's current column (DynamicLayer concatenates a new tensor every step)."""

    is_sliding = False

    def __init__(self, shape: "_Shape"):
        super().__init__()
        self.shape = shape
        self.is_initialized = True

    def lazy_initialization(self, key_states, value_states) -> None:  # buffers come from the engine
        pass

    def update(self, key_states, value_states, *args, **kwargs):
        rows, col, q = self.shape.rows, self.shape.columns, key_states.shape[-2]
        self.keys[:rows, :, col:col + q] = key_states
        self.values[:rows, :, col:col + q] = value_states
        return self.keys[:rows, :, :col + q], self.values[:rows, :, :col + q]

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.shape.columns + query_length, 0

    def get_seq_length(self) -> int:
        return self.shape.columns

    def get_max_length(self) -> int:
        return -1


@dataclass
class _Shape:
    rows: int = 0  # running rows (slots 0..rows-1)
    columns: int = 0  # columns written (T): the next token of every row goes to column T


class SlotCache(Cache):
    """The running rows' cache: one _SlotLayer per model layer, sharing one shape."""

    def __init__(self, layers: int):
        self.shape = _Shape()
        super().__init__(layers=[_SlotLayer(self.shape) for _ in range(layers)])

    @property
    def allocated(self) -> tuple[int, int]:
        """(row slots, columns) the buffers hold."""
        keys = self.layers[0].keys
        return (0, 0) if keys is None else (keys.shape[0], keys.shape[2])

    def reserve(self, rows: int, columns: int, like: torch.Tensor, dtype: torch.dtype, max_rows: int,
                max_columns: int, expected_rows: int = 0) -> None:
        """Buffers for at least `rows` slots of `columns`, grown by doubling, or at once to the
        `expected_rows` about to join, up to the caps (the content kept)."""
        have_rows, have_cols = self.allocated
        if rows <= have_rows and columns <= have_cols:
            return
        # Only the dimension that ran out grows: a buffer is a fresh allocation that every page of
        # is faulted in and zeroed (150 ms for 128 rows x 512 columns of GPT-2 small's layer).
        new_rows = (have_rows if rows <= have_rows
                    else max(rows, min(max(2 * have_rows, 8, expected_rows), max_rows)))
        new_cols = have_cols if columns <= have_cols else max(columns, min(max(2 * have_cols, 128), max_columns))
        b, t = self.shape.rows, self.shape.columns
        heads, dim = like.shape[1], like.shape[-1]
        for layer in self.layers:
            for name in ("keys", "values"):
                buf = torch.zeros(new_rows, heads, new_cols, dim, dtype=dtype, device=like.device)
                old = getattr(layer, name)
                if old is not None and b and t:
                    buf[:b, :, :t] = old[:b, :, :t]
                setattr(layer, name, buf)

    @property
    def layer_bytes(self) -> int:
        """Bytes of one layer's key buffer (0 when none is allocated)."""
        keys = self.layers[0].keys
        return 0 if keys is None else keys.numel() * keys.element_size()

    def release(self) -> None:
        """Free the buffers."""
        for layer in self.layers:
            layer.keys = layer.values = None
        self.shape.rows = self.shape.columns = 0

    def move_row(self, src: int, dst: int) -> None:
        t = self.shape.columns
        for layer in self.layers:
            layer.keys[dst, :, :t] = layer.keys[src, :, :t]
            layer.values[dst, :, :t] = layer.values[src, :, :t]

    def permute(self, order: torch.Tensor) -> None:
        """Slot i takes what slot order[i] held, for the running rows."""
        b, t = self.shape.rows, self.shape.columns
        for layer in self.layers:
            for buf in (layer.keys, layer.values):
                buf[:b, :, :t] = buf[order, :, :t]

    def shift(self, by: int) -> None:
        """Move every running row's columns right (by > 0) or left (by < 0)."""
        b, t = self.shape.rows, self.shape.columns
        for layer in self.layers:
            for buf in (layer.keys, layer.values):
                if by > 0:
                    buf[:b, :, by:by + t] = buf[:b, :, :t].clone()
                else:
                    buf[:b, :, :t + by] = buf[:b, :, -by:t].clone()
        self.shape.columns = t + by


class Engine:
    """Continuous batching over one loaded model (see the module's docstring)."""

    def __init__(self, tm: TextModel, budget_bytes: int = KV_CACHE_BUDGET_BYTES, max_rows: int = MAX_ROWS):
        self.tm = tm
        per_token = kv_bytes_per_token(tm) or 1
        self.budget_tokens = max(1, budget_bytes // per_token)
        self.max_rows = max_rows
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.rows: list[_Row] = []  # row i sits in cache slot i
        self.cache = SlotCache(tm.model.config.num_hidden_layers)
        self.mask: torch.Tensor | None = None  # [slots, columns] 1 where a row has a token
        self.reserved = 0  # tokens the running requests may come to hold
        self.steps = 0
        self.adapters = tm.adapters  # the base's AdapterSet, once an adapter was loaded over it
        # The key/value buffers: bf16 on CUDA; a CPU keeps the model's dtype even under autocast
        # (models/engine_attention.py: its bf16 attention kernel is 5x slower than fp32's there).
        self._dtype = torch.bfloat16 if tm.device.type == "cuda" else next(tm.model.parameters()).dtype
        self._cast: contextlib.ExitStack | None = None  # the autocast region, while entered
        self._pack: torch.dtype | None = None  # the packed products' dtype on a CPU, while chosen
        self._packed: PackedMatmuls | None = None  # a CPU's packed weights, from the first step that packs
        self._joining = 0  # rows of the prefill being placed that are not in self.rows yet
        self._ordered_at = -REORDER_EVERY_STEPS  # the step at which rows were last put in order of their first column
        layer_bytes = (kv_bytes_per_token(tm) or 0) // max(1, tm.model.config.num_hidden_layers)
        self._merge_row_columns = WINDOW_MERGE_BYTES // layer_bytes if layer_bytes else 0  # see _windows_of
        self.suppressed = _suppressed_tokens(tm)
        # A step and the idle release of the cache (from a timer thread) take turns.
        self._lock = threading.Lock()
        self._idle_since: float | None = None  # when the last step left no rows (None: running)
        self._release_pending = False  # a timer will look at the idle cache

    # -- the caller's side ------------------------------------------------------------------
    def check(self, request: Request) -> None:
        """PromptTooLong or RequestTooLarge if the request could never be admitted."""
        check_prompt_fits(self.tm, len(request.prompt_ids), request.params.max_new_tokens)
        if request.reserved_tokens > self.budget_tokens:
            raise RequestTooLarge(
                f"{request.rows} sequence(s) of {len(request.prompt_ids)} + {request.params.max_new_tokens} tokens "
                f"need more key/value cache than this worker holds for one model ({self.budget_tokens} tokens)")

    def add(self, request: Request) -> None:
        """Queue a request; it joins the running batch at the next step the budget allows."""
        if request._added:
            raise ValueError("this request was added already")
        self.check(request)
        request._added = True
        self.waiting.append(request)

    def cancel(self, request: Request) -> None:
        """Drop a request; its rows leave at the start of the next step."""
        request.canceled = True

    @contextlib.contextmanager
    def serving(self):
        """A caller's run of steps (a worker process runs one task at a time, so one caller drives the
        engine at a time). Should the run raise (a lost lease, a broken model, an error inside a
        step), the engine starts over empty: nothing half-placed outlives it."""
        try:
            yield self
        except BaseException:
            self.reset()
            raise

    def reset(self) -> None:
        """Drop every request and the cache (after an error inside a step)."""
        for request in [*self.waiting, *self.running]:
            request.canceled = True
        self.waiting.clear()
        self.running.clear()
        self.rows.clear()
        self.reserved = self._joining = 0
        with self._lock:
            self._free_cache()
        self._leave_precision()

    @property
    def idle(self) -> bool:
        return not self.waiting and not self.running

    @property
    def free_rows(self) -> int:
        queued = sum(r.rows for r in self.waiting)
        return max(0, self.max_rows - len(self.rows) - queued)

    def run(self, requests: list[Request]) -> list[Request]:
        """Add `requests` (those not added yet) and step until every one of them is done."""
        for request in requests:
            if not request._added:
                self.add(request)
        while not all(r.done for r in requests):
            self.step()
        return requests

    def step(self, on_prefilled: Callable[[], None] | None = None) -> list[Request]:
        """One scheduling step; returns the requests that finished in it. `on_prefilled` is called
        once the step's new requests have their first tokens (on_tokens has them), before the
        decoding pass: a caller that streams can send them a step earlier (the time to the first
        token under load is then one decoding step shorter)."""
        finished: list[Request] = []
        with self._lock:
            self._drop_canceled()
            prefilled = self._admit(finished)
            if prefilled and on_prefilled is not None:
                on_prefilled()
            if self.rows:
                self._decode(finished)
            self.steps += 1
            if self.rows:
                self._idle_since = None
            elif self._idle_since is None or prefilled:  # (requests may finish in the step that admitted them)
                self._go_idle()
        return finished

    def _go_idle(self) -> None:
        """No rows are left: the next run's rows start at column 0 of the buffers kept, which are freed
        once the engine has been idle for IDLE_RELEASE_S (models/engine_memory.py). The heap's free
        pages go back now: kept until then, they held the worker's RSS 20-40% above its level (all
        that the steps had freed, while requests come and go a second apart)."""
        self._idle_since = time.monotonic()
        self.cache.shape.columns = 0
        self._leave_precision()
        if self.cache.layer_bytes < KEEP_IDLE_CACHE_FROM_BYTES:
            self._free_cache()
        elif not self._release_pending:
            self._release_pending = True
            release_later(self, Engine._release_if_idle, IDLE_RELEASE_S)
        return_freed_memory()

    def _release_if_idle(self) -> None:
        """Free the cache if the engine is still idle and has been for IDLE_RELEASE_S; if it ran and
        went idle again since, look again when that idle time is up."""
        with self._lock:
            self._release_pending = False
            if self._idle_since is None or self.cache.allocated == (0, 0):
                return  # running again: going idle schedules another look
            left = self._idle_since + IDLE_RELEASE_S - time.monotonic()
            if left > 0:
                self._release_pending = True
                release_later(self, Engine._release_if_idle, left)
                return
            self._free_cache()
        return_freed_memory()

    def _free_cache(self) -> None:
        self.cache.release()
        self.mask = None

    # -- admission and prefill ----------------------------------------------------------------
    def _admit(self, finished: list[Request]) -> bool:
        """Admit and prefill what the budget allows; whether anything was."""
        batch, tokens = [], 0
        while self.waiting:
            request = self.waiting[0]
            if request.canceled:
                self.waiting.popleft()
                continue
            rows = len(self.rows) + sum(r.rows for r in batch) + request.rows
            # A request of more rows than max_rows (a big n) runs once it is alone.
            too_many = rows > self.max_rows and (self.rows or batch)
            if too_many or self.reserved + request.reserved_tokens > self.budget_tokens:
                break
            if batch and tokens + len(request.prompt_ids) > PREFILL_TOKENS_PER_STEP:
                break
            self.waiting.popleft()
            batch.append(request)
            tokens += len(request.prompt_ids)
            self.reserved += request.reserved_tokens
        if batch:
            self._prefill(batch, finished)
        return bool(batch)

    def _prefill(self, batch: list[Request], finished: list[Request]) -> None:
        self._precision(len(self.rows) + sum(r.rows for r in batch))
        groups = [(group, *self._prefill_forward(group)) for group in _by_length(batch)]
        for request in batch:
            request._generator = torch.Generator(self.tm.device).manual_seed(request.seed)
        # A request's rows share its prompt's logits (and cache) for their first token.
        sources = [(g, b, request, i) for g, (group, *_) in enumerate(groups) for b, request in enumerate(group)
                   for i in range(request.rows)]
        logits = torch.cat([logits[[b for b, request in enumerate(group) for _ in range(request.rows)]]
                            for group, logits, *_ in groups])
        first = self._choose(logits, [(request, i) for _, _, request, i in sources])
        new_rows: list[list[tuple[int, _Row]]] = [[] for _ in groups]  # per group: (its batch index, row)
        for (g, b, request, i), token in zip(sources, first):
            row = _Row(request, i, start=0, tokens=[token])
            request._rows.append(row)
            new_rows[g].append((b, row))
        for request in batch:
            request.generated = 1
            self._retire_finished_rows(request)
            self._emit(request)
            if all(row.finished for row in request._rows):
                self._complete(request, finished)
            else:
                self.running.append(request)
        placing = [[(b, row) for b, row in rows if not row.finished] for rows in new_rows]
        self._joining = sum(map(len, placing))
        for (_, _, cache, longest), placed in zip(groups, placing):
            self._place(placed, cache, longest)
            self._joining -= len(placed)

    def _prefill_forward(self, group: list[Request]) -> tuple[torch.Tensor, DynamicCache, int]:
        """One forward pass over `group`'s prompts, left-padded to the longest: (last logits, cache,
        longest prompt)."""
        tm, dev = self.tm, self.tm.device
        longest = max(len(r.prompt_ids) for r in group)
        pad = tm.tokenizer.pad_token_id or 0
        ids = torch.tensor([[pad] * (longest - len(r.prompt_ids)) + r.prompt_ids for r in group], device=dev)
        mask = torch.tensor([[0] * (longest - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in group],
                            device=dev)
        positions = (mask.cumsum(-1) - 1).clamp_(min=0)
        cache = DynamicCache(config=tm.model.config)
        with self._forward_context(len(group), [r.adapter for r in group]):
            logits = tm.model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                              use_cache=True, logits_to_keep=1).logits[:, -1]
            self._suppress(logits)
        return logits, cache, longest

    def _place(self, placed: list[tuple[int, _Row]], prefill: DynamicCache, longest: int) -> None:
        """Copy the prefilled rows into cache slots, each right-aligned at the current column."""
        if not placed:
            return
        shape, keys0 = self.cache.shape, prefill.layers[0].keys
        before = shape.columns
        self._reserve(shape.rows + len(placed), max(before, longest) + 1, keys0)
        if longest > before:  # the running rows move right to make room on the left
            by = longest - before
            if shape.rows:
                self.cache.shift(by)
                self.mask[:shape.rows, by:longest] = self.mask[:shape.rows, :before].clone()
                self.mask[:shape.rows, :by] = 0
                for row in self.rows:
                    row.start += by
            shape.columns = longest
        t, b0 = shape.columns, shape.rows
        slots = torch.arange(b0, b0 + len(placed), device=keys0.device)
        sources = torch.tensor([b for b, _ in placed], device=keys0.device)
        # Right-aligned prefill: the prompt's columns [longest - len, longest) go to [t - longest, t).
        for layer, src in zip(self.cache.layers, prefill.layers):
            layer.keys[slots, :, t - longest:t] = src.keys[sources].to(self._dtype)
            layer.values[slots, :, t - longest:t] = src.values[sources].to(self._dtype)
        self.mask[b0:b0 + len(placed)] = 0
        for i, (b, row) in enumerate(placed):
            row.start = t - len(row.request.prompt_ids)
            self.mask[b0 + i, row.start:t] = 1
            self.rows.append(row)
        shape.rows = b0 + len(placed)

    def _reserve(self, rows: int, columns: int, like: torch.Tensor) -> None:
        have_rows = self.cache.allocated[0]
        # Growing: to the rows about to run, as a campaign chunk's 128 rows join over three prefill
        # steps, and growing the slots at each (45, 90, 128) zeroed and copied 2.5 GB, not 1.2.
        expected = self._rows_to_come() if rows > have_rows else 0
        self.cache.reserve(rows, columns, like, self._dtype, max(rows, self.max_rows), self.tm.max_positions + 1,
                           expected_rows=expected)
        self._reserve_mask(rows, columns)

    def _rows_to_come(self) -> int:
        """Rows running, being placed, and waiting that the row cap and the cache budget would admit
        (a flood of waiting requests reserves no more than admission would let run)."""
        rows, tokens = len(self.rows) + self._joining, self.reserved
        for request in self.waiting:
            if request.canceled:
                continue
            if rows + request.rows > self.max_rows or tokens + request.reserved_tokens > self.budget_tokens:
                break
            rows, tokens = rows + request.rows, tokens + request.reserved_tokens
        return rows

    def _reserve_mask(self, rows: int, columns: int) -> None:
        have = (0, 0) if self.mask is None else tuple(self.mask.shape)
        if rows <= have[0] and columns <= have[1]:
            return
        rows_cap, cols_cap = self.cache.allocated
        mask = torch.zeros(max(rows, rows_cap), max(columns, cols_cap), dtype=torch.long, device=self.tm.device)
        if self.mask is not None:
            b, t = self.cache.shape.rows, self.cache.shape.columns
            mask[:b, :t] = self.mask[:b, :t]
        self.mask = mask

    # -- decoding ---------------------------------------------------------------------------
    def _decode(self, finished: list[Request]) -> None:
        shape, tm = self.cache.shape, self.tm
        self._trim()
        self._order_rows()
        b, t = shape.rows, shape.columns
        self._reserve(b, t + 1, self.cache.layers[0].keys)
        self.mask[:b, t] = 1
        dev = tm.device
        ids = torch.tensor([[row.tokens[-1]] for row in self.rows], device=dev)
        positions = torch.tensor([[t - row.start] for row in self.rows], device=dev)
        self._precision(b)
        with self._forward_context(b, [row.request.adapter for row in self.rows], self._windows()):
            logits = tm.model(input_ids=ids, attention_mask=self.mask[:b, :t + 1], position_ids=positions,
                              cache=self.cache, use_cache=True, logits_to_keep=1).logits[:, -1]
            self._suppress(logits)
        shape.columns = t + 1
        requests = list(dict.fromkeys(row.request for row in self.rows))
        for request in requests:
            request.generated += 1
        tokens = self._choose(logits, [(row.request, row.index) for row in self.rows])
        for row, token in zip(self.rows, tokens):
            row.tokens.append(token)
        for request in requests:
            self._retire_finished_rows(request)
            self._emit(request)
            if all(row.finished for row in request._rows):
                self._complete(request, finished)
        self._free_finished_slots()

    def _suppress(self, logits: torch.Tensor) -> None:
        if self.suppressed is not None:
            logits[:, self.suppressed] = -float("inf")

    def _precision(self, rows: int) -> None:
        """Choose the steps' matmul precision until the engine is idle. On CUDA: bf16 autocast. On a
        CPU, for a step of 1e8 FLOPs or more, the projections multiply weights packed once
        (models/engine_matmul.py): in bf16 under autocast on a CPU with native bf16 (faster than
        fp32 at every batch size, one row included: 19 against 25 ms at one row, 75 against 88 at
        32 for GPT-2 small on 2 AVX-512 BF16 cores), in fp32 elsewhere (182 -> 114 ms a
        32-row step on 2 AVX2 cores). A smaller step, a tiny model's, is bound by per-op overheads
        and gains nothing: it runs the model as it is, in fp32. The choice stays until the engine is
        idle: autocast keeps its cast weights (a LoRA adapter's) only as long as its region."""
        if self._cast is not None or self._pack is not None:
            return
        device = self.tm.device.type
        if device == "cuda":
            self._cast = contextlib.ExitStack()
            self._cast.enter_context(torch.autocast(device, dtype=torch.bfloat16))
        # (torch built without oneDNN has neither the packed products nor fast bf16 ones: plain fp32 there)
        elif device == "cpu" and torch.backends.mkldnn.is_available() and not text._small_cpu_step(self.tm, rows):
            if text.cpu_native_bf16():
                self._cast = contextlib.ExitStack()
                self._cast.enter_context(torch.autocast(device, dtype=torch.bfloat16))
                self._pack = torch.bfloat16
            else:
                self._pack = torch.float32

    def _leave_precision(self) -> None:
        if self._cast is not None:
            self._cast.close()
            self._cast = None
        self._pack = None

    def _forward_context(self, rows: int, adapters: list[str | None],
                         windows: list[tuple[int, int, int]] | None = None):
        stack = contextlib.ExitStack()
        # no_grad rather than inference_mode: autocast keeps its cast weights only outside inference
        # mode (else every weight is cast again at every step: 22 ms a step for GPT-2's 50k x 768
        # embedding alone).
        stack.enter_context(torch.no_grad())
        stack.enter_context(_cpu_threads(self.tm, rows))
        if self.tm.device.type == "cpu":
            stack.enter_context(fp32_attention(self.tm.model))
            stack.enter_context(row_windows(windows))
            if self._pack is not None:
                if self._packed is None or self._packed.dtype != self._pack:
                    self._packed = PackedMatmuls(self.tm.model, self._pack)
                stack.enter_context(self._packed.active())
        if self.adapters is not None and any(adapters):
            stack.enter_context(self.adapters.rows(adapters))
        return stack

    def _windows(self) -> list[tuple[int, int, int]] | None:
        """This step's attention windows (None: one window, the whole batch)."""
        if len(self.rows) <= WINDOW_ROWS:
            return None
        return _windows_of([row.start for row in self.rows], self._merge_row_columns)

    def _order_rows(self) -> None:
        """Put the running rows in order of their first column when that cuts the cache the windows
        read by a fifth (rows join with prompts of any length and leave in any order)."""
        b, t = len(self.rows), self.cache.shape.columns
        if b <= WINDOW_ROWS or self.steps - self._ordered_at < REORDER_EVERY_STEPS:
            return
        starts = [row.start for row in self.rows]
        order = sorted(range(b), key=starts.__getitem__)
        merge = self._merge_row_columns
        if (_window_area([starts[i] for i in order], t, merge)
                > REORDER_WHEN_READ_FALLS_TO * _window_area(starts, t, merge)):
            return
        self._ordered_at = self.steps
        index = torch.tensor(order, device=self.tm.device)
        self.cache.permute(index)
        self.mask[:b, :t] = self.mask[index, :t]
        self.rows = [self.rows[i] for i in order]

    def _trim(self) -> None:
        """Drop leading columns no running row uses, once they are half the cache's width, or when
        the next column would not fit the model's context."""
        shape = self.cache.shape
        unused = min(row.start for row in self.rows)
        if unused and (2 * unused >= shape.columns or shape.columns + 1 > self.tm.max_positions):
            self.cache.shift(-unused)
            b, t = shape.rows, shape.columns
            self.mask[:b, :t] = self.mask[:b, unused:unused + t].clone()
            for row in self.rows:
                row.start -= unused

    def _choose(self, logits: torch.Tensor, rows: list[tuple[Request, int]]) -> list[int]:
        """Each logits row's token, row i for rows[i] = (request, which of its sequences). A sampling
        request draws a uniform for each of its n sequences every step, finished ones too, so each
        sequence gets the stream generate_batch would give it (models/text._SampleByCdf)."""
        draws: dict[int, torch.Tensor] = {}
        for request, _ in rows:
            if request.params.temperature > 0 and id(request) not in draws:
                draws[id(request)] = torch.rand(request.rows, device=logits.device, generator=request._generator)
        uniforms = torch.stack([draws[id(r)][i] if id(r) in draws else torch.zeros((), device=logits.device)
                                for r, i in rows])
        return choose_tokens(logits, [r.params.temperature for r, _ in rows], [r.params.top_k for r, _ in rows],
                             [r.params.top_p for r, _ in rows], uniforms)

    # -- leaving --------------------------------------------------------------------------------
    def _retire_finished_rows(self, request: Request) -> None:
        params, end_ids = request.params, self.tm.end_ids
        for row in request._rows:
            if row.finished:
                continue
            token = row.tokens[-1]
            if token in end_ids or len(row.tokens) >= params.max_new_tokens:
                row.finished = True
            elif params.stop:
                tail = self.tm.tokenizer.decode(row.tokens[-stop_tail_tokens(params.stop):],
                                                clean_up_tokenization_spaces=False)
                row.finished = any(s in tail for s in params.stop)

    def _emit(self, request: Request) -> None:
        if request.on_tokens is None:
            return
        end = self.tm.end_ids[0] if self.tm.end_ids else 0
        # A row that finished on an earlier step repeats an end token, as a finished row does in generate.
        tokens = [row.tokens[request.generated - 1] if len(row.tokens) >= request.generated else end
                  for row in request._rows]
        per = request.rows
        request.on_tokens(request, [tokens[i % per] for i in range(request.params.n)])

    def _complete(self, request: Request, finished: list[Request]) -> None:
        tok, params = self.tm.tokenizer, request.params
        choices, used = [], 0
        for i in range(params.n):
            choice, n_tokens = finish_choice(tok, request._rows[i % request.rows].tokens, params, self.tm.end_ids)
            choices.append({"index": i, **choice})
            used += n_tokens
        request.result = {"choices": choices, "prompt_tokens": len(request.prompt_ids), "completion_tokens": used}
        finished.append(request)
        self._leave(request)

    def _leave(self, request: Request) -> None:
        if request in self.running:
            self.running.remove(request)
            self.reserved -= request.reserved_tokens
        # A row and its request point at each other: cut the cycle, so a finished request (its tokens,
        # its generator's native state) is freed when its caller lets go, not at the next full
        # collection, which a worker's large heap of long-lived objects makes rare.
        for row in request._rows:
            row.finished = True
            row.request = None
        request._generator = None

    def _drop_canceled(self) -> None:
        for request in [r for r in self.running if r.canceled]:
            self._leave(request)
        self._free_finished_slots()

    def _free_finished_slots(self) -> None:
        """Swap-remove: the last running row moves into each freed slot (one row's copy, not the batch's)."""
        shape = self.cache.shape
        for slot in sorted((i for i, row in enumerate(self.rows) if row.finished), reverse=True):
            last = len(self.rows) - 1
            if slot != last:
                self.cache.move_row(last, slot)
                self.mask[slot, :shape.columns] = self.mask[last, :shape.columns]
                self.rows[slot] = self.rows[last]
            self.rows.pop()
            shape.rows = len(self.rows)


def _windows_of(starts: list[int], merge_row_columns: int = 0) -> list[tuple[int, int, int]]:
    """(first row, end row, first column) of each WINDOW_ROWS rows, in slot order, for rows of these
    first columns; a window joins the one before it where that has the two read at most
    `merge_row_columns` more (row, column) cells than apart."""
    windows: list[tuple[int, int, int]] = []
    for r0 in range(0, len(starts), WINDOW_ROWS):
        r1 = min(r0 + WINDOW_ROWS, len(starts))
        c0 = min(starts[r0:r1])
        if windows:
            p0, p1, pc = windows[-1]
            low = min(pc, c0)
            if (p1 - p0) * (pc - low) + (r1 - r0) * (c0 - low) <= merge_row_columns:
                windows[-1] = (p0, r1, low)
                continue
        windows.append((r0, r1, c0))
    return windows


def _window_area(starts: list[int], columns: int, merge_row_columns: int = 0) -> int:
    """Cache cells (row, column) a step's attention reads for rows of these first columns, in slot order."""
    return sum((r1 - r0) * (columns - c0) for r0, r1, c0 in _windows_of(starts, merge_row_columns))


def _by_length(batch: list[Request]) -> list[list[Request]]:
    """The requests of a prefill split into groups of similar prompt length, each one forward pass:
    left padding to one longest prompt wasted about a third of a mixed batch's work (prompts of
    16-256 tokens). A group takes the next shorter prompt while its padding stays within a tenth of
    its area plus PREFILL_PAD_SLACK tokens (a pass of its own costs about that much again)."""
    ordered = sorted(batch, key=lambda r: -len(r.prompt_ids))
    groups: list[list[Request]] = []
    padding = 0
    for request in ordered:
        if groups:
            group = groups[-1]
            longest = len(group[0].prompt_ids)
            more = padding + longest - len(request.prompt_ids)
            if more <= 0.1 * longest * (len(group) + 1) + PREFILL_PAD_SLACK:
                group.append(request)
                padding = more
                continue
        groups.append([request])
        padding = 0
    return groups


def _suppressed_tokens(tm: TextModel) -> torch.Tensor | None:
    """Tokens the model's generation config never lets it write (`suppress_tokens`, one-token
    `bad_words_ids`), as generate honours them. The config's other processors (repetition penalty,
    n-gram bans) are not applied: a request's own settings are what the engine samples with."""
    config = getattr(tm.model, "generation_config", None)
    ids = list(getattr(config, "suppress_tokens", None) or [])
    ids += [words[0] for words in getattr(config, "bad_words_ids", None) or [] if len(words) == 1]
    return torch.tensor(sorted(set(ids)), device=tm.device) if ids else None


def engine_for(tm: TextModel, budget_bytes: int = KV_CACHE_BUDGET_BYTES) -> Engine:
    """The engine of a loaded model (one per model per process; it goes when the model is evicted).
    Adapters of one base share their base's engine: each request names its own."""
    engine = getattr(tm.model, "_serving_engine", None)
    if engine is None:
        engine = Engine(replace(tm, adapter=None), budget_bytes)
        tm.model._serving_engine = engine
    if tm.adapters is not None:
        engine.adapters = tm.adapters
    return engine
