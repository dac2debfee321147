"""Attention for the engine on a CPU: scaled-dot-product attention over the fp32 key/value cache in fp32 (the rest of a step may run in bf16), and a decoding step's rows read the cache in windows.

Autocast lists SDPA among the ops it runs in bf16, which on a CPU means casting the whole cache view
at every layer and step, then a bf16 kernel that ran 5x slower than the fp32 one for a decoding
step (32 rows x 282 columns of GPT-2 small: 6.8 against 1.3 ms a layer, on AVX-512 BF16). So while
the engine runs a model, its config names this attention, which turns autocast off around SDPA
when the query came out of a bf16 projection and the cache is fp32.

A decoding step's attention costs in proportion to the cache columns it reads, and rows of short
texts sit beside long ones (every row is right-aligned, padded on the left to the batch's longest):
while the engine sets windows (`row_windows`), each group of rows attends from the first column one
of them uses (a third of a 32-row step's attention, where rows are in order of their length).
"""

from __future__ import annotations

import contextlib
import contextvars

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "aigc_engine_sdpa"


# (first row, end row, first column) windows of a decoding step (see row_windows), while one is set.
_windows: contextvars.ContextVar[list[tuple[int, int, int]] | None] = contextvars.ContextVar(
    "aigc_engine_windows", default=None)


def _sdpa_in_the_cache_dtype(module, query, key, value, attention_mask, **kwargs):
    windows = _windows.get()
    if (windows and query.shape[2] == 1 and kwargs.get("position_bias") is None
            and (attention_mask is None or (attention_mask.dim() == 4 and attention_mask.shape[0] == query.shape[0]))):
        mask = attention_mask
        out = torch.cat([_attend(module, query[r0:r1], key[r0:r1, :, c0:], value[r0:r1, :, c0:],
                                 None if mask is None else mask[r0:r1, :, :, c0:], **kwargs)
                         for r0, r1, c0 in windows])
        return out, None
    return _attend(module, query, key, value, attention_mask, **kwargs), None


def _attend(module, query, key, value, attention_mask, **kwargs) -> torch.Tensor:
    if query.dtype == key.dtype:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)[0]
    with torch.autocast(query.device.type, enabled=False):
        out, _ = sdpa_attention_forward(module, query.to(key.dtype), key, value, attention_mask, **kwargs)
    return out.to(query.dtype)


AttentionInterface.register(NAME, _sdpa_in_the_cache_dtype)
AttentionMaskInterface.register(NAME, sdpa_mask)


@contextlib.contextmanager
def fp32_attention(model: torch.nn.Module):
    """For the block, a model that uses SDPA uses it in the cache's dtype (a model on another attention
    is left as it is)."""
    config = model.config
    before = getattr(config, "_attn_implementation", None)
    if before != "sdpa":
        yield
        return
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = before


@contextlib.contextmanager
def row_windows(windows: list[tuple[int, int, int]] | None):
    """For the block, a one-token query attends per window of rows (first row, end row, first
    column): each group of rows reads the cache from the first column any of them uses, not from the
    batch's (the step is bound by reading the cache; rows of short texts beside long ones left much
    of it padding)."""
    token = _windows.set(windows)
    try:
        yield
    finally:
        _windows.reset(token)
