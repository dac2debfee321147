"""Text-model loading (built-in, local directory, Hugging Face id) and batched generation."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from functools import cache, cached_property, partial
from pathlib import Path
from typing import Callable

import torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList,
                          StoppingCriteria, StoppingCriteriaList, TemperatureLogitsWarper, TopKLogitsWarper,
                          TopPLogitsWarper)
from transformers.activations import GELUTanh, NewGELUActivation

from models.activations import TanhGELU
from models.builtin import build_builtin


class PromptTooLong(ValueError):
    """The prompt plus max_new_tokens does not fit the model's context window."""

    def __init__(self, prompt_tokens: int, max_new_tokens: int, context: int):
        super().__init__(f"prompt ({prompt_tokens} tokens) + max_new_tokens ({max_new_tokens}) exceeds the "
                         f"model's context of {context} tokens")
        self.prompt_tokens, self.max_new_tokens, self.context = prompt_tokens, max_new_tokens, context


class StopCall(Exception):
    """Raised by generate_rows' on_step to abandon the current call (every prompt in it dropped out)."""


@dataclass
class TextModel:
    """A loaded causal LM with its tokenizer, ready to generate."""

    name: str
    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    max_positions: int
    adapter: str | None = None  # the LoRA adapter every row uses (models/lora.py), None: the base
    adapters: object | None = None  # the base's AdapterSet, once an adapter was loaded over it

    @cached_property
    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @cached_property
    def end_ids(self) -> tuple[int, ...]:
        """Every token that ends a reply: the model's generation config may name several (an
        end-of-turn token besides end-of-text, as chat models do), the tokenizer names one."""
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids = configured if isinstance(configured, (list, tuple)) else [configured]
        return tuple(dict.fromkeys(i for i in [*ids, self.tokenizer.eos_token_id] if i is not None))


# Decoding as the model wrote it: some tokenizers' configs tidy spaces before punctuation on decode
# ("It ' s" -> "It's"), which would make a streamed reply (decoded piece by piece) differ from the
# same reply decoded whole.
DECODE = {"skip_special_tokens": True, "clean_up_tokenization_spaces": False}


def sequences_per_prompt(params: "GenerationParams") -> int:
    """Rows one prompt takes in a batch: its `n` samples; greedy decoding gives every choice the
    same text, so it is generated once and repeated."""
    return params.n if params.temperature > 0 else 1


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 64
    temperature: float = 1.0  # 0 means greedy decoding
    top_p: float = 1.0
    top_k: int = 0  # 0 disables top-k filtering
    n: int = 1
    seed: int = 0
    stop: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_input(cls, settings: dict, seed: int | None = None) -> "GenerationParams":
        """From checked sampling settings (a job's input, a campaign's generation and row settings);
        `seed` overrides theirs (no seed at all is 0)."""
        if seed is None:
            seed = settings.get("seed")
        return cls(max_new_tokens=settings["max_new_tokens"], temperature=settings["temperature"],
                   top_p=settings["top_p"], top_k=settings["top_k"], n=settings["n"],
                   seed=0 if seed is None else seed, stop=tuple(settings["stop"]))


def load_text_model(name: str, source: str, device: str = "cpu", path: Path | None = None,
                    allow_download: bool = False) -> TextModel:
    """Load a model by its catalog source: builtin, local (a directory) or hub (an id)."""
    if source == "builtin":
        model, tokenizer = build_builtin(name)
    else:
        where = str(path) if source == "local" else name
        # safetensors only: a pickled checkpoint from a user could run code when loaded.
        tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=not allow_download)
        model = AutoModelForCausalLM.from_pretrained(where, local_files_only=not allow_download,
                                                     use_safetensors=True)
    _fuse_activations(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    dev = torch.device(device)
    model.to(dev).eval()
    max_positions = getattr(model.config, "n_positions", None) or getattr(
        model.config, "max_position_embeddings", 2048)
    return TextModel(name, model, tokenizer, dev, int(max_positions))


def _fuse_activations(model: torch.nn.Module) -> None:
    """Swap GPT-2's `gelu_new` (five elementwise ops written in Python: about a seventh of a GPT-2
    decoding step on CPU) and torch's tanh-approximate GELU for the same formula in a few in-place
    ops (models/activations.py)."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) in (NewGELUActivation, GELUTanh):
                setattr(parent, name, TanhGELU())


# The most key/value cache one generate call may hold; a bigger batch is split into calls. GPT-2
# small keeps 72 KiB per sequence-token in fp32: 4 GiB is 128 sequences of 455 tokens.
KV_CACHE_BUDGET_BYTES = 4 << 30


def kv_bytes_per_token(tm: TextModel) -> int | None:
    """Key/value cache bytes per sequence-token, from the model's config (None if it does not say)."""
    cfg = tm.model.config
    layers, hidden = getattr(cfg, "num_hidden_layers", None), getattr(cfg, "hidden_size", None)
    heads = getattr(cfg, "num_attention_heads", None)
    if not (layers and hidden and heads):
        return None
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or hidden // heads
    return 2 * layers * kv_heads * head_dim * next(tm.model.parameters()).element_size()


def sequences_per_call(tm: TextModel, tokens: int, wanted: int) -> int:
    """How many sequences of `tokens` (prompt + new) one call may run: `wanted`, or fewer where their
    cache would pass KV_CACHE_BUDGET_BYTES."""
    per_token = kv_bytes_per_token(tm)
    if not per_token:
        return wanted
    return max(1, min(wanted, KV_CACHE_BUDGET_BYTES // (tokens * per_token)))


def stop_tail_tokens(stop: tuple[str, ...]) -> int:
    """Enough trailing tokens to contain any stop string (a token is at least one byte)."""
    return max((len(s.encode()) for s in stop), default=0) + 2


class _StepHook(StoppingCriteria):
    """Called once per generated token: reports progress and ends rows that hit a stop string.

    `on_step` may raise (a cancel, say); the exception leaves `generate` at once.
    """

    def __init__(self, prompt_len: int, max_new: int, tokenizer, stop: tuple[str, ...],
                 on_step: Callable[[int, int], None] | None,
                 on_tokens: Callable[[list[int]], None] | None = None):
        self.prompt_len, self.max_new, self.tokenizer = prompt_len, max_new, tokenizer
        self.stop, self.on_step, self.on_tokens = stop, on_step, on_tokens
        self.tail = stop_tail_tokens(stop)

    def __call__(self, input_ids, scores, **kwargs):
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        step = input_ids.shape[1] - self.prompt_len
        if self.on_tokens and step > 0:
            self.on_tokens(input_ids[:, -1].tolist())
        if self.on_step:
            self.on_step(step, self.max_new)
        if self.stop and step > 0:
            tails = self.tokenizer.batch_decode(input_ids[:, -min(self.tail, step):],
                                                clean_up_tokenization_spaces=False)
            for i, text in enumerate(tails):
                done[i] = any(s in text for s in self.stop)
        return done


@cache
def cpu_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX). Elsewhere oneDNN emulates
    bf16 and autocast would only add conversions to fp32's work."""
    try:
        return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", Path("/proc/cpuinfo").read_text()))
    except OSError:  # not Linux: stay in fp32
        return False


# On a CPU, autocast casts every fp32 weight to bf16 at every decoding step: a fixed cost that only a
# batch of this many sequences or more repays (GPT-2 small on an AMX CPU, ms a step, fp32 / autocast:
# 28 / 79 at 1 sequence, 69 / 86 at 8, 116 / 96 at 32, 381 / 216 at 128). A streamed chat reply, a
# batch of one, runs in fp32.
_CPU_AUTOCAST_MIN_SEQUENCES = 16


def _autocast(device: torch.device, sequences: int):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and sequences >= _CPU_AUTOCAST_MIN_SEQUENCES and cpu_native_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# Below this many FLOPs per decoding step (2 x parameters x sequences), a CPU step is "small": it runs
# on one thread, with the default KV cache. Its ops take microseconds, so a second thread adds only
# synchronisation; and when another process (the web server, Redis, a client on the same machine)
# holds the other core, every op waits for that thread's time slice: one-token jobs on the built-in
# model cost the worker 8x the CPU time with two threads while REST clients were submitting more
# (bench/queue_overhead.py).
_SMALL_STEP_FLOPS = 1e8


def _small_cpu_step(tm: "TextModel", sequences: int) -> bool:
    return tm.device.type == "cpu" and 2 * tm.parameter_count * sequences < _SMALL_STEP_FLOPS


@contextlib.contextmanager
def _cpu_threads(tm: TextModel, sequences: int):
    before = torch.get_num_threads()
    if before == 1 or not _small_cpu_step(tm, sequences):
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _cache_implementation(tm: "TextModel", sequences: int) -> str | None:
    """A static KV cache for big CPU steps: the default cache concatenates every layer's keys and
    values onto a new tensor at each step, a fifth of a batched GPT-2 step; the static one writes in
    place. On tiny steps its fixed cost per step (a mask over the whole length) loses: 25% slower."""
    if (tm.device.type == "cpu" and not _small_cpu_step(tm, sequences)
            and getattr(tm.model, "_can_compile_fullgraph", False)):
        return "static"
    return None


class _SampleByCdf(LogitsProcessor):
    """Draws each row's next token and leaves it the only choice, so generate's greedy step takes it.

    generate's own sampling calls torch.multinomial, which on CPU draws one exponential variate per
    vocabulary entry: 90 ms a step for 64 rows of GPT-2's 50k vocabulary, a fifth of the step.
    Inverting the cumulative distribution draws from the same distribution with one uniform per row
    (in float32, each token's probability is kept to within about 1e-7).

    generators: one per prompt, each drawing for that prompt's `rows_each` rows, so a prompt's text
    depends on its own seed and not on what else shares the batch; None draws from torch's default.
    """

    def __init__(self, generators: list[torch.Generator] | None = None, rows_each: int = 1):
        self.generators, self.rows_each = generators, rows_each

    def __call__(self, input_ids, scores):
        cdf = torch.softmax(scores.float(), dim=-1).cumsum_(dim=-1)  # (B, V)
        if self.generators is None:
            u = torch.rand(cdf.shape[0], 1, device=cdf.device)
        else:
            u = torch.cat([torch.rand(self.rows_each, 1, device=cdf.device, generator=g) for g in self.generators])
        # u in (0, total]: the first entry with cdf >= u has a probability above zero.
        u = (1 - u) * cdf[:, -1:]  # (B, 1)
        token = torch.searchsorted(cdf, u).clamp_(max=cdf.shape[1] - 1)  # (B, 1)
        return torch.full_like(scores, -float("inf")).scatter_(1, token, 0.0)


def _sampler(params: GenerationParams, draw: _SampleByCdf) -> LogitsProcessorList:
    """Temperature, top-k and top-p (generate's order), then the draw."""
    steps = [TemperatureLogitsWarper(params.temperature)] if params.temperature != 1.0 else []
    if params.top_k:
        steps.append(TopKLogitsWarper(params.top_k))
    if params.top_p < 1.0:
        steps.append(TopPLogitsWarper(params.top_p))
    return LogitsProcessorList(steps + [draw])


def _seed(device: torch.device, seed: int) -> None:
    """Seed the generators this call samples from. (torch.manual_seed also seeds every CUDA, XPU and
    MTIA device, lazily, capturing a stack trace each time: a third of a millisecond on a CPU worker.)"""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)


def check_prompt_fits(tm: TextModel, prompt_tokens: int, max_new_tokens: int) -> None:
    """PromptTooLong unless the prompt plus the new tokens fit the model's context."""
    if prompt_tokens + max_new_tokens > tm.max_positions:
        raise PromptTooLong(prompt_tokens, max_new_tokens, tm.max_positions)


def generate_batch(tm: TextModel, prompts: list[str], params: GenerationParams,
                   on_step: Callable[[int, int], None] | None = None, seeds: list[int] | None = None,
                   on_tokens: Callable[[list[int]], None] | None = None,
                   adapters: list[str | None] | None = None) -> list[dict]:
    """Generate `params.n` completions for each prompt in one batched call.

    seeds: one per prompt (separate jobs sharing a call); else every row samples from `params.seed`.
    adapters: the LoRA adapter of each prompt (None: the base); default: tm.adapter for all.
    on_tokens: each step's new token of every row (row p * sequences_per_prompt + i is prompt p's
    i-th sequence), as soon as it is drawn: what a streamed reply is made of.

    Returns one dict per prompt: {"choices": [{"index", "text", "finish_reason"}],
    "prompt_tokens", "completion_tokens"}.
    """
    tok = tm.tokenizer
    enc = tok(prompts, return_tensors="pt", padding=True)
    prompt_len = enc["input_ids"].shape[1]
    check_prompt_fits(tm, prompt_len, params.max_new_tokens)
    sampling = params.temperature > 0
    per_prompt = sequences_per_prompt(params)
    rows = len(prompts) * per_prompt
    # Row p * per_prompt + i is choice i of prompt p. Sampling runs as a logits processor on
    # generate's greedy path (see _SampleByCdf), so the rows are repeated here rather than by generate.
    inputs = {k: v.repeat_interleave(per_prompt, dim=0).to(tm.device) for k, v in enc.items()}
    # disable_compile: jobs come in every batch shape, and each new one would compile again.
    draw = _SampleByCdf()
    if seeds is not None:
        draw = _SampleByCdf([torch.Generator(tm.device).manual_seed(s) for s in seeds], per_prompt)
    kwargs = dict(max_new_tokens=params.max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                  eos_token_id=list(tm.end_ids), logits_processor=_sampler(params, draw) if sampling else None,
                  disable_compile=True)
    cache = _cache_implementation(tm, rows)
    if cache:  # else the model's own choice stands (Gemma's hybrid cache, say)
        kwargs["cache_implementation"] = cache
    hook = _StepHook(prompt_len, params.max_new_tokens, tok, tuple(params.stop), on_step, on_tokens)
    with torch.random.fork_rng(devices=[tm.device] if tm.device.type == "cuda" else []):
        _seed(tm.device, params.seed)
        with torch.inference_mode(), _autocast(tm.device, rows), _cpu_threads(tm, rows), \
                _adapter_rows(tm, adapters, per_prompt, len(prompts)):
            out = tm.model.generate(**inputs, stopping_criteria=StoppingCriteriaList([hook]), **kwargs)
    if on_step:
        on_step(params.max_new_tokens, params.max_new_tokens)
    generated = out[:, prompt_len:].tolist()
    results = []
    for p, prompt_ids in enumerate(enc["attention_mask"].sum(dim=1).tolist()):
        choices, used = [], 0
        for i in range(params.n):
            choice, n_tokens = finish_choice(tok, generated[p * per_prompt + i % per_prompt], params, tm.end_ids)
            choices.append({"index": i, **choice})
            used += n_tokens
        results.append({"choices": choices, "prompt_tokens": int(prompt_ids), "completion_tokens": used})
    return results


def _adapter_rows(tm: TextModel, adapters: list[str | None] | None, per_prompt: int, prompts: int):
    """Each row's adapter for the call, where any row has one; else nothing to set."""
    adapters = adapters if adapters is not None else [tm.adapter] * prompts
    if tm.adapters is None or not any(adapters):
        return contextlib.nullcontext()
    return tm.adapters.rows([a for a in adapters for _ in range(per_prompt)])


RowResult = dict | PromptTooLong | None


def generate_rows(tm: TextModel, prompts: list[str], params: GenerationParams, seeds: list[int] | None = None,
                  max_sequences: int | None = None,
                  on_step: Callable[[list[int], int, int], None] | None = None,
                  on_tokens: Callable[[list[int], list[int]], None] | None = None,
                  adapters: list[str | None] | None = None) -> list[RowResult]:
    """Generate for many prompts in as few batched calls as the KV-cache budget allows, in their order.

    A prompt that does not fit the model's context alone gets its PromptTooLong; the others still run.
    seeds: one per prompt (each samples from its own generator); else each call samples from params.seed.
    adapters: the LoRA adapter of each prompt (None: the base); default: tm.adapter for all.
    max_sequences: sequences (prompts x samples) per call at most; None: every prompt in one call where
    the cache allows. on_step(prompt indices of the call, done, total) each step; raising StopCall
    abandons that call only. on_tokens(prompt indices of the call, each row's new token) each step.
    Returns one entry per prompt: generate_batch's result, PromptTooLong, or None (its call stopped).
    """
    results: list[RowResult] = [None] * len(prompts)
    lengths = [len(ids) for ids in tm.tokenizer(prompts)["input_ids"]] if prompts else []
    fitting = []
    for i, used in enumerate(lengths):
        try:
            check_prompt_fits(tm, used, params.max_new_tokens)
            fitting.append(i)
        except PromptTooLong as exc:
            results[i] = exc
    for call in _calls(tm, fitting, lengths, params, max_sequences):
        hook = partial(on_step, call) if on_step else None
        tokens = partial(on_tokens, call) if on_tokens else None
        try:
            out = generate_batch(tm, [prompts[i] for i in call], params, on_step=hook, on_tokens=tokens,
                                 seeds=None if seeds is None else [seeds[i] for i in call],
                                 adapters=None if adapters is None else [adapters[i] for i in call])
        except StopCall:
            continue
        for i, result in zip(call, out):
            results[i] = result
    return results


def _calls(tm: TextModel, indices: list[int], lengths: list[int], params: GenerationParams,
           max_sequences: int | None) -> list[list[int]]:
    """Prompt indices per call: as many as `max_sequences` and the KV-cache budget at the longest prompt
    allow (each prompt takes sequences_per_prompt rows)."""
    if not indices:
        return []
    rows_each = sequences_per_prompt(params)
    longest = max(lengths[i] for i in indices)
    wanted = max_sequences or len(indices) * rows_each
    per_call = max(1, sequences_per_call(tm, longest + params.max_new_tokens, wanted) // rows_each)
    return [indices[start:start + per_call] for start in range(0, len(indices), per_call)]


def finish_choice(tok, ids: list[int], params: GenerationParams, end_ids: tuple[int, ...] = ()) -> tuple[dict, int]:
    """Cut a completion at its first end token (`end_ids`; the tokenizer's end-of-text where none are
    given) or the first stop string; say why it ended.

    Returns the choice and the tokens generated up to that point (the stop string included).
    """
    reason = "length"
    end = next((i for i, t in enumerate(ids) if t in (end_ids or (tok.eos_token_id,))), None)
    if end is not None:
        ids = ids[:end]
        reason = "stop"
    text = tok.decode(ids, **DECODE)
    cut = min((text.find(s) for s in params.stop if s in text), default=-1)
    if cut < 0:
        if reason == "length":
            # A byte-level model cut mid-character leaves a partial UTF-8 sequence: drop it.
            text = text.rstrip("\ufffd")
        return {"text": text, "finish_reason": reason}, len(ids)
    # The fewest tokens whose text already holds a stop string: what generation spent on it.
    # (Re-encoding the cut text would miscount bytes that decoded to U+FFFD.)
    lo, hi = 1, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if any(s in tok.decode(ids[:mid], **DECODE) for s in params.stop):
            hi = mid
        else:
            lo = mid + 1
    return {"text": text[:cut], "finish_reason": "stop"}, lo
