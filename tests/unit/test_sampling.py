"""The batched sampler's shortcuts draw what a whole-vocabulary inversion of the cumulative distribution draws: top-k rows among their k best tokens, other rows block by block."""

import torch
from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from models import sampling
from models.sampling import _draw, choose_tokens


def whole_vocabulary(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, u: float) -> int:
    """The reference draw, as generate_batch makes it: transformers' temperature, top-k (ties kept)
    and top-p warpers, then models/text._SampleByCdf's first token whose running sum reaches
    (1 - u) of the mass, in vocabulary order (in float64 here)."""
    scores = TemperatureLogitsWarper(temperature)(None, logits.double()[None])
    if top_k:
        scores = TopKLogitsWarper(top_k)(None, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(None, scores)
    cdf = torch.softmax(scores[0], -1).cumsum(0)
    return int(torch.searchsorted(cdf, (1 - u) * cdf[-1:]).clamp(max=len(cdf) - 1))


def test_top_k_rows_draw_among_their_k_best_what_the_whole_vocabulary_draws():
    torch.manual_seed(0)
    vocab = 3000
    # (A top-k over CANDIDATES_UP_TO takes the whole-vocabulary path.)
    settings = [(1.0, 5, 1.0), (0.7, 50, 1.0), (1.3, 40, 0.6), (1.0, 1, 1.0), (0.9, 300, 0.9),
                (1.0, sampling.CANDIDATES_UP_TO + 500, 0.8)] * 8
    logits = torch.randn(len(settings), vocab) * 2
    uniforms = torch.rand(len(settings))
    uniforms[:3] = torch.tensor([0.0, 0.999999, 0.5])  # both ends of the draw
    got = choose_tokens(logits, *map(list, zip(*settings)), uniforms)
    for row, (t, k, p) in enumerate(settings):
        assert got[row] == whole_vocabulary(logits[row], t, k, p, float(uniforms[row])), (row, t, k, p)


def test_a_top_k_row_tied_at_its_kth_value_keeps_every_tied_token():
    # Tokens 2, 5 and 7 tie for second place: top_k 2 keeps all three (transformers keeps ties),
    # so the draw is among four tokens, and a uniform near 0 takes the last of them in vocabulary order.
    logits = torch.full((1, 10), -5.0)
    logits[0, [2, 5, 7]] = 1.0
    logits[0, 0] = 3.0
    kept = {choose_tokens(logits, [1.0], [2], [1.0], torch.tensor([u]))[0] for u in torch.linspace(0, 0.999, 200).tolist()}
    assert kept == {0, 2, 5, 7}
    assert choose_tokens(logits, [1.0], [2], [1.0], torch.tensor([0.0]))[0] == 7


def test_logits_that_the_temperature_makes_equal_tie_at_the_kth_value():
    # Two neighbouring floats that are equal once divided by 1.3, as the reference divides first:
    # top_k 1 then keeps both, and the draw takes either.
    logits = torch.tensor([[2.6885896, 2.6885898, 0.0, -1.0]])
    assert torch.equal(logits[0, 0] / 1.3, logits[0, 1] / 1.3)
    drawn = {choose_tokens(logits, [1.3], [1], [1.0], torch.tensor([u]))[0] for u in (0.01, 0.99)}
    assert drawn == {0, 1}


def test_the_blockwise_draw_matches_the_running_sum_over_the_whole_vocabulary():
    torch.manual_seed(1)
    # A vocabulary of GPT-2's size (not a multiple of the block), one shorter than a block, and rows
    # whose mass sits in a few tokens with zeros between them.
    for vocab in (50257, 700, 2 * sampling.BLOCK):
        probs = torch.softmax(torch.randn(6, vocab) * 3, -1)
        probs[3:] *= torch.rand(3, vocab) < 0.002
        probs[3, -1] = 0.5  # the very last token holds mass
        uniforms = torch.cat([torch.tensor([0.0, 0.999999]), torch.rand(4)])
        got = _draw(probs, uniforms).tolist()
        cdf = probs.double().cumsum(-1)
        want = torch.searchsorted(cdf, (1 - uniforms.double())[:, None] * cdf[:, -1:]).squeeze(1).tolist()
        for row in range(6):
            assert probs[row, got[row]] > 0
            # The same token, but where the draw lands within float rounding of a token's edge.
            if got[row] != want[row]:
                edge = cdf[row, min(got[row], want[row])] / cdf[row, -1]
                assert abs(edge - (1 - uniforms[row])) < 1e-5


def test_a_draw_never_lands_on_a_token_without_mass():
    torch.manual_seed(2)
    probs = torch.zeros(64, 50257)
    probs[:, torch.randint(0, 50257, (5,))] = torch.rand(64, 5)
    for uniforms in (torch.zeros(64), torch.full((64,), 0.9999999), torch.rand(64)):
        assert (probs.gather(1, _draw(probs, uniforms)[:, None]) > 0).all()
