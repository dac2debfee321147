"""GPT-2 small (124M, from its config): one generate per prompt vs batched in-process vs a campaign
through the whole platform (`aigc up`: embedded Redis, a worker, the web server, local storage)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from models.builtin import byte_level_tokenizer
from models.text import GenerationParams, TextModel, generate_batch
from tasks.campaign import BATCH_SEQUENCES
from workers.embedded_redis import free_port

NEW_TOKENS = 32
PROMPTS = [f"Product {i}: a {adj} {thing} for {who} who" for i, (adj, thing, who) in enumerate(
    (a, t, w) for a in ("light", "warm", "smart", "quiet") for t in ("jacket", "lamp", "kettle", "bike")
    for w in ("students", "parents", "runners", "travellers", "cooks", "gamers", "readers", "artists",
              "nurses", "drivers", "teachers", "builders", "campers", "bakers", "coders", "singers"))]  # 256


def save_gpt2_small(path: Path) -> TextModel:
    """GPT-2 small's architecture with seeded weights, saved for the platform and kept for in-process runs."""
    tok = byte_level_tokenizer()
    config = GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                        bos_token_id=256, eos_token_id=256, pad_token_id=256)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return TextModel("gpt2-small", model, tok, torch.device("cpu"), 1024)


def serial_tokens_per_s(tm: TextModel, prompts: list[str]) -> float:
    """The tutorial way: one model.generate call per prompt."""
    start, tokens = time.perf_counter(), 0
    for prompt in prompts:
        enc = tm.tokenizer(prompt, return_tensors="pt")
        with torch.inference_mode():
            out = tm.model.generate(**enc, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=True,
                                    pad_token_id=tm.tokenizer.pad_token_id)
        tokens += out.shape[1] - enc["input_ids"].shape[1]
    return tokens / (time.perf_counter() - start)


def batched_tokens_per_s(tm: TextModel, prompts: list[str], batch: int = BATCH_SEQUENCES) -> float:
    """In-process batched generation at the platform's batch size, shortest prompts together."""
    ordered = sorted(prompts, key=len)
    params = GenerationParams(max_new_tokens=NEW_TOKENS, seed=0)
    start, tokens = time.perf_counter(), 0
    for i in range(0, len(ordered), batch):
        tokens += sum(r["completion_tokens"] for r in generate_batch(tm, ordered[i:i + batch], params))
    return tokens / (time.perf_counter() - start)


def _call(base: str, key: str, method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def _run_campaign(base: str, key: str, prompts: list[str], timeout_s: float = 900) -> tuple[float, int]:
    start = time.perf_counter()
    c = _call(base, key, "POST", "/v1/campaigns", {
        "rows": [{"prompt": p} for p in prompts], "template": "{prompt}", "model": "gpt2-small",
        "generation": {"max_new_tokens": NEW_TOKENS, "seed": 0}})
    while time.perf_counter() - start < timeout_s:
        c = _call(base, key, "GET", f"/v1/campaigns/{c['id']}")
        if c["status"] in ("succeeded", "failed", "canceled"):
            break
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    req = urllib.request.Request(f"{base}/v1/campaigns/{c['id']}/artifacts/output.jsonl",
                                 headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        lines = [json.loads(x) for x in resp.read().decode().split("\n") if x]
    return elapsed, sum(o["completion_tokens"] for o in lines)


def _drain(stream) -> None:
    for _ in stream:
        pass


def platform_tokens_per_s(models_dir: Path, prompts: list[str]) -> float:
    """A 256-row campaign submitted over REST and completed by the worker, outputs in storage."""
    data, port = Path(tempfile.mkdtemp(prefix="aigc-bench-")), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_")}
    env.update(AIGC_DATA_DIR=str(data), AIGC_MODELS_DIR=str(models_dir), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "aigc", "up", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        key = None
        deadline = time.monotonic() + 300
        while key is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.strip().startswith("API key"):
                key = line.split()[-1]
        if key is None:
            raise RuntimeError("aigc up did not start")
        # Drain the platform's log so it never blocks on a full pipe.
        threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        _run_campaign(base, key, prompts[:4])  # warm-up: the worker loads the model once
        elapsed, tokens = _run_campaign(base, key, prompts)
        return tokens / elapsed
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)


def matmul_flops_per_s(n: int = 1024, reps: int = 20) -> float:
    """Measured fp32 matrix-multiply throughput: the roofline's ceiling on this machine."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        models_dir = Path(tmp)
        tm = save_gpt2_small(models_dir / "gpt2-small")
        params = sum(p.numel() for p in tm.model.parameters())
        serial = serial_tokens_per_s(tm, PROMPTS[:16])
        batched = batched_tokens_per_s(tm, PROMPTS)
        del tm
        platform = platform_tokens_per_s(models_dir, PROMPTS)
    flops = matmul_flops_per_s()
    flops_per_token = 2 * params  # one multiply-add per parameter per token (lm head included)
    return {
        "model": "GPT-2 small architecture, seeded weights", "parameters": params, "prompts": len(PROMPTS),
        "new_tokens": NEW_TOKENS, "dtype": "float32",
        "serial_tokens_per_s": round(serial, 1), "batched_tokens_per_s": round(batched, 1),
        "platform_tokens_per_s": round(platform, 1),
        "matmul_gflops": round(flops / 1e9, 1),
        "roofline_tokens_per_s": round(flops / flops_per_token, 1),
        "platform_share_of_roofline": round(platform / (flops / flops_per_token), 3),
        "ratios": {"platform_vs_serial": round(platform / serial, 2),
                   "platform_vs_batched": round(platform / batched, 2)},
    }
