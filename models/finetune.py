"""Causal-LM fine-tuning: blocks from text, a resumable training loop, self-describing checkpoints.

The data order is a pure function of (seed, step), so a run resumed from a checkpoint at step N
sees exactly the batches an uninterrupted run would have seen from step N + 1 on.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Callable

import torch
from transformers import get_linear_schedule_with_warmup

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


def example_text(example: dict, eos: str) -> str:
    if "text" in example:
        return example["text"] + eos
    return example["prompt"] + example["completion"] + eos


def build_blocks(tokenizer, examples: list[dict], block_size: int) -> torch.Tensor:
    """Concatenate every example (each ending in end-of-text) and cut into (N, block_size)."""
    eos = tokenizer.eos_token or ""
    ids: list[int] = []
    for example in examples:
        ids += tokenizer(example_text(example, eos))["input_ids"]
    n = len(ids) // block_size
    if n == 0:
        # Too little text for one block: repeat it rather than refuse a tiny file.
        ids = ids * (block_size // max(1, len(ids)) + 1)
        n = 1
    return torch.tensor(ids[: n * block_size], dtype=torch.long).view(n, block_size)  # (N, T)


def split_blocks(blocks: torch.Tensor, seed: int, fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """A held-out slice for validation when no validation file is given."""
    n = blocks.shape[0]
    if n < 2:
        return blocks, blocks
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_valid = max(1, int(n * fraction))
    return blocks[perm[n_valid:]], blocks[perm[:n_valid]]


class Trainer:
    """AdamW with linear warm-up and decay; `run` calls back on steps, evaluations and checkpoints."""

    def __init__(self, model: torch.nn.Module, cfg: FinetuneConfig, train: torch.Tensor, valid: torch.Tensor,
                 device: torch.device):
        self.model, self.cfg, self.device = model, cfg, device
        self.train_blocks, self.valid_blocks = train, valid[: cfg.max_valid_blocks]
        self.steps_per_epoch = math.ceil(train.shape[0] / cfg.batch_size)
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.learning_rate)
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, min(cfg.warmup_steps, self.total_steps), self.total_steps)

    def batch(self, step: int) -> torch.Tensor:
        """Batch number `step` (1-based): a fresh permutation per epoch, seeded by epoch."""
        epoch, i = divmod(step - 1, self.steps_per_epoch)
        gen = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        perm = torch.randperm(self.train_blocks.shape[0], generator=gen)
        idx = perm[i * self.cfg.batch_size:(i + 1) * self.cfg.batch_size]
        return self.train_blocks[idx].to(self.device)  # (B, T)

    @torch.no_grad()
    def evaluate(self) -> float:
        self.model.eval()
        losses = []
        for chunk in self.valid_blocks.split(self.cfg.batch_size):
            chunk = chunk.to(self.device)
            mask = torch.ones_like(chunk)  # blocks are never padded
            with training_autocast(self.device):
                loss = self.model(input_ids=chunk, attention_mask=mask, labels=chunk).loss
            losses.append(loss.item() * chunk.shape[0])
        self.model.train()
        return sum(losses) / self.valid_blocks.shape[0]

    def run(self, start_step: int, on_step: Callable[[int, float], None],
            on_eval: Callable[[int, float], None], on_checkpoint: Callable[[int], None]) -> float:
        """Train steps start_step+1 .. total_steps; returns the last training loss."""
        self.model.train()
        loss_value = float("nan")
        for step in range(start_step + 1, self.total_steps + 1):
            # (1) forward and backward on this step's batch
            x = self.batch(step)
            with training_autocast(self.device):
                loss = self.model(input_ids=x, attention_mask=torch.ones_like(x), labels=x).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
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
