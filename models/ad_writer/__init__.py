"""builtin:ad-writer: a small bilingual ad-copy model trained here, shipped as fp16 safetensors with checksums."""

from __future__ import annotations

import hashlib
from pathlib import Path

NAME = "builtin:ad-writer"
WEIGHTS_DIR = Path(__file__).with_name("weights")
CHECKSUMS = "SHA256SUMS"
# What the shipped weights were trained with (models/ad_writer/train.py).
TRAIN_STEPS = 3500
TRAIN_SEED = 7
# Every file a load reads: a changed or truncated one is refused before it is parsed.
CHECKED_FILES = ("chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
                 "tokenizer.json", "tokenizer_config.json")


class CorruptWeights(RuntimeError):
    """A shipped file is missing or differs from its recorded SHA-256."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(directory: Path) -> None:
    """Record the SHA-256 of each checked file in `directory`/SHA256SUMS (sha256sum's format)."""
    lines = [f"{_sha256(directory / name)}  {name}\n" for name in CHECKED_FILES]
    (directory / CHECKSUMS).write_text("".join(lines))


def verify(directory: Path = WEIGHTS_DIR) -> None:
    """Raise CorruptWeights unless every checked file matches SHA256SUMS."""
    try:
        recorded = dict(reversed(line.split("  ", 1)) for line in (directory / CHECKSUMS).read_text().splitlines())
    except OSError as exc:
        raise CorruptWeights(f"{NAME}: no checksums at {directory / CHECKSUMS} ({exc.strerror})") from None
    for name in CHECKED_FILES:
        path = directory / name
        if name not in recorded or not path.is_file():
            raise CorruptWeights(f"{NAME}: {name} is missing (reinstall the package or run "
                                 "`python -m models.ad_writer.train`)")
        if _sha256(path) != recorded[name]:
            raise CorruptWeights(f"{NAME}: {name} does not match its recorded SHA-256 (reinstall the package "
                                 "or run `python -m models.ad_writer.train`)")


def load(directory: Path = WEIGHTS_DIR):
    """The checked model (fp32, for CPU inference and fine-tuning) and its tokenizer."""
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    verify(directory)
    model = GPT2LMHeadModel.from_pretrained(directory, dtype=torch.float32, use_safetensors=True,
                                            local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    return model, tokenizer
