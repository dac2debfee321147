"""Text generation with the built-in tiny GPT-2: tokenizer, seeds, n, greedy, stop strings, limits, batching."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

import models.text as text_module
from models.builtin import EOS, build_builtin, byte_level_tokenizer
from models.text import GenerationParams, PromptTooLong, TextModel, generate_batch, load_text_model

TINY = "builtin:tiny-gpt2"


# -- the CPU's dtype path ----------------------------------------------------------------------
# On CPU, generate_batch runs a call of 16 sequences or more under bf16 autocast when
# models.text.cpu_native_bf16() says the CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX, from
# /proc/cpuinfo), else in fp32. Left to the
# host, this file would test a different dtype on different machines, and the tests that compare
# texts exactly across batch shapes or cache layouts fail on every bf16 CPU: bf16 rounds a padded
# batch differently from a prompt alone, a near-tie between two tokens flips, and the texts part.
# So the path is never the host's: every test here runs in fp32 unless it asks for `cpu_path`, which
# runs it once per path (bf16 autocast works on any CPU, emulated where there is no hardware for it,
# so both paths are tested on every machine).

@pytest.fixture(autouse=True)
def _fp32_unless_asked(monkeypatch):
    """Pin the fp32 path, whatever this CPU has: the default for every test in this file."""
    monkeypatch.setattr(text_module, "cpu_native_bf16", lambda: False)


@pytest.fixture(params=["fp32", "bf16"])
def cpu_path(request, monkeypatch) -> str:
    """Run the test under each CPU path: behaviour that must hold in whichever dtype generates."""
    monkeypatch.setattr(text_module, "cpu_native_bf16", lambda: request.param == "bf16")
    return request.param


@pytest.fixture(scope="module")
def tiny() -> TextModel:
    return load_text_model(TINY, "builtin")


def texts(result: dict) -> list[str]:
    return [c["text"] for c in result["choices"]]


def greedy(max_new_tokens: int = 24, **kw) -> GenerationParams:
    return GenerationParams(max_new_tokens=max_new_tokens, temperature=0, **kw)


# -- tokenizer and loading ---------------------------------------------------------------------

@pytest.mark.parametrize("text", ["hello", "héllo wörld", "你好，世界", "emoji 🚀 and \x00 nul\n", " lead"])
def test_byte_level_tokenizer_round_trips_utf8(text):
    tok = byte_level_tokenizer()
    ids = tok(text)["input_ids"]
    assert ids == list(text.encode("utf-8"))
    assert tok.decode(ids) == text


def test_tokenizer_has_one_special_token_after_the_bytes():
    tok = byte_level_tokenizer()
    assert len(tok) == 257
    assert tok.eos_token == EOS and tok.eos_token_id == 256 and tok.pad_token_id == 256
    assert tok.padding_side == "left"


def test_builtin_weights_are_the_same_on_every_build():
    a, _ = build_builtin(TINY)
    b, _ = build_builtin(TINY)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), name
    with pytest.raises(KeyError):
        build_builtin("builtin:nope")


def test_building_a_builtin_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_builtin(TINY)
    assert torch.equal(torch.rand(3), expected)


def test_load_builtin(tiny):
    assert tiny.max_positions == 1024
    assert tiny.device.type == "cpu"
    assert not tiny.model.training
    assert tiny.tokenizer.padding_side == "left"


def test_load_local_directory(tmp_path, cpu_path):
    tok = byte_level_tokenizer()
    config = GPT2Config(vocab_size=len(tok), n_layer=1, n_head=2, n_embd=32, n_positions=64,
                        bos_token_id=256, eos_token_id=256, pad_token_id=256)
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "m", safe_serialization=True)
    tok.save_pretrained(tmp_path / "m")
    tm = load_text_model("m", "local", path=tmp_path / "m")
    assert tm.max_positions == 64
    [result] = generate_batch(tm, ["ab"], greedy(4))
    assert result["prompt_tokens"] == 2 and len(result["choices"]) == 1


# -- sampling ----------------------------------------------------------------------------------

def test_same_seed_same_text_and_different_seed_different_text(tiny, cpu_path):
    params = GenerationParams(max_new_tokens=16, temperature=1.0, seed=1)
    [a] = generate_batch(tiny, ["Once upon a time"], params)
    [b] = generate_batch(tiny, ["Once upon a time"], params)
    [c] = generate_batch(tiny, ["Once upon a time"], GenerationParams(max_new_tokens=16, seed=2))
    assert texts(a) == texts(b)
    assert texts(a) != texts(c)


def test_generation_does_not_disturb_the_global_rng(tiny, cpu_path):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    generate_batch(tiny, ["x"], GenerationParams(max_new_tokens=4, seed=9))
    assert torch.equal(torch.rand(3), expected)


def test_n_choices(tiny, cpu_path):
    [result] = generate_batch(tiny, ["abc"], GenerationParams(max_new_tokens=8, n=3, seed=4))
    assert [c["index"] for c in result["choices"]] == [0, 1, 2]
    assert len(set(texts(result))) > 1
    assert all(c["finish_reason"] in ("length", "stop") for c in result["choices"])
    assert result["prompt_tokens"] == 3
    assert 0 < result["completion_tokens"] <= 3 * 8


def test_sampling_parameters_are_accepted(tiny, cpu_path):
    params = GenerationParams(max_new_tokens=8, temperature=0.7, top_p=0.9, top_k=20, seed=3)
    [a] = generate_batch(tiny, ["abc"], params)
    [b] = generate_batch(tiny, ["abc"], params)
    assert texts(a) == texts(b) and len(a["choices"]) == 1


def test_temperature_zero_is_deterministic_regardless_of_seed(varied, cpu_path):
    [a] = generate_batch(varied, ["Hello"], greedy(seed=1))
    [b] = generate_batch(varied, ["Hello"], greedy(seed=99))
    assert texts(a) == texts(b)
    assert a["choices"][0]["finish_reason"] == "length"
    assert a["completion_tokens"] == 24


def test_temperature_zero_with_several_choices(varied, cpu_path):
    [a] = generate_batch(varied, ["Hello"], greedy())
    [c] = generate_batch(varied, ["Hello"], greedy(n=2))
    assert texts(c) == texts(a) * 2


# -- stop strings, limits and progress ---------------------------------------------------------

def _fresh_ascii_char(text: str, start: int = 3, avoid: str = "") -> tuple[int, str]:
    """The first printable ASCII character at index >= start that does not occur before it
    (nor in `avoid`)."""
    for i in range(start, len(text)):
        ch = text[i]
        if ch.isascii() and ch.isprintable() and ch not in text[:i] and ch not in avoid:
            return i, ch
    pytest.fail(f"no usable stop character in {text!r}")


def test_stop_string_cuts_the_text_and_ends_generation_early(varied, cpu_path):
    [full] = generate_batch(varied, ["Hi"], greedy(24))
    text = full["choices"][0]["text"]
    cut, stop = _fresh_ascii_char(text)
    steps = []
    [result] = generate_batch(varied, ["Hi"], greedy(24, stop=("never-there", stop)),
                              on_step=lambda step, total: steps.append(step))
    choice = result["choices"][0]
    assert choice["text"] == text[:cut]
    assert choice["finish_reason"] == "stop"
    assert stop not in choice["text"]
    assert max(steps[:-1]) < 24  # generation itself stopped, not only the returned text


def test_stop_string_ends_only_its_own_row(varied, cpu_path):
    prompts = ["Hi", "A much longer prompt, with more tokens in it"]
    full = generate_batch(varied, prompts, greedy(24))
    text0, text1 = (r["choices"][0]["text"] for r in full)
    cut, stop = _fresh_ascii_char(text0, avoid=text1)
    result = generate_batch(varied, prompts, greedy(24, stop=(stop,)))
    assert result[0]["choices"][0]["text"] == text0[:cut]
    assert result[0]["choices"][0]["finish_reason"] == "stop"
    assert result[1]["choices"][0]["text"] == text1
    assert result[1]["choices"][0]["finish_reason"] == "length"


def test_completion_tokens_never_exceed_the_tokens_generated(varied):
    # fp32 (the file's default): the premise below is a fact about this model's fp32 text.
    [full] = generate_batch(varied, ["Hi"], greedy(24))
    text = full["choices"][0]["text"]
    first_bad = text.index("\ufffd")  # this model's greedy output has invalid UTF-8 bytes early on
    cut, stop = _fresh_ascii_char(text, start=first_bad + 1)
    steps = []
    [result] = generate_batch(varied, ["Hi"], greedy(24, stop=(stop,)),
                              on_step=lambda step, total: steps.append(step))
    generated = max(steps[:-1])
    assert result["choices"][0]["finish_reason"] == "stop"
    assert result["completion_tokens"] <= generated


def test_prompt_too_long_for_the_context(tiny, cpu_path):
    with pytest.raises(PromptTooLong) as exc:
        generate_batch(tiny, ["a" * 1023], greedy(2))
    assert "1024" in str(exc.value)
    [ok] = generate_batch(tiny, ["a" * 1022], greedy(2))  # exactly fills the context
    assert ok["prompt_tokens"] == 1022 and ok["completion_tokens"] == 2


def test_prompt_too_long_counts_the_longest_prompt_of_a_batch(tiny):
    with pytest.raises(PromptTooLong):
        generate_batch(tiny, ["short", "b" * 1020], greedy(8))


def test_on_step_sees_increasing_steps_and_ends_at_the_total(tiny, cpu_path):
    calls = []
    generate_batch(tiny, ["abc"], greedy(6), on_step=lambda step, total: calls.append((step, total)))
    steps = [s for s, _ in calls]
    assert steps[0] >= 0 and steps == sorted(steps)
    assert len(set(steps)) >= 6
    assert steps[-1] == 6
    assert {t for _, t in calls} == {6}


def test_on_step_that_raises_stops_generation(tiny, cpu_path):
    class Stop(Exception):
        pass

    seen = []

    def on_step(step, total):
        seen.append(step)
        if step >= 3:
            raise Stop()

    with pytest.raises(Stop):
        generate_batch(tiny, ["abc"], greedy(50), on_step=on_step)
    assert seen[-1] == 3 and max(seen) == 3
    assert seen == sorted(seen)


# -- batching ----------------------------------------------------------------------------------

def test_batch_gives_each_prompt_the_text_it_gets_alone(varied):
    # Exactness is the point, so fp32 (the file's default). Under bf16 the same holds only up to
    # rounding: the test after this one.
    prompts = ["Hi", "A much longer prompt, with more tokens in it"]
    alone = [generate_batch(varied, [p], greedy(24))[0] for p in prompts]
    assert texts(alone[0]) != texts(alone[1])
    together = generate_batch(varied, prompts, greedy(24))
    for single, batched in zip(alone, together):
        assert texts(batched) == texts(single)
        assert batched["prompt_tokens"] == single["prompt_tokens"]
    assert [r["prompt_tokens"] for r in together] == [2, len(prompts[1])]


def _step_logits(tm: TextModel, prompts: list[str], steps: int) -> torch.Tensor:
    """Greedy-generate `steps` tokens; return each row's next-token logits at every step, (B, steps, V)."""
    seen = []
    hook = tm.model.lm_head.register_forward_hook(lambda _m, _i, out: seen.append(out[:, -1].float()))
    try:
        generate_batch(tm, prompts, greedy(steps))
    finally:
        hook.remove()
    return torch.stack(seen, dim=1)


# How far a prompt's logits in a left-padded batch may be from its logits alone: fp32 rounding (seen:
# 4e-5 on logits of about 13), bf16 rounding (seen: 0.08, one bf16 step at that size, 0.0625). Reading
# the padding as tokens, or shifting positions, moves them by about the logits' size (seen: 14).
BATCH_TOLERANCE = {"fp32": dict(atol=1e-3, rtol=1e-4), "bf16": dict(atol=0.25, rtol=0.02)}


def test_batch_gives_each_prompt_its_logits_alone_to_within_rounding(varied, cpu_path):
    """Batched and alone, each step's logits agree within the dtype's rounding, up to and including
    the first step where the chosen tokens differ (if any, under bf16: a near-tie that rounded the
    other way). After that the two runs feed different tokens and are not comparable."""
    prompts = ["Hi", "A much longer prompt, with more tokens in it"]
    steps = 24
    together = _step_logits(varied, prompts, steps)
    for row, prompt in enumerate(prompts):
        alone = _step_logits(varied, [prompt], steps)[0]
        batched = together[row]
        parted = (alone.argmax(-1) != batched.argmax(-1)).nonzero()
        last = int(parted[0]) if len(parted) else steps - 1
        if cpu_path == "fp32":
            assert not len(parted), f"fp32 texts part at step {last}"
        torch.testing.assert_close(batched[:last + 1], alone[:last + 1], **BATCH_TOLERANCE[cpu_path])


def test_batch_with_n_keeps_choices_with_their_prompt(tiny, cpu_path):
    prompts = ["Hi", "A much longer prompt"]
    together = generate_batch(tiny, prompts, GenerationParams(max_new_tokens=8, n=2, seed=11))
    assert len(together) == 2
    assert [[c["index"] for c in r["choices"]] for r in together] == [[0, 1], [0, 1]]
    assert [r["prompt_tokens"] for r in together] == [2, len(prompts[1])]
    assert all(0 < r["completion_tokens"] <= 16 for r in together)


# -- sampling and threads ----------------------------------------------------------------------

def test_sampling_draws_from_the_softmax_and_never_a_masked_token():
    from models.text import _SampleByCdf

    logits = torch.tensor([0.0, 1.0, 2.0, -float("inf"), 0.5])  # one token masked off (top-k, say)
    scores = logits.expand(40_000, -1).clone()
    torch.manual_seed(0)
    picked = _SampleByCdf()(None, scores)
    assert torch.all(torch.isinf(picked).sum(dim=1) == logits.numel() - 1)  # one choice left per row
    counts = torch.bincount(picked.argmax(dim=1), minlength=logits.numel()).float() / scores.shape[0]
    assert counts[3] == 0
    assert torch.allclose(counts, torch.softmax(logits, dim=0), atol=0.01)


@pytest.mark.parametrize("fail", [False, True])
def test_small_generation_runs_on_one_thread_and_restores_the_count(tiny, fail, cpu_path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen = []

    def on_step(step, total):
        seen.append(torch.get_num_threads())
        if fail:
            raise RuntimeError("canceled")

    try:
        if fail:
            with pytest.raises(RuntimeError):
                generate_batch(tiny, ["abc"], GenerationParams(max_new_tokens=4, seed=1), on_step=on_step)
        else:
            generate_batch(tiny, ["abc"], GenerationParams(max_new_tokens=4, seed=1), on_step=on_step)
        during = seen if fail else seen[:-1]  # the last call reports the end, after generate returned
        assert during and set(during) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# -- CPU speed-ups: fused activation, static KV cache, bf16 where the CPU has it -----------------

def test_loading_swaps_gpt2s_python_gelu_for_the_faster_form_with_the_same_values(tiny):
    from transformers.activations import GELUTanh, NewGELUActivation

    from models.activations import TanhGELU

    acts = [m for m in tiny.model.modules() if isinstance(m, (GELUTanh, NewGELUActivation, TanhGELU))]
    assert acts and all(type(m) is TanhGELU for m in acts)
    x = torch.linspace(-12, 12, 4001)
    before = x.clone()
    want = NewGELUActivation()(x.double())
    with torch.no_grad():  # the sigmoid form, in place
        assert torch.allclose(TanhGELU()(x).double(), want, atol=1e-6, rtol=1e-5)
    # With a gradient to keep: torch's kernel, and the gradient flows.
    xg = x.clone().requires_grad_()
    out = TanhGELU()(xg)
    assert torch.allclose(out.double(), want, atol=1e-6, rtol=1e-5)
    out.sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()
    # bf16 (autocast's output) keeps torch's kernel, which computes in fp32 inside.
    assert torch.allclose(TanhGELU()(x.bfloat16()).double(), want, atol=0.05, rtol=0.01)
    assert torch.equal(x, before)  # the input is never written (a bitwise check, not a float comparison)


def test_big_steps_take_the_static_cache_and_decode_the_same_text(varied, monkeypatch):
    # Exact text across two cache layouts: fp32 (the file's default), as for batching above.
    import models.text as text

    prompts = ["a", "a longer prompt, padded less", "mid length"]  # left padding in play
    assert text._cache_implementation(varied, len(prompts)) is None  # a tiny model's steps are small
    dynamic = generate_batch(varied, prompts, greedy(16))
    monkeypatch.setattr(text, "_SMALL_STEP_FLOPS", 0)
    assert text._cache_implementation(varied, len(prompts)) == "static"
    assert generate_batch(varied, prompts, greedy(16)) == dynamic


def test_cpus_with_native_bf16_generate_big_batches_under_bf16_autocast(tiny, monkeypatch):
    import models.text as text

    dtypes = []
    hook = tiny.model.lm_head.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
    try:
        monkeypatch.setattr(text, "cpu_native_bf16", lambda: False)
        generate_batch(tiny, ["abc"], GenerationParams(max_new_tokens=2, seed=1))
        monkeypatch.setattr(text, "cpu_native_bf16", lambda: True)
        # A small call stays in fp32 (casting the weights every step would cost more than it saves)...
        generate_batch(tiny, ["abc"], GenerationParams(max_new_tokens=2, seed=1))
        small = dtypes[-1]
        # ... a batch of enough sequences runs under bf16 autocast.
        prompts = ["abc", "de"] * (text._CPU_AUTOCAST_MIN_SEQUENCES // 2)
        result = generate_batch(tiny, prompts, GenerationParams(max_new_tokens=2, seed=1))
    finally:
        hook.remove()
    assert dtypes[0] == torch.float32 and small == torch.float32 and dtypes[-1] == torch.bfloat16
    assert [r["completion_tokens"] for r in result] == [2] * len(prompts)


def test_sequences_per_call_keeps_the_kv_cache_within_budget(monkeypatch):
    from models import text

    tm = text.load_text_model("builtin:tiny-gpt2", "builtin")
    cfg = tm.model.config
    per_token = text.kv_bytes_per_token(tm)
    assert per_token == 2 * cfg.n_layer * cfg.n_embd * 4  # keys and values, every layer, fp32
    assert text.sequences_per_call(tm, 100, 64) == 64
    monkeypatch.setattr(text, "KV_CACHE_BUDGET_BYTES", per_token * 100 * 10)
    assert text.sequences_per_call(tm, 100, 64) == 10
    assert text.sequences_per_call(tm, 10_000, 64) == 1  # never fewer than one
