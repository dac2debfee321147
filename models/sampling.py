"""Next-token choice for a batch whose rows each have their own temperature, top-k, top-p and random stream, in a few tensor operations for the whole batch.

Greedy rows take the most likely token. Sampling rows are scaled by their temperature, cut to
their top-k (ties at the k-th value kept, as transformers' TopKLogitsWarper does) and to their top-p
nucleus, then drawn by inverting the cumulative distribution with one uniform each (models/text.py's
_SampleByCdf, the same draw generate_batch makes).

The nucleus is found without sorting the vocabulary: transformers' TopPLogitsWarper sorts every row
(4 ms a row of GPT-2's 50k vocabulary on a CPU core, a third of a 32-row decoding step). Here the
threshold is selected by radix on the probabilities' float bits (non-negative floats order as their
bit patterns do): three passes, each a weighted histogram of the next bits of the tokens still in
question, find the exact probability at which the mass of the tokens at or above it first reaches
top_p. The kept set is the smallest set of most likely tokens whose mass reaches top_p (ties at the
threshold kept), as a sort would give, up to float rounding of the mass; a bisection on the threshold
took 20 passes of three operations each (16 ms of a 100 ms step at 32 rows; the radix takes ~3).
Only rows whose top_p is below 1 take part.
"""

from __future__ import annotations

import torch

# The radix passes: (shift, bins) from the top bits (exponent and 3 mantissa bits) down.
_RADIX = ((20, 1 << 11), (10, 1 << 10), (0, 1 << 10))


def choose_tokens(logits: torch.Tensor, temperature: list[float], top_k: list[int], top_p: list[float],
                  uniforms: torch.Tensor) -> list[int]:
    """One token per row of `logits` [rows, vocab]. temperature 0 is greedy; top_k 0 and top_p 1.0
    are off; uniforms [rows] in [0, 1) (ignored for greedy rows)."""
    logits = logits.float()  # (bf16 logits under autocast: argmax and softmax are slow there)
    out = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    greedy = [i for i, t in enumerate(temperature) if t <= 0]
    if greedy:
        rows = torch.tensor(greedy, device=logits.device)
        out[rows] = logits[rows].argmax(dim=-1)
    sampling = [i for i, t in enumerate(temperature) if t > 0]
    if sampling:
        rows = torch.tensor(sampling, device=logits.device)
        scores = logits[rows]
        temps = torch.tensor([temperature[i] for i in sampling], device=logits.device)
        if any(temperature[i] != 1.0 for i in sampling):
            scores = scores / temps[:, None]
        ks = [top_k[i] for i in sampling]
        if any(ks):
            scores = _top_k(scores, ks)
        probs = torch.softmax(scores, dim=-1)
        nucleus = [j for j, i in enumerate(sampling) if top_p[i] < 1.0]
        if nucleus:
            at = torch.tensor(nucleus, device=logits.device)
            probs[at] = _top_p(probs[at], torch.tensor([top_p[sampling[j]] for j in nucleus], device=logits.device))
        cdf = probs.cumsum_(dim=-1)
        u = (1 - uniforms[rows].to(cdf.device)[:, None]) * cdf[:, -1:]
        out[rows] = torch.searchsorted(cdf, u).clamp_(max=cdf.shape[1] - 1).squeeze(1)
    return out.tolist()


def _top_k(scores: torch.Tensor, ks: list[int]) -> torch.Tensor:
    k_max = min(max(ks), scores.shape[-1])
    kth = scores.topk(k_max, dim=-1).values
    index = torch.tensor([min(k, k_max) - 1 if k else k_max - 1 for k in ks], device=scores.device)
    threshold = kth.gather(1, index[:, None])
    threshold[torch.tensor([k == 0 for k in ks], device=scores.device)] = -float("inf")
    return scores.masked_fill(scores < threshold, -float("inf"))


def _top_p(probs: torch.Tensor, ps: torch.Tensor) -> torch.Tensor:
    """Zero all but each row's nucleus: the tokens at or above the highest probability whose tokens
    still hold `p` of the mass (rows with p >= 1 keep everything)."""
    rows = probs.shape[0]
    probs = probs.float().contiguous()
    bits = probs.view(torch.int32)  # softmax output is >= 0: its bits order as its values
    target = ps[:, None].to(probs.dtype)
    above = torch.zeros(rows, 1, dtype=probs.dtype, device=probs.device)  # mass above the bits fixed so far
    prefix = None  # the threshold's bits fixed so far, [rows, 1]
    high = None  # each token's bits above the current pass's digit
    for shift, bins in _RADIX:
        digit = (bits >> shift) & (bins - 1) if shift + 11 < 32 else bits >> shift
        if prefix is not None:  # tokens outside the prefix's range go to a bin of their own, past the end
            digit = torch.where(high == prefix, digit, bins)
        hist = torch.zeros(rows, bins + 1, dtype=probs.dtype, device=probs.device)
        hist.scatter_add_(1, digit.long(), probs)
        hist = hist[:, :bins]
        at_or_above = hist.flip(1).cumsum(1).flip(1) + above
        # The highest digit whose tokens, with everything above it, still hold p (mass is
        # non-increasing in the digit; digit 0 holds everything left).
        chosen = ((at_or_above >= target).sum(1, keepdim=True) - 1).clamp_(min=0)
        above = at_or_above.gather(1, chosen) - hist.gather(1, chosen)
        chosen = chosen.to(torch.int32)
        prefix = chosen if prefix is None else (prefix << 10) | chosen
        high = bits >> shift
    threshold = prefix.view(torch.float32)
    threshold = torch.where(ps[:, None] >= 1.0, torch.zeros_like(threshold), threshold)
    return probs * (probs >= threshold)
