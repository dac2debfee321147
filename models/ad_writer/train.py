"""Trains builtin:ad-writer from the project's own data: `python -m models.ad_writer.train` (or `aigc train-builtin`).

Reads like a recipe on purpose, so it can be copied to train the same kind of model on a brand's own
copy: build the examples, learn a tokenizer on them, train a small GPT-2 on the ad tokens only, write
fp16 safetensors and their SHA-256 sums. The same seed on the same machine gives the same bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import time
from array import array
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel, GenerationConfig

from models.ad_writer import TRAIN_SEED, TRAIN_STEPS, WEIGHTS_DIR, write_checksums
from models.ad_writer.data import Example, held_out_requests, plain_example, training_examples
from models.ad_writer.tokenizer import EOS, IM_END, IM_START, train_tokenizer
from models.corpus import load_ad_copy
from models.text import cpu_native_bf16

# About 5.4M parameters: 11 MB in fp16.
ARCHITECTURE = dict(n_layer=5, n_head=4, n_embd=256, n_positions=512)
VOCAB_SIZE = 6000
EXAMPLES = 150_000
TOKENIZER_EXAMPLES = 30_000
BATCH = 48
LEARNING_RATE = 2e-3
WARMUP = 200
IGNORE = -100  # label of a token that does not count in the loss


def encode(tokenizer, example: Example) -> tuple[array, array]:
    """Token ids and labels: a piece that is not trained gets IGNORE labels. (Arrays of C ints: a
    list of Python ints for 150,000 examples would take gigabytes.)"""
    ids, labels = array("i"), array("i")
    for text, trained in example.pieces:
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids.extend(piece)
        labels.extend(piece if trained else [IGNORE] * len(piece))
    return ids, labels


def batches(encoded: list[tuple[array, array]], size: int, rng: random.Random, pad_id: int):
    """Endless shuffled batches of similar lengths (little padding), right-padded, positions from 0."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    groups = [order[i:i + size] for i in range(0, len(order), size)]
    while True:
        rng.shuffle(groups)
        for group in groups:
            width = max(len(encoded[i][0]) for i in group)
            ids = torch.full((len(group), width), pad_id)
            labels = torch.full((len(group), width), IGNORE)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            for row, i in enumerate(group):
                tokens, labs = encoded[i]
                ids[row, :len(tokens)] = torch.frombuffer(tokens, dtype=torch.int32)
                labels[row, :len(labs)] = torch.frombuffer(labs, dtype=torch.int32)
                mask[row, :len(tokens)] = 1
            yield ids, labels, mask


def _autocast():
    """bf16 autocast where the CPU multiplies bf16 natively (AMX, AVX-512 BF16): nearly twice as fast
    there; elsewhere fp32, since emulated bf16 would be slower than fp32."""
    if cpu_native_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def learning_rate(step: int, steps: int) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step < WARMUP:
        return LEARNING_RATE * (step + 1) / WARMUP
    progress = (step - WARMUP) / max(1, steps - WARMUP)
    return LEARNING_RATE * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def answer_loss(model, tokenizer, pairs, device="cpu") -> tuple[float, int]:
    """(summed loss in nats, tokens) of each reference ad after its typed request: `pairs` are
    (request, as typed, ad), as data.held_out_requests gives them."""
    total, tokens = 0.0, 0
    for _, typed, ad in pairs:
        ids, labels = encode(tokenizer, plain_example(typed, ad, tokenizer.eos_token))
        out = model(torch.tensor([ids.tolist()], device=device), labels=torch.tensor([labels.tolist()], device=device))
        n = sum(1 for label in labels[1:] if label != IGNORE)
        total, tokens = total + out.loss.item() * n, tokens + n
    return total, tokens


def held_out_loss(model, tokenizer, count: int = 200) -> float:
    """Mean loss per ad token over held-out completions (the evaluation's perplexity is its exp)."""
    model.eval()
    total, tokens = answer_loss(model, tokenizer, held_out_requests(count))
    model.train()
    return total / tokens


def train(steps: int, seed: int, out: Path, example_count: int = EXAMPLES, log_every: int = 100) -> Path:
    torch.manual_seed(seed)
    started = time.monotonic()
    examples = training_examples(example_count, seed, EOS, IM_START, IM_END, load_ad_copy())
    tokenizer = train_tokenizer(("".join(text for text, _ in ex.pieces) for ex in examples[:TOKENIZER_EXAMPLES]),
                                VOCAB_SIZE)
    encoded = [encode(tokenizer, ex) for ex in examples]
    eos_id, end_id = tokenizer.convert_tokens_to_ids([EOS, IM_END])
    config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=eos_id, eos_token_id=eos_id,
                        pad_token_id=eos_id, **ARCHITECTURE)
    model = GPT2LMHeadModel(config)
    print(f"{len(examples)} examples, {len(tokenizer)} tokens in the vocabulary, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=LEARNING_RATE, betas=(0.9, 0.95))
    model.train()
    stream = batches(encoded, BATCH, random.Random(seed), eos_id)
    for step in range(steps):
        ids, labels, mask = next(stream)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps)
        with _autocast():
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % log_every == 0 or step + 1 == steps:
            print(f"step {step + 1}/{steps}  loss {loss.item():.3f}  {time.monotonic() - started:.0f} s", flush=True)
    print(f"held-out loss per ad token {held_out_loss(model, tokenizer):.3f}", flush=True)

    out.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(bos_token_id=eos_id, eos_token_id=[eos_id, end_id],
                                               pad_token_id=eos_id)
    model.half().save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    write_checksums(out)
    print(f"wrote {out} in {time.monotonic() - started:.0f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=TRAIN_STEPS)
    parser.add_argument("--seed", type=int, default=TRAIN_SEED)
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="where to write the model (default: the package's)")
    args = parser.parse_args(argv)
    train(args.steps, args.seed, args.out)


if __name__ == "__main__":
    main()
