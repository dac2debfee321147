"""Images from prompts through real workers: conditional DCGAN and VAE training, sampling by class or
prompt, and OpenAI's images.generate in strict mode."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import requests
import torch
from PIL import Image

openai = pytest.importorskip("openai")

# A conditional DCGAN that learns its labels in seconds: small nets, a brisk lr, a short EMA.
CONDITIONAL = {"dataset": "builtin:digits", "conditional": True, "image_size": 32, "nz": 32, "ngf": 16, "ndf": 16,
               "batch_size": 32, "epochs": 6, "lr": 1e-3, "ema_decay": 0.9, "seed": 3}
VAE = {"dataset": "builtin:digits", "architecture": "vae", "conditional": True, "image_size": 32, "nz": 16,
       "ngf": 16, "ndf": 16, "batch_size": 32, "epochs": 3, "seed": 3}


def _image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _as_tensor(images: list[Image.Image]) -> torch.Tensor:
    arrays = [np.asarray(img.convert("L"), dtype=np.float32) / 127.5 - 1 for img in images]
    return torch.tensor(np.stack(arrays)).unsqueeze(1)


@pytest.fixture(scope="module")
def conditional(alice):
    job = alice.submit(CONDITIONAL, kind="gan.train")
    done = alice.wait(job["id"], timeout_s=300)
    assert done["status"] == "succeeded", done["error"]
    return done


@pytest.fixture(scope="module")
def client(platform, alice):
    return openai.OpenAI(base_url=platform.web_url + "/v1", api_key=alice.key, max_retries=0, timeout=120,
                         _strict_response_validation=True)


def test_conditional_training_learns_the_labels_and_records_its_classes(alice, conditional):
    out = conditional["output"]
    assert out["model"] == f"gan:{conditional['id'][-8:]}" and out["architecture"] == "dcgan"
    assert out["conditional"] is True and out["classes"] == [str(i) for i in range(10)]
    # 100 samples of each digit, read back by the platform's classifier: chance is 0.1.
    assert out["quality"]["samples"] == 1000 and out["quality"]["label_fidelity"] > 0.3, out["quality"]
    grid = _image(alice.get(f"/v1/jobs/{conditional['id']}/artifacts/samples-epoch-006.png",
                            allow_redirects=True).content)
    assert grid.size == (8 * 64 + 9 * 2, 10 * 64 + 11 * 2)  # one row per class, 8 samples each
    model = next(m for m in alice.get("/v1/models").json()["data"] if m["id"] == out["model"])
    assert model["image"] == {"architecture": "dcgan", "conditional": True, "classes": out["classes"],
                              "image_size": 32, "channels": 1}
    # What an OpenAI client lists before chatting holds text models only; kind=gan the image ones.
    text_only = alice.get("/v1/models?kind=text").json()["data"]
    assert text_only and all(m["kind"] == "text" for m in text_only)
    assert out["model"] in [m["id"] for m in alice.get("/v1/models?kind=gan").json()["data"]]
    assert alice.get("/v1/models?kind=audio").status_code == 400


def test_images_generate_draws_the_digit_a_prompt_names(client, conditional):
    from models.digit_score import label_fidelity

    model = conditional["output"]["model"]
    resp = client.images.generate(model=model, prompt="a handwritten seven", n=16, size="256x256",
                                  response_format="b64_json", extra_body={"seed": 5})
    assert resp.created > 0 and resp.size == "256x256" and resp.output_format == "png" and len(resp.data) == 16
    assert {d.revised_prompt for d in resp.data} == {"7"} and all(d.url is None for d in resp.data)
    images = [_image(base64.b64decode(d.b64_json)) for d in resp.data]
    assert {img.size for img in images} == {(256, 256)}
    sevens = label_fidelity(_as_tensor(images), torch.full((16,), 7))
    assert sevens > 0.3, sevens  # chance: 0.1

    # The same class by number or in Chinese, with the same seed: the same images.
    for prompt in ("7", "七", "写一个七"):
        again = client.images.generate(model=model, prompt=prompt, n=16, size="256x256", response_format="b64_json",
                                       extra_body={"seed": 5})
        assert [d.b64_json for d in again.data] == [d.b64_json for d in resp.data], prompt
    other = client.images.generate(model=model, prompt="three", n=2, response_format="b64_json",
                                   extra_body={"seed": 5})
    assert other.data[0].revised_prompt == "3" and other.size == "32x32"  # the model's own size by default


def test_images_generate_links_are_presigned_and_fetchable_without_a_key(client, conditional):
    resp = client.images.generate(model=conditional["output"]["model"], prompt="2", n=2)
    assert all(d.b64_json is None and d.url for d in resp.data)
    fetched = [requests.get(d.url, timeout=30) for d in resp.data]
    assert [f.status_code for f in fetched] == [200, 200]
    assert _image(fetched[0].content).size == (32, 32)


def test_images_generate_refuses_what_it_cannot_do_naming_the_field(client, alice, bob, conditional, platform):
    model = conditional["output"]["model"]
    cases = [({"prompt": "a cat"}, "prompt", "'0', '1', '2'"),
             ({"prompt": "7", "size": "1024x1024"}, "size", "256x256"),
             ({"prompt": "7", "style": "vivid"}, "style", "not supported"),
             ({"prompt": "7", "n": 65}, "n", "<= 64"),
             ({"prompt": "7", "model": "gan:nope"}, "model", "Unknown image model")]
    for extra, param, words in cases:
        body = {"model": model, **extra}
        with pytest.raises(openai.BadRequestError) as caught:
            client.images.generate(**body)
        err = caught.value.body
        assert err["param"] == param and words in err["message"], (extra, err)
    theirs = requests.post(platform.web_url + "/v1/images/generations", json={"model": model, "prompt": "7"},
                           headers={"Authorization": f"Bearer {bob.key}"}, timeout=60)
    assert theirs.status_code == 400 and theirs.json()["error"]["code"] == "model_not_found"


def test_sampling_jobs_take_a_class_or_spread_over_every_class(alice, conditional):
    model = conditional["output"]["model"]
    named = alice.wait(alice.submit({"model": model, "class": "nine", "n": 4, "seed": 1,
                                     "interpolate": {"to_seed": 2, "steps": 4}}, kind="gan.sample")["id"])
    assert named["status"] == "succeeded", named["error"]
    assert named["output"]["class"] == "9" and named["output"]["class_index"] == 9
    every = alice.wait(alice.submit({"model": model, "n": 20, "seed": 1}, kind="gan.sample")["id"])
    assert every["status"] == "succeeded" and "class" not in every["output"]
    grid = _image(alice.get(f"/v1/jobs/{every['id']}/artifacts/grid.png", allow_redirects=True).content)
    assert grid.size == (10 * 64 + 11 * 2, 2 * 64 + 3 * 2)  # a column per class
    assert "label_fidelity" in every["output"]["quality"]
    assert not any(a["name"].startswith("image-") for a in every["artifacts"])  # only when asked for


def test_an_unconditional_model_cannot_be_asked_for_a_class(alice):
    job = alice.submit({"dataset": "builtin:digits", "nz": 8, "ngf": 4, "ndf": 4, "batch_size": 32,
                        "max_images": 64, "epochs": 1}, kind="gan.train")
    done = alice.wait(job["id"], timeout_s=120)
    assert done["status"] == "succeeded", done["error"]
    resp = alice.post("/v1/images/generations", json={"model": done["output"]["model"], "prompt": "7"})
    assert resp.status_code == 400 and "not conditional" in resp.json()["error"]["message"]
    assert resp.json()["error"]["param"] == "prompt"


def test_a_conditional_vae_trains_with_its_own_curves_and_samples_by_prompt(alice, client):
    job = alice.submit(VAE, kind="gan.train")
    done = alice.wait(job["id"], timeout_s=300)
    assert done["status"] == "succeeded", done["error"]
    out = done["output"]
    assert out["model"] == f"vae:{job['id'][-8:]}" and out["architecture"] == "vae" and out["sampler"] == "decoder"
    assert out["loss_rec"] > 0 and out["loss_kl"] >= 0 and "label_fidelity" in out["quality"]
    events = alice.get(f"/v1/jobs/{job['id']}/events").json()["data"]
    assert {e["name"] for e in events if e["type"] == "metric"} == {"loss_rec", "loss_kl"}
    resp = client.images.generate(model=out["model"], prompt="eight", n=3, response_format="b64_json")
    assert [d.revised_prompt for d in resp.data] == ["8"] * 3
    refused = alice.post("/v1/jobs", json={"kind": "gan.train", "input": {**VAE, "diffaugment": "color"}})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "input.diffaugment"


def test_queued_image_requests_are_drawn_together_yet_each_gets_its_own_images(make_platform):
    """Jobs queued for one model run as one batch (one generator pass, one encoding pass): each keeps
    the images its seed gives alone; a job whose model went away while it waited fails, by itself."""
    p = make_platform("images-batched")
    p.start_web()
    api = p.api(p.create_key("batcher"))
    tiny = {**CONDITIONAL, "nz": 8, "ngf": 8, "ndf": 8, "epochs": 1, "max_images": 256}
    trainer = p.start_worker()
    models = []
    for seed in (1, 2):
        done = api.wait(api.submit({**tiny, "seed": seed}, kind="gan.train")["id"], timeout_s=120)
        assert done["status"] == "succeeded", done["error"]
        models.append(done["output"]["model"])
    trainer.stop()

    def ask(model, seed):
        return api.submit({"model": model, "prompt": "7", "n": 4, "seed": seed, "size": "256x256",
                           "image_files": True}, kind="gan.sample")["id"]

    def images(job_id):
        return [api.get(f"/v1/jobs/{job_id}/artifacts/image-{i:03d}.png", allow_redirects=True).content
                for i in range(1, 5)]
    queued = [ask(models[0], seed) for seed in (5, 6, 7)]
    orphan = ask(models[1], 5)
    assert api.delete(f"/v1/models/{models[1]}").status_code == 200
    worker = p.start_worker()
    ended = [api.wait(job_id, timeout_s=60) for job_id in queued + [orphan]]
    assert [j["status"] for j in ended] == ["succeeded"] * 3 + ["failed"], [j["error"] for j in ended]
    assert ended[3]["error"]["code"] == "model_not_found"
    assert "running 3 job(s)" in worker.log_tail(20_000)  # one batch per model
    for job_id, seed in zip(queued, (5, 6, 7)):
        alone = api.wait(ask(models[0], seed), timeout_s=60)
        assert alone["status"] == "succeeded"
        assert images(alone["id"]) == images(job_id)
    assert images(queued[0]) != images(queued[1])
