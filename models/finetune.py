"""Causal-LM fine-tuning: blocks from text, a resumable training loop, self-describing checkpoints.

The data order is a pure function of (seed, step), so a run resumed from a checkpoint at step N
sees exactly the batches an uninterrupted run would have seen from step N + 1 on.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch

from models.precision import training_autocast


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """How to train. The user-facing values have no defaults here: they are declared once, in
    core/schemas.py (FinetuneHyperparameters), and passed in as validated."""

    epochs: int
    max_steps: int | None  # when set, overrides epochs
    batch_size: int
    learning_rate: float
    block_size: int
    warmup_steps: int
    seed: int
    eval_every: int
    checkpoint_every: int
    # Not user settings: fixed by the platform.
    weight_decay: float = 0.01
    max_valid_blocks: int = 64  # evaluation cost stays bounded however big the data


IGNORE = -100  # a label the loss skips


def example_text(example: dict, eos: str) -> str:
    if "text" in example:
        return example["text"] + eos
    return example["prompt"] + example["completion"] + eos


def chat_segments(tokenizer, messages: list[dict]) -> list[tuple[str, bool]]:
    """A conversation as (text, trained) pieces whose concatenation is the rendered conversation:
    each assistant turn of weight 1, its end-of-turn marker included (so the model learns to stop),
    is trained; everything else is context only."""
    from models.chat import render_chat

    full = render_chat(tokenizer, messages, add_generation_prompt=False)
    pieces, done = [], 0
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(render_chat(tokenizer, messages[:k], add_generation_prompt=True)) if k else 0
        end = len(render_chat(tokenizer, messages[:k + 1], add_generation_prompt=False))
        if not (done <= start <= end <= len(full)) or full[start:end].find(message["content"]) < 0:
            # A template whose prefixes are not prefixes of the whole (it rewrites earlier turns):
            # the turn's content, found in order, is what is trained.
            start = full.find(message["content"], done)
            end = start + len(message["content"])
        if start < done:
            continue
        pieces.append((full[done:start], False))
        pieces.append((full[start:end], bool(message.get("weight", 1))))
        done = end
    pieces.append((full[done:], False))
    return [(text, trained) for text, trained in pieces if text]


def example_tokens(tokenizer, example: dict) -> tuple[list[int], list[int]]:
    """(input ids, labels) of one example, ending in end-of-text; a label of IGNORE is not trained.
    Text and prompt/completion examples train on every token; chat examples on assistant turns."""
    eos = tokenizer.eos_token or ""
    if "messages" not in example:
        ids = tokenizer(example_text(example, eos))["input_ids"]
        return ids, list(ids)
    ids, labels = [], []
    for text, trained in chat_segments(tokenizer, example["messages"]) + [(eos, False)]:
        piece = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
        ids += piece
        labels += piece if trained else [IGNORE] * len(piece)
    return ids, labels


class ExampleTooLong(ValueError):
    def __init__(self, line: int | None, tokens: int, context: int):
        super().__init__(f"line {line}: {tokens} tokens, more than the model's context of {context}")
        self.line, self.tokens, self.context = line, tokens, context


def build_blocks(tokenizer, examples: list[dict], block_size: int, context: int | None = None) -> torch.Tensor:
    """Concatenate every example (each ending in end-of-text) and cut into (N, 2, block_size):
    [:, 0] the input ids, [:, 1] the labels. context: the most tokens one example may have
    (ExampleTooLong names the first longer one by its line)."""
    ids: list[int] = []
    labels: list[int] = []
    for example in examples:
        x, y = example_tokens(tokenizer, example)
        if context is not None and len(x) > context:
            raise ExampleTooLong(example.get("line"), len(x), context)
        ids += x
        labels += y
    n = len(ids) // block_size
    if n == 0:
        # Too little text for one block: repeat it rather than refuse a tiny file.
        times = block_size // max(1, len(ids)) + 1
        ids, labels = ids * times, labels * times
        n = 1
    both = torch.tensor([ids[: n * block_size], labels[: n * block_size]], dtype=torch.long)  # (2, N*T)
    return both.view(2, n, block_size).transpose(0, 1).contiguous()  # (N, 2, T)


def trained_tokens(blocks: torch.Tensor) -> int:
    """Tokens in these blocks that the loss counts."""
    return int(blocks[:, 1, 1:].ne(IGNORE).sum())


def lm_loss(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss over the labelled tokens of a (B, 2, T) batch; zero (with a gradient)
    where a batch has none, where the model's own loss would be NaN."""
    x, y = batch[:, 0], batch[:, 1]
    logits = model(input_ids=x, attention_mask=torch.ones_like(x)).logits  # (B, T, V)
    # The labels move one place left rather than the logits one place right: slicing the logits
    # would copy all B*T*V of them (100 MB a step for a 50k vocabulary at 8 x 64), as would the
    # backward pass into the slice.
    target = torch.cat([y[:, 1:], y.new_full((y.shape[0], 1), IGNORE)], dim=1)  # (B, T)
    total = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                                              ignore_index=IGNORE, reduction="sum")
    return total / target.ne(IGNORE).sum().clamp(min=1)


def split_blocks(blocks: torch.Tensor, seed: int, fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """A held-out slice for validation when no validation file is given."""
    n = blocks.shape[0]
    if n < 2:
        return blocks, blocks
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_valid = max(1, int(n * fraction))
    return blocks[perm[n_valid:]], blocks[perm[:n_valid]]


def _linear_with_warmup(step: int, warmup: int, total: int) -> float:
    """The learning rate's factor at a step: up from 0 over `warmup` steps, then down to 0 at `total`
    (transformers' get_linear_schedule_with_warmup)."""
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def linear_schedule_with_warmup(optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    # Not transformers' own: importing transformers.optimization imports its trainer utilities, and
    # they import peft where it is installed, 5 s more for every worker process that starts.
    return torch.optim.lr_scheduler.LambdaLR(optimizer, partial(_linear_with_warmup, warmup=warmup, total=total))


class Trainer:
    """AdamW with linear warm-up and decay; `run` calls back on steps, evaluations and checkpoints."""

    def __init__(self, model: torch.nn.Module, cfg: FinetuneConfig, train: torch.Tensor, valid: torch.Tensor,
                 device: torch.device):
        self.model, self.cfg, self.device = model, cfg, device
        self.train_blocks, self.valid_blocks = train, valid[: cfg.max_valid_blocks]
        self.steps_per_epoch = math.ceil(train.shape[0] / cfg.batch_size)
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        # Only what trains: a LoRA run's frozen base has no optimizer state at all.
        params = [p for p in model.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.learning_rate)
        self.scheduler = linear_schedule_with_warmup(self.optimizer, min(cfg.warmup_steps, self.total_steps),
                                                     self.total_steps)

    def batch(self, step: int) -> torch.Tensor:
        """Batch number `step` (1-based), (B, 2, T): a fresh permutation per epoch, seeded by epoch."""
        epoch, i = divmod(step - 1, self.steps_per_epoch)
        gen = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        perm = torch.randperm(self.train_blocks.shape[0], generator=gen)
        idx = perm[i * self.cfg.batch_size:(i + 1) * self.cfg.batch_size]
        return self.train_blocks[idx].to(self.device)  # (B, 2, T)

    @torch.no_grad()
    def evaluate(self) -> float:
        self.model.eval()
        total, counted = 0.0, 0
        for chunk in self.valid_blocks.split(self.cfg.batch_size):
            chunk = chunk.to(self.device)
            with training_autocast(self.device):
                loss = lm_loss(self.model, chunk)
            n = trained_tokens(chunk)
            total, counted = total + loss.item() * n, counted + n
        self.model.train()
        return total / max(1, counted)

    @property
    def tokens_per_step(self) -> int:
        return self.cfg.batch_size * self.train_blocks.shape[2]

    def run(self, start_step: int, on_step: Callable[[int, float], None],
            on_eval: Callable[[int, float], None], on_checkpoint: Callable[[int], None]) -> float:
        """Train steps start_step+1 .. total_steps; returns the last training loss."""
        self.model.train()
        loss_value = float("nan")
        for step in range(start_step + 1, self.total_steps + 1):
            # (1) forward and backward on this step's batch
            x = self.batch(step)
            with training_autocast(self.device):
                loss = lm_loss(self.model, x)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], 1.0)
            # (2) update, then step the schedule
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            loss_value = loss.item()
            on_step(step, loss_value)
            # (3) evaluate and checkpoint on their cadence, and always at the end
            last = step == self.total_steps
            if step % self.cfg.eval_every == 0 or last:
                on_eval(step, self.evaluate())
            if step % self.cfg.checkpoint_every == 0 or last:
                on_checkpoint(step)
        return loss_value

    # -- training state (everything but the weights) -------------------------------------------
    def state_bytes(self, step: int) -> bytes:
        buf = io.BytesIO()
        torch.save({"step": step, "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(), "rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}, buf)
        return buf.getvalue()

    def load_state_bytes(self, data: bytes) -> int:
        """Restore optimizer, schedule and RNG; returns the step the state was saved at."""
        # weights_only: the file holds tensors and plain containers, never code.
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return int(state["step"])
