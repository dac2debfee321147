"""Packed projections (models/engine_matmul.py): the model's outputs up to bf16 (or fp32) rounding, every projection packed, the model untouched outside the block or with gradients on, a weight changed in place packed again; the engine steps on bf16 ones on a CPU with native bf16, on fp32 ones elsewhere."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import models.text as text_module
from models.engine import Engine, Request
from models.engine_matmul import PackedMatmuls
from models.text import GenerationParams


def _bf16_inner_product_runs() -> bool:
    """oneDNN multiplies bf16 on any x86 CPU with AVX-512 (natively with AVX-512 BF16 or AMX, the only
    CPUs the engine packs weights on); elsewhere it has no bf16 inner product at all."""
    try:
        w = torch.ops.mkldnn._reorder_linear_weight(torch.ones(4, 4, dtype=torch.bfloat16))
        torch.ops.mkldnn._linear_pointwise(torch.ones(1, 4, dtype=torch.bfloat16), w, None, "none", [], "")
        return True
    except RuntimeError:
        return False


needs_bf16 = pytest.mark.skipif(not _bf16_inner_product_runs(), reason="this CPU has no oneDNN bf16 inner product")
needs_onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch was built without oneDNN")


def tiny_llama() -> torch.nn.Module:
    config = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return LlamaForCausalLM(config).eval()


def logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        return model(ids).logits.float()


def close_in_bf16(got: torch.Tensor, want: torch.Tensor) -> bool:
    # bf16 keeps 8 bits of mantissa: the packed and the autocast products round their sums differently.
    return torch.allclose(got, want, atol=0.05 * want.abs().max().item(), rtol=0.05)


@needs_bf16
@pytest.mark.parametrize("model_of", [lambda varied: varied.model, lambda varied: tiny_llama()],
                         ids=["gpt2-conv1d", "llama-linear"])
def test_packed_projections_give_the_models_logits_up_to_bf16_rounding(varied, model_of):
    model = model_of(varied)
    ids = torch.tensor([[5, 17, 99, 3, 42, 8]])
    want = logits(model, ids)
    packed = PackedMatmuls(model)
    with packed.active():
        got = logits(model, ids)
    assert packed.modules and set(packed._packed) == set(packed.modules)  # every projection ran packed
    assert close_in_bf16(got, want)
    assert not torch.equal(got, torch.zeros_like(got))


@needs_bf16
def test_outside_the_block_or_with_gradients_the_model_is_its_own(varied):
    model = varied.model
    packed = PackedMatmuls(model)
    with packed.active():
        pass
    assert all("forward" not in m.__dict__ for m in packed.modules)
    with packed.active(), torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(torch.tensor([[1, 2, 3]]), labels=torch.tensor([[1, 2, 3]])).loss
    loss.backward()  # a training pass inside the block still reaches the fp32 weights
    assert all(m.weight.grad is not None for m in packed.modules)
    assert not packed._packed
    model.zero_grad(set_to_none=True)


@needs_bf16
def test_a_weight_changed_in_place_is_packed_again():
    model = tiny_llama()
    ids = torch.tensor([[5, 17, 99, 3]])
    packed = PackedMatmuls(model)
    with packed.active():
        before = logits(model, ids)
        with torch.no_grad():
            model.lm_head.weight.mul_(-1)  # an optimiser step or a merged adapter writes in place
        after = logits(model, ids)
    assert close_in_bf16(after, -before)


@needs_bf16
def test_the_engine_steps_on_packed_weights_where_the_cpu_has_native_bf16(varied, monkeypatch):
    monkeypatch.setattr(text_module, "cpu_native_bf16", lambda: True)
    prompt = varied.tokenizer("Hello")["input_ids"]
    # The tiny model's steps are far under 1e8 FLOPs: bound by per-op overheads, they stay fp32.
    small = Engine(varied)
    small.add(Request(prompt, GenerationParams(max_new_tokens=2, temperature=0)))
    small.step()
    assert small._cast is None and small._packed is None
    # A model the size of GPT-2 small (2.5e8 FLOPs a row): even one row runs in bf16 on packed weights.
    monkeypatch.setattr(text_module, "_SMALL_STEP_FLOPS", 0)
    engine = Engine(varied)
    one = Request(prompt, GenerationParams(max_new_tokens=6, temperature=0))
    engine.add(one)
    engine.step()
    assert engine._cast is not None and engine._packed is not None
    assert set(engine._packed._packed) == set(engine._packed.modules)
    for _ in range(20):
        if engine.idle:
            break
        engine.step()
    # (greedy on random weights may reach the end token early: how far it got depends on bf16 rounding)
    assert engine.idle and 1 <= one.result["completion_tokens"] <= 6
    assert engine._cast is None  # an idle engine leaves autocast; its packed weights stay for the next request
    assert all("forward" not in m.__dict__ for m in engine._packed.modules)


@needs_onednn
@pytest.mark.parametrize("model_of", [lambda varied: varied.model, lambda varied: tiny_llama()],
                         ids=["gpt2-conv1d", "llama-linear"])
def test_packed_fp32_projections_give_the_models_logits_up_to_fp32_rounding(varied, model_of):
    model = model_of(varied)
    ids = torch.tensor([[5, 17, 99, 3, 42, 8]])
    with torch.no_grad():
        want = model(ids).logits
    packed = PackedMatmuls(model, torch.float32)
    with packed.active(), torch.no_grad():
        got = model(ids).logits
    assert set(packed._packed) == set(packed.modules)
    assert all(p.weight.dtype == torch.float32 for p in packed._packed.values())
    # fp32 keeps 24 bits: only the order of the sums differs between oneDNN's product and MKL's.
    assert torch.allclose(got, want, atol=1e-4 * want.abs().max().item(), rtol=1e-4)
    assert not torch.equal(got, torch.zeros_like(got))


@needs_onednn
def test_the_engine_steps_on_packed_fp32_weights_where_the_cpu_has_no_native_bf16(varied, monkeypatch):
    monkeypatch.setattr(text_module, "cpu_native_bf16", lambda: False)
    prompt = varied.tokenizer("Hello")["input_ids"]
    small = Engine(varied)  # a tiny model's steps: the model as it is
    small.add(Request(prompt, GenerationParams(max_new_tokens=2, temperature=0)))
    small.step()
    assert small._pack is None and small._packed is None
    monkeypatch.setattr(text_module, "_SMALL_STEP_FLOPS", 0)  # as for GPT-2 small from one row
    engine = Engine(varied)
    runs = [Request(prompt, GenerationParams(max_new_tokens=6, temperature=0.9), seed=7) for _ in range(2)]
    engine.add(runs[0])
    engine.step()
    assert engine._cast is None and engine._pack == torch.float32  # no autocast: fp32 throughout
    assert engine._packed.dtype == torch.float32 and set(engine._packed._packed) == set(engine._packed.modules)
    engine.run(runs[:1])
    assert engine.idle and engine._pack is None and all("forward" not in m.__dict__ for m in engine._packed.modules)
    plain = Engine(varied)
    monkeypatch.setattr(text_module, "_SMALL_STEP_FLOPS", float("inf"))  # the same request, unpacked
    plain.run(runs[1:])
    assert plain._packed is None
    # the same seed samples the same text on packed and plain fp32 weights (sums ordered differently
    # round apart by 1e-6 of a logit: only a near-tie could split them, and a seeded draw has none here)
    assert runs[0].result["choices"][0]["text"] == runs[1].result["choices"][0]["text"]
    assert runs[0].result["completion_tokens"] >= 1


@needs_onednn
def test_fp32_products_of_many_rows_take_the_plain_product_and_few_rows_the_packed_one(varied, monkeypatch):
    import models.engine_matmul as engine_matmul

    model = varied.model
    monkeypatch.setattr(engine_matmul, "PLAIN_FP32_FROM_ROWS", 8)
    calls = []
    linear = torch.ops.mkldnn._linear_pointwise

    def counted(x, *args):
        calls.append(x.numel() // x.shape[-1])
        return linear(x, *args)

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", counted)
    packed = PackedMatmuls(model, torch.float32)
    short, long = torch.tensor([[5, 17, 99]]), torch.tensor([[5, 17, 99, 3, 42, 8, 1, 2, 7, 11]])
    with torch.no_grad():
        want_short, want_long = model(short).logits, model(long).logits
        with packed.active():
            got_long = model(long).logits  # 10 rows: past the line, every product plain
            assert calls == [] and not packed._packed
            got_short = model(short).logits  # 3 rows: packed
    assert calls and set(calls) == {3} and set(packed._packed) == set(packed.modules)
    # the model's own products (MKL may still round apart run to run with the memory's alignment)
    assert torch.allclose(got_long, want_long, atol=1e-5 * want_long.abs().max().item(), rtol=1e-5)
    assert torch.allclose(got_short, want_short, atol=1e-4 * want_short.abs().max().item(), rtol=1e-4)
