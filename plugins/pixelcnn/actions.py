"""Gated PixelCNN actions: generate, complete (edit), interpolate classes, likelihood and train."""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plugins.pixelcnn.model import PixelCNN, PixelCNNConfig, complete_by_resampling, prepare
from studio.core import media, training
from studio.core.checkpoints import Checkpoint
from studio.core.datasets import ImageFolder, load_image_folder
from studio.core.params import ParamError
from studio.core.paths import user_models_dir
from studio.core.plugin import ActionContext, Progress, Result

PLUGIN_ID = "studio.pixelcnn"
UNFILLED = 128  # grey for the rows a live preview has not reached yet
# (position, colour) anchors of the surprise colour map: black -> purple -> orange -> pale yellow
HEAT = ((0.0, (0, 0, 4)), (0.3, (90, 20, 120)), (0.6, (220, 70, 60)), (0.85, (250, 170, 40)), (1.0, (252, 250, 190)))


# conditioning --------------------------------------------------------------------------------------
def class_name(model: PixelCNN, index: int) -> str:
    names = model.config.class_names
    return names[index] if index < len(names) else str(index)


def check_class(model: PixelCNN, index: int) -> None:
    if model.config.classes == 0 and index >= 0:
        raise ParamError("this PixelCNN is unconditional: leave the class at -1")
    if index >= model.config.classes > 0:
        raise ParamError(f"class must be below {model.config.classes} for this model, not {index}")


def embeddings(model: PixelCNN, labels: list[int]) -> torch.Tensor | None:
    if model.config.classes == 0:
        return None
    return model.class_embedding(torch.tensor(labels, device=model.device))


def best_class(model: PixelCNN, values: torch.Tensor, known: torch.Tensor | None = None) -> int:
    """The class under which the (known) pixels of one image (1, c, s, s) are most likely."""
    classes = model.config.classes
    with torch.inference_mode():
        nll = model.pixel_nll(values.expand(classes, -1, -1, -1), embeddings(model, list(range(classes))))
        if known is not None:
            nll = nll * known.float()
        return int(nll.flatten(1).sum(1).argmin())


def seeded(ctx: ActionContext, model: PixelCNN) -> torch.Generator:
    """The job's seed on the model's device (sampling draws there)."""
    return torch.Generator(device=model.device).manual_seed(ctx.seed)


# generate ------------------------------------------------------------------------------------------
def preview_grid(values: torch.Tensor, row: int) -> np.ndarray:
    shown = values.clone()
    shown[:, :, row + 1 :] = UNFILLED
    return media.grid(PixelCNN.to_images(shown))


def generate(ctx: ActionContext) -> Iterator[Progress]:
    model: PixelCNN = ctx.model
    count, index = ctx.params["count"], ctx.params["class_index"]
    check_class(model, index)
    generator = seeded(ctx, model)
    labels = [index] * count
    if model.config.classes and index < 0:
        labels = torch.randint(model.config.classes, (count,), generator=generator, device=model.device).tolist()
    size = model.config.size
    values = None
    for row, values in model.sample(count, embeddings(model, labels), ctx.params["temperature"], generator):
        yield Progress(row + 1, size, preview=preview_grid(values, row))
    text = f"classes {', '.join(class_name(model, i) for i in labels)}" if model.config.classes else "unconditional"
    return Result(images=model.to_images(values), metrics={"classes": labels} if model.config.classes else {},
                  text=text)


# complete ------------------------------------------------------------------------------------------
def hole_mask(ctx: ActionContext, size: int) -> torch.Tensor:
    """(s, s) bool, True = repaint: the mask param (white), or the lower half."""
    mask_image = ctx.inputs.get("mask")
    if mask_image is None:
        mask = torch.zeros(size, size, dtype=torch.bool)
        mask[size // 2 :] = True
        return mask
    gray = media.fit_square(media.to_gray(np.asarray(mask_image)), size)[..., 0]
    mask = torch.from_numpy(gray >= 128)
    if not mask.any():
        raise ParamError("the mask is empty: paint the region to repaint in white")
    return mask


def after_known(mask: torch.Tensor) -> bool:
    """True when every masked pixel comes after every known pixel in raster order."""
    flat = mask.flatten()
    first = int(flat.nonzero()[0])
    return bool(flat[first:].all())


def edit(ctx: ActionContext) -> Iterator[Progress]:
    model: PixelCNN = ctx.model
    count, index, temperature = ctx.params["count"], ctx.params["class_index"], ctx.params["temperature"]
    check_class(model, index)
    image = model.from_images([ctx.inputs["image"]])  # (1, c, s, s)
    hole = hole_mask(ctx, model.config.size)
    if model.config.classes and index < 0:
        index = best_class(model, image, ~hole)
    embedding = embeddings(model, [index] * count) if model.config.classes else None
    generator = seeded(ctx, model)
    known = image.expand(count, -1, -1, -1).clone()
    known[:, :, hole] = 0
    keep = (~hole).expand(count, -1, -1)
    size = model.config.size
    exact = after_known(hole)
    passes = 0 if exact else ctx.params["passes"]
    total = size + passes
    values = known
    for row, values in model.sample(count, embedding, temperature, generator, known, keep):
        yield Progress(row + 1, total, preview=media.grid(model.to_images(values)))
    if exact:
        how = "exact: the masked region follows every known pixel in raster order, so it is sampled from p(hole | rest)"
    else:
        progress: list[Progress] = []
        values = complete_by_resampling(
            model, values, keep, embedding, passes, temperature, generator,
            on_pass=lambda i, v: progress.append(Progress(size + i + 1, total, preview=media.grid(model.to_images(v)))),
        )
        yield from progress
        how = (f"approximate: a raster-order fill, then {passes} Metropolis resampling passes over the hole "
               "(proposals from p(x_i | x_<i), accepted by the full likelihood so later known pixels count)")
    images = model.to_images(values)
    text = how + (f"; class {class_name(model, index)}" if model.config.classes else "")
    return Result(images=images, metrics={"exact": exact, "masked_pixels": int(hole.sum()), "passes": passes},
                  text=text)


# interpolate -----------------------------------------------------------------------------------------
def interpolate(ctx: ActionContext) -> Iterator[Progress]:
    model: PixelCNN = ctx.model
    if model.config.classes == 0:
        raise ParamError("this PixelCNN is unconditional: there are no class embeddings to interpolate")
    a, b, steps = ctx.params["class_a"], ctx.params["class_b"], ctx.params["steps"]
    check_class(model, a)
    check_class(model, b)
    ends = embeddings(model, [a, b]).detach()
    images = []
    for i, t in enumerate(np.linspace(0.0, 1.0, steps)):
        embedding = torch.lerp(ends[0], ends[1], float(t))[None]
        generator = seeded(ctx, model)  # the same seed for every frame
        *_, (_, values) = model.sample(1, embedding, ctx.params["temperature"], generator)
        images += model.to_images(values)
        yield Progress(i + 1, steps, preview=media.grid(images, columns=steps))
    strip = media.grid(images, columns=steps)
    return Result(images=[strip, *images], text=f"class {class_name(model, a)} to {class_name(model, b)}, "
                                                 f"{steps} frames, seed {ctx.seed}")


# likelihood ----------------------------------------------------------------------------------------
def heatmap(values: np.ndarray, top: float) -> np.ndarray:
    """(s, s) floats -> uint8 (s, s, 3) on the HEAT colour map, 0..top."""
    t = np.clip(values / top, 0.0, 1.0)
    positions = [p for p, _ in HEAT]
    return np.stack([np.interp(t, positions, [c[i] for _, c in HEAT]) for i in range(3)], -1).round().astype(np.uint8)


def marginal_pixel_nll(model: PixelCNN, values: torch.Tensor) -> torch.Tensor:
    """Exact -log p(x_i | x_<i) per pixel (s, s) of one image (1, c, s, s) with the class summed
    out under a uniform prior: p(x_i | x_<i) = sum_y p(y | x_<i) p(x_i | x_<i, y), where
    p(y | x_<i) comes from the running product of each class's conditionals. Sums to -log p(x)."""
    classes, size = model.config.classes, model.config.size
    log_p = -model.pixel_nll(values.expand(classes, -1, -1, -1), embeddings(model, list(range(classes))))
    through = log_p.flatten(1).cumsum(1)  # (classes, s*s): log p(x_<=i | y)
    before = through - log_p.flatten(1)  # log p(x_<i | y)
    return (torch.logsumexp(before, 0) - torch.logsumexp(through, 0)).reshape(size, size)


def likelihood(ctx: ActionContext) -> Iterator[Progress]:
    """Exact per-pixel surprise: -log2 p(x_i | x_<i) summed over the pixel's channels, given the
    chosen class or (class -1) with the class summed out."""
    model: PixelCNN = ctx.model
    index = ctx.params["class_index"]
    check_class(model, index)
    values = model.from_images([ctx.inputs["image"]])
    yield Progress(0, 1, message="scoring")
    with torch.inference_mode():
        if model.config.classes and index < 0:
            nats = marginal_pixel_nll(model, values)
            condition = ", the class summed out (uniform prior)"
        else:
            nats = model.pixel_nll(values, embeddings(model, [index]) if model.config.classes else None)[0]
            condition = f", given class {class_name(model, index)}" if model.config.classes else ""
    bits = (nats / math.log(2.0)).cpu().numpy()
    top = 8.0 * model.config.channels  # a uniform guess over 256 levels per channel
    image = model.to_images(values)[0]
    heat = heatmap(bits, top)
    overlay = (0.45 * media.to_rgb(image) + 0.55 * heat).round().astype(np.uint8)
    bits_per_dim = float(bits.sum() / model.config.dim)
    yield Progress(1, 1, preview=heat)
    metrics = {"bits_per_dim": round(bits_per_dim, 4), "nll_nats": round(float(nats.sum()), 3),
               "max_pixel_bits": round(float(bits.max()), 3)}
    text = (f"{bits_per_dim:.4f} bits/dim (exact){condition}; heatmap: 0 (black) to {top:g} bits per pixel "
            "(pale yellow); the second image overlays it on the input")
    return Result(images=[heat, overlay], metrics=metrics, text=text)


# training ---------------------------------------------------------------------------------------
PUBLISHED = (
    ("Gated PixelCNN, CIFAR-10 test (van den Oord et al. 2016)", "3.03 bits/dim"),
    ("PixelCNN, binarized MNIST test (van den Oord et al. 2016, Pixel RNN paper)", "81.30 nats per image"),
    ("RealNVP / Glow, 8-bit MNIST (full 60k training set)", "1.06 / 1.05 bits/dim"),
)


class PixelCNNFamily:
    """What the one training loop needs from the PixelCNN family (studio.core.training.Family)."""

    def __init__(self, config: PixelCNNConfig, name: str, test: tuple[np.ndarray, np.ndarray] | None,
                 description: str) -> None:
        self.config, self.name, self.test, self.description = config, name, test, description

    def build(self) -> PixelCNN:
        return PixelCNN(self.config)

    def loss(self, model: PixelCNN, batch: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator):
        pixels, labels = batch
        embedding = model.class_embedding(labels) if self.config.classes else None
        return model.bits_per_dim(pixels.long(), embedding).mean(), {}

    def sample(self, model: PixelCNN, n: int, generator: torch.Generator) -> list[np.ndarray]:
        return self.sample_classes(model, [i % max(self.config.classes, 1) for i in range(n)], generator)

    def sample_classes(self, model: PixelCNN, labels: list[int], generator: torch.Generator) -> list[np.ndarray]:
        embedding = model.class_embedding(torch.tensor(labels, device=model.device)) if self.config.classes else None
        *_, (_, values) = model.sample(len(labels), embedding, 1.0, generator)
        return model.to_images(values)

    def save(self, model: PixelCNN, out_dir: Path, info: dict[str, Any]) -> Checkpoint:
        metrics = dict(info["metrics"])
        if self.test is not None:
            metrics.update(evaluate(model, *self.test))
        info = {**info, "metrics": metrics}
        config = {"id": self.name, "name": self.name, "plugin": PLUGIN_ID, "family": "pixelcnn",
                  "model": model.config_dict()}
        rows = max(self.config.classes, 4)  # a square grid: one class per row
        labels = [i // rows % max(self.config.classes, 1) for i in range(rows * rows)]
        samples = self.sample_classes(model, labels, torch.Generator(device=model.device).manual_seed(0))
        card = self.description + "\n\n" + metrics_table(metrics) + "\n\nSamples (seed 0, temperature 1"
        card += ", one class per row):" if self.config.classes else "):"
        return training.save_trained(out_dir, model.state_dict(), config, info, samples, card)


@torch.no_grad()
def evaluate(model: PixelCNN, pixels: np.ndarray, labels: np.ndarray, batch: int = 100) -> dict[str, float]:
    """Exact held-out bits/dim: given the true class, and of the image alone (log-mean-exp over a
    uniform class prior, which is also exact)."""
    was_training = model.training
    model.eval()
    given, marginal = [], []
    classes = model.config.classes
    for start in range(0, len(pixels), batch):
        values = torch.from_numpy(pixels[start : start + batch]).long().to(model.device)
        if classes:
            per_class = torch.stack([model.bits_per_dim(values, model.class_embedding(
                torch.full((len(values),), c, device=model.device))) for c in range(classes)], 1)  # (n, classes)
            true = torch.from_numpy(labels[start : start + batch]).to(model.device)
            given.append(per_class.gather(1, true[:, None])[:, 0])
            log2_px = torch.logsumexp(-per_class * model.config.dim * math.log(2.0), 1) - math.log(classes)
            marginal.append(-log2_px / (model.config.dim * math.log(2.0)))
        else:
            marginal.append(model.bits_per_dim(values))
    model.train(was_training)
    out = {"test_bits_per_dim": round(float(torch.cat(marginal).mean()), 4)}
    if given:
        out["test_bits_per_dim_given_class"] = round(float(torch.cat(given).mean()), 4)
    out["test_nll_nats_per_image"] = round(out["test_bits_per_dim"] * model.config.dim * math.log(2.0), 2)
    return out


def metrics_table(metrics: dict[str, float]) -> str:
    rows = ["| measure | value |", "|---|---|"]
    if "test_bits_per_dim" in metrics:
        rows += [
            f"| ours: held-out bits/dim, -log2 p(x) / D, exact (8-bit values, 256-way softmax) | "
            f"**{metrics['test_bits_per_dim']}** |",
            f"| ours: the same in nats per image | {metrics['test_nll_nats_per_image']} |",
        ]
        if "test_bits_per_dim_given_class" in metrics:
            rows.append(f"| ours: held-out bits/dim given the true class, -log2 p(x \\| y) / D | "
                        f"{metrics['test_bits_per_dim_given_class']} |")
    rows += [f"| published: {what} | {value} |" for what, value in PUBLISHED]
    return "\n".join(rows) + ("\n\nThe published numbers come from far larger models trained for days on full data "
                              "sets; binarized-MNIST nats are not comparable with 8-bit bits/dim.")


def folder_arrays(folder: Path, config: PixelCNNConfig, classes: list[str] | None = None
                  ) -> tuple[ImageFolder, np.ndarray, np.ndarray]:
    data = load_image_folder(folder, lambda im: prepare(im, config))
    labels = data.labels
    if classes is not None:  # map the test folder's class names onto the training ones
        lookup = {name: classes.index(name) if name in classes else -1 for name in data.classes}
        labels = np.asarray([lookup[data.classes[i]] if i >= 0 else -1 for i in labels], dtype=np.int64)
    return data, np.ascontiguousarray(data.images.transpose(0, 3, 1, 2)), labels


def train_command(ctx: ActionContext) -> str:
    params = ctx.params
    parts = ["studio", "train", "pixelcnn", "--data", str(ctx.inputs["data"]), "--out", params["out"] or "OUT",
             "--seed", str(ctx.seed)]
    for key in ("test_data", "size", "color", "width", "layers", "kernel", "conditional", "steps", "batch_size",
                "lr", "ema", "name"):
        if params.get(key) not in (None, ""):
            parts += ["--set", f"{key}={params[key]}"]
    return shlex.join(parts)


def train(ctx: ActionContext) -> Iterator[Progress]:
    params = ctx.params
    try:
        base = PixelCNNConfig(size=params["size"], channels=1 if params["color"] == "gray" else 3,
                              width=params["width"], layers=params["layers"], kernel=params["kernel"], classes=0)
    except ValueError as exc:
        raise ParamError(str(exc)) from None
    yield Progress(0, params["steps"], message="reading images")
    data, pixels, labels = folder_arrays(ctx.inputs["data"], base)
    conditional = params["conditional"] and bool(data.classes)
    if conditional and (labels < 0).any():
        raise ParamError(f"{data.root}: some images are not in a class folder; put every image in one, "
                         "or turn 'conditional' off")
    config = PixelCNNConfig(**{**base.__dict__, "classes": len(data.classes) if conditional else 0,
                               "class_names": list(data.classes) if conditional else []})
    test = None
    if ctx.inputs.get("test_data"):
        _, test_pixels, test_labels = folder_arrays(ctx.inputs["test_data"], config, config.class_names or None)
        if conditional and (test_labels < 0).any():
            raise ParamError(f"{ctx.inputs['test_data']}: some test images are in no training class folder")
        test = (test_pixels, test_labels)
    name = params["name"] or f"pixelcnn-{Path(ctx.inputs['data']).name}"
    out = Path(params["out"]).expanduser() if params["out"] else user_models_dir() / name
    description = (f"A Gated PixelCNN ({config.layers} layers, width {config.width}, kernel {config.kernel}, "
                   f"{'conditional on ' + str(config.classes) + ' classes' if conditional else 'unconditional'}) "
                   f"trained by `studio train pixelcnn` on {data.summary()}."
                   + (f" Held out: {len(test[0])} images from `{ctx.inputs['test_data']}`." if test else ""))
    family = PixelCNNFamily(config, name, test, description)
    recipe = training.TrainConfig.from_params(params, seed=ctx.seed)
    data_info = {**data.info(), "command": train_command(ctx)}
    trained = yield from training.train(family, (torch.from_numpy(pixels), torch.from_numpy(np.maximum(labels, 0))),
                                        recipe, out, ctx.device, resume=params["resume"], data_info=data_info,
                                        params=params)
    result = trained.to_result()
    if trained.checkpoint is not None:
        result.metrics.update(trained.checkpoint.config["metrics"])
    return result
