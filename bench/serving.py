"""Serving: 256 seeded chat streams from 32 closed-loop clients through the platform vs serial, static-batched, continuous-batched (models/engine.py) and transformers' continuous batching in process, on GPT-2 small."""

from __future__ import annotations

import copy
import json
import math
import os
import random
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from itertools import count
from pathlib import Path

import requests
import torch
from transformers import GenerationConfig
from transformers.generation.configuration_utils import ContinuousBatchingConfig

from bench.device import DEVICE, synchronize
from bench.platform_generation import save_gpt2_small
from bench.queue_overhead import percentile
from bench.stack import Stack
from core.openai_schemas import ChatCompletionRequest
from models.chat import chat_prompt, chat_stops
from models.engine import Engine, Request
from models.text import GenerationParams, TextModel, cpu_native_bf16, generate_batch, load_text_model

MODEL = "gpt2-small"


@dataclass(frozen=True)
class Sizes:
    requests: int  # chat requests in the workload
    clients: int  # closed-loop clients (requests outstanding at once)
    serial: int  # the first requests run one at a time (serial is slow: a subset)
    alone: int  # the first requests streamed by one client alone, for its TTFT
    max_tokens: tuple[int, ...]  # max_tokens is drawn from these


FULL = Sizes(requests=256, clients=32, serial=24, alone=8, max_tokens=(8, 32, 128, 256))
# BENCH_SERVING_QUICK=1: the whole part end to end in a few minutes on a 2-core CPU.
QUICK = Sizes(requests=48, clients=8, serial=4, alone=4, max_tokens=(8, 32))
PROMPT_TOKENS = (16, 256)
STATIC_WINDOW = 16  # the worker's generate_batch_jobs: queued jobs sharing settings run as one batch
ALONE_MAX_TOKENS = 32  # one client alone: TTFT does not depend on the length, so the run stays short
DEADLINE_S = 3600  # any one measured run (engine loop, client threads)
READ_TIMEOUT_S = 300  # silence on a stream (the platform sends keep-alives while it queues)
# The route's sampling fields: /v1/chat/completions may not take top_k (OpenAI has none). Where it
# does not, the top-k third samples the whole vocabulary, in every mode alike.
REST_TOP_K = "top_k" in ChatCompletionRequest.model_fields
SAMPLING = ({"temperature": 0.0, "top_p": 1.0, "top_k": 0},
            {"temperature": 0.8, "top_p": 0.95, "top_k": 0},
            {"temperature": 1.0, "top_p": 1.0, "top_k": 50 if REST_TOP_K else 0})
WORDS = ("fresh roasted coffee beans for early risers who love a bold cup every single morning and a quiet "
         "lamp by the window while the city wakes up slowly under grey skies").split()


def sizes() -> Sizes:
    return QUICK if os.environ.get("BENCH_SERVING_QUICK") == "1" else FULL


@dataclass(frozen=True)
class Chat:
    """One request of the workload."""

    messages: tuple[dict, ...]
    prompt: str  # the chat template's text, as the worker renders it
    prompt_ids: tuple[int, ...]
    params: GenerationParams
    seed: int

    @property
    def settings(self) -> tuple:
        """What must match for requests to share a static batch (core/batches.py): all but prompt and seed."""
        p = self.params
        return p.max_new_tokens, p.temperature, p.top_p, p.top_k

    def body(self) -> dict:
        """The /v1/chat/completions body."""
        p = self.params
        body = {"model": MODEL, "messages": list(self.messages), "max_tokens": p.max_new_tokens,
                "temperature": p.temperature, "top_p": p.top_p, "seed": self.seed, "stream": True,
                "stream_options": {"include_usage": True}}
        if REST_TOP_K and p.top_k:
            body["top_k"] = p.top_k
        return body


# -- the workload ----------------------------------------------------------------------------------
def _prompt_tokens(tok, content: str) -> tuple[str, list[int]]:
    prompt = chat_prompt(tok, [{"role": "user", "content": content}])
    return prompt, tok(prompt)["input_ids"]


def _message(tok, rng: random.Random, target: int) -> str:
    """A user message whose chat prompt is at most `target` tokens (about exactly, byte-level)."""
    words = []
    while sum(len(w) + 1 for w in words) < target:
        words.append(rng.choice(WORDS))
    text = " ".join(words)[:target]
    while len(text) > 1:  # trim by the surplus: each pass shortens the text, so this ends
        surplus = len(_prompt_tokens(tok, text)[1]) - target
        if surplus <= 0:
            break
        text = text[:max(1, len(text) - surplus)]
    return text


def workload(tm: TextModel, s: Sizes) -> list[Chat]:
    """The seeded requests: prompt lengths uniform over what the template allows in PROMPT_TOKENS,
    max_tokens from s.max_tokens, a third each greedy, nucleus and top-k sampling, a seed each."""
    tok, rng = tm.tokenizer, random.Random(0)
    # The chat template alone takes some tokens (ChatML here, ~50): the shortest prompt has them all.
    low = max(PROMPT_TOKENS[0], len(_prompt_tokens(tok, "x")[1]))
    kinds = [i % len(SAMPLING) for i in range(s.requests)]
    rng.shuffle(kinds)
    stops = chat_stops(tok)  # what text.chat adds (ChatML's end of turn for a model without a template)
    out = []
    for kind in kinds:
        content = _message(tok, rng, rng.randint(low, PROMPT_TOKENS[1]))
        prompt, ids = _prompt_tokens(tok, content)
        seed = rng.randrange(2 ** 31)
        params = GenerationParams(max_new_tokens=rng.choice(s.max_tokens), seed=seed, stop=stops, **SAMPLING[kind])
        if len(ids) + params.max_new_tokens > tm.max_positions:
            raise RuntimeError(f"a bench request does not fit the context ({len(ids)} + {params.max_new_tokens})")
        out.append(Chat(({"role": "user", "content": content},), prompt, tuple(ids), params, seed))
    return out


# -- figures ---------------------------------------------------------------------------------------
def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def latencies(ttfts: list[float], gaps: list[float]) -> dict:
    """TTFT and inter-token latency p50/p99 in ms."""
    return {"ttft_p50_ms": _ms(percentile(ttfts, 50)), "ttft_p99_ms": _ms(percentile(ttfts, 99)),
            "itl_p50_ms": _ms(percentile(gaps, 50)) if gaps else None,
            "itl_p99_ms": _ms(percentile(gaps, 99)) if gaps else None, "streams_timed": len(ttfts)}


def _timed(times: list[float], start: float) -> tuple[float | None, list[float]]:
    """(time to the first token, gaps between tokens) of one stream's token times."""
    return (times[0] - start if times else None), [b - a for a, b in zip(times, times[1:])]


# -- (a) serial, (b) static: generate_batch in process ----------------------------------------------
def serial(tm: TextModel, chats: list[Chat]) -> dict:
    """One generate per request, one at a time."""
    start, tokens = time.perf_counter(), 0
    for c in chats:
        tokens += generate_batch(tm, [c.prompt], c.params, seeds=[c.seed])[0]["completion_tokens"]
    wall = time.perf_counter() - start
    return {"tokens_per_s": tokens / wall, "completion_tokens": tokens, "seconds": wall, "requests": len(chats)}


def static_groups(chats: list[Chat], window: int = STATIC_WINDOW) -> list[list[Chat]]:
    """The platform's static batching: each window of consecutive arrivals, split by settings."""
    groups = []
    for i in range(0, len(chats), window):
        by_settings: dict[tuple, list[Chat]] = {}
        for c in chats[i:i + window]:
            by_settings.setdefault(c.settings, []).append(c)
        groups += by_settings.values()
    return groups


def static(tm: TextModel, chats: list[Chat]) -> dict:
    """Each group one generate_batch, its rows left-padded to its longest prompt."""
    groups = static_groups(chats)
    start, tokens = time.perf_counter(), 0
    for group in groups:
        out = generate_batch(tm, [c.prompt for c in group], group[0].params, seeds=[c.seed for c in group])
        tokens += sum(r["completion_tokens"] for r in out)
    wall = time.perf_counter() - start
    return {"tokens_per_s": tokens / wall, "completion_tokens": tokens, "seconds": wall, "calls": len(groups)}


# -- (c) the engine in process, closed loop --------------------------------------------------------
def engine_closed_loop(tm: TextModel, chats: list[Chat], clients: int) -> dict:
    """`clients` requests outstanding at once, the next added as one finishes (the platform's
    clients, simulated in this thread); tokens/s and each request's TTFT and gaps from on_tokens."""
    engine = Engine(tm)
    submitted: dict[int, float] = {}
    token_times: dict[int, list[float]] = {i: [] for i in range(len(chats))}

    def on_tokens(request: Request, _tokens: list[int]) -> None:
        token_times[request.tag].append(time.perf_counter())

    pending = iter(range(len(chats)))

    def add_next() -> None:
        i = next(pending, None)
        if i is not None:
            c = chats[i]
            engine.add(Request(prompt_ids=list(c.prompt_ids), params=c.params, seed=c.seed, on_tokens=on_tokens,
                               tag=i))
            submitted[i] = time.perf_counter()

    start = time.perf_counter()
    for _ in range(clients):
        add_next()
    tokens = done = 0
    while not engine.idle:
        if time.perf_counter() - start > DEADLINE_S:
            raise RuntimeError(f"the engine did not finish {len(chats)} requests within {DEADLINE_S} s")
        for request in engine.step():
            tokens += request.result["completion_tokens"]
            done += 1
            add_next()
    wall = time.perf_counter() - start
    if done != len(chats):
        raise RuntimeError(f"the engine finished {done} of {len(chats)} requests")
    runs = [_timed(token_times[i], submitted[i]) for i in range(len(chats))]
    return {"tokens_per_s": tokens / wall, "completion_tokens": tokens, "seconds": wall, "steps": engine.steps,
            **latencies([r[0] for r in runs if r[0] is not None], [g for r in runs for g in r[1]])}


# -- transformers' own continuous batching, closed loop ---------------------------------------------
def _cb_sampling(c: Chat, vocab: int) -> dict:
    """A request's per-request processor settings: its manager samples every row, so greedy is top-k 1,
    and a setting left off is the neutral value (the manager's defaults are the other requests')."""
    p = c.params
    if p.temperature == 0:
        return {"temperature": 1.0, "top_p": 1.0, "top_k": 1}
    return {"temperature": float(p.temperature), "top_p": float(p.top_p), "top_k": p.top_k or vocab}


def transformers_cb_closed_loop(tm: TextModel, chats: list[Chat], clients: int) -> dict:
    """transformers' ContinuousBatchingManager on the same requests, `clients` outstanding at once,
    per-request temperature/top-k/top-p and max_new_tokens. It has one seed for all and no stop
    strings (end tokens only)."""
    model = tm.model
    if DEVICE.type == "cuda":  # the engine decodes in bf16 there: compare like with like
        model = copy.deepcopy(tm.model).to(torch.bfloat16)
    vocab = model.config.vocab_size
    longest = max(len(c.prompt_ids) + c.params.max_new_tokens for c in chats)
    gen = GenerationConfig(max_new_tokens=max(c.params.max_new_tokens for c in chats), do_sample=True,
                           temperature=0.8, top_p=0.95, top_k=50, eos_token_id=list(tm.end_ids),
                           pad_token_id=tm.tokenizer.pad_token_id)
    # A cache for `clients` requests at their longest: left to itself on a CPU it takes 60% of RAM.
    page = ContinuousBatchingConfig().page_size
    cb = ContinuousBatchingConfig(per_request_processors=True, seed=0,
                                  num_blocks=clients * math.ceil(longest / page) + clients,
                                  max_requests_per_batch=clients)
    manager = model.init_continuous_batching(generation_config=gen, continuous_batching_config=cb)
    pending, tokens, done, finished = iter(range(len(chats))), 0, 0, False

    def add_next() -> None:
        i = next(pending, None)
        if i is not None:
            c = chats[i]
            manager.add_request(list(c.prompt_ids), request_id=f"r{i}", max_new_tokens=c.params.max_new_tokens,
                                **_cb_sampling(c, vocab))

    try:
        with torch.inference_mode():  # the manager's loop runs in the caller's inference mode
            manager.warmup()  # as its generate_batch does: the cache, and CUDA graphs where it uses them
            manager.start()
        start = time.perf_counter()
        for _ in range(clients):
            add_next()
        while done < len(chats):
            if time.perf_counter() - start > DEADLINE_S or not manager.is_running():
                raise RuntimeError(f"transformers' manager finished {done} of {len(chats)} requests")
            out = manager.get_result(timeout=1)
            if out is None or not out.is_finished():
                continue
            if out.error is not None:
                raise RuntimeError(f"transformers' manager failed request {out.request_id}: {out.error}")
            tokens += len(out.generated_tokens)
            done += 1
            add_next()
        wall = time.perf_counter() - start
        finished = True
    finally:
        manager.stop(block=True, timeout=60, hard_stop=not finished)
        manager.destroy()
    return {"tokens_per_s": tokens / wall, "completion_tokens": tokens, "seconds": wall,
            "attention": model.config._attn_implementation, "dtype": str(model.dtype).removeprefix("torch."),
            "differs": "one seed for all requests, greedy as top-k 1, no stop strings (end tokens only)"}


# -- the platform: streamed /v1/chat/completions from closed-loop clients ---------------------------
def stream_chat(session: requests.Session, base: str, body: dict) -> dict:
    """One streamed chat call: time to the first content, gaps between content chunks, completion
    tokens (the final usage chunk), and when it ended."""
    start = time.perf_counter()
    times, usage = [], None
    with session.post(base + "/v1/chat/completions", json=body, stream=True,
                      timeout=(30, READ_TIMEOUT_S)) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines(decode_unicode=True):
            if time.perf_counter() - start > DEADLINE_S:
                raise RuntimeError(f"a stream ran past {DEADLINE_S} s")
            if not line.startswith("data: {"):
                continue  # blank separators, keep-alive comments, [DONE]
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(f"stream error: {chunk['error']}")
            usage = chunk.get("usage") or usage
            if any(choice["delta"].get("content") for choice in chunk["choices"]):
                times.append(time.perf_counter())
    end = time.perf_counter()
    if usage is None:
        raise RuntimeError("the stream carried no usage chunk")
    ttft, gaps = _timed(times, start)
    return {"ttft": ttft, "gaps": gaps, "tokens": usage["completion_tokens"], "end": end}


def _session(stack: Stack) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {stack.key}"
    return session


def platform_closed_loop(stack: Stack, chats: list[Chat], clients: int) -> dict:
    """`clients` threads, each streaming the next request of the shared list as its last one ends."""
    results: list[dict | None] = [None] * len(chats)
    errors: list[str] = []
    next_index, lock = count(), threading.Lock()
    deadline = time.monotonic() + DEADLINE_S

    def client() -> None:
        with _session(stack) as session:
            while not errors and time.monotonic() < deadline:
                with lock:
                    i = next(next_index)
                if i >= len(chats):
                    return
                try:
                    results[i] = stream_chat(session, stack.base, chats[i].body())
                except Exception as exc:  # reported below, after every client is joined
                    errors.append(f"request {i}: {exc!r}")
                    return

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        raise RuntimeError(f"platform clients still running after {DEADLINE_S} s")
    if errors or any(r is None for r in results):
        raise RuntimeError(f"platform streams failed: {errors[:3] or 'some requests never ran'}")
    wall = max(r["end"] for r in results) - start
    tokens = sum(r["tokens"] for r in results)
    return {"tokens_per_s": tokens / wall, "completion_tokens": tokens, "seconds": wall,
            **latencies([r["ttft"] for r in results if r["ttft"] is not None], [g for r in results for g in r["gaps"]])}


def platform_alone(stack: Stack, chats: list[Chat]) -> dict:
    """One client streaming a few requests one after another (max_tokens capped: see ALONE_MAX_TOKENS)."""
    with _session(stack) as session:
        runs = [stream_chat(session, stack.base, {**c.body(), "max_tokens": min(c.params.max_new_tokens,
                                                                                 ALONE_MAX_TOKENS)})
                for c in chats]
    return latencies([r["ttft"] for r in runs if r["ttft"] is not None], [g for r in runs for g in r["gaps"]])


# -- the roofline ----------------------------------------------------------------------------------
def matmul_flops_per_s(dtype: torch.dtype, n: int = 2048, reps: int = 5, rounds: int = 3) -> float:
    """Best of a few timed rounds of n x n products on DEVICE (4x larger on a GPU, which needs it)."""
    n = n * 4 if DEVICE.type == "cuda" else n
    a, b = torch.randn(n, n, dtype=dtype, device=DEVICE), torch.randn(n, n, dtype=dtype, device=DEVICE)
    torch.mm(a, b)
    synchronize()
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        synchronize()
        best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - start))
    return best


# -- the part --------------------------------------------------------------------------------------
def _warm_up(tm: TextModel, chat: Chat) -> None:
    """First calls pay for one-time setup (kernels, allocator): not part of any figure."""
    params = replace(chat.params, max_new_tokens=2)
    generate_batch(tm, [chat.prompt], params, seeds=[chat.seed])
    Engine(tm).run([Request(prompt_ids=list(chat.prompt_ids), params=params, seed=chat.seed)])


def _prompt_stats(chats: list[Chat]) -> dict:
    lengths = [len(c.prompt_ids) for c in chats]
    return {"min": min(lengths), "mean": round(sum(lengths) / len(lengths), 1), "max": max(lengths)}


def _transformers_cb(tm: TextModel, chats: list[Chat], clients: int) -> dict:
    try:
        return _rounded(transformers_cb_closed_loop(tm, chats, clients))
    except Exception as exc:  # a comparison only: its failure is reported, not fatal
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def _rounded(d: dict) -> dict:
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in d.items()}


class _Load:
    """The 1-minute load average as each measurement starts: other work on a shared machine slows
    whichever measurement it overlaps, and the ratios with it."""

    def __init__(self):
        self.at: dict[str, float] = {}

    def __call__(self, name: str) -> None:
        self.at[name] = round(os.getloadavg()[0], 2)


def run() -> dict:
    s = sizes()
    with tempfile.TemporaryDirectory() as tmp:
        models_dir = Path(tmp)
        save_gpt2_small(models_dir / MODEL)
        # Loaded as the worker loads it (fused activations, left padding).
        tm = load_text_model(MODEL, "local", str(DEVICE), path=models_dir / MODEL)
        chats = workload(tm, s)
        _warm_up(tm, chats[0])
        load = _Load()
        load("serial")
        one_by_one = _rounded(serial(tm, chats[:s.serial]))
        load("static")
        batched = _rounded(static(tm, chats))
        load("engine")
        engine = _rounded(engine_closed_loop(tm, chats, s.clients))
        load("transformers_cb")
        hf_cb = _transformers_cb(tm, chats, s.clients)
        # The engine's matmul dtype at 32 rows: bf16 on a GPU and on a CPU with native bf16, else
        # fp32 (models/engine.py).
        dtype = torch.bfloat16 if DEVICE.type == "cuda" or cpu_native_bf16() else torch.float32
        flops = matmul_flops_per_s(dtype)
        with Stack(models_dir) as stack:
            with _session(stack) as session:  # warm-up: the worker loads the model
                stream_chat(session, stack.base, chats[0].body())
            load("platform_alone")
            alone = platform_alone(stack, chats[:s.alone])
            load("platform")
            many = _rounded(platform_closed_loop(stack, chats, s.clients))
        load("end")
    served, serial_rate, static_rate = many["tokens_per_s"], one_by_one["tokens_per_s"], batched["tokens_per_s"]
    roofline = flops / (2 * tm.parameter_count)
    ratios = {"serving_vs_serial": round(served / serial_rate, 2), "serving_vs_static": round(served / static_rate, 2),
              "serving_vs_engine_in_process": round(served / engine["tokens_per_s"], 2),
              "ttft_p50_ratio": round(many["ttft_p50_ms"] / alone["ttft_p50_ms"], 2),
              "serving_roofline_share": round(served / roofline, 4)}
    if "tokens_per_s" in hf_cb:
        ratios["engine_vs_transformers_cb"] = round(engine["tokens_per_s"] / hf_cb["tokens_per_s"], 2)
    return {
        "model": "GPT-2 small architecture, seeded weights", "parameters": tm.parameter_count,
        "device": str(DEVICE), "quick": s is QUICK,
        "workload": {"requests": s.requests, "clients": s.clients, "prompt_tokens": _prompt_stats(chats),
                     "max_tokens": list(s.max_tokens), "sampling": [dict(x) for x in SAMPLING],
                     "top_k_over_rest": REST_TOP_K, "stream": True, "seeded": "random.Random(0)"},
        "measured": (f"once each, in sequence: serial on the first {s.serial} requests; static, engine, "
                     f"transformers CB and the platform on all {s.requests}; one client alone on the first "
                     f"{s.alone} with max_tokens <= {ALONE_MAX_TOKENS}; ITL on the platform is per SSE chunk"),
        "load_average_at_start": load.at,
        "serial": one_by_one, "serial_tokens_per_s": serial_rate,
        "static": batched, "static_tokens_per_s": static_rate,
        "engine_in_process": engine, "engine_in_process_tokens_per_s": engine["tokens_per_s"],
        "transformers_cb": hf_cb, "transformers_cb_tokens_per_s": hf_cb.get("tokens_per_s"),
        "platform": {f"{s.clients}_clients": many, "alone": alone}, "platform_tokens_per_s": served,
        "dtype": str(dtype).removeprefix("torch."), "matmul_gflops": round(flops / 1e9, 1),
        "roofline_tokens_per_s": round(roofline, 1),
        "ratios": ratios,
    }


def rows(r: dict) -> list[str]:
    w, q = r["workload"], r["ratios"]
    n = w["clients"]
    many, alone, eng, cb = r["platform"][f"{n}_clients"], r["platform"]["alone"], r["engine_in_process"], \
        r["transformers_cb"]
    head = f"serving, GPT-2 small, {w['requests']} chat streams from {n} clients"
    out = [
        f"| {head}: platform vs one generate per request (first {r['serial']['requests']}) | "
        f"{r['serial_tokens_per_s']} tok/s | {r['platform_tokens_per_s']} tok/s | {q['serving_vs_serial']}x |",
        f"| same, vs static batching in process ({r['static']['calls']} generate_batch calls) | "
        f"{r['static_tokens_per_s']} tok/s | {r['platform_tokens_per_s']} tok/s | {q['serving_vs_static']}x |",
        f"| same, vs the engine in process ({n} clients in one thread) | {eng['tokens_per_s']} tok/s | "
        f"{r['platform_tokens_per_s']} tok/s | {q['serving_vs_engine_in_process']}x |",
    ]
    if "tokens_per_s" in cb:
        out.append(f"| same, transformers continuous batching vs the engine, both in process | {cb['tokens_per_s']} "
                   f"tok/s | {eng['tokens_per_s']} tok/s | {q['engine_vs_transformers_cb']}x |")
    else:
        out.append(f"| same, transformers continuous batching in process | did not run: {cb['error'][:120]} | | |")
    out += [
        f"| platform time to first token p50 (p99): one client alone vs {n} clients | {alone['ttft_p50_ms']} "
        f"({alone['ttft_p99_ms']}) ms | {many['ttft_p50_ms']} ({many['ttft_p99_ms']}) ms | {q['ttft_p50_ratio']}x |",
        f"| platform inter-chunk latency p50 / p99: one client alone vs {n} clients | {alone['itl_p50_ms']} / "
        f"{alone['itl_p99_ms']} ms | {many['itl_p50_ms']} / {many['itl_p99_ms']} ms | |",
        f"| engine in process, {n} clients: TTFT p50 (p99), inter-token p50 / p99 | | {eng['ttft_p50_ms']} "
        f"({eng['ttft_p99_ms']}) ms, {eng['itl_p50_ms']} / {eng['itl_p99_ms']} ms | |",
        f"| platform as a share of the {r['dtype']} roofline ({r['matmul_gflops']} GFLOP/s measured) | "
        f"{r['roofline_tokens_per_s']} tok/s | {r['platform_tokens_per_s']} tok/s | {q['serving_roofline_share']} |",
    ]
    return out
