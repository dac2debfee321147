"""LoRA on GPT-2 small: training speed and peak RSS vs full fine-tuning, stored size, adapters vs a merged model."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from bench.generation import PROMPTS
from models.builtin import byte_level_tokenizer
from models.corpus import load_ad_copy
from models.finetune import FinetuneConfig, Trainer, build_blocks, split_blocks
from models.lora import AdapterSet, merge_adapter, save_adapter, with_lora
from models.text import GenerationParams, TextModel, generate_rows, load_text_model

REPO = Path(__file__).resolve().parent.parent
MODEL = "GPT-2 small (GPT2Config defaults, 124M, seeded random weights)"
BATCH, BLOCK, LR, SEED = 4, 128, 5e-4, 7
LORA = {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["c_attn"]}  # GPT-2's attention projection
# A run's first steps allocate the gradients, the optimizer state and the allocator's pools: left out.
WARM_STEPS, STEPS = 2, 6
TRAIN_ROUNDS = 2  # fresh processes per side, interleaved, so drift in machine load hits both alike
ADAPTERS, NEW_TOKENS, GEN_ROUNDS = 4, 32, 5


def gpt2_small() -> GPT2LMHeadModel:
    """GPT-2 small's architecture from its config defaults; only the special ids are the byte-level
    tokenizer's end-of-text, so the model's and the tokenizer's end tokens agree."""
    torch.manual_seed(SEED)
    return GPT2LMHeadModel(GPT2Config(bos_token_id=256, eos_token_id=256, pad_token_id=256))


def _rss_mib(field: str) -> float:
    """This process's VmRSS (now) or VmHWM (its peak). The peak is VmHWM, not getrusage's ru_maxrss:
    Linux carries the parent's high-water mark across fork and exec into the child's ru_maxrss (a child
    of a 1 GiB parent reports 1 GiB before it allocates anything)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def _stored_bytes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(directory.iterdir()) if p.is_file()}


def train_child(method: str, base_dir: str, store: bool) -> dict:
    """One training run, in its own process (see _train), as tasks/text_finetune.py runs one: the base
    loaded by load_text_model (what load_fresh does), LoRA-wrapped or not, models.finetune.Trainer.run.
    Returns the step times, this process's peak RSS and, if `store`, what the platform would store."""
    tm = load_text_model("gpt2-small", "local", path=Path(base_dir))
    model = tm.model
    if method == "lora":
        model = with_lora(model, LORA)
    blocks = build_blocks(tm.tokenizer, [{"text": t} for t in load_ad_copy()], BLOCK, tm.max_positions)
    train, valid = split_blocks(blocks, SEED)
    # max_valid_blocks: Trainer.run evaluates at its last step whatever eval_every says; kept to one batch,
    # as it is not what is measured.
    cfg = FinetuneConfig(epochs=1, max_steps=STEPS, batch_size=BATCH, learning_rate=LR, block_size=BLOCK,
                         warmup_steps=0, seed=SEED, eval_every=10**9, checkpoint_every=10**9,
                         max_valid_blocks=BATCH)
    torch.manual_seed(SEED)
    trainer = Trainer(model, cfg, train, valid, tm.device)
    # What the process holds before the first step (the interpreter, torch, the base's weights): both
    # sides pay it, so it bounds how far below 1 the peak RSS ratio can go.
    before = _rss_mib("VmRSS")
    at = {0: time.perf_counter()}
    trainer.run(0, lambda step, loss: at.__setitem__(step, time.perf_counter()), lambda step, loss: None,
                lambda step: None)
    out = {"step_seconds": [at[s] - at[s - 1] for s in range(WARM_STEPS + 1, STEPS + 1)],
           "peak_rss_mib": _rss_mib("VmHWM"), "rss_before_training_mib": before,  # read before saving
           "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    if store:
        with tempfile.TemporaryDirectory() as tmp:
            if method == "lora":
                save_adapter(model, Path(tmp))
            else:
                model.save_pretrained(tmp, safe_serialization=True)
            out["stored"] = _stored_bytes(Path(tmp))
    return out


def _train(method: str, base_dir: Path, store: bool) -> dict:
    """train_child in a fresh interpreter, so each side's peak RSS is its own."""
    code = ("import json, sys; from bench.lora import train_child; "
            "print(json.dumps(train_child(sys.argv[1], sys.argv[2], sys.argv[3] == '1')))")
    done = subprocess.run([sys.executable, "-c", code, method, str(base_dir), "1" if store else "0"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"bench lora: the {method} training run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def training(base_dir: Path) -> dict:
    runs: dict[str, list[dict]] = {"full": [], "lora": []}
    for r in range(TRAIN_ROUNDS):
        # Alternate which side goes first, so neither always follows the other's page-cache and heat.
        for method in (("full", "lora") if r % 2 == 0 else ("lora", "full")):
            runs[method].append(_train(method, base_dir, store=r == 0))
    figures = {}
    for method, rs in runs.items():
        steps = [s for run in rs for s in run["step_seconds"]]
        figures[method] = {
            "tokens_per_s": round(BATCH * BLOCK / statistics.median(steps), 1),
            "median_step_s": round(statistics.median(steps), 3),
            "peak_rss_mib": round(statistics.median(run["peak_rss_mib"] for run in rs), 1),
            "peak_rss_mib_each_run": [round(run["peak_rss_mib"], 1) for run in rs],
            "rss_before_training_mib": round(statistics.median(run["rss_before_training_mib"] for run in rs), 1),
            "step_s_range": [round(min(steps), 3), round(max(steps), 3)],
            "trainable_parameters": rs[0]["trainable_parameters"],
            "stored_files": rs[0]["stored"], "stored_bytes": sum(rs[0]["stored"].values())}
    return figures


# -- serving ---------------------------------------------------------------------------------------

def save_base(directory: Path) -> None:
    """The base both sides start from, saved as a local model: each run loads it as the platform does."""
    gpt2_small().save_pretrained(directory, safe_serialization=True)
    byte_level_tokenizer(50257).save_pretrained(directory)  # GPT-2's vocabulary size; every id decodes to text


def _serving_models(base_dir: Path, tmp: Path) -> tuple[TextModel, TextModel, list[str]]:
    """The base with ADAPTERS adapters (saved by save_adapter, loaded into an AdapterSet, as a worker
    serves them) and a plain model with the first one merged in (the single-model baseline)."""
    peft_model = with_lora(load_text_model("gpt2-small", "local", path=base_dir).model, LORA)
    keys = []
    for i in range(ADAPTERS):
        # Fresh B (peft starts it at zero, which would make every adapter the base): each adapter computes.
        torch.manual_seed(SEED + i)
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.02)
        keys.append(f"adapter-{i}")
        save_adapter(peft_model, tmp / keys[-1])
    del peft_model
    served = load_text_model("gpt2-small", "local", path=base_dir)
    served.adapters = AdapterSet(served.model, capacity=ADAPTERS)
    for key in keys:
        served.adapters.add(key, tmp / key)
    merged = load_text_model("gpt2-small", "local", path=base_dir)
    merge_adapter(merged.model, tmp / keys[0])
    return served, merged, keys


def _generate(tm: TextModel, adapters: list[str] | None, params: GenerationParams) -> tuple[float, int]:
    start = time.perf_counter()
    results = generate_rows(tm, PROMPTS, params, adapters=adapters)
    elapsed = time.perf_counter() - start
    return elapsed, sum(r["completion_tokens"] for r in results)


def serving(base_dir: Path, tmp: Path) -> dict:
    # Greedy: both sides' calls are deterministic, so the token counts checked below hold every round.
    params = GenerationParams(max_new_tokens=NEW_TOKENS, temperature=0)
    served, merged, keys = _serving_models(base_dir, tmp)
    per_row = [keys[i % len(keys)] for i in range(len(PROMPTS))]  # 4 requests per adapter, mixed in one batch
    _generate(served, per_row, params), _generate(merged, None, params)  # warm-up
    rates: dict[str, list[float]] = {"multi_adapter": [], "merged": []}
    tokens: dict[str, set[int]] = {"multi_adapter": set(), "merged": set()}
    for _ in range(GEN_ROUNDS):
        for name, tm, adapters in (("multi_adapter", served, per_row), ("merged", merged, None)):
            seconds, n = _generate(tm, adapters, params)
            rates[name].append(n / seconds)
            tokens[name].add(n)
    # A row that drew end-of-text early would make one side's work smaller: both must produce all tokens.
    full = len(PROMPTS) * NEW_TOKENS
    if tokens["multi_adapter"] != {full} or tokens["merged"] != {full}:
        raise RuntimeError(f"bench lora: generation produced {tokens}, not {full} tokens per call on both sides")
    return {"requests": len(PROMPTS), "adapters": ADAPTERS, "max_new_tokens": NEW_TOKENS, "rounds": GEN_ROUNDS,
            "tokens_per_call": full,
            "multi_adapter_tokens_per_s": round(statistics.median(rates["multi_adapter"]), 1),
            "merged_tokens_per_s": round(statistics.median(rates["merged"]), 1),
            "tokens_per_s_each_round": {k: [round(v, 1) for v in vs] for k, vs in rates.items()}}


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        base_dir = Path(tmp) / "base"
        save_base(base_dir)
        train = training(base_dir)
        serve = serving(base_dir, Path(tmp))
    full, lora = train["full"], train["lora"]
    return {
        "model": MODEL, "corpus": "models/corpus/ad_copy.jsonl", "batch_size": BATCH, "block_size": BLOCK,
        "lora": LORA, "warm_up_steps": WARM_STEPS, "timed_steps_per_run": STEPS - WARM_STEPS,
        "training_rounds": TRAIN_ROUNDS, "torch_threads": torch.get_num_threads(),
        "measured": "training: models.finetune.Trainer.run (LoRA via models.lora.with_lora, or every weight), "
                    "each run in a fresh interpreter, runs of the two interleaved; batch x block / the median "
                    "step, warm-up steps left out; peak RSS is the process's VmHWM after training; stored is "
                    "what save_adapter or save_pretrained writes. Serving: generate_rows, 16 prompts in one "
                    "batch, each row with its own adapter of an AdapterSet, against a plain model with an "
                    "adapter merged, greedy, every row generating all its tokens; median over interleaved "
                    "calls after a warm-up",
        "training": train, "serving": serve,
        "adapter_vs_full_stored": round(lora["stored_bytes"] / full["stored_bytes"], 5),
        "ratios": {
            "lora_vs_full_tokens_per_s": round(lora["tokens_per_s"] / full["tokens_per_s"], 2),
            "lora_vs_full_peak_rss": round(lora["peak_rss_mib"] / full["peak_rss_mib"], 2),
            "multi_adapter_vs_single": round(serve["multi_adapter_tokens_per_s"] / serve["merged_tokens_per_s"], 2),
        },
    }


def rows(r: dict) -> list[str]:
    t, s, q = r["training"], r["serving"], r["ratios"]
    head = f"{r['model']}, batch {r['batch_size']} x {r['block_size']}, LoRA r={r['lora']['r']} on c_attn"
    return [
        f"| training {head}: LoRA vs full fine-tuning | {t['full']['tokens_per_s']} tok/s | "
        f"{t['lora']['tokens_per_s']} tok/s | {q['lora_vs_full_tokens_per_s']}x |",
        f"| training peak RSS, same runs | {t['full']['peak_rss_mib']} MiB | {t['lora']['peak_rss_mib']} MiB | "
        f"{q['lora_vs_full_peak_rss']}x |",
        f"| stored: model.save_pretrained vs save_adapter | {t['full']['stored_bytes'] / 2**20:.1f} MiB | "
        f"{t['lora']['stored_bytes'] / 2**10:.1f} KiB | {r['adapter_vs_full_stored']}x |",
        f"| generation, {s['requests']} requests x {s['max_new_tokens']} tokens: one merged model vs "
        f"{s['adapters']} adapters in one batch | {s['merged_tokens_per_s']} tok/s | "
        f"{s['multi_adapter_tokens_per_s']} tok/s | {q['multi_adapter_vs_single']}x |",
    ]
