"""Next-token choice for a batch whose rows each have their own temperature, top-k, top-p and random stream, in a few tensor operations for the whole batch.

Greedy rows take the most likely token. Sampling rows are scaled by their temperature, cut to
their top-k (ties at the k-th value kept, as transformers' TopKLogitsWarper does) and to their top-p
nucleus, then drawn by inverting the cumulative distribution with one uniform each (models/text.py's
_SampleByCdf, the same draw generate_batch makes), in vocabulary order.

Rows with a top-k draw among their k best tokens alone: `topk` gives them, and a distribution over k
tokens is kept in vocabulary order, so the draw is the one a whole-vocabulary pass would make (the
tokens outside add nothing to the cumulative mass). A whole-vocabulary pass of four operations cost
as much for a row as its `topk`.

Other rows draw from the whole vocabulary without its running sum: the mass of each block of
BLOCK tokens is summed (a reduction reads the probabilities once, where `cumsum` walks each row one
token at a time, 4 ms for 128 rows of GPT-2's 50k vocabulary), the block holding the uniform's share
is found among the blocks' running sums, and only that block's tokens are summed one by one.

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
# Tokens per block of the two-level draw: the blocks' running sums and one block's are short walks.
BLOCK = 1024
# A top-k above this draws from the whole vocabulary (topk's cost grows with k).
CANDIDATES_UP_TO = 1024


def choose_tokens(logits: torch.Tensor, temperature: list[float], top_k: list[int], top_p: list[float],
                  uniforms: torch.Tensor) -> list[int]:
    """One token per row of `logits` [rows, vocab]. temperature 0 is greedy; top_k 0 and top_p 1.0
    are off; uniforms [rows] in [0, 1) (ignored for greedy rows)."""
    logits = logits.float()  # (bf16 logits under autocast: argmax and softmax are slow there)
    n, vocab = logits.shape
    out = [0] * n
    greedy = [i for i in range(n) if temperature[i] <= 0]
    few = [i for i in range(n) if temperature[i] > 0 and 0 < top_k[i] <= min(CANDIDATES_UP_TO, vocab)]
    few_rows = set(few)
    many = [i for i in range(n) if temperature[i] > 0 and i not in few_rows]
    if greedy:
        _put(out, greedy, _rows(logits, greedy).argmax(dim=-1))
    if few:
        tied, tokens = _draw_among_top_k(_rows(logits, few), [temperature[i] for i in few], [top_k[i] for i in few],
                                         [top_p[i] for i in few], uniforms[few])
        _put(out, [few[j] for j in range(len(few)) if not tied[j]], tokens[~tied])
        many += [few[j] for j in range(len(few)) if tied[j]]  # ties at the k-th value: the whole vocabulary
    if many:
        many.sort()
        scores = _rows(logits, many)
        temps = [temperature[i] for i in many]
        if any(t != 1.0 for t in temps):
            scores = scores / torch.tensor(temps, device=logits.device)[:, None]
        ks = [top_k[i] for i in many]
        if any(ks):
            scores = _top_k(scores, ks)
        probs = torch.softmax(scores, dim=-1)
        nucleus = [j for j, i in enumerate(many) if top_p[i] < 1.0]
        if nucleus:
            probs = _nucleus(probs, nucleus, [top_p[many[j]] for j in nucleus])
        _put(out, many, _draw(probs, uniforms[many]))
    return out


def _rows(t: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """t's rows `rows` (t itself when that is all of them, in order: no copy)."""
    if rows == list(range(t.shape[0])):
        return t
    return t[torch.tensor(rows, device=t.device)]


def _nucleus(probs: torch.Tensor, rows: list[int], ps: list[float]) -> torch.Tensor:
    """probs with rows `rows` cut to their top-p nucleus."""
    cut = torch.tensor(ps, device=probs.device)
    if len(rows) == probs.shape[0]:
        return _top_p(probs, cut)
    at = torch.tensor(rows, device=probs.device)
    probs[at] = _top_p(probs[at], cut)
    return probs


def _put(out: list[int], rows: list[int], tokens: torch.Tensor) -> None:
    for i, token in zip(rows, tokens.tolist()):
        out[i] = token


def _draw(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Each row's token by inverting its cumulative distribution at (1 - u) of its mass: the first
    token whose running sum reaches it, which has a probability above zero. probs [rows, vocab] >= 0
    (unnormalized is fine); returns [rows]."""
    probs = probs.contiguous()
    rows, vocab = probs.shape
    blocks = -(-vocab // BLOCK)
    full = vocab // BLOCK
    sums = probs.as_strided((rows, full, BLOCK), (vocab, BLOCK, 1)).sum(-1)
    if blocks > full:  # the last, shorter block
        sums = torch.cat([sums, probs[:, full * BLOCK:].sum(-1, keepdim=True)], dim=1)
    running = sums.cumsum(dim=1)
    target = (1 - uniforms.to(probs.device)[:, None]) * running[:, -1:]  # in (0, mass]
    block = torch.searchsorted(running, target).clamp_(max=blocks - 1)
    # Within the block: what of the target is left past the blocks before it, kept inside
    # (0, the block's mass] against float rounding, so the token found has a probability above zero.
    inside = torch.arange(BLOCK, device=probs.device) + block * BLOCK
    weights = probs.gather(1, inside.clamp(max=vocab - 1)) * (inside < vocab)
    local = weights.cumsum(dim=1)
    left = target - (running.gather(1, block) - sums.gather(1, block))
    left = torch.minimum(left, local[:, -1:]).clamp_(min=torch.finfo(probs.dtype).tiny)
    return block.squeeze(1) * BLOCK + torch.searchsorted(local, left).clamp_(max=BLOCK - 1).squeeze(1)


def _draw_among_top_k(logits: torch.Tensor, temperature: list[float], ks: list[int], ps: list[float],
                      uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(tied [rows] bool, tokens [rows]) for rows that keep their top_k tokens: each row's draw among
    its k best after its temperature and top-p, in vocabulary order. A row whose k-th best value is
    tied with the next keeps more than k tokens (transformers keeps ties): it is marked tied and
    its token left for the whole-vocabulary draw."""
    dev = logits.device
    k_max = max(ks)
    values, index = logits.topk(min(k_max + 1, logits.shape[1]), dim=-1)  # one more, to see ties
    k = torch.tensor(ks, device=dev)
    cols = torch.arange(values.shape[1], device=dev)
    # Ties as the reference sees them: after the temperature (two neighbouring floats can meet there).
    scores = values / torch.tensor(temperature, device=dev)[:, None]
    kth = scores.gather(1, (k - 1)[:, None])
    after = scores.gather(1, k.clamp(max=values.shape[1] - 1)[:, None])
    tied = ((after == kth) & (k < values.shape[1])[:, None]).squeeze(1)
    scores = scores.masked_fill(cols >= k[:, None], -float("inf"))
    probs = torch.softmax(scores, dim=-1)
    nucleus = [j for j, p in enumerate(ps) if p < 1.0]
    if nucleus:
        probs = _nucleus(probs, nucleus, [ps[j] for j in nucleus])
    # Back to vocabulary order (the draw's order); the tokens past each row's k have no mass.
    order = index.masked_fill(cols >= k[:, None], logits.shape[1]).argsort(dim=-1)
    probs, index = probs.gather(1, order), index.gather(1, order)
    running = probs.cumsum(dim=1)
    target = (1 - uniforms.to(dev)[:, None]) * running[:, -1:]
    at = torch.searchsorted(running, target).clamp_(max=values.shape[1] - 1)
    return tied, index.gather(1, at).squeeze(1)
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
    for shift, bins in _RADIX:
        width = bins.bit_length() - 1
        digit = bits >> shift
        if prefix is not None:
            # The next bits of the tokens within the prefix's range. Those above it go to a bin of
            # their own, past the end (their mass is in `above`); those below it, to digit 0, which
            # holds everything left anyway.
            digit = digit.sub_(prefix << width).clamp_(0, bins)
        hist = torch.zeros(rows, bins + 1, dtype=probs.dtype, device=probs.device)
        hist.scatter_add_(1, digit.long(), probs)
        hist = hist[:, :bins]
        at_or_above = hist.flip(1).cumsum(1).flip(1) + above
        # The highest digit whose tokens, with everything above it, still hold p (mass is
        # non-increasing in the digit; digit 0 holds everything left).
        chosen = ((at_or_above >= target).sum(1, keepdim=True) - 1).clamp_(min=0)
        above = at_or_above.gather(1, chosen) - hist.gather(1, chosen)
        chosen = chosen.to(torch.int32)
        prefix = chosen if prefix is None else (prefix << width) | chosen
    threshold = prefix.view(torch.float32)
    threshold = torch.where(ps[:, None] >= 1.0, torch.zeros_like(threshold), threshold)
    return probs * (probs >= threshold)
