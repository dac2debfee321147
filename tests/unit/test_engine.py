"""The continuous-batching engine: requests join and leave at any step with their own settings, texts match generate_batch, seeds hold whatever shares the batch, the cache stays bounded."""

from __future__ import annotations

import gc
import time
import weakref

import pytest
import torch
from transformers import TopKLogitsWarper, TopPLogitsWarper

import models.engine as engine_module
import models.text as text_module
from models.engine import Engine, Request, RequestTooLarge, engine_for
from models.sampling import _top_k, choose_tokens
from models.text import GenerationParams, PromptTooLong, TextModel, generate_batch

TINY = "builtin:tiny-gpt2"


@pytest.fixture(autouse=True)
def _fp32(monkeypatch):
    """generate_batch (the reference) in fp32 on every CPU, as the engine runs on a CPU."""
    monkeypatch.setattr(text_module, "cpu_native_bf16", lambda: False)


PROMPTS = ["Hello", "A much longer prompt, long enough to move every running row to the right", "x",
           "The quick brown fox jumps"]
SETTINGS = [GenerationParams(max_new_tokens=12, temperature=0),
            GenerationParams(max_new_tokens=30, temperature=0.8, top_k=20, seed=3),
            GenerationParams(max_new_tokens=7, temperature=1.0, top_p=0.9, n=3, seed=5),
            GenerationParams(max_new_tokens=20, temperature=0.7, seed=11)]


def request(tm: TextModel, prompt: str, params: GenerationParams, **kw) -> Request:
    return Request(tm.tokenizer(prompt)["input_ids"], params, seed=params.seed, **kw)


def alone(tm: TextModel, prompt: str, params: GenerationParams) -> dict:
    return generate_batch(tm, [prompt], params, seeds=[params.seed])[0]


def test_requests_that_join_at_different_steps_get_the_texts_they_get_alone(varied):
    want = [alone(varied, p, s) for p, s in zip(PROMPTS, SETTINGS)]
    engine = Engine(varied)
    reqs = [request(varied, p, s) for p, s in zip(PROMPTS, SETTINGS)]
    engine.add(reqs[0])
    engine.step()
    engine.step()
    engine.add(reqs[1])  # a longer prompt: the running row moves right in the cache
    engine.step()
    engine.add(reqs[2])
    engine.add(reqs[3])
    for _ in range(100):
        if engine.idle:
            break
        engine.step()
    assert engine.idle
    assert [r.result for r in reqs] == want


def test_a_seed_gives_the_same_text_whatever_shares_the_batch(varied):
    params = GenerationParams(max_new_tokens=16, temperature=0.9, top_p=0.95, seed=42)
    [solo] = Engine(varied).run([request(varied, "a seeded prompt", params)])
    crowd = [request(varied, f"other prompt number {i}" * (i + 1), GenerationParams(
        max_new_tokens=4 + 3 * i, temperature=0.5 + 0.1 * i, top_k=5 * i, seed=i)) for i in range(6)]
    mine = request(varied, "a seeded prompt", params)
    engine = Engine(varied)
    engine.add(crowd[0])
    engine.step()
    for other in crowd[1:]:
        engine.add(other)
    engine.add(mine)
    engine.run(crowd + [mine])
    assert mine.result == solo.result


def test_prompts_of_very_different_lengths_prefill_in_groups_and_get_their_texts_alone(varied, monkeypatch):
    import models.engine as engine_module
    prompts = ["Hi", "word " * 60, "ok", "word " * 58]
    params = [GenerationParams(max_new_tokens=6, temperature=0.8, seed=i) for i in range(len(prompts))]
    want = [alone(varied, p, s) for p, s in zip(prompts, params)]
    groups = []
    by_length = engine_module._by_length
    monkeypatch.setattr(engine_module, "_by_length", lambda batch: groups.append(by_length(batch)) or groups[-1])
    reqs = [request(varied, p, s) for p, s in zip(prompts, params)]
    Engine(varied).run(reqs)  # all four are admitted in the first step
    assert [r.result for r in reqs] == want
    # The two long prompts share a pass and the two short ones another: no 60-token padding.
    assert [sorted(len(r.prompt_ids) for r in g) for g in groups[0]] == [
        sorted(len(r.prompt_ids) for r in reqs[1::2]), sorted(len(r.prompt_ids) for r in reqs[::2])]


def test_rows_reordered_and_read_in_windows_get_the_texts_they_get_alone(varied, monkeypatch):
    import models.engine as engine_module
    monkeypatch.setattr(engine_module, "WINDOW_ROWS", 2)
    monkeypatch.setattr(engine_module, "WINDOW_MERGE_BYTES", 0)  # every window its own call
    monkeypatch.setattr(engine_module, "REORDER_EVERY_STEPS", 1)
    # Long and short prompts alternate, so rows in arrival order make every window read from the
    # long prompts' first column, until the engine puts them in order.
    prompts = [("word " * 40 if i % 2 else "hi") + str(i) for i in range(8)]
    params = [GenerationParams(max_new_tokens=5 + i, temperature=0.7 * (i % 2), seed=i) for i in range(8)]
    want = [alone(varied, p, s) for p, s in zip(prompts, params)]
    engine = Engine(varied)
    reqs = [request(varied, p, s) for p, s in zip(prompts, params)]
    permuted = []
    permute = engine.cache.permute
    monkeypatch.setattr(engine.cache, "permute", lambda order: permuted.append(order.tolist()) or permute(order))
    engine.run(reqs)
    assert permuted  # the rows were put in order of their first column at least once
    assert [r.result for r in reqs] == want


def test_windows_of_near_equal_first_columns_are_read_in_one_call(monkeypatch):
    import models.engine as engine_module
    monkeypatch.setattr(engine_module, "WINDOW_ROWS", 2)
    windows = engine_module._windows_of
    starts = [10, 11, 12, 12, 40, 41, 9, 9]
    assert windows(starts) == [(0, 2, 10), (2, 4, 12), (4, 6, 40), (6, 8, 9)]
    # Merging the second window into the first reads 2 x 2 more cells; the third would add 2 x 30,
    # and the last, joining the third, 2 x 31.
    assert windows(starts, 3) == [(0, 2, 10), (2, 4, 12), (4, 6, 40), (6, 8, 9)]
    assert windows(starts, 4) == [(0, 4, 10), (4, 6, 40), (6, 8, 9)]
    # With 60 the third joins too, and then the last (6 x 1 more, left of all of them).
    assert windows(starts, 60) == [(0, 8, 9)]
    assert engine_module._window_area(starts, 50, 4) == 4 * 40 + 2 * 10 + 2 * 41


def test_a_step_reads_merged_windows_and_rows_get_the_texts_they_get_alone(varied, monkeypatch):
    import models.engine as engine_module
    import models.engine_attention as attention
    monkeypatch.setattr(engine_module, "WINDOW_ROWS", 2)
    # Near-equal lengths: one window of six rows (apart, each would start at its own column).
    prompts = ["word " * 30 + "z" * i for i in range(6)]
    params = [GenerationParams(max_new_tokens=4, temperature=0.7 * (i % 2), seed=i) for i in range(6)]
    want = [alone(varied, p, s) for p, s in zip(prompts, params)]
    seen = []
    row_windows = attention.row_windows
    monkeypatch.setattr(engine_module, "row_windows", lambda w: seen.append(w) or row_windows(w))
    reqs = [request(varied, p, s) for p, s in zip(prompts, params)]
    Engine(varied).run(reqs)
    decoding = [w for w in seen if w is not None]
    assert decoding and all(len(w) == 1 and w[0][:2] == (0, 6) for w in decoding)
    assert [r.result for r in reqs] == want


def test_a_step_hands_new_requests_first_tokens_over_before_its_decoding_pass(varied):
    engine = Engine(varied)
    streamed: list[tuple[str, int]] = []  # (request, tokens it had) at each on_tokens
    first = request(varied, "Hello", GenerationParams(max_new_tokens=6, temperature=0),
                    on_tokens=lambda r, t: streamed.append(("first", r.generated)))
    second = request(varied, "Hi", GenerationParams(max_new_tokens=6, temperature=0),
                     on_tokens=lambda r, t: streamed.append(("second", r.generated)))
    calls: list[list[tuple[str, int]]] = []

    def prefilled():
        calls.append(list(streamed))
        assert engine.rows and all(len(row.tokens) == 1 for row in engine.rows if row.request is second)

    engine.add(first)
    engine.step(on_prefilled=prefilled)
    # Called once the first token was handed over, before the decoding pass drew the second.
    assert calls == [[("first", 1)]] and streamed == [("first", 1), ("first", 2)]
    engine.step(on_prefilled=prefilled)  # nothing new joined: not called
    assert len(calls) == 1
    engine.add(second)
    engine.step(on_prefilled=prefilled)
    assert len(calls) == 2 and calls[1][-1] == ("second", 1) and ("first", 4) not in calls[1]
    engine.run([first, second])
    assert first.result["completion_tokens"] == second.result["completion_tokens"] == 6


def test_rows_leave_as_they_finish_and_an_idle_engine_frees_its_cache_soon_after(varied, monkeypatch):
    monkeypatch.setattr(engine_module, "KEEP_IDLE_CACHE_FROM_BYTES", 0)  # this tiny cache too
    monkeypatch.setattr(engine_module, "IDLE_RELEASE_S", 0.05)
    engine = Engine(varied)
    short = request(varied, "short", GenerationParams(max_new_tokens=2, temperature=0))
    long = request(varied, "long", GenerationParams(max_new_tokens=10, temperature=0))
    engine.add(short)
    engine.add(long)
    finished = engine.step()  # prefill (each row's first token), then a decoding step (the second)
    assert finished == [short] and short.result["completion_tokens"] == 2
    assert [row.request for row in engine.rows] == [long]
    engine.run([long])
    assert long.result["completion_tokens"] == 10
    assert engine.idle and engine.reserved == 0
    deadline = time.monotonic() + 30
    while engine.cache.allocated != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.cache.allocated == (0, 0) and engine.mask is None


def test_a_run_soon_after_another_writes_into_the_buffers_it_left(varied, monkeypatch):
    # A campaign's next chunk reuses the cache of the last (fresh buffers are faulted in and
    # zeroed page by page), and what the last run left in it changes no text.
    monkeypatch.setattr(engine_module, "KEEP_IDLE_CACHE_FROM_BYTES", 0)  # this tiny cache too
    monkeypatch.setattr(engine_module, "IDLE_RELEASE_S", 60.0)
    engine = Engine(varied)
    engine.run([request(varied, p, s) for p, s in zip(PROMPTS, SETTINGS)])
    buffers = [layer.keys.data_ptr() for layer in engine.cache.layers]
    assert engine.idle and engine.cache.allocated != (0, 0) and engine.cache.shape.columns == 0
    prompts, settings = PROMPTS[::-1], SETTINGS[1:] + SETTINGS[:1]
    reqs = engine.run([request(varied, p, s) for p, s in zip(prompts, settings)])
    assert [layer.keys.data_ptr() for layer in engine.cache.layers] == buffers
    assert [r.result for r in reqs] == [alone(varied, p, s) for p, s in zip(prompts, settings)]


def test_an_idle_engine_frees_a_small_cache_at_once(varied, monkeypatch):
    monkeypatch.setattr(engine_module, "IDLE_RELEASE_S", 60.0)
    engine = Engine(varied)
    engine.run([request(varied, "Hello", GenerationParams(max_new_tokens=3, temperature=0))])
    assert engine.cache.allocated == (0, 0) and engine.mask is None
    # A run whose requests finish in the step that admitted them goes idle too.
    engine.run([request(varied, "Hi", GenerationParams(max_new_tokens=2, temperature=0))])
    assert engine.cache.allocated == (0, 0) and engine.mask is None and engine.cache.shape.columns == 0


def test_a_finished_request_is_freed_without_a_garbage_collection(varied):
    """A worker's heap holds ~490k long-lived objects, so full collections are rare: a request kept
    alive by a reference cycle (its rows pointing back at it) held its tokens and generator state
    until one ran (bench/rss_growth.py)."""
    engine = Engine(varied)
    done = request(varied, "Hello", GenerationParams(max_new_tokens=5, temperature=0.8, n=2, seed=1))
    gone = weakref.ref(done)
    gc.collect()
    gc.disable()
    try:
        engine.run([done])
        assert done.result["choices"]
        del done
        assert gone() is None
    finally:
        gc.enable()


def test_a_canceled_request_leaves_at_the_next_step_and_the_others_finish(varied):
    engine = Engine(varied)
    keep = request(varied, "keep", GenerationParams(max_new_tokens=8, temperature=0))
    drop = request(varied, "drop", GenerationParams(max_new_tokens=50, temperature=0))
    engine.add(keep)
    engine.add(drop)
    engine.step()
    engine.cancel(drop)
    engine.step()
    assert all(row.request is keep for row in engine.rows)
    engine.run([keep])
    assert drop.result is None and keep.result == alone(varied, "keep", keep.params)


def test_stop_strings_and_the_end_token_end_a_row(varied):
    params = GenerationParams(max_new_tokens=40, temperature=0)
    full = alone(varied, "The quick brown fox jumps", params)["choices"][0]["text"]
    stop = full[5:7]
    stopped = GenerationParams(max_new_tokens=40, temperature=0, stop=(stop,))
    [req] = Engine(varied).run([request(varied, "The quick brown fox jumps", stopped)])
    assert req.result["choices"][0] == {"index": 0, "text": full[:full.find(stop)], "finish_reason": "stop"}
    assert req.result == alone(varied, "The quick brown fox jumps", stopped)


def test_streamed_tokens_spell_each_choice(varied):
    seen: list[list[int]] = []
    params = GenerationParams(max_new_tokens=9, temperature=1.0, n=2, seed=7)
    req = request(varied, "stream me", params, on_tokens=lambda _r, tokens: seen.append(tokens))
    Engine(varied).run([req])
    assert len(seen) == 9
    for i, choice in enumerate(req.result["choices"]):
        # (a reply cut by max_tokens drops a trailing partial character)
        assert varied.tokenizer.decode([step[i] for step in seen]).rstrip("\ufffd") == choice["text"]


def test_the_cache_budget_queues_requests_and_refuses_one_that_never_fits(varied):
    per = (len(varied.tokenizer("aaaa")["input_ids"]) + 6)
    engine = Engine(varied, budget_bytes=per * 2 * text_module.kv_bytes_per_token(varied))
    reqs = [request(varied, "aaaa", GenerationParams(max_new_tokens=6, temperature=0)) for _ in range(3)]
    for r in reqs:
        engine.add(r)
    engine.step()
    assert len(engine.running) == 2 and len(engine.waiting) == 1  # the third waits for room
    engine.run(reqs)
    assert all(r.result["completion_tokens"] == 6 for r in reqs)
    with pytest.raises(RequestTooLarge):
        engine.add(request(varied, "aaaa", GenerationParams(max_new_tokens=6, temperature=1.0, n=3)))
    with pytest.raises(PromptTooLong):
        engine.add(request(varied, "a" * varied.max_positions, GenerationParams(max_new_tokens=6)))


def test_many_requests_keep_the_cache_within_its_caps(varied):
    engine = Engine(varied, max_rows=8)
    reqs = [request(varied, "p" * (1 + i % 9), GenerationParams(max_new_tokens=1 + i % 13, temperature=0.8, seed=i))
            for i in range(40)]
    for r in reqs:
        engine.add(r)
    peak = (0, 0)
    while not engine.idle:
        engine.step()
        assert len(engine.rows) <= 8
        peak = max(peak, engine.cache.allocated)
    assert peak[0] <= 8 and peak[1] <= varied.max_positions + 1
    assert all(r.result is not None for r in reqs)


@pytest.mark.parametrize("budget_rows", [None, 7])
def test_rows_admitted_over_several_steps_get_their_slots_in_one_growth(varied, monkeypatch, budget_rows):
    """A batch whose prompts take several prefill steps to admit grows the cache's row slots once,
    to every row admitted or waiting, not at each step (each growth zeroes and copies the buffers);
    never to more rows than the cache budget admits (a flood of waiting requests reserves nothing)."""
    import models.engine as engine_module
    monkeypatch.setattr(engine_module, "PREFILL_TOKENS_PER_STEP", 20)  # about 3 prompts a step
    reqs = [request(varied, f"prompt {i:02d}", GenerationParams(max_new_tokens=4, temperature=0.8, seed=i))
            for i in range(12)]
    budget = {} if budget_rows is None else {
        "budget_bytes": budget_rows * reqs[0].reserved_tokens * text_module.kv_bytes_per_token(varied)}
    engine = Engine(varied, max_rows=16, **budget)
    for r in reqs:
        engine.add(r)
    growths, have = [], (0, 0)
    while not engine.idle:
        engine.step()
        rows = engine.cache.allocated[0]
        if rows > have[0]:
            growths.append(rows)
        have = engine.cache.allocated
    # (8 is the fewest slots a growth makes)
    assert growths == [12 if budget_rows is None else max(budget_rows, 8)]
    assert all(r.result["completion_tokens"] == 4 for r in reqs)


def test_one_engine_per_loaded_model(varied):
    assert engine_for(varied) is engine_for(varied)


# -- the batched sampler ----------------------------------------------------------------------

def test_top_k_and_top_p_keep_the_tokens_transformers_keeps():
    torch.manual_seed(0)
    logits = torch.randn(6, 300) * 3
    for k in (1, 5, 40):
        want = TopKLogitsWarper(k)(None, logits.clone()) > -float("inf")
        assert torch.equal(_top_k(logits.clone(), [k] * 6) > -float("inf"), want)
    from models.sampling import _top_p
    probs = torch.softmax(logits, -1)
    for p in (0.3, 0.9, 0.99):
        want = TopPLogitsWarper(p)(None, logits.clone()) > -float("inf")
        kept = _top_p(probs, torch.full((6,), p)) > 0
        # The same nucleus, but for a token whose inclusion hangs on float rounding of the mass at p.
        differ = kept ^ want
        assert (differ.sum(-1) <= 1).all()
        for row in differ.any(-1).nonzero().flatten().tolist():
            assert abs(probs[row][kept[row]].sum() - p) < 0.01 or abs(probs[row][want[row]].sum() - p) < 0.01


def test_the_nucleus_is_the_smallest_set_of_most_likely_tokens_holding_top_p():
    from models.sampling import _top_p
    torch.manual_seed(1)
    # A flat distribution over a large vocabulary (a model with untrained weights), a peaked one,
    # and one with ties.
    logits = torch.stack([torch.randn(50257) * 0.3, torch.randn(50257) * 8,
                          torch.cat([torch.full((10,), 2.0), torch.randn(50247)])])
    probs = torch.softmax(logits, -1)
    for p in (0.2, 0.5, 0.95):
        kept = _top_p(probs, torch.full((3,), p)) > 0
        for row in range(3):
            mass = probs[row][kept[row]].sum(dtype=torch.float64)
            smallest = probs[row][kept[row]].min()
            assert mass >= p - 1e-5  # holds p ...
            assert mass - smallest < p + 1e-5  # ... and without its least likely token would not
            assert (probs[row][~kept[row]] <= smallest).all()  # and it is the most likely ones
    assert torch.equal(_top_p(probs, torch.ones(3)), probs)


def test_each_row_is_greedy_or_sampled_by_its_own_settings():
    logits = torch.tensor([[0.0, 5.0, 1.0], [0.0, 5.0, 1.0], [9.0, 0.0, 8.9]])
    # Row 0 is greedy, row 1 keeps only its best token (top_k 1), row 2 keeps tokens 0 and 2 (top_k 2)
    # and its uniform picks between them: a draw near 1 takes the first, near 0 the last.
    settings = ([0.0, 1.0, 1.0], [0, 1, 2], [1.0, 1.0, 1.0])
    assert choose_tokens(logits, *settings, torch.tensor([0.5, 0.5, 0.999])) == [1, 1, 0]
    assert choose_tokens(logits, *settings, torch.tensor([0.5, 0.5, 0.001])) == [1, 1, 2]


def test_a_request_of_more_rows_than_the_engine_runs_waits_to_run_alone(varied):
    engine = Engine(varied, max_rows=4)
    small = request(varied, "small", GenerationParams(max_new_tokens=6, temperature=0))
    wide = request(varied, "wide", GenerationParams(max_new_tokens=3, temperature=1.0, n=6, seed=1))
    engine.add(small)
    engine.add(wide)
    engine.step()
    assert wide in engine.waiting and len(engine.rows) == 1
    engine.run([small, wide])
    assert len(wide.result["choices"]) == 6 and wide.result == alone(varied, "wide", wide.params)


def test_tokens_the_models_generation_config_suppresses_are_never_written(varied):
    greedy = GenerationParams(max_new_tokens=6, temperature=0)
    [first] = Engine(varied).run([request(varied, "suppress", greedy)])
    banned = first._rows[0].tokens[0]  # the token greedy decoding writes first
    varied.model.generation_config.suppress_tokens = [banned]
    try:
        [again] = Engine(varied).run([request(varied, "suppress", greedy)])
        assert banned not in again._rows[0].tokens
        assert again.result == alone(varied, "suppress", greedy)  # as generate honours it
    finally:
        varied.model.generation_config.suppress_tokens = None
