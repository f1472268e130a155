"""GAN actions: generate (truncation), edit (inversion + principal directions), rename a direction,
interpolate and train, as generators."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plugins.gan.model import GAN, GANConfig, prepare
from studio.core import latent, media, training
from studio.core.checkpoints import CONFIG, Checkpoint, CheckpointError, atomic_write_bytes
from studio.core.datasets import load_image_folder
from studio.core.params import ParamError
from studio.core.paths import user_models_dir
from studio.core.plugin import ActionContext, Progress, Result
from studio.core.sample_quality import kernel_distance

PLUGIN_ID = "studio.gan"
PREVIEW_EVERY = 10  # inversion steps between previews
DIRECTION_AMOUNTS = (-3.0, -1.5, 0.0, 1.5, 3.0)  # columns of the model card's directions sheet
QUALITY_SAMPLES = 256  # samples scored against the held-out images


def direction_names(ckpt: Checkpoint | None, k: int) -> list[str]:
    stored = list((ckpt.config.get("names") if ckpt is not None else None) or [])
    return [stored[i] if i < len(stored) and stored[i] else f"direction {i + 1}" for i in range(k)]


def generate(ctx: ActionContext) -> Iterator[Progress]:
    model: GAN = ctx.model
    count = ctx.params["count"]
    generator = ctx.torch_generator()
    z = model.sample_latents(count, ctx.params["truncation"], ctx.params["truncation_mode"], generator)
    images = []
    with torch.inference_mode():
        for i in range(count):
            images += model.to_images(model.decode(z[i : i + 1].to(model.device)))
            yield Progress(i + 1, count, preview=images[-1])
    return Result(images=images, latents=[row.numpy() for row in z])


def invert(ctx: ActionContext, model: GAN, image: np.ndarray, steps: int, label: str
           ) -> Iterator[Progress]:
    """Inversion as a generator of Progress; returns (z (d,), pixel RMSE of 255)."""
    generator = ctx.torch_generator()
    target = model.from_images([image])
    z, error = None, None
    for step, z, error in model.invert(target, steps, ctx.params.get("perceptual", 0.1), generator=generator):
        if step % PREVIEW_EVERY == 0 or step == steps:
            with torch.no_grad():
                preview = model.to_images(model.decode(z))[0]
            rmse = float(error[0].sqrt()) * 127.5
            yield Progress(step, max(steps, 1), preview=preview, message=f"{label}: RMSE {rmse:.1f} of 255",
                           metrics={"inversion_rmse": round(rmse, 3)})
    return z[0].cpu().numpy().astype(np.float32), float(error[0].sqrt()) * 127.5


def edit(ctx: ActionContext) -> Iterator[Progress]:
    model: GAN = ctx.model
    k = int((model.directions.abs().sum(1) > 0).sum())
    direction = ctx.params["direction"]
    if not 1 <= direction <= k:
        raise ParamError(f"direction must be between 1 and {k} for this model, not {direction}")
    z, rmse = yield from invert(ctx, model, ctx.inputs["image"], ctx.params["invert_steps"], "inverting")
    with torch.no_grad():
        moved = model.move(torch.from_numpy(z).to(model.device)[None], direction - 1, ctx.params["amount"])
        edited, rebuilt = model.to_images(model.decode(torch.cat([moved, torch.from_numpy(z).to(model.device)[None]])))
    name = direction_names(ctx.checkpoint, k)[direction - 1]
    return Result(images=[edited, rebuilt], latents=[moved[0].cpu().numpy(), z],
                  metrics={"inversion_rmse": round(rmse, 3)},
                  text=f"moved {ctx.params['amount']:+.1f} along {name!r}; inversion error {rmse:.1f} of 255 "
                       "(RMSE; the second image is the plain inversion)")


def rename_direction(ctx: ActionContext) -> Iterator[Progress]:
    """Write the new name into the checkpoint's config.json (the weights are untouched)."""
    model: GAN = ctx.model
    k = model.config.directions
    direction, name = ctx.params["direction"], ctx.params["name"].strip()
    if not 1 <= direction <= k:
        raise ParamError(f"direction must be between 1 and {k} for this model, not {direction}")
    if not name:
        raise ParamError("the new name is empty")
    ckpt: Checkpoint = ctx.checkpoint
    names = direction_names(ckpt, k)
    old, names[direction - 1] = names[direction - 1], name
    path = ckpt.path / CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        config["names"] = names
        atomic_write_bytes(path, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot rename the direction ({exc.strerror or exc})") from None
    ckpt.config["names"] = names
    model.direction_names = names
    yield Progress(1, 1)
    return Result(text=f"direction {direction} is now {name!r} (was {old!r})", metrics={"direction": direction})


def interpolate(ctx: ActionContext) -> Iterator[Progress]:
    model: GAN = ctx.model
    ends = []
    for image_key, seed_key in (("image_a", "seed_a"), ("image_b", "seed_b")):
        if ctx.inputs.get(image_key) is not None:
            z, _ = yield from invert(ctx, model, ctx.inputs[image_key], ctx.params["invert_steps"],
                                     f"inverting {image_key}")
            ends.append(z)
        else:
            seed = ctx.params[seed_key] if ctx.params[seed_key] is not None else ctx.seed + len(ends)
            ends.append(np.random.default_rng(seed).standard_normal(model.latent_dim).astype(np.float32))
    steps = ctx.params["steps"]
    points = latent.path(ends, steps, ctx.params["mode"])
    images = []
    for i, z in enumerate(points):
        images += model.decode_latents(z[None])
        yield Progress(i + 1, steps, preview=images[-1])
    return Result(images=images, latents=[z.astype(np.float32) for z in points])


# training ---------------------------------------------------------------------------------------
class GANFamily:
    """The GAN for the one training loop (studio.core.training.Family). The loop's single AdamW
    holds both networks; ``hinge_losses`` routes each loss's gradient to its own network only, so
    one step is a simultaneous D and G update (Adam keeps per-parameter state, so this equals two
    Adams with the same settings)."""

    def __init__(self, config: GANConfig, name: str, description: str, test: np.ndarray | None = None) -> None:
        self.config, self.name, self.description, self.test = config, name, description, test

    def build(self) -> GAN:
        return GAN(self.config)

    def loss(self, model: GAN, batch: torch.Tensor, generator: torch.Generator):
        d_loss, g_loss = model.hinge_losses(batch.float() / 127.5 - 1.0, generator)
        return d_loss + g_loss, {"d_loss": d_loss, "g_loss": g_loss}

    def sample(self, model: GAN, n: int, generator: torch.Generator) -> list[np.ndarray]:
        return model.to_images(model.decode(model.sample_latents(n, generator=generator)))

    def save(self, model: GAN, out_dir: Path, info: dict[str, Any]) -> Checkpoint:
        model.eval()
        model.find_directions()
        k = min(self.config.directions, self.config.latent_dim)
        config = {"id": self.name, "name": self.name, "plugin": PLUGIN_ID, "family": "gan",
                  "model": model.config_dict(), "names": [f"direction {i + 1}" for i in range(k)]}
        samples = self.sample(model, 64, torch.Generator(device=model.device).manual_seed(0))
        if self.test is not None:
            many = self.sample(model, QUALITY_SAMPLES, torch.Generator(device=model.device).manual_seed(1))
            info = {**info, "metrics": {**info["metrics"], "kernel_distance": round(kernel_distance(many, list(self.test)), 3)}}
        card = (self.description + "\n\nFixed-seed samples (seed 0) below; `directions.png` shows the first "
                f"{min(k, 4)} principal latent directions (rows) at {', '.join(f'{a:+g}' for a in DIRECTION_AMOUNTS)} "
                "standard deviations (columns) from one seed.\n\n![directions](directions.png)")
        ckpt = training.save_trained(out_dir, model.state_dict(), config, info, samples, card)
        atomic_write_bytes(Path(out_dir) / "directions.png", media.encode_png(directions_sheet(model, min(k, 4))))
        return ckpt


@torch.no_grad()
def directions_sheet(model: GAN, rows: int) -> np.ndarray:
    z = model.sample_latents(1, generator=torch.Generator(device=model.device).manual_seed(1))
    moved = [model.move(z, d, a) for d in range(rows) for a in DIRECTION_AMOUNTS]
    return media.grid(model.to_images(model.decode(torch.cat(moved))), columns=len(DIRECTION_AMOUNTS))


def train_command(ctx: ActionContext) -> str:
    params = ctx.params
    parts = ["studio", "train", "gan", "--data", str(ctx.inputs["data"]), "--out", params["out"] or "OUT",
             "--seed", str(ctx.seed)]
    for key in ("test_data", "size", "latent_dim", "width", "directions", "steps", "batch_size", "lr", "ema", "name"):
        if params.get(key) not in (None, ""):
            parts += ["--set", f"{key}={params[key]}"]
    return shlex.join(parts)


def train(ctx: ActionContext) -> Iterator[Progress]:
    params = ctx.params
    try:
        config = GANConfig(size=params["size"], latent_dim=params["latent_dim"], width=params["width"],
                           directions=min(params["directions"], params["latent_dim"]))
    except ValueError as exc:
        raise ParamError(str(exc)) from None
    yield Progress(0, params["steps"], message="reading images")
    data = load_image_folder(ctx.inputs["data"], lambda im: prepare(im, config))
    pixels = torch.from_numpy(np.ascontiguousarray(data.images.transpose(0, 3, 1, 2)))  # (N, C, H, W) uint8
    test = (load_image_folder(ctx.inputs["test_data"], lambda im: prepare(im, config)).images
            if ctx.inputs.get("test_data") else None)
    name = params["name"] or f"gan-{Path(ctx.inputs['data']).name}"
    out = Path(params["out"]).expanduser() if params["out"] else user_models_dir() / name
    description = (f"A DCGAN-style GAN ({config.latent_dim}-d latent, width {config.width}, spectral-norm "
                   f"discriminator, hinge loss) trained by `studio train gan` on {data.summary()}. "
                   "Metrics: `d_loss` and `g_loss` are the hinge losses averaged over the last logging window "
                   "(D's loss is 2 at chance; G's is minus D's mean score on fakes)."
                   + (f" `kernel_distance`: of {QUALITY_SAMPLES} samples to {len(test)} held-out images from "
                      f"`{ctx.inputs['test_data']}` on 8x8-pooled pixels, x1000 "
                      "(`studio.core.sample_quality.kernel_distance`; 0 = indistinguishable)." if test is not None else ""))
    recipe = training.TrainConfig.from_params(params, seed=ctx.seed, betas=(0.5, 0.999), grad_clip=None)
    data_info = {**data.info(), "command": train_command(ctx)}
    trained = yield from training.train(GANFamily(config, name, description, test), pixels, recipe, out, ctx.device,
                                        resume=params["resume"], data_info=data_info, params=params)
    return trained.to_result()
