"""Text generation: one `generate` call per prompt (the tutorial way) against the platform's batched call."""

from __future__ import annotations

import time

import torch

from models.text import GenerationParams, generate_batch, load_text_model

PROMPTS = [f"Product {i}: a {adj} {thing} for" for i, (adj, thing) in enumerate(
    [(a, t) for a in ("light", "warm", "smart", "quiet") for t in ("jacket", "lamp", "kettle", "bike")])]


def _serial(tm, params) -> int:
    """Baseline: what most tutorials show, one model.generate per prompt."""
    tokens = 0
    for prompt in PROMPTS:
        enc = tm.tokenizer(prompt, return_tensors="pt")
        with torch.inference_mode():
            out = tm.model.generate(**enc, max_new_tokens=params.max_new_tokens, do_sample=True,
                                    pad_token_id=tm.tokenizer.pad_token_id, eos_token_id=None)
        tokens += out.shape[1] - enc["input_ids"].shape[1]
    return tokens


def _batched(tm, params) -> int:
    results = generate_batch(tm, PROMPTS, params)
    return len(PROMPTS) * params.max_new_tokens if results else 0


def run(model: str = "builtin:tiny-gpt2", max_new_tokens: int = 32, repeats: int = 3) -> dict:
    tm = load_text_model(model, "builtin")
    # Never stop early, so both sides generate exactly the same number of tokens.
    tm.model.generation_config.eos_token_id = None
    params = GenerationParams(max_new_tokens=max_new_tokens, seed=0)
    _serial(tm, params), _batched(tm, params)  # warm-up
    figures = {}
    for name, fn in (("serial", _serial), ("batched", _batched)):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            tokens = fn(tm, params)
            best = min(best, time.perf_counter() - start)
        figures[f"{name}_tokens_per_s"] = round(tokens / best, 1)
    return {
        "model": model, "prompts": len(PROMPTS), "max_new_tokens": max_new_tokens,
        **figures,
        "ratio_batched_vs_serial": round(figures["batched_tokens_per_s"] / figures["serial_tokens_per_s"], 2),
    }


def rows(g: dict) -> list[str]:
    return [f"| generation, {g['prompts']} prompts x {g['max_new_tokens']} tokens ({g['model']}) | "
            f"{g['serial_tokens_per_s']} tok/s serial | {g['batched_tokens_per_s']} tok/s batched | "
            f"{g['ratio_batched_vs_serial']}x |"]
