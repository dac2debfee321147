"""Attention for the engine on a CPU under bf16 autocast: scaled-dot-product attention over the fp32 key/value cache in fp32, the rest of the step in bf16.

Autocast lists SDPA among the ops it runs in bf16, which on a CPU means casting the whole cache view
at every layer and step, then a bf16 kernel that ran 5x slower than the fp32 one for a decoding
step (32 rows x 282 columns of GPT-2 small: 6.8 against 1.3 ms a layer, on AVX-512 BF16). So while
the engine runs a model, its config names this attention, which turns autocast off around SDPA
when the query came out of a bf16 projection and the cache is fp32.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "aigc_engine_sdpa"


def _sdpa_in_the_cache_dtype(module, query, key, value, attention_mask, **kwargs):
    if query.dtype == key.dtype:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    with torch.autocast(query.device.type, enabled=False):
        out, weights = sdpa_attention_forward(module, query.to(key.dtype), key, value, attention_mask, **kwargs)
    return out.to(query.dtype), weights


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
