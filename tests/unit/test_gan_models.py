"""DCGAN nets, the resumable trainer, DiffAugment, image sets, grids and the digit quality score."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch
from PIL import Image

from core.archive_checks import image_members
from models import image_data
from models.dcgan import DCGANConfig, Discriminator, Generator, build, generate, latent, slerp
from models.diffaugment import augment, parse_policy
from models.gan_training import GanTrainConfig, GanTrainer
from models.image_grid import grid_png, zip_pngs
from tests.unit.test_file_checks import make_zip, png


@pytest.mark.parametrize("size,channels", [(32, 1), (32, 3), (64, 1), (64, 3)])
def test_generator_and_discriminator_shapes(size, channels):
    g = Generator(size, channels, nz=10, ngf=8)
    d = Discriminator(size, channels, ndf=8)
    images = g(torch.randn(5, 10, 1, 1))
    assert images.shape == (5, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1  # tanh output
    assert d(images).shape == (5,)


def test_config_refuses_sizes_the_nets_cannot_build():
    with pytest.raises(ValueError):
        DCGANConfig(image_size=48, channels=1, nz=8, ngf=4, ndf=4)
    with pytest.raises(ValueError):
        DCGANConfig(image_size=32, channels=2, nz=8, ngf=4, ndf=4)
    cfg = DCGANConfig(32, 1, 16, 8, 8)
    assert DCGANConfig.from_dict(cfg.to_dict()) == cfg


def test_weights_init_follows_the_dcgan_paper():
    torch.manual_seed(0)
    g, d = build(DCGANConfig(64, 3, 100, 64, 64))
    conv = [m.weight for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert all(abs(w.std().item() - 0.02) < 0.002 for w in conv)
    bn = [m for m in d.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(abs(m.weight.mean().item() - 1) < 0.01 and m.bias.abs().sum() == 0 for m in bn)


def _images(n=24, size=32):
    torch.manual_seed(1)
    return torch.rand(n, 1, size, size) * 2 - 1


def _cfg(**kw):
    base = dict(net=DCGANConfig(32, 1, 8, 4, 4), epochs=2, batch_size=8, lr=2e-4, beta1=0.5, seed=5,
                ema_decay=0.99, diffaugment="color,translation,cutout", r1_gamma=0.5, label_smoothing=0.1)
    return GanTrainConfig(**{**base, **kw})


def test_a_resumed_run_matches_the_uninterrupted_one():
    straight = GanTrainer(_cfg(), _images())
    for epoch in range(2):
        straight.run_epoch(epoch, lambda s, m: None)

    first = GanTrainer(_cfg(), _images())
    first.run_epoch(0, lambda s, m: None)
    weights = {k: {n: t.clone() for n, t in v.items()} for k, v in first.weights().items()}
    state = first.state_bytes(1)
    torch.manual_seed(999)  # a new process: the global generator is elsewhere
    resumed = GanTrainer(_cfg(), _images())
    resumed.load_weights(weights)
    assert resumed.load_state_bytes(state) == 1
    resumed.run_epoch(1, lambda s, m: None)
    for name in ("generator", "discriminator", "generator_ema"):
        a, b = straight.weights()[name], resumed.weights()[name]
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_training_steps_report_losses_and_the_ema_lags_the_generator():
    trainer = GanTrainer(_cfg(epochs=1), _images())
    seen = []
    trainer.run_epoch(0, lambda step, m: seen.append((step, m)))
    assert [s for s, _ in seen] == [1, 2, 3] and trainer.total_steps == 3
    assert all(m["loss_d"] > 0 and m["loss_g"] > 0 and 0 < m["d_real"] < 1 for _, m in seen)
    g, ema = trainer.G.state_dict(), trainer.G_ema.state_dict()
    assert not torch.equal(g["main.0.weight"], ema["main.0.weight"])
    assert trainer.sampler is trainer.G_ema
    assert GanTrainer(_cfg(ema_decay=0.0), _images()).sampler is not None


def test_sampling_is_a_function_of_the_seed():
    g = Generator(32, 1, 8, 4)
    a = generate(g, latent(3, 6, 8))
    b = generate(g, torch.cat([latent(3, 6, 8)[:3], latent(3, 6, 8)[3:]]), batch=2)
    assert torch.equal(a, b)  # eval-mode batch norm: batching does not change an image
    assert not torch.equal(a, generate(g, latent(4, 6, 8)))
    path = slerp(latent(1, 1, 8)[0], latent(2, 1, 8)[0], 5)
    assert path.shape == (5, 8, 1, 1)
    assert torch.allclose(path[0], latent(1, 1, 8)[0], atol=1e-5) and torch.allclose(path[-1], latent(2, 1, 8)[0], atol=1e-5)


def test_diffaugment_is_shape_preserving_and_reproducible():
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    policy = parse_policy("color, translation,cutout")
    a = augment(x, policy, torch.Generator().manual_seed(1))
    b = augment(x, policy, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    cut = augment(torch.ones(4, 1, 32, 32), ("cutout",), torch.Generator().manual_seed(2))
    assert all(abs((img == 0).float().mean().item() - 0.25) < 0.13 for img in cut)  # a half-size square
    with pytest.raises(ValueError, match="rotate"):
        parse_policy("rotate")


def test_digits_load_as_grey_images_in_range():
    data = image_data.digits(32)
    assert data.images.shape == (1797, 1, 32, 32) and sorted(set(data.labels)) == [str(i) for i in range(10)]
    assert data.images.min() == -1 and data.images.max() == 1
    assert image_data.digits(64, channels=3).images.shape == (1797, 3, 64, 64)


def test_archives_load_with_class_labels_and_count_corrupt_images():
    members = {"cats/a.png": png((50, 30)), "dogs/b.jpg": b"", "dogs/c.png": png((20, 20), (0, 0, 255)),
               "dogs/broken.png": b"\x89PNG\r\n\x1a\ngarbage", "notes.txt": b"hello"}
    jpg = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 10)).save(jpg, format="JPEG")
    members["dogs/b.jpg"] = jpg.getvalue()
    data = image_data.from_members(image_members(make_zip(members)), 32, 3)
    assert data.images.shape == (3, 3, 32, 32) and data.skipped == 1
    assert data.labels == ["cats", "dogs", "dogs"]
    blue = data.images[2]
    assert blue[2].mean() > 0.9 and blue[0].mean() < -0.9  # RGB order kept, scaled to [-1, 1]
    first_two = image_data.from_members(image_members(make_zip(members)), 32, 1, max_images=2)
    assert first_two.images.shape == (2, 1, 32, 32)
    with pytest.raises(ValueError):
        image_data.from_members(image_members(make_zip({"a.png": b"not an image"})), 32, 3)


def test_grids_and_zips_are_deterministic_pngs():
    x = torch.rand(10, 1, 32, 32) * 2 - 1
    grid = grid_png(x)
    assert grid == grid_png(x.clone()) and grid.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(grid)) as img:
        assert img.size == (4 * 64 + 5 * 2, 3 * 64 + 4 * 2) and img.mode == "L"
    archive = zip_pngs(x)
    assert archive == zip_pngs(x.clone())
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert len(zf.namelist()) == 10
        with Image.open(io.BytesIO(zf.read("sample-0003.png"))) as img:
            assert img.size == (32, 32)


def test_the_digit_score_separates_real_digits_from_noise():
    from models.digit_score import score

    real = image_data.digits(32).images
    picked = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:500]]
    noise = torch.rand(500, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    good, bad = score(picked), score(noise)
    assert good["classifier_accuracy"] > 0.93
    assert good["confident_share"] > 0.8 and good["classes_covered"] == 10 and good["class_entropy"] > 0.95
    assert bad["confident_share"] < 0.05 and bad["classes_covered"] == 0
    assert good["frechet_distance"] * 20 < bad["frechet_distance"]
    one_digit = score(real[[i for i, label in enumerate(image_data.digits(32).labels) if label == "3"][:200]])
    assert one_digit["classes_covered"] == 1  # mode collapse shows as low coverage
    assert score(real[:50].repeat(1, 3, 2, 2)[:, :, :64, :64].contiguous())["samples"] == 50  # RGB, 64 px
