"""The diffusion family: samplers, DDIM inversion, RePaint, the checkpoint layout, and every action
through the engine on tiny checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDPMPipeline, UNet2DModel

from plugins.diffusion.model import (
    DEFAULT_SAMPLER,
    DEFAULT_STEPS,
    UNET_FOLDER,
    UNET_WEIGHTS,
    DiffusionConfig,
    DiffusionModel,
    drive,
    load,
    save,
)
from studio.core import media
from studio.core.checkpoints import file_sha256, open_checkpoint
from studio.core.engine import Engine, Job, JobState
from studio.core.latent import LatentModel
from studio.core.paths import shipped_models_dir
from studio.core.registry import Registry
from studio.core.sample_quality import kernel_distance

PLUGIN = "studio.diffusion"
TINY = DiffusionConfig(size=16, block_out_channels=(8, 16), layers_per_block=1)


@pytest.fixture(autouse=True)
def one_thread():
    """Two busy-waiting OpenMP threads on a shared 2-core machine run tiny models many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model(config: DiffusionConfig = TINY, seed: int = 0) -> DiffusionModel:
    torch.manual_seed(seed)
    return DiffusionModel(config, config.build_unet())


@pytest.fixture
def models_dir(tmp_path):
    root = tmp_path / "models"
    save(tiny_model(), root / "tiny-diffusion", {"id": "tiny-diffusion", "plugin": PLUGIN, "family": "diffusion"})
    conditional = DiffusionConfig(size=16, block_out_channels=(8, 16), num_classes=3, class_names=["a", "b", "c"])
    save(tiny_model(conditional), root / "tiny-conditional",
         {"id": "tiny-conditional", "plugin": PLUGIN, "family": "diffusion"})
    return root


@pytest.fixture
def engine(models_dir):
    return Engine(Registry(model_roots=[(models_dir, "user")]), device="cpu")


def run(engine: Engine, action: str, params: dict, model: str | None = "tiny-diffusion", seed: int = 0) -> Job:
    job = engine.execute(Job(PLUGIN, action, model, params, seed=seed, device="cpu"))
    assert job.state == JobState.DONE, job.error + job.details
    return job


def emoji(size: int = 16) -> np.ndarray:
    """A yellow face on white: something with structure for the edit tests."""
    y, x = np.mgrid[:size, :size]
    image = np.full((size, size, 3), 255, np.uint8)
    image[(y - size / 2) ** 2 + (x - size / 2) ** 2 < (size / 2.5) ** 2] = (250, 200, 40)
    image[size // 3, size // 3] = image[size // 3, 2 * size // 3] = (40, 30, 20)
    return image


# samplers --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler,steps", [("ddpm", 12), ("ddim", 6), ("dpm++", 6), ("unipc", 6)])
def test_each_sampler_gives_the_right_shape_and_is_deterministic_by_seed(sampler, steps):
    model = tiny_model()
    first = model.sample(2, torch.Generator().manual_seed(5), sampler, steps)
    again = model.sample(2, torch.Generator().manual_seed(5), sampler, steps)
    other = model.sample(2, torch.Generator().manual_seed(6), sampler, steps)
    assert first.shape == (2, 3, 16, 16)
    assert torch.isfinite(first).all() and first.abs().max() <= 1.0
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


class Oracle(torch.nn.Module):
    """A perfect network for a one-image data set: it outputs the exact v (or eps) that points at ``target``."""

    def __init__(self, target: torch.Tensor, alphas_cumprod: torch.Tensor, prediction: str) -> None:
        super().__init__()
        self.target, self.alphas_cumprod, self.prediction = target, alphas_cumprod, prediction

    def forward(self, x, t, class_labels=None):
        abar = self.alphas_cumprod[t.long()].view(-1, 1, 1, 1)
        eps = (x - abar.sqrt() * self.target) / (1 - abar).sqrt()
        out = eps if self.prediction == "epsilon" else abar.sqrt() * eps - (1 - abar).sqrt() * self.target
        return type("Output", (), {"sample": out})()


@pytest.mark.parametrize("prediction", ["v_prediction", "epsilon"])
@pytest.mark.parametrize("sampler,steps", [("ddpm", 50), ("ddim", 10), ("dpm++", 10), ("unipc", 10)])
def test_every_sampler_lands_on_the_image_a_perfect_network_points_at(sampler, steps, prediction):
    config = DiffusionConfig(size=16, block_out_channels=(8, 16), prediction=prediction)
    model = tiny_model(config)
    target = model.to_tensor([emoji()])
    model.unet = Oracle(target, model.alphas_cumprod, prediction)
    x = model.sample(1, torch.Generator().manual_seed(0), sampler, steps)
    assert float((x - target).abs().max()) < 0.02
    if prediction == "v_prediction":  # eps from v is exact even at t = 999, where abar ~ 2e-9
        noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(1))
        x_t = model.alphas_cumprod[999].sqrt() * target + (1 - model.alphas_cumprod[999]).sqrt() * noise
        assert torch.allclose(model.predict_noise(x_t, 999), noise, atol=1e-4)


def test_sampling_streams_one_x0_preview_per_network_call():
    model = tiny_model()
    steps = model.sample_steps(model.noise(1, torch.Generator().manual_seed(0)), "unipc", 7)
    seen = []
    while True:
        try:
            step, total, preview = next(steps)
        except StopIteration as stop:
            final = stop.value
            break
        seen.append((step, total))
        assert preview.shape == (1, 3, 16, 16) and preview.abs().max() <= 1.0
    assert seen == [(i, 7) for i in range(1, 8)]
    assert final.shape == (1, 3, 16, 16)


def test_class_conditional_guidance_changes_the_sample_and_rejects_unknown_labels():
    model = tiny_model(DiffusionConfig(size=16, block_out_channels=(8, 16), num_classes=3))
    plain = model.sample(1, torch.Generator().manual_seed(1), "ddim", 4, label=2, guidance=1.0)
    guided = model.sample(1, torch.Generator().manual_seed(1), "ddim", 4, label=2, guidance=3.0)
    assert not torch.equal(plain, guided)
    with pytest.raises(ValueError, match="below 3"):
        model.labels(1, 3)


def test_inpainting_keeps_every_pixel_outside_the_mask():
    model = tiny_model()
    x0 = model.to_tensor([emoji()])
    keep = torch.ones(1, 1, 16, 16)
    keep[..., 4:12, 6:14] = 0
    out = drive(model.inpaint_steps(x0, keep, steps=10, jump_length=3, resamples=2,
                                    generator=torch.Generator().manual_seed(0)))
    assert torch.equal(out * keep, x0 * keep)
    assert (out - x0).abs()[..., 4:12, 6:14].mean() > 0.05  # the hole was really repainted


@pytest.fixture(scope="module")
def shipped():
    model = load(shipped_models_dir() / "diffusion-emoji32")
    original = media.load_image(sorted((shipped_models_dir().parent / "data" / "emoji-32" / "test").glob("*.png"))[0])
    return model, original


def test_shipped_model_ddim_inversion_regenerates_the_image(shipped):
    model, original = shipped
    x0 = model.to_tensor([original])
    z = model.encode(x0, steps=50)
    again = model.decode(z, steps=50)
    assert float(z.std()) > 0.5  # a noise-like latent, not the image itself
    assert float((again - x0).abs().mean()) < 0.1  # mean error under 5% of the [-1, 1] range
    assert isinstance(model, LatentModel)


def test_shipped_model_img2img_changes_more_with_more_strength(shipped):
    model, original = shipped
    x0 = model.to_tensor([original])
    changes = []
    for strength in (0.2, 0.5, 1.0):
        x = model.sample_steps(x0, "dpm++", 20, generator=torch.Generator().manual_seed(0), strength=strength)
        changes.append(float((drive(x) - x0).abs().mean()))
    assert changes[0] < changes[1] < changes[2]


def test_kernel_distance_is_near_zero_for_one_distribution_and_large_across_two():
    rng = np.random.default_rng(0)
    dark = [rng.integers(0, 100, (16, 16, 3), dtype=np.uint8) for _ in range(60)]
    dark2 = [rng.integers(0, 100, (16, 16, 3), dtype=np.uint8) for _ in range(60)]
    bright = [rng.integers(150, 256, (16, 16, 3), dtype=np.uint8) for _ in range(60)]
    assert abs(kernel_distance(dark, dark2)) < 5.0
    assert kernel_distance(dark, bright) > 100.0


# checkpoints --------------------------------------------------------------------------------------------
def test_checkpoint_is_a_diffusers_folder_and_the_registry_finds_it(models_dir):
    folder = models_dir / "tiny-diffusion"
    ckpt = open_checkpoint(folder)
    assert ckpt.plugin == PLUGIN and ckpt.sha256 == file_sha256(folder / UNET_FOLDER / UNET_WEIGHTS)
    unet = UNet2DModel.from_pretrained(folder, subfolder=UNET_FOLDER, local_files_only=True, use_safetensors=True)
    assert sum(p.numel() for p in unet.parameters()) == sum(p.numel() for p in tiny_model().unet.parameters())
    pipe = DDPMPipeline.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    images = pipe(batch_size=1, num_inference_steps=2, output_type="np").images
    assert images.shape == (1, 16, 16, 3)
    registry = Registry(model_roots=[(models_dir, "user")])
    assert {c.id for c in registry.checkpoints_for(PLUGIN)} == {"tiny-diffusion", "tiny-conditional"}
    loaded = load(folder)
    assert torch.allclose(loaded.sample(1, torch.Generator().manual_seed(0), "ddim", 3),
                          tiny_model().sample(1, torch.Generator().manual_seed(0), "ddim", 3), atol=1e-4)


# actions through the engine ---------------------------------------------------------------------------------
def test_generate_streams_previews_and_returns_images_with_their_noise(engine):
    previews = []
    engine.subscribe(lambda event, job: previews.append(job.preview) if event == "progress" else None)
    job = run(engine, "generate", {"count": 3, "sampler": "dpm++", "steps": 6})
    assert len(job.result.images) == 3 and job.result.images[0].shape == (16, 16, 3)
    assert job.result.images[0].dtype == np.uint8
    assert len(job.result.latents) == 3 and job.result.latents[0].shape == (3 * 16 * 16,)
    assert job.step == 6 and previews[-1] is not None
    again = run(engine, "generate", {"count": 3, "sampler": "dpm++", "steps": 6})
    assert all(np.array_equal(a, b) for a, b in zip(job.result.images, again.result.images))
    wide = run(engine, "generate", {"count": 1, "steps": 3, "width": 24, "height": 16})
    assert wide.result.images[0].shape == (16, 24, 3)


def test_cancel_stops_generation_within_one_step(engine):
    steps_seen = []

    def cancel_at_two(event, job):
        if event == "progress":
            steps_seen.append(job.step)
            if job.step == 2:
                job.cancel()

    engine.subscribe(cancel_at_two)
    job = engine.execute(Job(PLUGIN, "generate", "tiny-diffusion", {"count": 1, "sampler": "ddpm", "steps": 50},
                             seed=0, device="cpu"))
    assert job.state == JobState.CANCELLED
    assert steps_seen == [1, 2]


def test_edit_img2img_strength_and_inpaint_through_the_engine(engine):
    image = emoji()
    same = run(engine, "edit", {"image": image, "strength": 0.0})
    assert np.array_equal(same.result.images[0], image)
    light = run(engine, "edit", {"image": image, "strength": 0.2, "steps": 10})
    heavy = run(engine, "edit", {"image": image, "strength": 1.0, "steps": 10})
    assert (light.total, heavy.total) == (2, 10)  # SDEdit runs only the last `strength` of the steps
    assert not np.array_equal(light.result.images[0], image)
    mask = np.zeros((16, 16, 3), np.uint8)
    mask[2:9, 3:12] = 255  # white = repaint, as the canvas paints it
    painted = run(engine, "edit", {"image": image, "mask": mask, "steps": 8, "jump_length": 2, "resamples": 2})
    out = painted.result.images[0]
    outside = mask[..., 0] < 128
    assert np.array_equal(out[outside], image[outside])
    assert not np.array_equal(out[~outside], image[~outside])
    assert painted.result.metrics["repainted_fraction"] == pytest.approx(63 / 256, abs=1e-3)


def test_edit_with_a_bigger_image_and_mask_works_at_the_model_size(engine):
    big = np.kron(emoji(), np.ones((4, 4, 1), np.uint8))  # 64 x 64
    mask = np.zeros((64, 64), np.uint8)
    mask[:32] = 255
    job = run(engine, "edit", {"image": big, "mask": mask[..., None], "steps": 4, "jump_length": 2, "resamples": 1})
    out, small = job.result.images[0], media.fit_square(big, 16)
    assert out.shape == (16, 16, 3)
    assert np.array_equal(out[8:], small[8:])


def test_interpolate_between_seeds_and_between_images(engine):
    seeds = run(engine, "interpolate", {"seed_a": 1, "seed_b": 2, "steps": 4, "sampler_steps": 5})
    assert len(seeds.result.images) == 4 and len(seeds.result.latents) == 4
    start = torch.randn((3, 16, 16), generator=torch.Generator().manual_seed(1)).reshape(-1).numpy()
    assert np.allclose(seeds.result.latents[0], start, atol=1e-5)
    ends = run(engine, "generate", {"count": 1, "sampler": "ddim", "steps": 5}, seed=1)
    model = tiny_model()
    frame0 = model.to_images(model.decode(torch.from_numpy(start).reshape(1, 3, 16, 16), steps=5))[0]
    assert np.abs(frame0.astype(int) - seeds.result.images[0]).max() <= 1
    assert ends.result.images[0].shape == seeds.result.images[0].shape
    images = run(engine, "interpolate", {"image_a": emoji(), "image_b": emoji()[::-1].copy(), "steps": 3,
                                         "sampler_steps": 4})
    assert len(images.result.images) == 3 and images.step == images.total == 8


def test_class_conditional_generate_with_a_label(engine):
    job = run(engine, "generate", {"count": 2, "steps": 4, "label": 1, "guidance": 2.0}, model="tiny-conditional")
    assert len(job.result.images) == 2
    bad = engine.execute(Job(PLUGIN, "generate", "tiny-conditional", {"label": 7}, seed=0, device="cpu"))
    assert bad.state == JobState.FAILED and bad.error_kind == "input" and "below 3" in bad.error


@pytest.mark.parametrize("params,message", [
    ({"prompt": "a cat"}, "without prompts"),
    ({"width": 21}, "multiples of 2"),
])
def test_bad_generate_parameters_are_one_sentence_input_errors(engine, params, message):
    job = engine.execute(Job(PLUGIN, "generate", "tiny-diffusion", params, seed=0, device="cpu"))
    assert job.state == JobState.FAILED and job.error_kind == "input" and message in job.error


def test_train_action_writes_a_loadable_model(tmp_path):
    data = tmp_path / "data"
    for label, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (data / label).mkdir(parents=True)
        for i in range(4):
            image = np.full((16, 16, 3), 255, np.uint8)
            image[4 + i : 12, 4:12] = colour
            media.save_image(data / label / f"{i}.png", image)
    engine = Engine(Registry(model_roots=[(tmp_path / "models", "user")]), device="cpu")
    out = tmp_path / "models" / "trained"
    job = run(engine, "train", {"data": str(data), "test_data": str(data / "red"), "size": 16, "width": 8,
                                "levels": 2, "steps": 3, "batch_size": 4, "out": str(out), "name": "trained"},
              model=None)
    ckpt = open_checkpoint(out)
    assert ckpt.config["model"]["num_classes"] == 2 and ckpt.config["model"]["class_names"] == ["blue", "red"]
    assert f"kernel_distance_{DEFAULT_SAMPLER}_{DEFAULT_STEPS}" in ckpt.config["metrics"]
    assert (out / "samples.png").exists() and "![samples](samples.png)" in ckpt.card()
    assert ckpt.sha256 in ckpt.card() and "studio train diffusion" in ckpt.card()
    assert job.result.model_dir == out
    engine.registry.checkpoints(refresh=True)
    made = run(engine, "generate", {"count": 1, "steps": 3, "label": 0}, model="trained")
    assert made.result.images[0].shape == (16, 16, 3)
