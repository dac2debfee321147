"""Fine-tuning tokens/s: the platform's training loop (models/finetune.py) vs a plain Hugging Face Trainer."""

from __future__ import annotations

import statistics
import tempfile
import time

import torch
from transformers import Trainer as HfTrainer
from transformers import PrinterCallback, TrainerCallback, TrainingArguments

from models.builtin import build_builtin
from models.corpus import load_ad_copy
from models.finetune import FinetuneConfig, Trainer, build_blocks, split_blocks

MODEL = "builtin:tiny-gpt2"
# The demo's settings (aigc/demo.py), run for a fixed number of steps.
BATCH, BLOCK, LR, WARMUP, SEED = 16, 128, 6e-3, 20, 7
WARM_STEPS, STEPS = 5, 35  # steps 1..5 warm up (allocator, kernels); 6..35 are timed
ROUNDS = 5  # runs of each, interleaved, so drift in machine load hits both sides alike


def _blocks() -> tuple[torch.Tensor, torch.Tensor]:
    """The platform's own data path: every corpus line ends in end-of-text, cut into blocks."""
    _, tokenizer = build_builtin(MODEL)
    blocks = build_blocks(tokenizer, [{"text": t} for t in load_ad_copy()], BLOCK)
    return split_blocks(blocks, SEED)


def _model() -> torch.nn.Module:
    torch.manual_seed(SEED)
    model, _ = build_builtin(MODEL)
    return model


class _Clock:
    """Wall time at the end of each step."""

    def __init__(self):
        self.at: dict[int, float] = {}

    def tick(self, step: int) -> None:
        self.at[step] = time.perf_counter()

    def step_seconds(self) -> list[float]:
        """How long each timed step took (warm-up steps left out)."""
        return [self.at[s] - self.at[s - 1] for s in range(WARM_STEPS + 1, STEPS + 1)]


def platform_step_seconds(train: torch.Tensor, valid: torch.Tensor) -> list[float]:
    """models.finetune.Trainer.run as tasks/text_finetune.py drives it, in process; its storage and Redis
    callbacks are left out (they are throttled), and so are the end-of-run evaluation and checkpoint."""
    cfg = FinetuneConfig(epochs=1, max_steps=STEPS, batch_size=BATCH, learning_rate=LR, block_size=BLOCK,
                         warmup_steps=WARMUP, seed=SEED, eval_every=10**9, checkpoint_every=10**9)
    model = _model()
    trainer = Trainer(model, cfg, train, valid, torch.device("cpu"))
    clock = _Clock()
    trainer.run(0, lambda step, loss: clock.tick(step), lambda step, loss: None, lambda step: None)
    return clock.step_seconds()


class _Blocks(torch.utils.data.Dataset):
    def __init__(self, blocks: torch.Tensor):
        self.blocks = blocks

    def __len__(self) -> int:
        return self.blocks.shape[0]

    def __getitem__(self, i: int) -> dict:
        x, labels = self.blocks[i]  # (2, T): the input ids and their labels
        return {"input_ids": x, "attention_mask": torch.ones_like(x), "labels": labels}


class _StepClock(TrainerCallback):
    def __init__(self, clock: _Clock):
        self.clock = clock

    def on_step_end(self, args, state, control, **kwargs):
        self.clock.tick(state.global_step)


def plain_step_seconds(train: torch.Tensor) -> list[float]:
    """The tutorial way: transformers.Trainer at the same model, data, batch, block, lr and schedule."""
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, max_steps=STEPS, per_device_train_batch_size=BATCH, learning_rate=LR,
            warmup_steps=WARMUP, lr_scheduler_type="linear", weight_decay=0.01, max_grad_norm=1.0,
            seed=SEED, use_cpu=True, save_strategy="no", eval_strategy="no", logging_strategy="no",
            report_to=[], disable_tqdm=True, dataloader_num_workers=0)
        clock = _Clock()
        trainer = HfTrainer(model=_model(), args=args, train_dataset=_Blocks(train), callbacks=[_StepClock(clock)])
        trainer.remove_callback(PrinterCallback)  # it prints the run's summary to stdout
        trainer.train()
    return clock.step_seconds()


def run() -> dict:
    """Tokens per median step, over interleaved runs: a burst of load elsewhere moves neither median."""
    train, valid = _blocks()
    platform, plain = [], []
    for _ in range(ROUNDS):
        platform += platform_step_seconds(train, valid)
        plain += plain_step_seconds(train)
    platform_tps, plain_tps = (BATCH * BLOCK / statistics.median(s) for s in (platform, plain))
    return {
        "model": MODEL, "corpus": "models/corpus/ad_copy.jsonl", "batch_size": BATCH, "block_size": BLOCK,
        "learning_rate": LR, "warmup_steps": WARMUP, "timed_steps": STEPS - WARM_STEPS, "warm_up_steps": WARM_STEPS,
        "rounds": ROUNDS, "torch_threads": torch.get_num_threads(),
        "measured": "the platform's Trainer.run loop in process (not the whole job), against transformers.Trainer; "
                    "batch x block / the median step time over interleaved runs; model load, data preparation "
                    "and warm-up steps left out on both sides",
        "platform_tokens_per_s": round(platform_tps, 1), "plain_tokens_per_s": round(plain_tps, 1),
        "ratios": {"finetune_vs_plain": round(platform_tps / plain_tps, 2)},
    }


def rows(f: dict) -> list[str]:
    return [f"| fine-tuning {f['model']}, batch {f['batch_size']} x {f['block_size']} tokens: platform loop vs "
            f"transformers.Trainer | {f['plain_tokens_per_s']} tok/s | {f['platform_tokens_per_s']} tok/s | "
            f"{f['ratios']['finetune_vs_plain']}x |"]
