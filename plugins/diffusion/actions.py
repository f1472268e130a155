"""Diffusion actions as generators: generate, edit (SDEdit / RePaint), interpolate, train, import.

Each action works on a trained UNet (``DiffusionModel``) or, through ``plugins.diffusion.pipeline``,
on an imported diffusers pipeline; the loaded model decides which.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plugins.diffusion import pipeline
from plugins.diffusion.model import (
    DEFAULT_SAMPLER,
    DEFAULT_STEPS,
    DiffusionConfig,
    DiffusionModel,
    Steps,
    denoising_loss,
    make_scheduler,
    prepare,
    save,
)
from studio.core import latent, media, training
from studio.core.checkpoints import CARD, Checkpoint, atomic_write_bytes, open_checkpoint
from studio.core.datasets import ImageFolder, load_image_folder
from studio.core.params import ParamError
from studio.core.paths import user_models_dir
from studio.core.plugin import ActionContext, Progress, Result
from studio.core.sample_quality import kernel_distance

PLUGIN_ID = "studio.diffusion"
PREVIEWS = 12  # about this many previews per run, whatever the step count


def stream(steps: Steps, model: DiffusionModel, offset: int = 0, total: int | None = None,
           message: str = "") -> Iterator[Progress]:
    """Drive a sampling loop, yielding Progress every step and a preview of x0 every few steps."""
    while True:
        try:
            step, count, x0 = next(steps)
        except StopIteration as stop:
            return stop.value
        every = max(1, count // PREVIEWS)
        preview = None
        if step % every == 0 or step == count:
            preview = media.grid(model.to_images(x0)) if len(x0) > 1 else model.to_images(x0)[0]
        yield Progress(offset + step, total or count, preview=preview, message=message)


def _unet(ctx: ActionContext) -> DiffusionModel:
    model = ctx.model
    if not isinstance(model, DiffusionModel):
        raise ParamError("this action needs a trained diffusion UNet")
    if ctx.params.get("prompt"):
        raise ParamError(f"{_model_name(ctx)} draws without prompts: clear the prompt, or import a text-to-image pipeline")
    return model


def _model_name(ctx: ActionContext) -> str:
    return ctx.checkpoint.id if ctx.checkpoint is not None else "this model"


def _size(ctx: ActionContext, model: DiffusionModel) -> tuple[int, int]:
    """(height, width): the model's own size unless set; a multiple of the UNet's total downsampling."""
    multiple = 2 ** (len(model.config.block_out_channels) - 1)
    height = ctx.params.get("height") or model.config.size
    width = ctx.params.get("width") or model.config.size
    if height % multiple or width % multiple:
        raise ParamError(f"width and height must be multiples of {multiple} for this model, not {width}x{height}")
    return height, width


def _labels(ctx: ActionContext, model: DiffusionModel, n: int) -> torch.Tensor | None:
    try:
        return model.labels(n, ctx.params.get("label"))
    except ValueError as exc:
        raise ParamError(str(exc)) from None


# generate -------------------------------------------------------------------------------------------
def generate(ctx: ActionContext) -> Iterator[Progress]:
    if isinstance(ctx.model, pipeline.ImportedPipeline):
        return (yield from ctx.model.text_to_image(ctx))
    model = _unet(ctx)
    params = ctx.params
    n = params["count"]
    height, width = _size(ctx, model)
    generator = ctx.torch_generator()
    noise = torch.randn((n, model.config.channels, height, width), generator=generator)
    steps = model.sample_steps(noise.to(model.device), params["sampler"], params["steps"], _labels(ctx, model, n),
                               params["guidance"], generator)
    x = yield from stream(steps, model)
    return Result(images=model.to_images(x), latents=[z.reshape(-1).numpy() for z in noise])


# edit -------------------------------------------------------------------------------------------------
def edit(ctx: ActionContext) -> Iterator[Progress]:
    if isinstance(ctx.model, pipeline.ImportedPipeline):
        return (yield from ctx.model.image_to_image(ctx))
    model = _unet(ctx)
    params = ctx.params
    original = prepare(ctx.inputs["image"], model.config)  # (size, size, C) uint8
    x0 = model.to_tensor([original])
    labels = _labels(ctx, model, 1)
    generator = ctx.torch_generator()
    mask = ctx.inputs.get("mask")
    if mask is not None:
        keep = model.mask_tensor(mask)
        steps = model.inpaint_steps(x0, keep, params["steps"], params["jump_length"], params["resamples"], labels,
                                    generator)
        x = yield from stream(steps, model, message="repainting the masked area")
        kept = keep[0, 0].cpu().numpy().astype(bool)[..., None]
        image = np.where(kept, original, model.to_images(x)[0])  # outside the mask: the input's own pixels
        return Result(images=[image], metrics={"repainted_fraction": round(float(1.0 - kept.mean()), 4)})
    if params["strength"] <= 0.0:
        yield Progress(1, 1)
        return Result(images=[original])
    steps = model.sample_steps(x0, params["sampler"], params["steps"], labels, params["guidance"], generator,
                               strength=params["strength"])
    x = yield from stream(steps, model)
    return Result(images=model.to_images(x))


# interpolate -------------------------------------------------------------------------------------------
def interpolate(ctx: ActionContext) -> Iterator[Progress]:
    if isinstance(ctx.model, pipeline.ImportedPipeline):
        return (yield from ctx.model.interpolate(ctx))
    model = _unet(ctx)
    params = ctx.params
    sampler_steps, frames = params["sampler_steps"], params["steps"]
    images = [ctx.inputs.get("image_a"), ctx.inputs.get("image_b")]
    inverted = [im for im in images if im is not None]
    total = sampler_steps * (1 + (1 if inverted else 0))
    ends: list[np.ndarray | None] = [None, None]
    if inverted:
        steps = model.encode_steps(model.to_tensor(inverted), sampler_steps)
        z = yield from stream(steps, model, total=total, message="inverting the images (DDIM)")
        found = iter(z.cpu().numpy())
        ends = [next(found) if im is not None else None for im in images]
    for index, seed_key in enumerate(("seed_a", "seed_b")):
        if ends[index] is None:
            seed = params[seed_key] if params[seed_key] is not None else ctx.seed + index
            generator = torch.Generator().manual_seed(int(seed))
            ends[index] = torch.randn((1, *model.shape), generator=generator)[0].numpy()
    path = np.stack(latent.path(ends, frames, "slerp")).astype(np.float32)  # (frames, C, H, W)
    steps = model.sample_steps(torch.from_numpy(path).to(model.device), "ddim", sampler_steps, clip=False)
    x = yield from stream(steps, model, offset=total - sampler_steps, total=total, message="denoising the path")
    return Result(images=model.to_images(x.clamp(-1, 1)), latents=[z.reshape(-1) for z in path])


# train ---------------------------------------------------------------------------------------------------
class DiffusionFamily:
    """What the one training loop needs from diffusion (studio.core.training.Family)."""

    def __init__(self, config: DiffusionConfig, name: str, test: np.ndarray | None, description: str) -> None:
        self.config, self.name, self.test, self.description = config, name, test, description
        self.unconditional = config.num_classes  # the "any class" label, trained on 10% of steps
        self.alphas_cumprod = make_scheduler("ddpm", config).alphas_cumprod

    def build(self) -> torch.nn.Module:
        return self.config.build_unet()

    def loss(self, model: torch.nn.Module, batch: Any, generator: torch.Generator):
        x0, labels = (batch, None) if not isinstance(batch, tuple) else (batch[0], batch[1])
        if labels is not None:
            dropped = torch.rand(labels.shape, generator=generator, device=generator.device) < 0.1
            labels = torch.where(dropped.to(labels.device), torch.full_like(labels, self.unconditional), labels)
        return denoising_loss(model, x0, self.alphas_cumprod, labels, generator, self.config.prediction), {}

    def sample(self, model: torch.nn.Module, n: int, generator: torch.Generator) -> list[np.ndarray]:
        device = next(model.parameters()).device
        wrapped = DiffusionModel(self.config, model, device)
        return wrapped.to_images(wrapped.sample(n, generator))

    def save(self, model: torch.nn.Module, out_dir: Path, info: dict[str, Any]) -> Checkpoint:
        device = next(model.parameters()).device
        wrapped = DiffusionModel(self.config, model, device)
        samples = wrapped.to_images(wrapped.sample(64, torch.Generator(device=device).manual_seed(0)))
        metrics = dict(info["metrics"])
        if self.test is not None:
            metrics[f"kernel_distance_{DEFAULT_SAMPLER}_{DEFAULT_STEPS}"] = round(
                kernel_distance(samples, list(self.test)), 3)
        info = {**info, "metrics": metrics}
        config = {"id": self.name, "name": self.name, "plugin": PLUGIN_ID, "family": "diffusion",
                  "training": info, "metrics": metrics}
        grid = media.grid(samples, 8)
        config = save(wrapped, out_dir, config, extra_files={"samples.png": media.encode_png(grid)})
        card = training.model_card(config, self.description, "samples.png")
        atomic_write_bytes(Path(out_dir) / CARD, card.encode("utf-8"))
        return open_checkpoint(Path(out_dir), "user")


def folder_images(folder: Path, config: DiffusionConfig) -> ImageFolder:
    return load_image_folder(folder, lambda im: prepare(im, config))


def train_command(ctx: ActionContext) -> str:
    """The `studio train` command line that reproduces this run."""
    params = ctx.params
    parts = ["studio", "train", "diffusion", "--data", str(ctx.inputs["data"]), "--out", params["out"] or "OUT",
             "--seed", str(ctx.seed)]
    for key in ("test_data", "size", "color", "width", "levels", "conditional", "steps", "batch_size", "lr", "ema",
                "name"):
        if params.get(key) not in (None, ""):
            parts += ["--set", f"{key}={params[key]}"]
    return shlex.join(parts)


def train(ctx: ActionContext) -> Iterator[Progress]:
    params = ctx.params
    size, levels = params["size"], params["levels"]
    if size % 2 ** (levels - 1):
        raise ParamError(f"size must be a multiple of {2 ** (levels - 1)} for {levels} UNet levels, not {size}")
    width = params["width"]
    channels = tuple(width * 2**i for i in range(levels))  # e.g. 16, 32, 64
    config = DiffusionConfig(size=size, channels=1 if params["color"] == "gray" else 3, block_out_channels=channels)
    yield Progress(0, params["steps"], message="reading images")
    data = folder_images(ctx.inputs["data"], config)
    if params["conditional"] and data.classes:
        config.num_classes, config.class_names = len(data.classes), list(data.classes)
    test = folder_images(ctx.inputs["test_data"], config).images if ctx.inputs.get("test_data") else None
    name = params["name"] or f"diffusion-{Path(ctx.inputs['data']).name}"
    out = Path(params["out"]).expanduser() if params["out"] else user_models_dir() / name
    kind = f"class-conditional ({config.num_classes} classes)" if config.num_classes else "unconditional"
    description = (
        f"{'An' if kind[0] in 'aeiou' else 'A'} {kind} pixel diffusion model: diffusers `UNet2DModel`, levels {list(channels)}, "
        f"{config.layers_per_block} ResNet layer per block, self-attention at the lowest resolution, "
        f"cosine noise schedule over {config.train_timesteps} steps, v-prediction; trained by "
        f"`studio train diffusion` on {data.summary()}. Loads with diffusers itself: "
        "`DDPMPipeline.from_pretrained(folder, local_files_only=True)` or "
        "`UNet2DModel.from_pretrained(folder, subfolder=\"unet\", local_files_only=True)`."
        + (f" Sample quality: kernel distance of 64 samples ({DEFAULT_SAMPLER}, {DEFAULT_STEPS} steps) to "
           f"{len(test)} held-out images from `{ctx.inputs['test_data']}` on 8x8-pooled pixels "
           "(`studio.core.sample_quality.kernel_distance`; 0 = indistinguishable)." if test is not None else "")
    )
    family = DiffusionFamily(config, name, test, description)
    ema = params["ema"] or None
    recipe = training.TrainConfig.from_params({**params, "ema": ema}, seed=ctx.seed, schedule="cosine",
                                              warmup=min(200, params["steps"] // 10))
    pixels = training.images_to_tensor(data.images)
    source: torch.Tensor | tuple[torch.Tensor, ...] = pixels
    if config.num_classes:
        source = (pixels, torch.from_numpy(data.labels))
    data_info = {"folder": str(data.root), "count": len(data), "command": train_command(ctx),
                 "skipped": [[str(p), why] for p, why in data.skipped]}
    trained = yield from training.train(family, source, recipe, out, ctx.device, resume=params["resume"],
                                        data_info=data_info)
    result = trained.to_result()
    if trained.checkpoint is not None:
        result.metrics.update(trained.checkpoint.config["metrics"])
    return result


# import -----------------------------------------------------------------------------------------------------
def import_pipeline(ctx: ActionContext) -> Iterator[Progress]:
    folder = Path(ctx.inputs["folder"])
    name = ctx.params["name"] or folder.resolve().name
    out = Path(ctx.params["out"]).expanduser() if ctx.params["out"] else user_models_dir() / name
    ckpt = yield from pipeline.import_folder(folder, out, name)
    tasks = ", ".join(ckpt.config["tasks"])
    return Result(model_dir=ckpt.path, metrics={"tasks": ckpt.config["tasks"]},
                  text=f"imported {ckpt.config['pipeline_class']} from {folder} as {name} ({tasks})")
