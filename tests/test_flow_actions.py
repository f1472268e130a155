"""Flow actions through the engine on tiny checkpoints: generate, exact edit, interpolate, likelihood,
rank (anomaly detection) and train."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from plugins.flow.model import Flow, FlowConfig, load
from studio.core import media
from studio.core.checkpoints import save_checkpoint
from studio.core.engine import Engine, Job, JobState
from studio.core.registry import Registry

DARK = (20, 24, 28, 32, 36, 40)


def dark_image(value: int, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(-3, 4, (8, 8, 1))
    return np.clip(value + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def engine(tmp_path):
    """A tiny Glow whose ActNorm layers were initialized on dark images (its notion of typical)."""
    torch.manual_seed(0)
    model = Flow(FlowConfig(arch="glow", size=8, channels=1, levels=2, depth=2, hidden=8))
    images = [dark_image(v, i) for i, v in enumerate(DARK * 4)]
    model.initialize(model.from_images(images))
    config = {"id": "tiny-flow", "plugin": "studio.flow", "family": "flow", "model": model.config_dict()}
    save_checkpoint(tmp_path / "models" / "tiny-flow", model.state_dict(), config)
    return Engine(Registry(model_roots=[(tmp_path / "models", "user")]), device="cpu")


def run(engine: Engine, action: str, params: dict, seed: int = 0, model: str | None = "tiny-flow") -> Job:
    job = engine.execute(Job("studio.flow", action, model, params, seed=seed, device="cpu"))
    assert job.state == JobState.DONE, job.error + job.details
    return job


def loaded(engine: Engine) -> Flow:
    return engine.models.get(engine.registry, engine.registry.checkpoint("tiny-flow"), "cpu")


def test_generate_shapes_and_determinism_by_seed(engine):
    a = run(engine, "generate", {"count": 2, "temperature": 0.7}, seed=9).result
    b = run(engine, "generate", {"count": 2, "temperature": 0.7}, seed=9).result
    c = run(engine, "generate", {"count": 2, "temperature": 0.7}, seed=10).result
    assert a.images[0].shape == (8, 8, 1) and a.images[0].dtype == np.uint8 and a.latents[0].shape == (64,)
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
    assert not np.array_equal(a.images[0], c.images[0])


def test_unedited_round_trip_returns_the_input_and_an_axis_moves_it(engine):
    image = dark_image(30, seed=5)
    same = run(engine, "edit", {"image": image, "amount": 0.0}).result
    assert np.array_equal(same.images[0], image)
    model = loaded(engine)
    with torch.no_grad():
        x = (model.from_images([image]) + 0.5) / 256.0
        assert (model.decode(model.encode(x)) - x).abs().max() < 1e-4
    moved = run(engine, "edit", {"image": image, "axis": 10, "amount": 3.0}).result
    assert np.isclose(moved.latents[0][10] - same.latents[0][10], 3.0, atol=1e-5)
    assert not np.array_equal(moved.images[0], image)


def test_edit_by_attribute_direction(engine, tmp_path):
    for name, values in (("bright", (200, 210)), ("dark", (20, 30))):
        (tmp_path / name).mkdir()
        for value in values:
            media.save_image(tmp_path / name / f"{value}.png", np.full((8, 8, 1), value, np.uint8))
    image = dark_image(30)
    params = {"image": image, "with_images": str(tmp_path / "bright"), "without_images": str(tmp_path / "dark")}
    result = run(engine, "edit", params).result
    model = loaded(engine)
    bright = model.encode_images([np.full((8, 8, 1), v, np.uint8) for v in (200, 210)]).mean(0)
    dark = model.encode_images([np.full((8, 8, 1), v, np.uint8) for v in (20, 30)]).mean(0)
    assert np.allclose(result.latents[0], model.encode_images([image])[0] + bright - dark, atol=1e-4)
    assert result.images[0].mean() > image.mean() + 50


def test_interpolate_starts_and_ends_exactly_on_the_images(engine):
    a, b = dark_image(20, 1), dark_image(40, 2)
    result = run(engine, "interpolate", {"image_a": a, "image_b": b, "steps": 6, "mode": "slerp"}).result
    assert len(result.images) == 6
    assert np.array_equal(result.images[0], a) and np.array_equal(result.images[-1], b)
    seeded = run(engine, "interpolate", {"seed_a": 1, "seed_b": 2, "steps": 3, "temperature": 0.5}).result
    assert np.allclose(seeded.latents[0], 0.5 * np.random.default_rng(1).standard_normal(64), atol=1e-6)


def test_likelihood_is_deterministic_and_typical_images_score_lower(engine):
    typical = run(engine, "likelihood", {"image": dark_image(30)}).result.metrics["bits_per_dim"]
    again = run(engine, "likelihood", {"image": dark_image(30)}, seed=4).result.metrics["bits_per_dim"]
    noise = np.random.default_rng(0).integers(0, 256, (8, 8, 1), dtype=np.uint8)
    surprising = run(engine, "likelihood", {"image": noise}).result.metrics["bits_per_dim"]
    assert typical == again and 0 < typical < surprising
    assert typical == pytest.approx(float(loaded(engine).bits_per_dim_images([dark_image(30)])[0]), abs=1e-4)


def test_rank_orders_a_folder_and_returns_the_least_typical(engine, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, value in enumerate(DARK[:4]):
        media.save_image(folder / f"digit{i}.png", dark_image(value, i))
    rng = np.random.default_rng(3)
    for i in range(2):
        media.save_image(folder / f"noise{i}.png", rng.integers(0, 256, (8, 8, 1), dtype=np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG broken")
    result = run(engine, "rank", {"folder": str(folder), "show": 2}).result
    ranking = result.metrics["ranking"]
    names = [path.rsplit("/", 1)[-1] for path, _ in ranking]
    scores = [bpd for _, bpd in ranking]
    assert len(ranking) == 6 and scores == sorted(scores)
    assert set(names[-2:]) == {"noise0.png", "noise1.png"}
    assert len(result.images) == 2 and np.array_equal(result.images[0], media.load_image(ranking[-1][0]))
    assert [p.rsplit("/", 1)[-1] for p, _ in result.metrics["skipped"]] == ["broken.png"]


def test_train_action_writes_a_checkpoint_with_held_out_bits_per_dim(engine, tmp_path):
    root = tmp_path / "mnist-mini"  # MNIST data: the card puts the published numbers beside ours
    for split, count in (("train", 8), ("test", 2)):
        (root / split).mkdir(parents=True)
        for i in range(count):
            media.save_image(root / split / f"{i}.png", dark_image(DARK[i % 6], i))
    out = tmp_path / "out"
    params = {"data": str(root / "train"), "test_data": str(root / "test"), "arch": "realnvp", "size": 8,
              "color": "gray", "levels": 2, "depth": 1, "hidden": 4, "preprocess": "logit", "steps": 3,
              "batch_size": 4, "name": "mini", "out": str(out)}
    job = run(engine, "train", params, model=None)
    assert {"loss", "test_bits_per_dim", "test_bits_per_dim_midpoint"} <= set(job.result.metrics)
    config = json.loads((out / "config.json").read_text())
    assert config["plugin"] == "studio.flow" and config["model"]["arch"] == "realnvp"
    card = (out / "MODEL_CARD.md").read_text()
    assert "RealNVP 1.06" in card and "Glow 1.05" in card and "studio train flow" in card
    model = load(out)
    assert model.config.preprocess == "logit" and len(model.decode_latents(np.zeros((2, 64), np.float32))) == 2
    bad = engine.execute(Job("studio.flow", "train", None, {**params, "levels": 5}, device="cpu"))
    assert bad.state == JobState.FAILED and "cannot be squeezed" in bad.error and bad.error_kind == "input"
