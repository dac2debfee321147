"""models.text.generate_rows, the one batching helper of text.generate and campaigns, and GenerationParams.from_input."""

from __future__ import annotations

import pytest

from models.text import GenerationParams, PromptTooLong, StopCall, generate_batch, generate_rows


pytestmark = pytest.mark.usefixtures("pin_fp32")


def test_from_input_takes_checked_settings_and_an_overriding_seed():
    settings = {"max_new_tokens": 8, "temperature": 0.7, "top_p": 0.9, "top_k": 5, "n": 2, "seed": 3,
                "stop": ["\n"], "prompt": "ignored"}
    assert GenerationParams.from_input(settings) == GenerationParams(8, 0.7, 0.9, 5, 2, 3, ("\n",))
    assert GenerationParams.from_input(settings, seed=10).seed == 10
    assert GenerationParams.from_input({**settings, "seed": None}).seed == 0


def test_a_prompt_too_long_fails_alone_and_the_others_give_their_own_text(tiny):
    params = GenerationParams(max_new_tokens=4, n=2, seed=0)
    prompts = ["abc", "x" * 1100, "hello there"]
    results = generate_rows(tiny, prompts, params, seeds=[1, 2, 3])
    assert isinstance(results[1], PromptTooLong) and "exceeds the model's context" in str(results[1])
    # Each fitting prompt samples from its own seed: the text it gives alone.
    for i, seed in ((0, 1), (2, 3)):
        [alone] = generate_batch(tiny, [prompts[i]], params, seeds=[seed])
        assert results[i]["choices"] == alone["choices"]


def test_max_sequences_splits_the_prompts_into_calls_in_order(tiny):
    calls = []

    def on_step(call, done, total):
        if not calls or calls[-1] != call:
            calls.append(call)

    params = GenerationParams(max_new_tokens=2, n=2, seed=0)
    results = generate_rows(tiny, ["a", "bb", "ccc", "dddd", "e"], params, max_sequences=4, on_step=on_step)
    assert calls == [[0, 1], [2, 3], [4]]  # 2 sequences a prompt, 4 a call
    assert all(len(r["choices"]) == 2 for r in results)
    calls.clear()
    generate_rows(tiny, ["a", "bb", "ccc"], params, on_step=on_step)
    assert calls == [[0, 1, 2]]  # no limit: one call


def test_stop_call_abandons_only_its_call(tiny):
    def on_step(call, done, total):
        if 0 in call:
            raise StopCall("every job in the call was canceled")

    results = generate_rows(tiny, ["a", "b", "c"], GenerationParams(max_new_tokens=2, seed=0), max_sequences=2,
                            on_step=on_step)
    assert results[:2] == [None, None] and results[2]["choices"]


def test_no_prompts_no_calls(tiny):
    assert generate_rows(tiny, [], GenerationParams()) == []
