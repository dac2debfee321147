"""Text-model loading (built-in, local directory, Hugging Face id) and batched generation."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList

from models.builtin import build_builtin


class PromptTooLong(ValueError):
    """The prompt plus max_new_tokens does not fit the model's context window."""


@dataclass
class TextModel:
    """A loaded causal LM with its tokenizer, ready to generate."""

    name: str
    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    max_positions: int


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 64
    temperature: float = 1.0  # 0 means greedy decoding
    top_p: float = 1.0
    top_k: int = 0  # 0 disables top-k filtering
    n: int = 1
    seed: int = 0
    stop: tuple[str, ...] = field(default_factory=tuple)


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
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    dev = torch.device(device)
    model.to(dev).eval()
    max_positions = getattr(model.config, "n_positions", None) or getattr(
        model.config, "max_position_embeddings", 2048)
    return TextModel(name, model, tokenizer, dev, int(max_positions))


class _StepHook(StoppingCriteria):
    """Called once per generated token: reports progress and ends rows that hit a stop string.

    `on_step` may raise (a cancel, say); the exception leaves `generate` at once.
    """

    def __init__(self, prompt_len: int, max_new: int, tokenizer, stop: tuple[str, ...],
                 on_step: Callable[[int, int], None] | None):
        self.prompt_len, self.max_new, self.tokenizer = prompt_len, max_new, tokenizer
        self.stop, self.on_step = stop, on_step
        # Enough trailing tokens to contain any stop string (a token is at least one byte).
        self.tail = max((len(s.encode()) for s in stop), default=0) + 2

    def __call__(self, input_ids, scores, **kwargs):
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        step = input_ids.shape[1] - self.prompt_len
        if self.on_step:
            self.on_step(step, self.max_new)
        if self.stop and step > 0:
            tails = self.tokenizer.batch_decode(input_ids[:, -min(self.tail, step):])
            for i, text in enumerate(tails):
                done[i] = any(s in text for s in self.stop)
        return done


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def generate_batch(tm: TextModel, prompts: list[str], params: GenerationParams,
                   on_step: Callable[[int, int], None] | None = None) -> list[dict]:
    """Generate `params.n` completions for each prompt in one batched call.

    Returns one dict per prompt: {"choices": [{"index", "text", "finish_reason"}],
    "prompt_tokens", "completion_tokens"}.
    """
    tok = tm.tokenizer
    enc = tok(prompts, return_tensors="pt", padding=True)
    prompt_len = enc["input_ids"].shape[1]
    if prompt_len + params.max_new_tokens > tm.max_positions:
        raise PromptTooLong(
            f"prompt ({prompt_len} tokens) + max_new_tokens ({params.max_new_tokens}) exceeds the "
            f"model's context of {tm.max_positions} tokens")
    enc = {k: v.to(tm.device) for k, v in enc.items()}
    sampling = params.temperature > 0
    # Greedy decoding gives every choice the same text: generate it once and repeat it.
    per_prompt = params.n if sampling else 1
    kwargs = dict(max_new_tokens=params.max_new_tokens, num_return_sequences=per_prompt,
                  do_sample=sampling, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    if sampling:
        kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None)
    hook = _StepHook(prompt_len, params.max_new_tokens, tok, tuple(params.stop), on_step)
    with torch.random.fork_rng(devices=[tm.device] if tm.device.type == "cuda" else []):
        torch.manual_seed(params.seed)
        with torch.inference_mode(), _autocast(tm.device):
            out = tm.model.generate(**enc, stopping_criteria=StoppingCriteriaList([hook]), **kwargs)
    if on_step:
        on_step(params.max_new_tokens, params.max_new_tokens)
    generated = out[:, prompt_len:].tolist()
    results = []
    for p, prompt_ids in enumerate(enc["attention_mask"].sum(dim=1).tolist()):
        choices, used = [], 0
        for i in range(params.n):
            choice, n_tokens = _finish(tok, generated[p * per_prompt + i % per_prompt], params)
            choices.append({"index": i, **choice})
            used += n_tokens
        results.append({"choices": choices, "prompt_tokens": int(prompt_ids), "completion_tokens": used})
    return results


def _finish(tok, ids: list[int], params: GenerationParams) -> tuple[dict, int]:
    """Cut a completion at end-of-text or the first stop string; say why it ended.

    Returns the choice and the tokens generated up to that point (the stop string included).
    """
    reason = "length"
    if tok.eos_token_id in ids:
        ids = ids[:ids.index(tok.eos_token_id)]
        reason = "stop"
    text = tok.decode(ids, skip_special_tokens=True)
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
        if any(s in tok.decode(ids[:mid], skip_special_tokens=True) for s in params.stop):
            hi = mid
        else:
            lo = mid + 1
    return {"text": text[:cut], "finish_reason": "stop"}, lo
