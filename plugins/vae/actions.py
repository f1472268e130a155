"""VAE actions: generate, edit, interpolate, likelihood and train, as generators."""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plugins.vae.model import VAE, VAEConfig, prepare, to_unit
from studio.core import latent, media, training
from studio.core.checkpoints import Checkpoint, atomic_write_bytes
from studio.core.datasets import ImageFolder, load_image_folder
from studio.core.params import ParamError
from studio.core.paths import user_models_dir
from studio.core.plugin import ActionContext, Progress, Result

PLUGIN_ID = "studio.vae"
ELBO_SAMPLES = 16  # posterior samples averaged when scoring one image
RECONSTRUCTIONS = 8  # held-out images shown with their reconstructions in the model card


def generate(ctx: ActionContext) -> Iterator[Progress]:
    model: VAE = ctx.model
    count = ctx.params["count"]
    generator = ctx.torch_generator()
    images, latents = [], []
    with torch.inference_mode():
        for i in range(count):
            x, z = model.sample(1, ctx.params["temperature"], generator)
            images += model.to_images(x)
            latents.append(z[0].cpu().numpy())
            yield Progress(i + 1, count, preview=images[-1])
    return Result(images=images, latents=latents)


def edit(ctx: ActionContext) -> Iterator[Progress]:
    model: VAE = ctx.model
    z = model.encode_images([ctx.inputs["image"]])[0]
    with_folder, without_folder = ctx.inputs.get("with_images"), ctx.inputs.get("without_images")
    if (with_folder is None) != (without_folder is None):
        raise ParamError("an attribute direction needs both with_images and without_images folders")
    yield Progress(1, 2, message="encoded")
    if with_folder is not None:
        z = z + ctx.params["strength"] * latent.attribute_direction(model, with_folder, without_folder, lambda im: prepare(im, model.config))
    else:
        axis = ctx.params["axis"]
        if axis >= model.latent_dim:
            raise ParamError(f"axis must be below {model.latent_dim} for this model, not {axis}")
        z[axis] += ctx.params["amount"]
    image = model.decode_latents(z[None])[0]
    yield Progress(2, 2, preview=image)
    return Result(images=[image], latents=[z.astype(np.float32)])


def endpoints(ctx: ActionContext, model) -> list[np.ndarray]:
    """The two ends of a path: encoded images, or prior samples from seed A / seed B."""
    ends = []
    for image_key, seed_key in (("image_a", "seed_a"), ("image_b", "seed_b")):
        if ctx.inputs.get(image_key) is not None:
            ends.append(model.encode_images([ctx.inputs[image_key]])[0])
        else:
            seed = ctx.params[seed_key] if ctx.params[seed_key] is not None else ctx.seed + len(ends)
            ends.append(np.random.default_rng(seed).standard_normal(model.latent_dim).astype(np.float32))
    return ends


def interpolate(ctx: ActionContext) -> Iterator[Progress]:
    model: VAE = ctx.model
    steps = ctx.params["steps"]
    points = latent.path(endpoints(ctx, model), steps, ctx.params["mode"])
    images = []
    for i, z in enumerate(points):
        images += model.decode_latents(z[None])
        yield Progress(i + 1, steps, preview=images[-1])
    return Result(images=images, latents=[z.astype(np.float32) for z in points])


def likelihood(ctx: ActionContext) -> Iterator[Progress]:
    """The negative ELBO in bits/dim (an upper bound on the true bits/dim) and the reconstruction."""
    model: VAE = ctx.model
    pixels = model.from_images([ctx.inputs["image"]])
    with torch.inference_mode():
        batch = pixels.expand(ELBO_SAMPLES, -1, -1, -1)
        bound = float(model.bits_per_dim(to_unit(batch), ctx.torch_generator()).mean())
        reconstruction = model.decode(model.encode(to_unit(pixels)))
    yield Progress(1, 1)
    rmse = float(torch.sqrt(((reconstruction - to_unit(pixels)) ** 2).mean()) * 127.5)
    images = [model.to_images(to_unit(pixels))[0], model.to_images(reconstruction)[0]]
    return Result(images=images, metrics={"bits_per_dim": round(bound, 4), "reconstruction_rmse": round(rmse, 3)},
                  text=f"≤ {bound:.4f} bits/dim (ELBO bound); reconstruction RMSE {rmse:.2f} of 255")


# training ---------------------------------------------------------------------------------------
class VAEFamily:
    """What the one training loop needs from the VAE family (studio.core.training.Family)."""

    def __init__(self, config: VAEConfig, name: str, test: np.ndarray | None, description: str,
                 mnist: bool = False) -> None:
        self.config, self.name, self.test, self.description = config, name, test, description
        self.mnist = mnist  # the published MNIST numbers go beside ours only for MNIST data

    def build(self) -> VAE:
        return VAE(self.config)

    def loss(self, model: VAE, batch: torch.Tensor, generator: torch.Generator):
        reconstruction, kl = model.elbo(to_unit(batch), generator)
        scale = self.config.dim * math.log(2.0)
        return ((kl - reconstruction) / scale).mean(), {"kl_bpd": (kl / scale).mean(),
                                                          "reconstruction_bpd": (-reconstruction / scale).mean()}

    def sample(self, model: VAE, n: int, generator: torch.Generator) -> list[np.ndarray]:
        return model.to_images(model.sample(n, 1.0, generator)[0])

    def save(self, model: VAE, out_dir: Path, info: dict[str, Any]) -> Checkpoint:
        metrics = dict(info["metrics"])
        if self.test is not None:
            metrics.update(evaluate(model, self.test))
        info = {**info, "metrics": metrics}
        config = {"id": self.name, "name": self.name, "plugin": PLUGIN_ID, "family": "vae",
                  "model": model.config_dict()}
        samples = self.sample(model, 16, torch.Generator(device=model.device).manual_seed(0))
        card = self.description + "\n\n" + metrics_table(metrics, self.mnist)
        if self.test is not None:
            card += "\n\nHeld-out images (top) and their reconstructions (bottom):\n\n![reconstructions](reconstructions.png)"
        ckpt = training.save_trained(out_dir, model.state_dict(), config, info, samples, card)
        if self.test is not None:
            sheet = reconstruction_sheet(model, self.test)
            atomic_write_bytes(Path(out_dir) / "reconstructions.png", media.encode_png(sheet))
        return ckpt


@torch.no_grad()
def reconstruction_sheet(model: VAE, pixels: np.ndarray) -> np.ndarray:
    """Evenly spaced images of (N, C, H, W) uint8 pixels above their reconstructions."""
    chosen = pixels[np.linspace(0, len(pixels) - 1, min(RECONSTRUCTIONS, len(pixels))).astype(int)]
    rebuilt = model.to_images(model.decode(model.encode(to_unit(torch.from_numpy(chosen).to(model.device)))))
    return media.grid([im.transpose(1, 2, 0) for im in chosen] + rebuilt, columns=len(chosen))


@torch.no_grad()
def evaluate(model: VAE, pixels: np.ndarray, batch: int = 250) -> dict[str, float]:
    """Held-out negative ELBO (bits/dim, one posterior sample per image, seed 0) and RMSE."""
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=model.device).manual_seed(0)
    bounds, errors = [], []
    for start in range(0, len(pixels), batch):
        x = to_unit(torch.from_numpy(pixels[start:start + batch]).to(model.device))
        bounds.append(model.bits_per_dim(x, generator))
        errors.append(((model.decode(model.encode(x)) - x) * 127.5).pow(2).flatten(1).mean(1))
    model.train(was_training)
    return {"test_elbo_bits_per_dim": round(float(torch.cat(bounds).mean()), 4),
            "test_reconstruction_rmse": round(float(torch.cat(errors).mean().sqrt()), 3)}


def metrics_table(metrics: dict[str, float], mnist: bool) -> str:
    rows = ["| metric | ours | reference |", "|---|---|---|"]
    if "test_elbo_bits_per_dim" in metrics:
        reference = "exact likelihoods on full MNIST: RealNVP 1.06, Glow 1.05" if mnist else ""
        rows.append(f"| held-out negative ELBO, bits/dim (upper bound) | {metrics['test_elbo_bits_per_dim']} | "
                    f"{reference} |")
        rows.append(f"| held-out reconstruction RMSE (of 255) | {metrics['test_reconstruction_rmse']} | |")
    rows.append(f"| last training loss, bits/dim | {metrics.get('loss', float('nan')):.4f} | |")
    return "\n".join(rows)


def folder_pixels(folder: Path, config: VAEConfig) -> tuple[ImageFolder, np.ndarray]:
    data = load_image_folder(folder, lambda im: prepare(im, config))
    return data, np.ascontiguousarray(data.images.transpose(0, 3, 1, 2))  # (N, C, H, W) uint8


def train_command(ctx: ActionContext, family: str, model_keys: tuple[str, ...]) -> str:
    """The `studio train` command line that reproduces this run."""
    params = ctx.params
    parts = ["studio", "train", family, "--data", str(ctx.inputs["data"]), "--out", params["out"] or "OUT",
             "--seed", str(ctx.seed)]
    for key in (*model_keys, "test_data", "steps", "batch_size", "lr", "warmup", "ema", "name"):
        if params.get(key) not in (None, ""):
            parts += ["--set", f"{key}={params[key]}"]
    return shlex.join(parts)


def train(ctx: ActionContext) -> Iterator[Progress]:
    params = ctx.params
    config = VAEConfig(size=params["size"], channels=1 if params["color"] == "gray" else 3,
                       latent_dim=params["latent_dim"], width=params["width"])
    yield Progress(0, params["steps"], message="reading images")
    data, pixels = folder_pixels(ctx.inputs["data"], config)
    test = folder_pixels(ctx.inputs["test_data"], config)[1] if ctx.inputs.get("test_data") else None
    name = params["name"] or f"vae-{Path(ctx.inputs['data']).name}"
    out = Path(params["out"]).expanduser() if params["out"] else user_models_dir() / name
    command = train_command(ctx, "vae", ("size", "color", "latent_dim", "width"))
    description = (f"A convolutional VAE ({config.latent_dim}-d latent, discretized-logistic decoder) trained by "
                   f"`studio train vae` on {data.summary()}."
                   + (f" Held out: {len(test)} images from `{ctx.inputs['test_data']}`." if test is not None else ""))
    family = VAEFamily(config, name, test, description, mnist="mnist" in str(data.root).lower())
    recipe = training.TrainConfig.from_params(params, seed=ctx.seed)
    data_info = {"folder": str(data.root), "count": len(data), "command": command,
                 "skipped": [[str(p), why] for p, why in data.skipped]}
    trained = yield from training.train(family, torch.from_numpy(pixels), recipe, out, ctx.device,
                                        resume=params["resume"], data_info=data_info)
    result = trained.to_result()
    if trained.checkpoint is not None:
        result.metrics.update(trained.checkpoint.config["metrics"])
    return result
