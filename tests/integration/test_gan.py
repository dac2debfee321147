"""GAN jobs through real workers: training with grids and checkpoints, sampling, kill -9 resume, cancel, archives."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from PIL import Image

from tests.harness import wait_for, watch_to_end
from tests.unit.test_file_checks import make_zip, png

# Seconds on one CPU thread: small nets, a subset of the digits.
TINY = {"dataset": "builtin:digits", "image_size": 32, "nz": 16, "ngf": 8, "ndf": 8, "batch_size": 32,
        "max_images": 256, "epochs": 3, "seed": 3}


def _png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


@pytest.fixture(scope="module")
def trained(alice):
    job = alice.submit(TINY, kind="gan.train")
    done = alice.wait(job["id"], timeout_s=240)
    assert done["status"] == "succeeded", done["error"]
    return done


def test_training_publishes_grids_checkpoints_and_a_model(platform, alice, bob, trained):
    out = trained["output"]
    assert out["model"] == f"gan:{trained['id'][-8:]}"
    assert out["epochs"] == 3 and out["steps"] == 3 * (256 // 32) and out["images"] == 256
    assert out["skipped_images"] == 0 and out["sampler"] == "ema"
    quality = out["quality"]  # builtin:digits runs are scored
    assert quality["samples"] == 500 and len(quality["class_histogram"]) == 10
    assert 0 <= quality["confident_share"] <= 1 and quality["frechet_distance"] > 0

    names = [a["name"] for a in trained["artifacts"]]
    assert names[:3] == ["samples-epoch-001.png", "samples-epoch-002.png", "samples-epoch-003.png"]
    grid = alice.get(f"/v1/jobs/{trained['id']}/artifacts/samples-epoch-003.png", allow_redirects=True)
    assert grid.status_code == 200 and grid.content.startswith(b"\x89PNG")
    assert _png_size(grid.content) == (8 * 64 + 9 * 2,) * 2  # 8x8 grid of 32 px scaled 2x, 2 px borders

    events = alice.get(f"/v1/jobs/{trained['id']}/events").json()["data"]
    losses = {e["name"] for e in events if e["type"] == "metric"}
    assert losses == {"loss_d", "loss_g"}
    assert any(e["type"] == "log" and "checkpoint" in e["message"] for e in events)

    model = next(m for m in alice.get("/v1/models").json()["data"] if m["id"] == out["model"])
    assert model["kind"] == "gan" and model["base"] == "builtin:digits"
    assert out["model"] not in {m["id"] for m in bob.get("/v1/models").json()["data"]}
    assert platform.stored_keys(f"jobs/{trained['id']}/checkpoints/") == []  # the model supersedes them
    assert platform.stored_keys(f"models/{trained['id']}/") == [
        f"artifacts/models/{trained['id']}/e1/config.json", f"artifacts/models/{trained['id']}/e1/generator.safetensors"]


def test_sampling_is_deterministic_per_seed_and_interpolates(alice, trained):
    model = trained["output"]["model"]
    runs = [alice.wait(alice.submit({"model": model, "n": 16, "seed": s}, kind="gan.sample")["id"])
            for s in (7, 7, 8)]
    assert [r["status"] for r in runs] == ["succeeded"] * 3, [r["error"] for r in runs]
    grids = [alice.get(f"/v1/jobs/{r['id']}/artifacts/grid.png", allow_redirects=True).content for r in runs]
    assert grids[0] == grids[1] and grids[0] != grids[2]
    archive = alice.get(f"/v1/jobs/{runs[0]['id']}/artifacts/samples.zip", allow_redirects=True).content
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        names = zf.namelist()
        assert len(names) == 16 and _png_size(zf.read(names[0])) == (32, 32)

    lerp = alice.wait(alice.submit({"model": model, "n": 4, "seed": 7, "interpolate": {"to_seed": 8, "steps": 5}},
                                   kind="gan.sample")["id"])
    assert lerp["status"] == "succeeded", lerp["error"]
    assert lerp["output"]["interpolation"] == {"from_seed": 7, "to_seed": 8, "steps": 5}
    strip = alice.get(f"/v1/jobs/{lerp['id']}/artifacts/interpolation.png", allow_redirects=True).content
    assert _png_size(strip) == (5 * 64 + 6 * 2, 64 + 2 * 2)


@pytest.mark.parametrize("kind,input,param", [
    ("gan.train", {}, "input.dataset"),
    ("gan.train", {"dataset": "builtin:faces"}, "input.dataset"),
    ("gan.train", {"dataset": "file_missing"}, "input.dataset"),
    ("gan.train", {"dataset": "builtin:digits", "image_size": 48}, "input.image_size"),
    ("gan.train", {"dataset": "builtin:digits", "diffaugment": "rotate"}, "input.diffaugment"),
    ("gan.train", {"dataset": "builtin:digits", "batch_size": 1}, "input.batch_size"),
    ("gan.sample", {"model": "gan:nope"}, "input.model"),
    ("gan.sample", {"model": "builtin:tiny-gpt2"}, "input.model"),
])
def test_bad_gan_input_is_400_naming_the_field(alice, kind, input, param):
    resp = alice.post("/v1/jobs", json={"kind": kind, "input": input})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param


def test_sampling_limits_and_ownership(alice, bob, trained):
    model = trained["output"]["model"]
    too_many = alice.post("/v1/jobs", json={"kind": "gan.sample", "input": {"model": model, "n": 10_000}})
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "input.n"
    theirs = bob.post("/v1/jobs", json={"kind": "gan.sample", "input": {"model": model}})
    assert theirs.status_code == 400 and theirs.json()["error"]["code"] == "model_not_found"


def test_training_on_an_uploaded_archive_counts_corrupt_images(alice):
    members = {f"red/{i}.png": png((40, 30), (200, 30 + i, 30)) for i in range(6)}
    members |= {f"blue/{i}.png": png((30, 40), (30, 30, 200 - i)) for i in range(6)}
    members["blue/broken.png"] = b"\x89PNG\r\n\x1a\nnot really"
    upload = alice.upload(make_zip(members), purpose="gan-dataset", filename="colours.zip")
    assert upload.status_code == 201, upload.text
    job = alice.submit({"dataset": upload.json()["id"], "nz": 8, "ngf": 4, "ndf": 4, "batch_size": 4,
                        "epochs": 1}, kind="gan.train")
    done = alice.wait(job["id"], timeout_s=120)
    assert done["status"] == "succeeded", done["error"]
    assert done["output"]["images"] == 12 and done["output"]["skipped_images"] == 1
    assert "quality" not in done["output"]  # the digit score is for digit runs only
    grid = alice.get(f"/v1/jobs/{job['id']}/artifacts/samples-epoch-001.png", allow_redirects=True).content
    with Image.open(io.BytesIO(grid)) as img:
        assert img.mode == "RGB"


def test_kill_9_mid_training_resumes_and_cancel_keeps_the_grids(make_platform):
    p = make_platform("gan-crash")
    p.start_web()
    victim = p.start_worker()
    api = p.api(p.create_key("gina"))
    slow = {**TINY, "ngf": 32, "ndf": 32, "nz": 32, "max_images": 512, "epochs": 6}
    job = api.submit(slow, kind="gan.train")

    def past_a_checkpoint():
        j = api.get(f"/v1/jobs/{job['id']}").json()
        return j["checkpoint"] and j["progress"]["completed"] > j["checkpoint"]["step"]
    wait_for(past_a_checkpoint, 180, "training to pass its first checkpoint")
    killed_at = api.get(f"/v1/jobs/{job['id']}").json()["progress"]["completed"]
    victim.kill9()

    p.start_worker()
    done, seen = watch_to_end(api, job["id"], 300)
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2 and min(seen) >= killed_at
    grids = [a["name"] for a in done["artifacts"] if a["name"].startswith("samples-epoch-")]
    assert grids == [f"samples-epoch-{e:03d}.png" for e in range(1, 7)]  # earlier attempts' grids kept
    events = api.get(f"/v1/jobs/{job['id']}/events").json()["data"]
    assert any(e["type"] == "log" and e["message"].startswith("resumed after epoch") for e in events)
    points = [(e["name"], e["step"]) for e in events if e["type"] == "metric"]
    assert len(points) == len(set(points)), "a loss point was recorded twice after the resume"
    assert [m["id"] for m in api.get("/v1/models").json()["data"] if m["kind"] == "gan"] == [done["output"]["model"]]

    # Cancel while running: the job ends canceled, keeps the grids it published, registers nothing.
    long = api.submit({**slow, "epochs": 50, "seed": 4}, kind="gan.train")
    wait_for(lambda: len(api.get(f"/v1/jobs/{long['id']}").json()["artifacts"]) >= 1, 180, "a first grid")
    assert api.post(f"/v1/jobs/{long['id']}/cancel").status_code in (200, 202)
    canceled = api.wait(long["id"], timeout_s=60)
    assert canceled["status"] == "canceled"
    assert canceled["artifacts"] and canceled["artifacts"][0]["name"] == "samples-epoch-001.png"
    assert f"gan:{long['id'][-8:]}" not in {m["id"] for m in api.get("/v1/models").json()["data"]}


def test_sigterm_hands_gan_training_over_at_the_epochs_checkpoint(make_platform):
    """SIGTERM to the worker: the GAN stops at the end of its epoch (whose checkpoint it has just
    committed), queues again, and another worker resumes after that epoch."""
    import os
    import re
    import signal

    p = make_platform("gan-handover")
    p.start_web()
    leaving = p.start_worker()
    api = p.api(p.create_key("gus"))
    job = api.submit({**TINY, "ngf": 16, "ndf": 16, "nz": 16, "max_images": 512, "epochs": 400}, kind="gan.train")
    wait_for(lambda: len(api.get(f"/v1/jobs/{job['id']}").json()["artifacts"]) >= 1, 180, "a first epoch")
    sent = time.monotonic()
    os.kill(leaving.proc.pid, signal.SIGTERM)  # the main process only, as a container runtime does
    leaving.proc.wait(60)
    print(f"the worker exited {time.monotonic() - sent:.1f} s after SIGTERM")
    events = api.get(f"/v1/jobs/{job['id']}/events").json()["data"]
    handed = [e["message"] for e in events if e["type"] == "log" and "handing over" in e["message"]]
    assert handed, [e for e in events if e["type"] == "log"]
    epoch = int(re.search(r"after epoch (\d+)", handed[0]).group(1))
    assert epoch < 400
    assert api.get(f"/v1/jobs/{job['id']}").json()["checkpoint"]["step"] == epoch * (512 // 32)

    p.start_worker()
    wait_for(lambda: any(e["type"] == "log" and e["message"] == f"resumed after epoch {epoch} (step {epoch * 16})"
                         for e in api.get(f"/v1/jobs/{job['id']}/events").json()["data"]), 180,
             "the next worker to resume after that epoch")
    api.post(f"/v1/jobs/{job['id']}/cancel")
    assert api.wait(job["id"], timeout_s=60)["status"] == "canceled"
