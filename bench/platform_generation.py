"""GPT-2 small (124M, from its config): one generate per prompt vs batched in-process vs a campaign
through the whole platform (`aigc up`: embedded Redis, a worker, the web server, local storage)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from bench.device import DEVICE, gpu_autocast, synchronize, to_device
from bench.stack import Stack
from models.builtin import byte_level_tokenizer
from core.campaigns import CHUNK_ROWS
from models.engine import Request, engine_for
from models.text import GenerationParams, TextModel, cpu_native_bf16, load_text_model
from tasks.campaign import BATCH_SEQUENCES

NEW_TOKENS = 32
PROMPTS = [f"Product {i}: a {adj} {thing} for {who} who" for i, (adj, thing, who) in enumerate(
    (a, t, w) for a in ("light", "warm", "smart", "quiet") for t in ("jacket", "lamp", "kettle", "bike")
    for w in ("students", "parents", "runners", "travellers", "cooks", "gamers", "readers", "artists",
              "nurses", "drivers", "teachers", "builders", "campers", "bakers", "coders", "singers"))]  # 256


def save_gpt2_small(path: Path) -> TextModel:
    """GPT-2 small's architecture with seeded weights, saved for the platform and kept for in-process runs."""
    tok = byte_level_tokenizer(50257)  # GPT-2's vocabulary size; every id decodes to text
    config = GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                        bos_token_id=256, eos_token_id=256, pad_token_id=256)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return TextModel("gpt2-small", model.to(DEVICE), tok, DEVICE, 1024)


def plain_tokens_per_s(tm: TextModel, prompts: list[str], batch: int) -> float:
    """Plain `model.generate`, `batch` prompts a call: 1 is the tutorial way (one call per prompt);
    otherwise the usual in-process batching, prompts sorted by length into left-padded batches."""
    ordered = sorted(prompts, key=len)
    start, tokens = time.perf_counter(), 0
    for i in range(0, len(ordered), batch):
        enc = to_device(tm.tokenizer(ordered[i:i + batch], return_tensors="pt", padding=True))
        with torch.inference_mode(), gpu_autocast():
            out = tm.model.generate(**enc, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=True,
                                    pad_token_id=tm.tokenizer.pad_token_id)
        tokens += (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
    return tokens / (time.perf_counter() - start)


def engine_tokens_per_s(tm: TextModel, prompts: list[str], chunk: int = CHUNK_ROWS) -> float:
    """The platform's engine in process, without the queue: the rows of each campaign chunk run as
    one engine run, each row with a seed of its own, as tasks/campaign.py runs them."""
    params = GenerationParams(max_new_tokens=NEW_TOKENS, seed=0)
    engine = engine_for(tm)
    start, tokens = time.perf_counter(), 0
    for i in range(0, len(prompts), chunk):
        requests = [Request(tm.tokenizer(p)["input_ids"], params, seed=i + j) for j, p in enumerate(prompts[i:i + chunk])]
        engine.run(requests)
        tokens += sum(r.result["completion_tokens"] for r in requests)
    return tokens / (time.perf_counter() - start)


def _run_campaign(stack: Stack, prompts: list[str], timeout_s: float = 900) -> tuple[float, int]:
    start = time.perf_counter()
    c = stack.call("POST", "/v1/campaigns", {
        "rows": [{"prompt": p} for p in prompts], "template": "{prompt}", "model": "gpt2-small",
        "generation": {"max_new_tokens": NEW_TOKENS, "seed": 0}})
    while c["status"] != "succeeded":
        if c["status"] in ("failed", "canceled") or time.perf_counter() - start > timeout_s:
            raise RuntimeError(f"bench campaign {c['id']} is {c['status']} after {time.perf_counter() - start:.0f} s")
        time.sleep(0.2)
        c = stack.call("GET", f"/v1/campaigns/{c['id']}")
    elapsed = time.perf_counter() - start
    output = stack.get_bytes(f"/v1/campaigns/{c['id']}/artifacts/output.jsonl").decode()
    return elapsed, sum(json.loads(x)["completion_tokens"] for x in output.split("\n") if x)


def platform_tokens_per_s(stack: Stack, prompts: list[str]) -> float:
    """A 256-row campaign submitted over REST and completed by the worker, outputs in storage."""
    elapsed, tokens = _run_campaign(stack, prompts)
    return tokens / elapsed


def matmul_flops_per_s(dtype: torch.dtype, n: int = 1024, reps: int = 20) -> float:
    """Measured matrix-multiply throughput in the platform's dtype on the workers' device: the
    roofline's ceiling here."""
    n = n * 8 if DEVICE.type == "cuda" else n  # a GPU needs far bigger products to reach its rate
    a, b = torch.randn(n, n, dtype=dtype, device=DEVICE), torch.randn(n, n, dtype=dtype, device=DEVICE)
    torch.mm(a, b)
    synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def run(rounds: int = 2) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        models_dir = Path(tmp)
        tm = save_gpt2_small(models_dir / "gpt2-small")
        params = tm.parameter_count
        prompt_tokens = sum(len(tm.tokenizer(p)["input_ids"]) for p in PROMPTS) / len(PROMPTS)
        serial = plain_tokens_per_s(tm, PROMPTS[:16], batch=1)
        engine = load_text_model("gpt2-small", "local", str(DEVICE), path=models_dir / "gpt2-small")
        with Stack(models_dir) as stack:
            _run_campaign(stack, PROMPTS[:4])  # warm-up: the worker loads the model once
            batched = in_engine = platform = 0.0
            # Interleaved, best of each: other work on the machine only ever slows a run down.
            for _ in range(rounds):
                batched = max(batched, plain_tokens_per_s(tm, PROMPTS, BATCH_SEQUENCES))
                in_engine = max(in_engine, engine_tokens_per_s(engine, PROMPTS))
                platform = max(platform, platform_tokens_per_s(stack, PROMPTS))
    # As models/text.py autocasts: bf16 on a GPU and on a CPU that multiplies it natively.
    dtype = torch.bfloat16 if DEVICE.type == "cuda" or cpu_native_bf16() else torch.float32
    flops = matmul_flops_per_s(dtype)
    flops_per_token = 2 * params  # one multiply-add per parameter per token (lm head included)
    return {
        "model": "GPT-2 small architecture, seeded weights", "parameters": params, "prompts": len(PROMPTS),
        "new_tokens": NEW_TOKENS, "dtype": str(dtype).removeprefix("torch."), "rounds": rounds,
        "measured": "serial once on 16 prompts; batched, engine and platform: best of interleaved rounds",
        "serial_tokens_per_s": round(serial, 1), "batched_tokens_per_s": round(batched, 1),
        "engine_in_process_tokens_per_s": round(in_engine, 1),
        "platform_tokens_per_s": round(platform, 1),
        "matmul_gflops": round(flops / 1e9, 1),
        "roofline_tokens_per_s": round(flops / flops_per_token, 1),
        "platform_share_of_roofline": round(platform / (flops / flops_per_token), 3),
        # Every generated token also pays for its share of the prompt's prefill (about 42 tokens here).
        "roofline_with_prefill_tokens_per_s": round(
            flops / (flops_per_token * (prompt_tokens + NEW_TOKENS) / NEW_TOKENS), 1),
        "ratios": {"platform_vs_serial": round(platform / serial, 2),
                   "platform_vs_batched": round(platform / batched, 2),
                   # What the queue, storage and REST cost against the same engine in process.
                   "platform_vs_engine_in_process": round(platform / in_engine, 2)},
    }


def rows(p: dict) -> list[str]:
    return [
        f"| GPT-2 small ({p['parameters'] / 1e6:.0f}M), {p['prompts']} prompts x {p['new_tokens']} tokens: "
        f"platform campaign vs one generate per prompt | {p['serial_tokens_per_s']} tok/s | "
        f"{p['platform_tokens_per_s']} tok/s | {p['ratios']['platform_vs_serial']}x |",
        f"| same, platform campaign vs in-process batched `generate` (batch {BATCH_SEQUENCES}, sorted by length) | "
        f"{p['batched_tokens_per_s']} tok/s | {p['platform_tokens_per_s']} tok/s | "
        f"{p['ratios']['platform_vs_batched']}x |",
        f"| same, platform campaign vs the platform's engine in process (the queue's cost) | "
        f"{p['engine_in_process_tokens_per_s']} tok/s | {p['platform_tokens_per_s']} tok/s | "
        f"{p['ratios']['platform_vs_engine_in_process']}x |",
        f"| platform as a share of the {p['dtype']} roofline ({p['matmul_gflops']} GFLOP/s measured) | "
        f"{p['roofline_tokens_per_s']} tok/s | {p['platform_tokens_per_s']} tok/s | "
        f"{p['platform_share_of_roofline']} |",
        f"| same roofline, each token also paying its share of the prompt prefill | "
        f"{p['roofline_with_prefill_tokens_per_s']} tok/s | {p['platform_tokens_per_s']} tok/s | "
        f"{round(p['platform_tokens_per_s'] / p['roofline_with_prefill_tokens_per_s'], 3)} |",
    ]
