"""Built-in text models that need no network: the trained ad-writer that ships with the package, and
untrained GPT-2 architectures from a config with a byte-level tokenizer (for tests that need speed)."""

from __future__ import annotations

import itertools
import string

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from models import ad_writer

EOS = "<|endoftext|>"

# Names match core.catalog.BUILTIN_TEXT_MODELS with builtin:ad-writer (a unit test keeps them in step).
BUILTIN_CONFIGS = {
    # Small enough to generate hundreds of tokens a second on one CPU core.
    "builtin:tiny-gpt2": dict(n_layer=2, n_head=4, n_embd=128, n_positions=1024),
}

# Weights are seeded so every worker builds the same model and a job's seed means the same text.
_WEIGHT_SEED = 20240501


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (the ByteLevel alphabet)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def byte_level_tokenizer(vocab_size: int = 257) -> PreTrainedTokenizerFast:
    """One token per byte (ids 0-255 are the byte values) plus <|endoftext|> as 256.

    vocab_size above 257 (a bigger architecture's, say GPT-2's 50,257 in bench/) adds ids that decode
    to three letters each; encoding never produces them, so whatever id a model draws reads as text."""
    byte_map = _bytes_to_unicode()
    vocab = {byte_map[b]: b for b in range(256)}
    vocab[EOS] = 256
    filler = ("".join(t) for t in itertools.product(string.ascii_letters + string.digits, repeat=3))
    for i in range(257, vocab_size):
        vocab[next(filler)] = i
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=EOS)
    fast.padding_side = "left"  # decoder-only models generate after the prompt, so pad before it
    return fast


def build_builtin(name: str) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    if name == ad_writer.NAME:
        return ad_writer.load()
    if name not in BUILTIN_CONFIGS:
        raise KeyError(name)
    tokenizer = byte_level_tokenizer()
    config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=256, eos_token_id=256,
                        pad_token_id=256, **BUILTIN_CONFIGS[name])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_WEIGHT_SEED)
        model = GPT2LMHeadModel(config)
    return model, tokenizer
