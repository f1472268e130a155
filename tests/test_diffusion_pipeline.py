"""Bring your own pipeline: a tiny, randomly initialised Stable Diffusion pipeline built here from real
components (UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTokenizer), saved as safetensors,
imported and run through the engine with networking made impossible."""

from __future__ import annotations

import json
import socket
import string

import numpy as np
import pytest
import torch

from studio.core.checkpoints import open_checkpoint
from studio.core.engine import Engine, Job, JobState
from studio.core.registry import Registry

PLUGIN = "studio.diffusion"


@pytest.fixture(autouse=True)
def one_thread():
    """Two busy-waiting OpenMP threads on a shared 2-core machine run tiny models many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build_tiny_stable_diffusion(folder, safe_serialization: bool = True) -> None:
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    chars = list(string.ascii_lowercase) + list("0123456789.,!-'")
    vocab = ["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars), "ca", "cat</w>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\nc a\nca t</w>\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16)
    (folder / "vocab.json").unlink()
    (folder / "merges.txt").unlink()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
        max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=16))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(8, 16), layers_per_block=1, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=4)
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=safe_serialization)


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipelines") / "tiny-sd"
    build_tiny_stable_diffusion(folder)
    return folder


@pytest.fixture
def offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("networking is disabled in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)


@pytest.fixture
def engine(tmp_path, tiny_sd, offline):
    models = tmp_path / "models"
    engine = Engine(Registry(model_roots=[(models, "user")]), device="cpu")
    job = engine.execute(Job(PLUGIN, "import_pipeline", None, {"folder": str(tiny_sd), "out": str(models / "tiny-sd")},
                             seed=0, device="cpu"))
    assert job.state == JobState.DONE, job.error + job.details
    engine.registry.checkpoints(refresh=True)
    return engine


def run(engine: Engine, action: str, params: dict, seed: int = 0) -> Job:
    job = engine.execute(Job(PLUGIN, action, "tiny-sd", params, seed=seed, device="cpu"))
    assert job.state == JobState.DONE, job.error + job.details
    return job


def picture(size: int = 16) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    return np.stack([x * 255 // size, y * 255 // size, np.full_like(x, 128)], axis=-1).astype(np.uint8)


def test_import_writes_a_checkpoint_the_registry_lists(engine, tiny_sd, tmp_path):
    ckpt = engine.registry.checkpoint("tiny-sd")
    assert ckpt.plugin == PLUGIN and ckpt.config["kind"] == "pipeline"
    assert ckpt.config["pipeline"] == str(tiny_sd.resolve())
    assert ckpt.config["pipeline_class"] == "StableDiffusionPipeline"
    assert ckpt.config["tasks"] == ["text_to_image", "image_to_image", "inpaint"]
    assert ckpt.config["size"] == [16, 16] and len(ckpt.sha256) == 64
    assert not any(p.suffix == ".safetensors" for p in ckpt.path.rglob("*"))  # nothing was copied
    assert open_checkpoint(tmp_path / "models" / "tiny-sd").id == "tiny-sd"


def test_text_to_image_offline_with_previews_and_seed_determinism(engine):
    previews = []
    engine.subscribe(lambda event, job: previews.append(job.preview) if event == "progress" else None)
    params = {"prompt": "a cat", "negative_prompt": "a dog", "guidance": 5.0, "steps": 3, "count": 2}
    job = run(engine, "generate", params, seed=3)
    assert len(job.result.images) == 2 and job.result.images[0].shape == (16, 16, 3)
    assert job.result.images[0].dtype == np.uint8 and job.step == job.total == 3
    assert previews[-1] is not None and previews[-1].shape == (8, 8, 3)
    again = run(engine, "generate", params, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(job.result.images, again.result.images))
    wide = run(engine, "generate", {"prompt": "a cat", "steps": 2, "count": 1, "width": 24, "height": 16})
    assert wide.result.images[0].shape == (16, 24, 3)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm++", "unipc"])
def test_every_sampler_runs_the_imported_pipeline(engine, sampler):
    job = run(engine, "generate", {"prompt": "cat", "sampler": sampler, "steps": 2, "count": 1})
    assert job.result.images[0].shape == (16, 16, 3)


def test_image_to_image_and_inpainting_offline(engine):
    image = picture()
    job = run(engine, "edit", {"image": image, "prompt": "a cat", "strength": 0.5, "steps": 4})
    assert job.result.images[0].shape == (16, 16, 3) and job.total == 2
    mask = np.zeros((16, 16, 3), np.uint8)
    mask[4:12, 2:10] = 255
    painted = run(engine, "edit", {"image": image, "mask": mask, "prompt": "a cat", "steps": 3})
    out = painted.result.images[0]
    keep = mask[..., 0] < 128
    assert np.array_equal(out[keep], image[keep])
    assert not np.array_equal(out[~keep], image[~keep])


def test_interpolating_between_seeds_starts_from_each_seeds_noise(engine):
    job = run(engine, "interpolate", {"prompt": "a cat", "seed_a": 4, "seed_b": 9, "steps": 3, "sampler_steps": 2})
    assert len(job.result.images) == 3
    start = torch.randn((4, 8, 8), generator=torch.Generator().manual_seed(4)).reshape(-1).numpy()
    assert np.allclose(job.result.latents[0], start)
    bad = engine.execute(Job(PLUGIN, "interpolate", "tiny-sd", {"image_a": picture()}, seed=0, device="cpu"))
    assert bad.state == JobState.FAILED and bad.error_kind == "input" and "seeds only" in bad.error


def test_cancel_stops_the_pipeline_within_one_step(engine):
    seen = []

    def cancel_at_one(event, job):
        if event == "progress":
            seen.append(job.step)
            job.cancel()

    engine.subscribe(cancel_at_one)
    job = engine.execute(Job(PLUGIN, "generate", "tiny-sd", {"prompt": "cat", "steps": 30, "count": 1},
                             seed=0, device="cpu"))
    assert job.state == JobState.CANCELLED and seen == [1]


def test_a_folder_without_safetensors_is_refused_in_one_sentence(tmp_path, offline):
    folder = tmp_path / "pickled"
    build_tiny_stable_diffusion(folder, safe_serialization=False)
    engine = Engine(Registry(model_roots=[(tmp_path / "models", "user")]), device="cpu")
    job = engine.execute(Job(PLUGIN, "import_pipeline", None, {"folder": str(folder)}, seed=0, device="cpu"))
    assert job.state == JobState.FAILED and job.error_kind == "input"
    assert "safetensors" in job.error and "\n" not in job.error
    not_a_pipeline = engine.execute(Job(PLUGIN, "import_pipeline", None, {"folder": str(tmp_path)}, seed=0,
                                        device="cpu"))
    assert not_a_pipeline.error_kind == "input" and "model_index.json" in not_a_pipeline.error

