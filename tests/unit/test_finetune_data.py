"""Fine-tuning data: chat files checked with OpenAI's problem names, assistant-only loss masks, LoRA adapters served per row."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch

from core.errors import InvalidInput
from core.finetune_data import parse_finetune
from models.finetune import IGNORE, build_blocks, chat_segments, example_tokens, lm_loss


def chat(user: str = "Write an ad for tea", answer: str = "Calm in a cup.", **extra) -> dict:
    return {"messages": [{"role": "system", "content": "You write ads."}, {"role": "user", "content": user},
                         {"role": "assistant", "content": answer, **extra}]}


def jsonl(*objs) -> bytes:
    return "\n".join(json.dumps(o) for o in objs).encode()


def test_chat_files_are_read_with_weights():
    examples = parse_finetune(jsonl(*[chat(f"ad {i}") for i in range(9)], chat(weight=0)))
    assert len(examples) == 10 and examples[0]["line"] == 1
    assert [m["role"] for m in examples[0]["messages"]] == ["system", "user", "assistant"]
    assert examples[-1]["messages"][-1]["weight"] == 0 and examples[0]["messages"][-1]["weight"] == 1


@pytest.mark.parametrize("bad,name", [
    ({"messages": "hi"}, "missing_messages_list"),
    ({"conversation": []}, "missing_messages_list"),
    ({"messages": [{"role": "user", "content": "x", "mood": "happy"}]}, "message_unrecognized_key"),
    ({"messages": [{"role": "bot", "content": "x"}]}, "unrecognized_role"),
    ({"messages": [{"role": "user"}, {"role": "assistant", "content": "y"}]}, "missing_content"),
    ({"messages": [{"role": "user", "content": "x"}]}, "example_missing_assistant_message"),
    ({"messages": [{"content": "x"}]}, "message_missing_key"),
])
def test_each_chat_problem_has_openais_name_and_its_line(bad, name):
    with pytest.raises(InvalidInput) as exc:
        parse_finetune(jsonl(*[chat()] * 11, bad))
    assert exc.value.code == name and exc.value.param == "file"
    assert exc.value.message.startswith(f"line 12: {name}")
    assert exc.value.errors[0]["code"] == name


def test_the_first_problems_are_reported_together_and_ten_examples_are_needed():
    with pytest.raises(InvalidInput) as exc:
        parse_finetune(jsonl(*[{"messages": [{"role": "bot", "content": "x"}]}] * 7, *[chat()] * 5))
    assert [e["message"].split(":")[0] for e in exc.value.errors] == [f"line {n}" for n in range(1, 6)]
    with pytest.raises(InvalidInput) as few:
        parse_finetune(jsonl(*[chat()] * 9))
    assert few.value.code == "too_few_examples" and "9" in few.value.message


@pytest.fixture(scope="module")
def tokenizer():
    from models.builtin import build_builtin

    return build_builtin("builtin:tiny-gpt2")[1]


def test_only_assistant_turns_of_weight_one_are_trained(tokenizer):
    messages = [{"role": "system", "content": "You write ads."}, {"role": "user", "content": "Tea?"},
                {"role": "assistant", "content": "Calm in a cup.", "weight": 0},
                {"role": "user", "content": "Coffee?"}, {"role": "assistant", "content": "Wake up happy.", "weight": 1}]
    pieces = chat_segments(tokenizer, messages)
    trained = [text for text, on in pieces if on]
    assert len(trained) == 1 and trained[0].startswith("Wake up happy.")
    assert "<|im_end|>" in trained[0]  # the end of the turn is learned: the model learns to stop
    ids, labels = example_tokens(tokenizer, {"messages": messages})
    assert len(ids) == len(labels)
    kept = tokenizer.decode([i for i, y in zip(ids, labels) if y != IGNORE])
    assert kept.startswith("Wake up happy.") and "Calm" not in kept and "Coffee" not in kept


def test_blocks_carry_labels_and_a_fully_masked_batch_has_zero_loss(tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    examples = [{"text": "plain text trains every token"}, chat()]
    blocks = build_blocks(tokenizer, examples, 16)
    assert blocks.shape[1:] == (2, 16)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_embd=16, n_head=2, n_positions=32))
    masked = blocks.clone()
    masked[:, 1] = IGNORE
    loss = lm_loss(model, masked)
    assert loss.item() == 0.0 and loss.requires_grad
    assert torch.isfinite(lm_loss(model, blocks)) and lm_loss(model, blocks).item() > 0


def _gpt2(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=64, n_layer=2, n_embd=32, n_head=4, n_positions=64)).eval()


def _trained_adapter(base, r: int, seed: int) -> tuple[Path, torch.nn.Module]:
    from models.lora import save_adapter, with_lora

    copy = _gpt2()
    copy.load_state_dict(base.state_dict())
    peft_model = with_lora(copy, {"r": r, "alpha": 16, "dropout": 0.0})
    torch.manual_seed(seed)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    directory = Path(tempfile.mkdtemp())
    save_adapter(peft_model, directory)
    return directory, peft_model.eval()


def test_adapters_of_one_base_serve_a_mixed_batch_as_peft_computes_each():
    from models.lora import AdapterSet, merge_adapter

    base = _gpt2()
    x = torch.randint(0, 64, (3, 10))
    with torch.no_grad():
        plain = base(input_ids=x).logits
    (dir_a, peft_a), (dir_b, peft_b) = _trained_adapter(base, 4, 1), _trained_adapter(base, 8, 2)
    assert sorted(p.name for p in dir_a.iterdir() if p.suffix != ".md") == ["adapter_config.json",
                                                                            "adapter_model.safetensors"]
    adapters = AdapterSet(base, capacity=4)
    adapters.add("a", dir_a)
    adapters.add("b", dir_b)
    with torch.no_grad():
        with adapters.rows(["a", None, "b"]):
            mixed = base(input_ids=x).logits
        want_a, want_b = peft_a(input_ids=x).logits, peft_b(input_ids=x).logits
        after = base(input_ids=x).logits
    torch.testing.assert_close(mixed[0], want_a[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(mixed[1], plain[1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(mixed[2], want_b[2], rtol=1e-4, atol=1e-4)
    assert (want_a[0] - plain[0]).abs().max() > 1e-2  # the adapter does change the output
    torch.testing.assert_close(after, plain)  # outside rows(), the base alone
    merged = _gpt2()
    merged.load_state_dict(_gpt2().state_dict())
    merge_adapter(merged, dir_a)
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=x).logits, want_a, rtol=1e-4, atol=1e-4)


def test_the_least_recently_used_adapter_leaves_a_full_set():
    from models.lora import AdapterSet

    base = _gpt2()
    dirs = [_trained_adapter(base, 4, seed)[0] for seed in (1, 2, 3)]
    adapters = AdapterSet(base, capacity=2)
    adapters.add("a", dirs[0])
    adapters.add("b", dirs[1])
    adapters.touch("a")
    adapters.add("c", dirs[2])
    assert "b" not in adapters and "a" in adapters and "c" in adapters


def test_lora_is_the_default_above_fifty_million_parameters_and_can_be_chosen_either_way():
    from tasks.text_finetune import lora_settings

    assert lora_settings(None, 10_000_000) is None
    assert lora_settings(None, 124_000_000) == {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": None}
    assert lora_settings({"enabled": False}, 124_000_000) is None
    assert lora_settings({}, 1_000)["r"] == 8
    assert lora_settings({"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["c_attn"]}, 1_000)["r"] == 4


def test_lora_true_and_false_are_shorthands_and_errors_name_the_field():
    from core.schemas import FinetuneHyperparameters
    from core.shapes import check

    assert check(FinetuneHyperparameters, {"lora": True})["lora"]["enabled"] is True
    assert check(FinetuneHyperparameters, {"lora": False})["lora"]["enabled"] is False
    assert check(FinetuneHyperparameters, {})["lora"] is None
    with pytest.raises(InvalidInput) as exc:
        check(FinetuneHyperparameters, {"lora": {"r": 0}}, "hyperparameters")
    assert exc.value.param == "hyperparameters.lora.r" and len(exc.value.errors) == 1


@pytest.mark.parametrize("warmup,total", [(10, 100), (0, 5), (3, 3)])
def test_the_learning_rate_schedule_is_transformers_linear_warmup(warmup, total):
    from transformers import get_linear_schedule_with_warmup

    from models.finetune import linear_schedule_with_warmup

    ours, theirs = [], []
    for make, out in ((linear_schedule_with_warmup, ours), (get_linear_schedule_with_warmup, theirs)):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        schedule = make(optimizer, warmup, total)
        for _ in range(total + 2):
            out.append(schedule.get_last_lr()[0])
            optimizer.step()
            schedule.step()
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_adapters_of_one_base_share_a_batch_list_and_other_models_do_not():
    from core.batches import batch_list_key

    def job(model: str) -> dict:
        return {"model": model, "max_new_tokens": 8, "temperature": 0.0, "top_p": 1.0, "top_k": 0, "n": 1,
                "stop": [], "prompt": "hi"}
    group = "adapters-of:builtin:tiny-gpt2"
    a = batch_list_key("ann", "text.chat", job("ft:builtin:tiny-gpt2:a:1"), group)
    b = batch_list_key("ann", "text.chat", job("ft:builtin:tiny-gpt2:b:2"), group)
    assert a == b
    assert batch_list_key("bob", "text.chat", job("ft:builtin:tiny-gpt2:a:1"), group) != a  # owner-scoped
    assert batch_list_key("ann", "text.chat", job("ft:builtin:tiny-gpt2:a:1")) != \
        batch_list_key("ann", "text.chat", job("ft:builtin:tiny-gpt2:b:2"))  # full fine-tunes: one model each
