"""Flow actions (RealNVP and Glow): generate, edit, interpolate, likelihood, rank and train."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plugins.flow.model import Flow, FlowConfig, prepare
from studio.core import latent, media, training
from studio.core.checkpoints import Checkpoint
from studio.core.datasets import ImageFolder, load_image_folder
from studio.core.params import ParamError
from studio.core.paths import user_models_dir
from studio.core.plugin import ActionContext, Progress, Result

PLUGIN_ID = "studio.flow"
RANK_BATCH = 64
PREVIEW_TEMPERATURE = 0.7  # samples in previews and the model card, as in the Glow paper
PUBLISHED = {"realnvp": 1.06, "glow": 1.05}  # bits/dim on full MNIST (60,000 training digits)


def generate(ctx: ActionContext) -> Iterator[Progress]:
    model: Flow = ctx.model
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
    """Exact encoding (an unedited round trip gives the input back), then a move in latent space."""
    model: Flow = ctx.model
    z = model.encode_images([ctx.inputs["image"]], np.float64)[0]
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


def endpoints(ctx: ActionContext, model: Flow) -> list[np.ndarray]:
    """The two ends of a path: encoded images, or prior samples (at the temperature) from seeds."""
    ends = []
    for image_key, seed_key in (("image_a", "seed_a"), ("image_b", "seed_b")):
        if ctx.inputs.get(image_key) is not None:
            ends.append(model.encode_images([ctx.inputs[image_key]], np.float64)[0])
        else:
            seed = ctx.params[seed_key] if ctx.params[seed_key] is not None else ctx.seed + len(ends)
            noise = np.random.default_rng(seed).standard_normal(model.latent_dim)
            ends.append(noise * ctx.params["temperature"])
    return ends


def interpolate(ctx: ActionContext) -> Iterator[Progress]:
    model: Flow = ctx.model
    steps = ctx.params["steps"]
    points = latent.path(endpoints(ctx, model), steps, ctx.params["mode"])
    images = []
    for i, z in enumerate(points):
        images += model.decode_latents(z[None])
        yield Progress(i + 1, steps, preview=images[-1])
    return Result(images=images, latents=[z.astype(np.float32) for z in points])


def likelihood(ctx: ActionContext) -> Iterator[Progress]:
    """Exact bits/dim of one image (8-bit, bin-centre dequantization)."""
    model: Flow = ctx.model
    bpd = float(model.bits_per_dim_images([ctx.inputs["image"]])[0])
    yield Progress(1, 1)
    return Result(metrics={"bits_per_dim": round(bpd, 4)}, text=f"{bpd:.4f} bits/dim")


def rank(ctx: ActionContext) -> Iterator[Progress]:
    """Every image of a folder by bits/dim, most typical first; the least typical come back as images."""
    model: Flow = ctx.model
    data = load_image_folder(ctx.inputs["folder"], lambda im: prepare(im, model.config))
    scores: list[float] = []
    for start in range(0, len(data), RANK_BATCH):
        scores += model.bits_per_dim_images(list(data.images[start:start + RANK_BATCH])).tolist()
        yield Progress(min(start + RANK_BATCH, len(data)), len(data))
    order = np.argsort(scores, kind="stable")
    ranking = [[str(data.files[i]), round(scores[i], 4)] for i in order]
    surprising = [int(i) for i in order[::-1][: ctx.params["show"]]]
    images = [media.load_image(data.files[i]) for i in surprising]
    text = (f"ranked {len(data)} images: {scores[order[0]]:.3f} to {scores[order[-1]]:.3f} bits/dim; "
            f"the {len(images)} least typical are shown" + (f"; skipped {len(data.skipped)}" if data.skipped else ""))
    metrics = {"ranking": ranking, "skipped": [[str(p), why] for p, why in data.skipped]}
    return Result(images=images, metrics=metrics, text=text)


# training ---------------------------------------------------------------------------------------
class FlowFamily:
    """What the one training loop needs from the flow family (studio.core.training.Family)."""

    def __init__(self, config: FlowConfig, name: str, test: np.ndarray | None, description: str,
                 mnist: bool = False) -> None:
        self.config, self.name, self.test, self.description = config, name, test, description
        self.mnist = mnist  # the published MNIST numbers go beside ours only for MNIST data

    def build(self) -> Flow:
        return Flow(self.config)

    def loss(self, model: Flow, batch: torch.Tensor, generator: torch.Generator):
        return model.loss(batch, generator), {}

    def sample(self, model: Flow, n: int, generator: torch.Generator) -> list[np.ndarray]:
        return model.to_images(model.sample(n, PREVIEW_TEMPERATURE, generator)[0])

    def save(self, model: Flow, out_dir: Path, info: dict[str, Any]) -> Checkpoint:
        metrics = dict(info["metrics"])
        if self.test is not None:
            metrics.update(evaluate(model, self.test))
        info = {**info, "metrics": metrics}
        config = {"id": self.name, "name": self.name, "plugin": PLUGIN_ID, "family": "flow",
                  "arch": self.config.arch, "model": model.config_dict()}
        device = next(model.parameters()).device
        samples = self.sample(model, 16, torch.Generator(device=device).manual_seed(0))
        card = self.description + "\n\n" + metrics_table(metrics, self.mnist)
        return training.save_trained(out_dir, model.state_dict(), config, info, samples, card)


@torch.no_grad()
def evaluate(model: Flow, pixels: np.ndarray, batch: int = 250) -> dict[str, float]:
    """Held-out bits/dim: uniform dequantization (seed 0, what papers report) and bin centres."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(0)
    uniform, midpoint = [], []
    for start in range(0, len(pixels), batch):
        x = torch.from_numpy(pixels[start:start + batch]).to(device)
        uniform.append(model.bits_per_dim(x, "uniform", generator))
        midpoint.append(model.bits_per_dim(x, "midpoint"))
    model.train(was_training)
    return {"test_bits_per_dim": round(float(torch.cat(uniform).mean()), 4),
            "test_bits_per_dim_midpoint": round(float(torch.cat(midpoint).mean()), 4)}


def metrics_table(metrics: dict[str, float], mnist: bool) -> str:
    rows = ["| metric | ours | published |", "|---|---|---|"]
    if "test_bits_per_dim" in metrics:
        reference = ", ".join(f"{'RealNVP' if a == 'realnvp' else 'Glow'} {v}" for a, v in PUBLISHED.items())
        reference = f"{reference} (full MNIST, 60,000 training digits)" if mnist else ""
        rows.append(f"| held-out bits/dim (uniform dequantization) | {metrics['test_bits_per_dim']} | {reference} |")
        rows.append(f"| held-out bits/dim (bin centres, as the app scores) | {metrics['test_bits_per_dim_midpoint']} | |")
    rows.append(f"| last training loss, bits/dim | {metrics.get('loss', float('nan')):.4f} | |")
    return "\n".join(rows) + f"\n\nSamples at temperature {PREVIEW_TEMPERATURE}."


def folder_pixels(folder: Path, config: FlowConfig) -> tuple[ImageFolder, np.ndarray]:
    data = load_image_folder(folder, lambda im: prepare(im, config))
    return data, np.ascontiguousarray(data.images.transpose(0, 3, 1, 2))  # (N, C, H, W) uint8


MODEL_KEYS = ("arch", "size", "color", "levels", "depth", "hidden", "preprocess")


def train_command(ctx: ActionContext) -> str:
    """The `studio train` command line that reproduces this run."""
    params = ctx.params
    parts = ["studio", "train", "flow", "--data", str(ctx.inputs["data"]), "--out", params["out"] or "OUT",
             "--seed", str(ctx.seed)]
    for key in (*MODEL_KEYS, "test_data", "steps", "batch_size", "lr", "warmup", "ema", "name"):
        if params.get(key) not in (None, ""):
            parts += ["--set", f"{key}={params[key]}"]
    return shlex.join(parts)


def train(ctx: ActionContext) -> Iterator[Progress]:
    params = ctx.params
    try:
        config = FlowConfig(arch=params["arch"], size=params["size"], channels=1 if params["color"] == "gray" else 3,
                            levels=params["levels"], depth=params["depth"], hidden=params["hidden"],
                            preprocess=params["preprocess"])
    except ValueError as exc:
        raise ParamError(str(exc)) from None
    yield Progress(0, params["steps"], message="reading images")
    data, pixels = folder_pixels(ctx.inputs["data"], config)
    test = folder_pixels(ctx.inputs["test_data"], config)[1] if ctx.inputs.get("test_data") else None
    name = params["name"] or f"{config.arch}-{Path(ctx.inputs['data']).name}"
    out = Path(params["out"]).expanduser() if params["out"] else user_models_dir() / name
    title = "RealNVP" if config.arch == "realnvp" else "Glow"
    description = (f"A {title} flow ({config.levels} levels, depth {config.depth}, {config.hidden} hidden channels, "
                   f"{config.preprocess} preprocessing) trained by `studio train flow` on {data.summary()}."
                   + (f" Held out: {len(test)} images from `{ctx.inputs['test_data']}`." if test is not None else ""))
    family = FlowFamily(config, name, test, description, mnist="mnist" in str(data.root).lower())
    recipe = training.TrainConfig.from_params(params, seed=ctx.seed)
    data_info = {"folder": str(data.root), "count": len(data), "command": train_command(ctx),
                 "skipped": [[str(p), why] for p, why in data.skipped]}
    trained = yield from training.train(family, torch.from_numpy(pixels), recipe, out, ctx.device,
                                        resume=params["resume"], data_info=data_info)
    result = trained.to_result()
    if trained.checkpoint is not None:
        result.metrics.update(trained.checkpoint.config["metrics"])
    return result
