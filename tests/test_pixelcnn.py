"""Gated PixelCNN: causality of the receptive field (no future pixels, no blind spot), the cached
sampler against the full forward, exact per-pixel likelihoods, completion, interpolation, training,
all through the engine on tiny checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from plugins.pixelcnn.actions import after_known, marginal_pixel_nll
from plugins.pixelcnn.model import PixelCNN, PixelCNNConfig, load
from studio.core import media
from studio.core.checkpoints import save_checkpoint
from studio.core.engine import Engine, Job, JobState
from studio.core.registry import Registry

SIZE = 5


def tiny(channels: int = 1, classes: int = 3, layers: int = 3, kernel: int = 3, size: int = SIZE) -> PixelCNN:
    torch.manual_seed(0)
    model = PixelCNN(PixelCNNConfig(size=size, channels=channels, classes=classes, width=6, layers=layers,
                                    kernel=kernel, embed_dim=4, head=32, class_names=[f"c{i}" for i in range(classes)]))
    with torch.no_grad():  # larger random weights, so no dependence hides under a vanishing gradient
        for p in model.parameters():
            p.mul_(2.0)
    return model.eval()


@pytest.mark.parametrize("channels", [1, 3])
def test_no_output_sees_its_own_or_a_later_pixel_and_there_is_no_blind_spot(channels):
    model = tiny(channels=channels)
    reach = model.config.reach
    x = torch.rand(1, channels, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    x.requires_grad_(True)
    logits = model.logits_of_unit(x, model.class_embedding(torch.tensor([1])))[0]  # (256, c, s, s)
    rows, cols = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    order = rows * SIZE + cols  # raster position of every pixel
    for row in range(SIZE):
        for col in range(SIZE):
            future = order > row * SIZE + col
            # the vertical stack's cone above (reach rows, reach columns each side) and reach pixels to the left
            seen = ((rows < row) & (row - rows <= reach) & ((cols - col).abs() <= reach)) | (
                (rows == row) & (cols < col) & (col - cols <= reach))
            for channel in range(channels):
                (grad,) = torch.autograd.grad(logits[:, channel, row, col].sum(), x, retain_graph=True)
                grad = grad[0].abs()  # (c, s, s)
                assert not grad[:, future].any(), f"pixel {(row, col)} sees a later pixel"
                assert not grad[channel:, row, col].any(), f"pixel {(row, col)} channel {channel} sees itself"
                if channel:
                    assert grad[:channel, row, col].min() > 0
                if seen.any():
                    assert grad[:, seen].min() > 0, f"blind spot for pixel {(row, col)}"


@pytest.mark.parametrize("channels", [1, 3])
def test_cached_sampler_matches_the_full_forward(channels):
    model = tiny(channels=channels, layers=2, kernel=5)
    embedding = model.class_embedding(torch.tensor([0, 2]))
    values = torch.randint(0, 256, (2, channels, SIZE, SIZE), generator=torch.Generator().manual_seed(3))
    full = model.logits(values, embedding)
    biases = model._biases(embedding)
    for row in range(SIZE):
        context = model._row_context(values, row, biases)
        for col in range(SIZE):
            features = model._pixel_features(values, row, col, context, biases)
            cached = model._head(features, values[:, :, row : row + 1, col : col + 1].float() / 127.5 - 1)
            assert torch.allclose(cached[..., 0, 0], full[..., row, col], atol=1e-4)
    *_, (_, fast) = model.sample(2, embedding, 1.0, torch.Generator().manual_seed(5))
    naive = model.sample_naive(2, embedding, 1.0, torch.Generator().manual_seed(5))
    assert fast.shape == (2, channels, SIZE, SIZE)
    assert torch.equal(fast, naive)


def test_per_pixel_nll_sums_to_the_image_nll_and_matches_the_chain_rule():
    model = tiny(channels=3)
    values = torch.randint(0, 256, (2, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(4))
    embedding = model.class_embedding(torch.tensor([1, 2]))
    with torch.no_grad():
        per_pixel = model.pixel_nll(values, embedding)
        bits = model.bits_per_dim(values, embedding)
        chain = torch.zeros(2)  # -log p(x) value by value, each from the cached sampler's conditionals
        biases = model._biases(embedding)
        for row in range(SIZE):
            context = model._row_context(values, row, biases)
            for col in range(SIZE):
                features = model._pixel_features(values, row, col, context, biases)
                pixel = values[:, :, row : row + 1, col : col + 1]
                logits = model._head(features, pixel.float() / 127.5 - 1)[:, :, :, 0, 0]
                chain -= torch.log_softmax(logits, 1).gather(1, pixel[:, None, :, 0, 0]).sum((1, 2))
    assert per_pixel.shape == (2, SIZE, SIZE)
    assert torch.allclose(per_pixel.flatten(1).sum(1), bits * 3 * SIZE * SIZE * math.log(2.0), rtol=1e-5)
    assert torch.allclose(per_pixel.flatten(1).sum(1), chain, rtol=1e-4)


# actions through the engine ----------------------------------------------------------------------
@pytest.fixture
def engine(tmp_path):
    model = tiny(channels=1, classes=3, layers=2)
    config = {"id": "tiny-pixelcnn", "plugin": "studio.pixelcnn", "family": "pixelcnn", "model": model.config_dict()}
    save_checkpoint(tmp_path / "models" / "tiny-pixelcnn", model.state_dict(), config)
    return Engine(Registry(model_roots=[(tmp_path / "models", "user")]), device="cpu")


def run(engine: Engine, action: str, params: dict, seed: int = 0, model: str | None = "tiny-pixelcnn") -> Job:
    job = engine.execute(Job("studio.pixelcnn", action, model, params, seed=seed, device="cpu"))
    assert job.state == JobState.DONE, job.error + job.details
    return job


def digit_like(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 1)).astype(np.uint8)


def test_generate_is_deterministic_by_seed_and_fills_in_row_by_row(engine):
    previews = []
    engine.subscribe(lambda event, job: previews.append(job.preview.copy()) if event == "progress" else None)
    a = run(engine, "generate", {"count": 2, "class_index": 1, "temperature": 0.8}, seed=3).result
    rows = len(previews)
    b = run(engine, "generate", {"count": 2, "class_index": 1, "temperature": 0.8}, seed=3).result
    c = run(engine, "generate", {"count": 2, "class_index": 1, "temperature": 0.8}, seed=4).result
    assert a.images[0].shape == (SIZE, SIZE, 1) and a.images[0].dtype == np.uint8
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
    assert not all(np.array_equal(x, y) for x, y in zip(a.images, c.images))
    assert rows == SIZE
    first = previews[0][2 : 2 + SIZE, 2 : 2 + SIZE, 0]  # first image of the grid after row 0
    assert (first[1:] == 128).all() and np.array_equal(first[0], a.images[0][0, :, 0])
    with pytest.raises(AssertionError, match="class must be below 3"):
        run(engine, "generate", {"class_index": 3})


def test_completion_leaves_known_pixels_untouched(engine, tmp_path):
    image = digit_like()
    lower = run(engine, "edit", {"image": image, "count": 3, "class_index": 0}, seed=1).result
    assert lower.metrics["exact"] and lower.text.startswith("exact")
    for completed in lower.images:
        assert np.array_equal(completed[: SIZE // 2], image[: SIZE // 2])
    assert not all(np.array_equal(c[SIZE // 2 :], image[SIZE // 2 :]) for c in lower.images)

    mask = np.zeros((SIZE, SIZE, 1), np.uint8)
    mask[1:3, 2:4] = 255  # a hole with known pixels after it
    media.save_image(tmp_path / "mask.png", mask)
    hole = run(engine, "edit", {"image": image, "mask": str(tmp_path / "mask.png"), "count": 2, "passes": 2}).result
    assert not hole.metrics["exact"] and hole.text.startswith("approximate") and hole.metrics["masked_pixels"] == 4
    known = mask[..., 0] == 0
    for completed in hole.images:
        assert np.array_equal(completed[known], image[known])


def test_after_known_tells_raster_suffixes_apart():
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[2, 1:] = True
    mask[3] = True
    assert after_known(mask)
    mask[3, 0] = False
    assert not after_known(mask)


def test_likelihood_heatmap_and_bits_per_dim(engine):
    image = digit_like(2)
    result = run(engine, "likelihood", {"image": image, "class_index": 2}).result
    model = load(engine.registry.checkpoint("tiny-pixelcnn").path)
    values = model.from_images([image])
    with torch.no_grad():
        expected = float(model.bits_per_dim(values, model.class_embedding(torch.tensor([2]))))
    assert result.metrics["bits_per_dim"] == pytest.approx(expected, abs=1e-4)
    heat, overlay = result.images
    assert heat.shape == (SIZE, SIZE, 3) and overlay.shape == (SIZE, SIZE, 3)
    with torch.no_grad():
        per_pixel = model.pixel_nll(values, model.class_embedding(torch.tensor([2])))[0]
    hot, cold = np.unravel_index(int(per_pixel.argmax()), per_pixel.shape), np.unravel_index(
        int(per_pixel.argmin()), per_pixel.shape)
    assert heat[hot].astype(int).sum() > heat[cold].astype(int).sum()  # surprising pixels are brighter


def test_likelihood_with_the_class_summed_out_is_exact_per_pixel(engine):
    image = digit_like(3)
    result = run(engine, "likelihood", {"image": image}).result
    model = load(engine.registry.checkpoint("tiny-pixelcnn").path)
    values = model.from_images([image])
    with torch.no_grad():  # log p(x) = log mean_y p(x | y), summed over the image at once
        per_class = torch.stack([model.pixel_nll(values, model.class_embedding(torch.tensor([y]))).sum()
                                 for y in range(3)])
        nll = -(torch.logsumexp(-per_class, 0) - math.log(3))
        per_pixel = marginal_pixel_nll(model, values)
    assert float(per_pixel.sum()) == pytest.approx(float(nll), rel=1e-5)
    assert result.metrics["nll_nats"] == pytest.approx(float(nll), rel=1e-4)
    assert result.metrics["bits_per_dim"] == pytest.approx(float(nll) / (SIZE * SIZE * math.log(2)), abs=1e-4)
    assert "summed out" in result.text


def test_interpolate_classes_as_a_strip_with_the_same_seed(engine):
    result = run(engine, "interpolate", {"class_a": 0, "class_b": 2, "steps": 3}, seed=7).result
    strip, *frames = result.images
    assert len(frames) == 3 and strip.shape[1] == 3 * (SIZE + 2) + 2
    alone = run(engine, "generate", {"count": 1, "class_index": 2}, seed=7).result.images[0]
    assert np.array_equal(frames[-1], alone)  # the last frame is class b's sample with the same seed


def test_train_on_class_folders_then_load(tmp_path):
    for split, per in (("train", 4), ("test", 2)):
        for digit in ("0", "1"):
            folder = tmp_path / split / digit
            folder.mkdir(parents=True)
            for i in range(per):
                value = 40 if digit == "0" else 220
                media.save_image(folder / f"{i}.png", np.full((8, 8, 1), value + i, np.uint8))
    engine = Engine(Registry(model_roots=[(tmp_path / "models", "user")]), device="cpu")
    params = {"data": str(tmp_path / "train"), "test_data": str(tmp_path / "test"), "size": 4, "width": 4,
              "layers": 2, "kernel": 3, "steps": 3, "batch_size": 4, "out": str(tmp_path / "models" / "trained"),
              "sample_every": 0, "checkpoint_every": 0}
    job = run(engine, "train", params, model=None)
    assert {"loss", "test_bits_per_dim", "test_bits_per_dim_given_class"} <= set(job.result.metrics)
    model = load(tmp_path / "models" / "trained")
    assert model.config.classes == 2 and model.config.class_names == ["0", "1"]
    card = (tmp_path / "models" / "trained" / "MODEL_CARD.md").read_text()
    assert "3.03 bits/dim" in card and "81.30 nats" in card
