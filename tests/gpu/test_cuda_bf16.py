"""On a GPU, every model path runs on CUDA under bf16 autocast, learns, and the platform's real
workers report it: text generation, fine-tuning, GAN and VAE training, sampling, images."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
import torch
from torch import nn

from models import image_data
from models.dcgan import DCGANConfig, generate, latent
from models.digit_score import label_fidelity
from models.finetune import FinetuneConfig, Trainer
from models.gan_training import GanTrainConfig, GanTrainer
from models.text import GenerationParams, generate_batch, load_text_model
from models.vae import VaeTrainer
from tests.harness import Platform, save_model_dir, wait_for

pytestmark = pytest.mark.gpu


@contextmanager
def output_dtypes(*modules: nn.Module):
    """The dtypes that every weight-bearing layer (linear, GPT-2's Conv1D, conv) put out meanwhile."""
    seen: set[torch.dtype] = set()
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
             for root in modules for m in root.modules()
             if getattr(m, "weight", None) is not None and m.weight.dim() >= 2 and not isinstance(m, nn.Embedding)]
    try:
        yield seen
    finally:
        for h in hooks:
            h.remove()


def test_text_generation_runs_on_cuda_in_bf16(tmp_path):
    tm = load_text_model("m", "local", "cuda", save_model_dir(tmp_path / "m", n_layer=2, n_embd=64))
    params = GenerationParams(max_new_tokens=12, temperature=0.8, top_p=0.95, top_k=0, n=2, seed=7, stop=())
    with output_dtypes(tm.model) as seen:
        out = generate_batch(tm, ["Hello", "A somewhat longer prompt"], params)
    assert seen == {torch.bfloat16}
    assert next(tm.model.parameters()).is_cuda
    # The test model never draws end-of-text, so every choice runs its full length.
    assert [r["completion_tokens"] for r in out] == [24, 24]
    assert all(len(c["text"]) > 0 for r in out for c in r["choices"])


def test_finetune_runs_on_cuda_in_bf16_keeps_fp32_weights_and_learns(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_layer=2, n_embd=64, n_head=4, n_positions=64)).cuda()
    # A repeating pattern: a model that learns at all gets its loss far below the untrained ln(64).
    ids = (torch.arange(32 * 32).view(32, 32) % 16) + 3
    blocks = torch.stack([ids, ids], dim=1)  # (N, 2, T): ids and labels, every token trained
    cfg = FinetuneConfig(epochs=1, max_steps=60, batch_size=8, learning_rate=3e-3, block_size=32, warmup_steps=2,
                         seed=1, eval_every=30, checkpoint_every=1000)
    trainer = Trainer(model, cfg, blocks, blocks[:8], torch.device("cuda"))
    losses, evals = [], []
    with output_dtypes(model) as seen:
        trainer.run(0, lambda _s, loss: losses.append(loss), lambda _s, v: evals.append(v), lambda _s: None)
    assert seen == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert losses[0] > 3.0 and evals[-1] < 0.5, (losses[0], evals)


def _image_cfg(**kw) -> GanTrainConfig:
    base = dict(net=DCGANConfig(32, 1, 32, 16, 16, 10), epochs=6, batch_size=32, lr=1e-3, beta1=0.5, seed=3,
                ema_decay=0.9, diffaugment="", r1_gamma=0.0, label_smoothing=0.1)
    return GanTrainConfig(**{**base, **kw})


@pytest.mark.parametrize("trainer_class,epochs", [(GanTrainer, 6), (VaeTrainer, 20)])
def test_conditional_image_training_runs_on_cuda_in_bf16_and_draws_the_asked_digit(trainer_class, epochs):
    data = image_data.digits(32)
    labels = torch.tensor([int(c) for c in data.labels])
    trainer = trainer_class(_image_cfg(epochs=epochs), data.images, "cuda", labels)
    losses = []
    with output_dtypes(*trainer.modules()) as seen:
        for epoch in range(trainer.cfg.epochs):
            trainer.run_epoch(epoch, lambda _s, m: losses.append(m))
    assert seen == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for m in trainer.modules() for p in m.parameters())
    assert all(torch.isfinite(torch.tensor(list(m.values()))).all() for m in losses)
    asked = torch.arange(1000) % 10
    with output_dtypes(trainer.sampler) as sampled:
        images = generate(trainer.sampler, latent(11, 1000, 32), asked)
    assert sampled == {torch.bfloat16} and images.dtype == torch.float32 and not images.is_cuda
    # Chance is 0.1; the CPU runs of the same recipe reach about 0.9.
    assert label_fidelity(images, asked) > 0.6


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    p = Platform(tmp_path_factory.mktemp("gpu"), s3=None)
    p.env.pop("AIGC_TORCH_THREADS")
    p.start_web()
    p.start_worker()
    yield p
    p.close()


def _running_events(api, job_id: str) -> list[dict]:
    events = api.get(f"/v1/jobs/{job_id}/events").json()["data"]
    return [e for e in events if e["type"] == "status" and e.get("status") == "running"]


def test_the_platforms_workers_run_every_kind_on_cuda_in_bf16(platform):
    api = platform.api(platform.create_key("gpu"))
    gen = api.submit({"model": "builtin:ad-writer", "prompt": "Product: trail shoes. Audience: runners. Ad:",
                      "max_new_tokens": 48, "temperature": 0.8, "seed": 1})
    # A LoRA adapter trained on chat data: the adapter path (peft) and the loss mask on CUDA.
    lines = "\n".join(json.dumps({"messages": [{"role": "user", "content": f"An ad for trail shoes, take {i}"},
                                               {"role": "assistant", "content": "Light trail shoes for runners "
                                                                                "who go far."}]}) for i in range(64))
    training_file = api.upload(lines.encode()).json()
    tune = api.submit({"base_model": "builtin:tiny-gpt2", "training_file": training_file["id"],
                       "hyperparameters": {"max_steps": 20, "batch_size": 8, "block_size": 32, "learning_rate": 1e-2,
                                           "warmup_steps": 2, "eval_every": 10, "checkpoint_every": 10, "seed": 1,
                                           "lora": {"r": 4}}},
                      kind="text.finetune")
    gan = api.submit({"dataset": "builtin:digits", "conditional": True, "image_size": 32, "nz": 32, "ngf": 16,
                      "ndf": 16, "batch_size": 32, "epochs": 6, "lr": 1e-3, "ema_decay": 0.9, "seed": 3},
                     kind="gan.train")
    jobs = {name: api.wait(job["id"], timeout_s=240) for name, job in
            [("generate", gen), ("finetune", tune), ("gan", gan)]}
    for name, job in jobs.items():
        assert job["status"] == "succeeded", (name, job["error"])
    assert jobs["generate"]["output"]["choices"][0]["text"].strip()
    assert jobs["finetune"]["output"]["method"] == "lora"
    adapter_chat = api.submit({"model": jobs["finetune"]["output"]["model"], "max_new_tokens": 16, "seed": 1,
                               "messages": [{"role": "user", "content": "An ad for trail shoes"}]}, kind="text.chat")
    jobs["adapter chat"] = api.wait(adapter_chat["id"], timeout_s=120)
    assert jobs["adapter chat"]["status"] == "succeeded", jobs["adapter chat"]["error"]

    # Chat, streamed through the OpenAI-compatible route, and images from a prompt.
    resp = api.post("/v1/chat/completions", json={"model": "builtin:ad-writer", "stream": True, "max_tokens": 32,
                                                  "messages": [{"role": "user", "content": "An ad for green tea"}]},
                    stream=True, timeout=120)
    assert resp.status_code == 200
    chunks = [line for line in resp.iter_lines() if line.startswith(b"data: {")]
    assert len(chunks) > 2
    images = api.post("/v1/images/generations", json={"model": jobs["gan"]["output"]["model"], "prompt": "a seven",
                                                       "n": 4, "response_format": "b64_json"}, timeout=120)
    assert images.status_code == 200, images.text
    assert len(images.json()["data"]) == 4

    for name, job in jobs.items():
        running = _running_events(api, job["id"])
        assert running, name
        assert {(e["device"], e["precision"]) for e in running} == {("cuda", "bf16")}, (name, running)
        assert running[0]["accelerator"]

    def gpu_memory_reported():
        text = api.get("/metrics").text
        return [line for line in text.splitlines()
                if line.startswith("aigc_gpu_memory_bytes{") and float(line.rsplit(" ", 1)[1]) > 0]
    assert wait_for(gpu_memory_reported, 30, "a worker's GPU memory in /metrics")


def test_adapters_serve_a_mixed_batch_on_cuda_in_bf16(tmp_path):
    from models.lora import AdapterSet, save_adapter, with_lora

    tm = load_text_model("m", "local", "cuda", save_model_dir(tmp_path / "m", n_layer=2, n_embd=64))
    adapters = AdapterSet(tm.model)
    for name in ("a", "b"):
        copy = load_text_model("m", "local", "cuda", tmp_path / "m").model
        peft_model = with_lora(copy, {"r": 4, "alpha": 8, "dropout": 0.0})
        for pname, p in peft_model.named_parameters():
            if "lora_B" in pname:
                torch.nn.init.normal_(p, std=0.2)
        save_adapter(peft_model, tmp_path / name)
        adapters.add(name, tmp_path / name)
    tm.adapters = adapters
    params = GenerationParams(max_new_tokens=8, temperature=0.0, top_p=1.0, top_k=0, n=1, seed=1, stop=())
    with output_dtypes(tm.model) as seen:
        out = generate_batch(tm, ["Hello", "Hello", "Hello"], params, adapters=["a", "b", None])
    assert seen == {torch.bfloat16}
    assert all(r["completion_tokens"] == 8 for r in out)
