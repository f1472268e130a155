"""The VAE family: the model's maths, and every action run through the engine on tiny checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from plugins.vae.model import VAE, VAEConfig, discretized_logistic_log_prob, load, to_unit
from studio.core import media
from studio.core.checkpoints import save_checkpoint
from studio.core.engine import Engine, Job, JobState
from studio.core.latent import LatentModel
from studio.core.registry import Registry


def tiny_vae(config: VAEConfig | None = None, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(config or VAEConfig(size=8, channels=3, latent_dim=4, width=4)).eval()


@pytest.fixture
def engine(tmp_path):
    model = tiny_vae()
    config = {"id": "tiny-vae", "plugin": "studio.vae", "family": "vae", "model": model.config_dict()}
    save_checkpoint(tmp_path / "models" / "tiny-vae", model.state_dict(), config)
    return Engine(Registry(model_roots=[(tmp_path / "models", "user")]), device="cpu")


def run(engine: Engine, action: str, params: dict, seed: int = 0, model: str | None = "tiny-vae") -> Job:
    job = engine.execute(Job("studio.vae", action, model, params, seed=seed, device="cpu"))
    assert job.state == JobState.DONE, job.error + job.details
    return job


def write_images(folder, values, size=8):
    folder.mkdir(parents=True)
    for i, value in enumerate(values):
        media.save_image(folder / f"{i}.png", np.full((size, size, 3), value, np.uint8))
    return folder


def test_discretized_logistic_is_a_distribution_over_the_256_levels():
    levels = to_unit(torch.arange(256.0))
    for mean, log_scale in ((0.0, -3.0), (0.9, -5.0), (-0.97, -1.0), (0.3, -7.0)):
        log_p = discretized_logistic_log_prob(levels, torch.tensor(mean), torch.tensor(log_scale))
        assert float(log_p.exp().sum()) == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("config", [VAEConfig(size=8, channels=3, latent_dim=4, width=4),
                                    VAEConfig(size=12, channels=1, latent_dim=3, width=4)])
def test_sample_encode_decode_shapes_ranges_and_seed_determinism(config):
    model = tiny_vae(config)
    x, z = model.sample(3, 1.0, torch.Generator().manual_seed(7))
    again, _ = model.sample(3, 1.0, torch.Generator().manual_seed(7))
    other, _ = model.sample(3, 1.0, torch.Generator().manual_seed(8))
    assert x.shape == (3, config.channels, config.size, config.size) and z.shape == (3, config.latent_dim)
    assert torch.equal(x, again) and not torch.equal(x, other)
    assert x.min() >= -1 and x.max() <= 1
    images = model.to_images(x)
    assert images[0].shape == (config.size, config.size, config.channels) and images[0].dtype == np.uint8
    assert isinstance(model, LatentModel)
    latents = model.encode_images([np.zeros((20, 30, 4), np.uint8), np.full((5, 5, 3), 255, np.uint8)])
    assert latents.shape == (2, config.latent_dim) and latents.dtype == np.float32
    assert model.decode_latents(latents)[1].shape == images[0].shape


def test_elbo_bound_is_finite_and_training_lowers_it():
    model = tiny_vae().train()
    pixels = torch.cat([torch.zeros(16, 3, 8, 8), torch.full((16, 3, 8, 8), 255.0)])
    with torch.no_grad():
        before = float(model.loss(pixels, torch.Generator().manual_seed(0)))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(40):
        optimizer.zero_grad()
        model.loss(pixels, torch.Generator().manual_seed(step)).backward()
        optimizer.step()
    with torch.no_grad():
        after = float(model.loss(pixels, torch.Generator().manual_seed(0)))
    assert 0 < after < 0.7 * before


def test_generate_is_deterministic_by_seed(engine):
    a = run(engine, "generate", {"count": 3, "temperature": 0.8}, seed=3).result
    b = run(engine, "generate", {"count": 3, "temperature": 0.8}, seed=3).result
    c = run(engine, "generate", {"count": 3, "temperature": 0.8}, seed=4).result
    assert len(a.images) == 3 and len(a.latents) == 3 and a.images[0].shape == (8, 8, 3)
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
    assert not all(np.array_equal(x, y) for x, y in zip(a.images, c.images))


def test_edit_moves_one_axis(engine):
    model = engine.models.get(engine.registry, engine.registry.checkpoint("tiny-vae"), "cpu")
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    result = run(engine, "edit", {"image": image, "axis": 2, "amount": 1.5}).result
    expected = model.encode_images([image])[0]
    expected[2] += 1.5
    assert np.allclose(result.latents[0], expected, atol=1e-6)
    assert np.array_equal(result.images[0], model.decode_latents(expected[None])[0])


def test_edit_adds_an_attribute_direction_from_two_folders(engine, tmp_path):
    model = engine.models.get(engine.registry, engine.registry.checkpoint("tiny-vae"), "cpu")
    with_folder = write_images(tmp_path / "with", [250, 240, 230])
    without_folder = write_images(tmp_path / "without", [10, 20])
    image = np.full((8, 8, 3), 128, np.uint8)
    params = {"image": image, "with_images": str(with_folder), "without_images": str(without_folder), "strength": 0.5}
    result = run(engine, "edit", params).result
    with_latents = model.encode_images([np.full((8, 8, 3), v, np.uint8) for v in (250, 240, 230)])
    without_latents = model.encode_images([np.full((8, 8, 3), v, np.uint8) for v in (10, 20)])
    direction = with_latents.mean(0) - without_latents.mean(0)
    assert np.allclose(result.latents[0], model.encode_images([image])[0] + 0.5 * direction, atol=1e-5)
    job = engine.execute(Job("studio.vae", "edit", "tiny-vae", {"image": image, "with_images": str(with_folder)}))
    assert job.state == JobState.FAILED and "both" in job.error


def test_interpolate_between_images_and_between_seeds(engine):
    model = engine.models.get(engine.registry, engine.registry.checkpoint("tiny-vae"), "cpu")
    a, b = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)
    result = run(engine, "interpolate", {"image_a": a, "image_b": b, "steps": 5, "mode": "lerp"}).result
    za, zb = model.encode_images([a, b])
    assert len(result.images) == 5 and len(result.latents) == 5
    assert np.allclose(result.latents[0], za, atol=1e-6) and np.allclose(result.latents[-1], zb, atol=1e-6)
    assert np.allclose(result.latents[2], (za + zb) / 2, atol=1e-5)
    seeded = run(engine, "interpolate", {"seed_a": 1, "seed_b": 2, "steps": 3, "mode": "slerp"}).result
    assert np.allclose(seeded.latents[0], np.random.default_rng(1).standard_normal(4), atol=1e-6)
    assert np.allclose(seeded.latents[-1], np.random.default_rng(2).standard_normal(4), atol=1e-6)


def test_likelihood_reports_the_elbo_bound_and_the_reconstruction(engine):
    image = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    result = run(engine, "likelihood", {"image": image}, seed=5).result
    again = run(engine, "likelihood", {"image": image}, seed=5).result
    assert result.metrics == again.metrics
    assert 0 < result.metrics["bits_per_dim"] < 16 and result.metrics["reconstruction_rmse"] > 0
    assert len(result.images) == 2 and np.array_equal(result.images[0], image)
    assert "ELBO" in result.text


def test_train_action_writes_a_loadable_checkpoint_with_held_out_metrics(engine, tmp_path):
    train = write_images(tmp_path / "train", [0, 60, 120, 180, 240, 30, 90, 150], size=12)
    test = write_images(tmp_path / "test", [15, 200], size=12)
    (train / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    params = {"data": str(train), "test_data": str(test), "size": 8, "color": "rgb", "latent_dim": 3, "width": 4,
              "steps": 4, "batch_size": 4, "ema": 0.0, "name": "mini", "out": str(out)}
    job = run(engine, "train", params, seed=1, model=None)
    assert job.result.model_dir == out
    assert {"loss", "test_elbo_bits_per_dim", "test_reconstruction_rmse"} <= set(job.result.metrics)
    config = json.loads((out / "config.json").read_text())
    assert config["plugin"] == "studio.vae" and config["model"]["latent_dim"] == 3
    assert (out / "samples.png").exists() and media.load_image(out / "reconstructions.png").shape[1] > 16
    card = (out / "MODEL_CARD.md").read_text()
    assert "held-out negative ELBO" in card and "studio train vae" in card and "broken.png" in card
    assert "RealNVP 1.06" not in card  # not MNIST data: no MNIST reference
    model = load(out)
    assert model.decode_latents(np.zeros((1, 3), np.float32))[0].shape == (8, 8, 3)
