"""GAN: the hinge losses reach only their own network, truncation, inversion, principal directions,
renaming, interpolation and training, through the engine on tiny checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from plugins.gan.model import GAN, GANConfig, diff_augment, load
from studio.core import media
from studio.core.checkpoints import save_checkpoint
from studio.core.engine import Engine, Job, JobState
from studio.core.latent import LatentModel
from studio.core.registry import Registry

SIZE = 8


def tiny() -> GAN:
    torch.manual_seed(0)
    model = GAN(GANConfig(size=SIZE, latent_dim=6, width=4, directions=3))
    model.train()
    with torch.no_grad():  # a few forward passes give BatchNorm running statistics
        for _ in range(3):
            model.decode(torch.randn(16, 6))
    model.eval()
    model.find_directions(samples=512)
    return model


@pytest.fixture
def engine(tmp_path):
    model = tiny()
    config = {"id": "tiny-gan", "plugin": "studio.gan", "family": "gan", "model": model.config_dict(),
              "names": ["direction 1", "direction 2", "direction 3"]}
    save_checkpoint(tmp_path / "models" / "tiny-gan", model.state_dict(), config)
    return Engine(Registry(model_roots=[(tmp_path / "models", "user")]), device="cpu")


def run(engine: Engine, action: str, params: dict, seed: int = 0, model: str | None = "tiny-gan") -> Job:
    job = engine.execute(Job("studio.gan", action, model, params, seed=seed, device="cpu"))
    assert job.state == JobState.DONE, job.error + job.details
    return job


def loaded(engine: Engine) -> GAN:
    return engine.models.get(engine.registry, engine.registry.checkpoint("tiny-gan"), "cpu")


def test_each_hinge_loss_reaches_only_its_own_network():
    model = tiny().train()
    real = torch.rand(4, 3, SIZE, SIZE) * 2 - 1
    d_loss, g_loss = model.hinge_losses(real, torch.Generator().manual_seed(0))
    d_params, g_params = list(model.discriminator.parameters()), list(model.generator.parameters())
    d_of_d = torch.autograd.grad(d_loss, d_params + g_params, allow_unused=True)
    assert all(g is not None for g in d_of_d[: len(d_params)])
    assert all(g is None or not g.any() for g in d_of_d[len(d_params) :])
    g_of_g = torch.autograd.grad(g_loss, d_params + g_params, allow_unused=True)
    assert all(g is None for g in g_of_g[: len(d_params)])
    assert any(g is not None and g.any() for g in g_of_g[len(d_params) :])
    assert all(p.requires_grad for p in d_params)


def test_diff_augment_is_seeded_per_image_and_differentiable():
    x = torch.full((6, 3, 16, 16), 0.5, requires_grad=True)
    a = diff_augment(x, torch.Generator().manual_seed(1))
    b = diff_augment(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # each image draws its own colour, shift and cut
    cut = (a == 0).all(1).flatten(1).float().mean(1)  # the cut-out square, plus any shifted-in border
    assert ((cut >= 0.1) & (cut <= 0.5)).all()
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_64_pixel_config_builds():
    model = GAN(GANConfig(size=64, latent_dim=8, width=4))
    assert model.decode(torch.randn(2, 8)).shape == (2, 3, 64, 64)
    assert model.discriminator(torch.zeros(2, 3, 64, 64)).shape == (2,)


def test_generate_determinism_and_truncation(engine):
    a = run(engine, "generate", {"count": 3}, seed=5).result
    b = run(engine, "generate", {"count": 3}, seed=5).result
    c = run(engine, "generate", {"count": 3}, seed=6).result
    assert a.images[0].shape == (SIZE, SIZE, 3) and a.images[0].dtype == np.uint8
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
    assert not np.array_equal(a.latents[0], c.latents[0])
    scaled = run(engine, "generate", {"count": 3, "truncation": 0.5, "truncation_mode": "scale"}, seed=5).result
    assert np.allclose(scaled.latents[0], 0.5 * a.latents[0])
    resampled = run(engine, "generate", {"count": 64, "truncation": 0.25}, seed=5).result
    assert max(np.abs(z).max() for z in resampled.latents) <= 1.0
    model = loaded(engine)
    assert np.array_equal(model.decode_latents(a.latents[0][None])[0], a.images[0])


def test_inversion_lowers_the_reconstruction_loss():
    model = tiny()
    with torch.no_grad():
        target = model.decode(torch.randn(2, 6, generator=torch.Generator().manual_seed(9)))
    errors = [error for _, _, error in model.invert(target, steps=40, candidates=1,
                                                      generator=torch.Generator().manual_seed(1))]
    assert (errors[-1] < 0.5 * errors[0]).all()
    assert all(p.requires_grad for p in model.parameters())  # inversion froze the weights only while it ran


def test_edit_reports_inversion_error_and_directions_change_the_output(engine):
    image = loaded(engine).decode_latents(np.random.default_rng(0).standard_normal((1, 6)).astype(np.float32))[0]
    progress = []
    engine.subscribe(lambda event, job: progress.append(dict(job.metrics)) if event == "progress" else None)
    still = run(engine, "edit", {"image": image, "direction": 1, "amount": 0.0, "invert_steps": 10}).result
    assert progress and "inversion_rmse" in progress[-1]
    assert still.metrics["inversion_rmse"] >= 0 and "inversion error" in still.text
    assert np.array_equal(still.images[0], still.images[1])
    for direction in (1, 3):
        moved = run(engine, "edit", {"image": image, "direction": direction, "amount": 3.0, "invert_steps": 10}).result
        assert not np.array_equal(moved.images[0], still.images[0])
        model = loaded(engine)
        step = moved.latents[0] - still.latents[0]
        assert np.allclose(step, 3.0 * float(model.direction_scales[direction - 1])
                           * model.directions[direction - 1].numpy(), atol=1e-5)
    with pytest.raises(AssertionError, match="direction must be between 1 and 3"):
        run(engine, "edit", {"image": image, "direction": 4, "invert_steps": 0})


def test_directions_follow_the_first_layer_principal_axes():
    model = tiny()
    with torch.no_grad():  # give the first layer a clear spectrum: its principal axes are then W's
        model.generator.first.weight.mul_(torch.tensor([8.0, 4.0, 2.0, 1.0, 1.0, 1.0]))
    model.find_directions(samples=2048)
    weight = model.generator.first.weight.detach()
    left, _, _ = torch.linalg.svd(weight, full_matrices=False)  # (F, 6): the features' principal axes
    for k in range(2):
        shift = weight @ model.directions[k]  # how moving z along direction k moves the features
        assert abs(float(shift @ left[:, k])) / float(shift.norm()) > 0.99
    assert torch.allclose(model.directions.norm(dim=1), torch.ones(3), atol=1e-5)


def test_rename_direction_writes_the_config(engine):
    result = run(engine, "rename_direction", {"direction": 2, "name": "roundness"}).result
    assert "roundness" in result.text
    path = engine.registry.checkpoint("tiny-gan").path / "config.json"
    assert json.loads(path.read_text())["names"] == ["direction 1", "roundness", "direction 3"]
    image = np.full((SIZE, SIZE, 3), 200, np.uint8)
    edited = run(engine, "edit", {"image": image, "direction": 2, "invert_steps": 0}).result
    assert "'roundness'" in edited.text
    names, mean, directions, scales = loaded(engine).latent_basis()  # the explorer's named sliders
    assert names == ["direction 1", "roundness", "direction 3"] and directions.shape == (3, 6) and scales.shape == (3,)
    assert load(path.parent).direction_names[1] == "roundness"


def test_interpolate_between_seeds_and_inverted_images(engine):
    result = run(engine, "interpolate", {"seed_a": 1, "seed_b": 2, "steps": 5}).result
    ends = [np.random.default_rng(s).standard_normal(6).astype(np.float32) for s in (1, 2)]
    assert len(result.images) == 5 and np.allclose(result.latents[0], ends[0]) and np.allclose(result.latents[-1], ends[1])
    norms = [np.linalg.norm(z) for z in result.latents]
    assert min(norms[1:-1]) > 0.9 * min(norms[0], norms[-1])  # spherical: no dip towards the origin
    image = np.full((SIZE, SIZE, 3), 90, np.uint8)
    inverted = run(engine, "interpolate", {"image_a": image, "seed_b": 2, "steps": 3, "invert_steps": 5}).result
    assert len(inverted.images) == 3


def test_latent_model_protocol(engine):
    model = loaded(engine)
    assert isinstance(model, LatentModel)
    z = model.encode_images([np.full((SIZE, SIZE, 3), 30, np.uint8)] * 2, steps=3)
    assert z.shape == (2, 6) and z.dtype == np.float32
    assert model.decode_latents(z)[0].shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize("size", [SIZE, 64])
def test_train_yields_both_losses_and_previews_then_loads(tmp_path, size):
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(8):
        media.save_image(folder / f"{i}.png", np.full((size, size, 3), 30 * i, np.uint8))
    engine = Engine(Registry(model_roots=[(tmp_path / "models", "user")]), device="cpu")
    previews = []
    engine.subscribe(lambda event, job: previews.append(job.preview) if event == "progress" and job.preview is not None
                     else None)
    params = {"data": str(folder), "test_data": str(folder), "size": size, "latent_dim": 4, "width": 4, "directions": 2, "steps": 4,
              "batch_size": 4, "out": str(tmp_path / "models" / "gan"), "sample_every": 2, "checkpoint_every": 2}
    job = run(engine, "train", params, model=None)
    assert {"d_loss", "g_loss"} <= set(job.result.metrics)
    assert np.isfinite(json.loads((tmp_path / "models" / "gan" / "config.json").read_text())["metrics"]["kernel_distance"])
    assert previews and previews[0].ndim == 3
    model = load(tmp_path / "models" / "gan")
    assert model.decode(torch.randn(1, 4)).shape == (1, 3, size, size)
    assert model.directions.abs().sum() > 0
    config = json.loads((tmp_path / "models" / "gan" / "config.json").read_text())
    assert config["names"] == ["direction 1", "direction 2"]
    assert (tmp_path / "models" / "gan" / "directions.png").exists()
