"""Conditional DCGANs, the VAE, label fidelity and reading a class from a prompt."""

from __future__ import annotations

import pytest
import torch

from core.gan_schemas import GanSampleInput, GanTrainInput
from core.image_classes import NoClass, class_from_prompt, class_index
from core.shapes import Lookups, check
from core.errors import InvalidInput
from models import image_data
from models.dcgan import DCGANConfig, Discriminator, Generator, build, generate, latent, spread_labels
from models.gan_training import GanTrainConfig, GanTrainer
from models.vae import VaeTrainer, vae_losses

DIGITS = [str(i) for i in range(10)]


def _cfg(num_classes=3, **kw):
    base = dict(net=DCGANConfig(32, 1, 8, 4, 4, num_classes), epochs=2, batch_size=8, lr=1e-3, beta1=0.5, seed=5,
                ema_decay=0.9, diffaugment="translation", r1_gamma=0.0, label_smoothing=0.1)
    return GanTrainConfig(**{**base, **kw})


def _data(n=24):
    torch.manual_seed(1)
    return torch.rand(n, 1, 32, 32) * 2 - 1, torch.arange(n) % 3


def test_conditional_nets_take_a_class_and_unconditional_ones_keep_their_keys():
    g, d = Generator(32, 1, 8, 4, num_classes=10), Discriminator(32, 1, 4, num_classes=10)
    z, y = torch.randn(5, 8, 1, 1), torch.tensor([0, 1, 2, 3, 9])
    assert g(z, y).shape == (5, 1, 32, 32) and d(g(z, y), y).shape == (5,)
    with pytest.raises(ValueError, match="class index"):
        g(z)
    # The class changes the image and the projection changes D's verdict.
    assert not torch.allclose(g.eval()(z, y), g(z, torch.zeros_like(y)))
    assert not torch.allclose(d.eval()(g(z, y), y), d(g(z, y), (y + 1) % 10))
    plain = Generator(32, 1, 8, 4)
    assert "embed.weight" not in plain.state_dict() and "embed.weight" in g.state_dict()
    assert DCGANConfig.from_dict({"image_size": 32, "channels": 1, "nz": 8, "ngf": 4, "ndf": 4}).num_classes == 0
    with pytest.raises(ValueError):
        DCGANConfig(32, 1, 8, 4, 4, num_classes=1)
    assert spread_labels(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0] and spread_labels(4, 0) is None


@pytest.mark.parametrize("trainer_class", [GanTrainer, VaeTrainer])
def test_a_resumed_conditional_run_matches_the_uninterrupted_one(trainer_class):
    images, labels = _data()
    straight = trainer_class(_cfg(), images, labels=labels)
    for epoch in range(2):
        straight.run_epoch(epoch, lambda s, m: None)
    first = trainer_class(_cfg(), images, labels=labels)
    first.run_epoch(0, lambda s, m: None)
    weights = {k: {n: t.clone() for n, t in v.items()} for k, v in first.weights().items()}
    state = first.state_bytes(1)
    torch.manual_seed(999)
    resumed = trainer_class(_cfg(), images, labels=labels)
    resumed.load_weights(weights)
    assert resumed.load_state_bytes(state) == 1
    resumed.run_epoch(1, lambda s, m: None)
    for name, a in straight.weights().items():
        b = resumed.weights()[name]
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_the_vae_reports_reconstruction_and_kl_and_samples_like_a_generator():
    images, labels = _data()
    trainer = VaeTrainer(_cfg(epochs=1), images, labels=labels)
    seen = []
    trainer.run_epoch(0, lambda step, m: seen.append(m))
    assert len(seen) == 3 and set(seen[0]) == set(VaeTrainer.METRICS)
    assert all(m["loss_rec"] > 0 and m["loss_kl"] >= 0 for m in seen)
    out = generate(trainer.sampler, latent(1, 4, 8), torch.tensor([0, 1, 2, 0]))
    assert out.shape == (4, 1, 32, 32) and out.abs().max() <= 1
    with pytest.raises(ValueError, match="class index"):
        VaeTrainer(_cfg(), images)
    # A perfect reconstruction with a standard-normal posterior costs no KL.
    x = torch.rand(2, 1, 4, 4).round() * 2 - 1
    rec, kl = vae_losses(x, x, torch.zeros(2, 3), torch.zeros(2, 3))
    assert rec.item() < 1e-3 and kl.item() == pytest.approx(0.0, abs=1e-6)


def test_label_fidelity_reads_real_digits_as_their_labels():
    from models.digit_score import label_fidelity

    data = image_data.digits(32)
    labels = torch.tensor([int(t) for t in data.labels])
    assert label_fidelity(data.images[:300], labels[:300]) > 0.9
    assert label_fidelity(data.images[:300], (labels[:300] + 1) % 10) < 0.1


@pytest.mark.parametrize("prompt,want", [
    ("a handwritten seven", "7"), ("7", "7"), ("七", "7"), ("写一个七", "7"), ("画一张3", "3"), ("Sevens!", "7"),
    ("the digit 0", "0"), ("zero", "0"), ("draw one seven", "7"), ("two 3s", "3"), ("一些七", "7"), ("两", "2"),
    ("〇", "0"), ("７", "7"),
])
def test_a_prompt_names_a_digit_in_english_or_chinese(prompt, want):
    assert DIGITS[class_from_prompt(DIGITS, prompt)] == want


def test_prompts_name_folders_whole_words_and_the_longest_match_wins():
    classes = ["sneaker", "t-shirt", "shirt", "Ankle_boot"]
    assert classes[class_from_prompt(classes, "red sneakers")] == "sneaker"
    assert classes[class_from_prompt(classes, "a t-shirt")] == "t-shirt"
    assert classes[class_from_prompt(classes, "a plain shirt")] == "shirt"
    assert classes[class_from_prompt(classes, "ankle boots")] == "Ankle_boot"
    with pytest.raises(NoClass, match="'sneaker', 't-shirt'"):
        class_from_prompt(classes, "a bag")
    with pytest.raises(NoClass, match="more than one"):
        class_from_prompt(classes, "a sneaker and a shirt")
    for prompt in ("someone", "十七", "七十", "seventeen"):  # whole words, whole numbers
        with pytest.raises(NoClass):
            class_from_prompt(DIGITS, prompt)
    with pytest.raises(NoClass, match="more than one"):
        class_from_prompt(DIGITS, "a 7 and a 3")
    pets = ["puppy", "kittens"]
    assert pets[class_from_prompt(pets, "two puppies")] == "puppy" and pets[class_from_prompt(pets, "a kitten")] == "kittens"
    assert classes[class_from_prompt(classes, "an ankle-boot")] == "Ankle_boot"
    folders = [str(i) for i in range(1, 11)]  # an integer that is a folder's name means that folder
    assert folders[class_index(folders, 1)] == "1" and folders[class_index(folders, 10)] == "10"
    assert class_index(classes, "ankle boot") == 3 and class_index(classes, 1) == 1
    with pytest.raises(NoClass, match="out of range"):
        class_index(classes, 4)


LOOKUPS = Lookups(owns_model=lambda m: m in ("gan:cond", "gan:plain", "vae:cond", "gan:old"),
                  image_model=lambda m: {"gan:cond": {"conditional": True, "classes": DIGITS, "image_size": 32},
                                         "vae:cond": {"conditional": True, "classes": DIGITS, "image_size": 64},
                                         "gan:plain": {"conditional": False, "classes": [], "image_size": 32},
                                         "gan:old": {}}.get(m))  # trained before info was recorded


def _refusal(shape, data):
    with pytest.raises(InvalidInput) as caught:
        check(shape, data, "input", None, LOOKUPS)
    return caught.value.errors[0]


def test_sampling_input_names_a_class_once_and_checks_it_against_the_model():
    clean = check(GanSampleInput, {"model": "gan:cond", "class": "seven", "size": "256x256"}, "input", None, LOOKUPS)
    assert clean["class"] == "seven" and clean["size"] == "256x256" and clean["image_files"] is False
    assert check(GanSampleInput, {"model": "vae:cond", "size": "64x64"}, "input", None, LOOKUPS)["size"] == "64x64"
    # An older model's size is not on record: 64x64 passes here and the worker checks it.
    assert check(GanSampleInput, {"model": "gan:old", "size": "64x64"}, "input", None, LOOKUPS)["size"] == "64x64"
    cases = [
        ({"model": "gan:cond", "prompt": "a cat"}, "input.prompt", "'0', '1'"),
        ({"model": "gan:cond", "prompt": "bad \ud800"}, "input.prompt", "unicode"),
        ({"model": "gan:cond", "class": 3, "prompt": "7"}, "input.prompt", "not both"),
        ({"model": "gan:cond", "class": 10}, "input.class", "out of range"),
        ({"model": "gan:cond", "class": True}, "input.class", "name"),
        ({"model": "gan:plain", "prompt": "7"}, "input.prompt", "not conditional"),
        ({"model": "gan:cond", "size": "1024x1024"}, "input.size", "32x32"),
        ({"model": "gan:cond", "n": 100, "size": "512x512"}, "input.size", "n <= 64"),
        ({"model": "gan:old", "prompt": "7"}, "input.prompt", "not conditional"),
        ({"model": "gan:old", "size": "100x100"}, "input.size", "must be one of"),
    ]
    for data, param, words in cases:
        err = _refusal(GanSampleInput, data)
        assert err["param"] == param and words in err["message"], (data, err)


def test_training_input_picks_optimiser_defaults_by_architecture_and_refuses_gan_only_settings_for_a_vae():
    gan = check(GanTrainInput, {"dataset": "builtin:digits", "conditional": True}, "input")
    vae = check(GanTrainInput, {"dataset": "builtin:digits", "architecture": "vae"}, "input")
    assert (gan["lr"], gan["beta1"], gan["conditional"]) == (2e-4, 0.5, True)
    assert (vae["lr"], vae["beta1"]) == (1e-3, 0.9)
    assert check(GanTrainInput, {"dataset": "builtin:digits", "architecture": "vae", "lr": 0.01}, "input")["lr"] == 0.01
    err = _refusal(GanTrainInput, {"dataset": "builtin:digits", "architecture": "vae", "r1_gamma": 1.0})
    assert err["param"] == "input.r1_gamma" and "dcgan only" in err["message"]
    assert _refusal(GanTrainInput, {"dataset": "builtin:digits", "architecture": "gan"})["param"] == "input.architecture"


def test_a_short_conditional_run_learns_its_labels():
    """The conditioning path end to end in a few seconds: well above chance (1 in 10) on the digits."""
    from models.digit_score import label_fidelity

    data = image_data.digits(32)
    labels = torch.tensor([int(t) for t in data.labels])
    cfg = _cfg(num_classes=10, net=DCGANConfig(32, 1, 32, 16, 16, 10), epochs=6, batch_size=32, seed=3,
               diffaugment="translation,cutout")
    trainer = GanTrainer(cfg, data.images, labels=labels)
    for epoch in range(cfg.epochs):
        trainer.run_epoch(epoch, lambda s, m: None)
    asked = torch.arange(500) % 10
    assert label_fidelity(generate(trainer.sampler, latent(1, 500, 32), asked), asked) > 0.3


def test_a_capped_conditional_archive_keeps_every_class():
    from core.archive_checks import image_members
    from tests.unit.test_file_checks import make_zip, png

    members = {f"{folder}/{i}.png": png((8, 8)) for folder in ("a", "b", "c") for i in range(5)}
    first = image_data.from_members(image_members(make_zip(members)), 32, 1, max_images=6)
    balanced = image_data.from_members(image_members(make_zip(members)), 32, 1, max_images=6, balanced=True)
    assert sorted(set(first.labels)) == ["a", "b"]  # archive order: the first folders only
    assert balanced.labels == ["a", "b", "c", "a", "b", "c"]
