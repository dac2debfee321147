"""Next-token choice for a batch whose rows each have their own temperature, top-k, top-p and random stream, in a few tensor operations for the whole batch.

Greedy rows take the most likely token. Sampling rows are scaled by their temperature, cut to
their top-k (ties at the k-th value kept, as transformers' TopKLogitsWarper does) and to their top-p
nucleus, then drawn by inverting the cumulative distribution with one uniform each (models/text.py's
_SampleByCdf, the same draw generate_batch makes).

The nucleus is found without sorting the vocabulary: transformers' TopPLogitsWarper sorts every row
(4 ms a row of GPT-2's 50k vocabulary on a CPU core, a third of a 32-row decoding step), where a
bisection on the probability threshold takes a few passes over the batch. The kept set is the
same, the smallest set of most likely tokens whose mass reaches top_p, up to tokens within 2^-20 of
the threshold's probability.
"""

from __future__ import annotations

import torch

_BISECTIONS = 20


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
        ps = [top_p[i] for i in sampling]
        if any(p < 1.0 for p in ps):
            probs = _top_p(probs, torch.tensor(ps, device=logits.device))
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
    """Zero all but each row's nucleus: the tokens at or above the highest probability threshold
    whose tokens still hold `p` of the mass (rows with p >= 1 keep everything)."""
    lo = torch.zeros(probs.shape[0], 1, device=probs.device, dtype=probs.dtype)  # mass(>= lo) >= p holds
    hi = probs.max(dim=-1, keepdim=True).values  # the top token alone is always kept
    target = ps[:, None].to(probs.dtype)
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2
        enough = (probs * (probs >= mid)).sum(dim=-1, keepdim=True) >= target
        lo = torch.where(enough, mid, lo)
        hi = torch.where(enough, hi, mid)
    # The top token's probability itself may hold p already (hi never moved).
    keep_top = (probs.max(dim=-1, keepdim=True).values >= target)
    threshold = torch.where(keep_top, hi, lo)
    threshold[ps >= 1.0] = 0.0
    return probs * (probs >= threshold)
