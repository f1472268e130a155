"""A class-conditional Gated PixelCNN (van den Oord et al., 2016, "Conditional Image Generation
with PixelCNN Decoders") for small 8-bit images.

Two stacks, so the receptive field has no blind spot: the vertical stack sees every pixel in
the rows above (its (k//2+1, k) convolution covers rows <= i and is shifted down one row before
it feeds the horizontal stack); the horizontal stack sees the pixels to the left in the current
row ((1, k//2+1) convolutions; the first layer's kernel masks the current pixel). Each layer is
a gated unit tanh(a) * sigmoid(b) with the class embedding added to a and b; the horizontal
stack is residual. Every pixel gets a 256-way softmax per channel; colour channels are predicted
in order R, G, B (the head adds the pixel's earlier channels to the features), so
log p(x) = sum over pixels in raster order and channels of log p(x_ic | x_<i, x_i,<c, class)
is exact. Sampling runs the vertical stack once per row on the few rows it can see and the
horizontal stack per pixel on the few columns it can see (``sample``), which gives the same
logits as the full forward (``logits``) at a fraction of the work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

LEVELS = 256


@dataclass
class PixelCNNConfig:
    size: int = 28
    channels: int = 1  # 1 (gray) or 3 (RGB)
    classes: int = 10  # 0: unconditional
    width: int = 32  # channels of both stacks
    layers: int = 5
    kernel: int = 3  # odd
    embed_dim: int = 16  # class embedding size
    head: int = 64  # channels of the output head
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kernel % 2 == 0 or self.kernel < 3:
            raise ValueError(f"kernel must be odd and at least 3, not {self.kernel}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, not {self.channels}")

    @property
    def reach(self) -> int:
        """How many rows up (and columns left) the whole network looks: layers * (kernel // 2)."""
        return self.layers * (self.kernel // 2)

    @property
    def dim(self) -> int:
        return self.size * self.size * self.channels


class GatedLayer(nn.Module):
    """One layer of both stacks. ``first`` masks the current pixel in the horizontal kernel."""

    def __init__(self, config: PixelCNNConfig, n_in: int, first: bool) -> None:
        super().__init__()
        k2, w = config.kernel // 2, config.width
        self.k2, self.first = k2, first
        self.vertical = nn.Conv2d(n_in, 2 * w, (k2 + 1, 2 * k2 + 1))  # rows i-k2..i, cols j-k2..j+k2
        self.horizontal = nn.Conv2d(n_in, 2 * w, (1, k2 + 1))  # cols j-k2..j of the current row
        mask = torch.ones(1, 1, 1, k2 + 1)
        if first:
            mask[..., -1] = 0.0  # the current pixel is not known yet
        self.register_buffer("mask", mask, persistent=False)
        self.link = nn.Conv2d(2 * w, 2 * w, 1)  # vertical (shifted down) -> horizontal
        self.out = nn.Conv2d(w, w, 1)
        self.cond = nn.Linear(config.embed_dim, 4 * w) if config.classes else None

    def vertical_step(self, v: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """v (n, n_in, h, W) -> (pre-activation (n, 2w, h, W), gated output (n, w, h, W)); row i sees rows <= i."""
        pre = self.vertical(F.pad(v, (self.k2, self.k2, self.k2, 0)))
        gate_pre = pre if bias is None else pre + bias[:, : pre.shape[1], None, None]
        return pre, gate(gate_pre)

    def horizontal_step(self, h: torch.Tensor, v_pre_above: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """h (n, n_in, h, W) and the vertical pre-activation of the row above (n, 2w, h, W) -> (n, w, h, W)."""
        pre = F.conv2d(F.pad(h, (self.k2, 0, 0, 0)), self.horizontal.weight * self.mask, self.horizontal.bias)
        pre = pre + self.link(v_pre_above)
        if bias is not None:
            pre = pre + bias[:, pre.shape[1] :, None, None]
        out = self.out(gate(pre))
        return out if self.first else h + out


def gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """Row i gets row i-1 (row 0 gets zeros)."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


class PixelCNN(nn.Module):
    def __init__(self, config: PixelCNNConfig) -> None:
        super().__init__()
        self.config = config
        c, w = config.channels, config.width
        self.embedding = nn.Embedding(config.classes, config.embed_dim) if config.classes else None
        self.layers = nn.ModuleList(GatedLayer(config, c if i == 0 else w, i == 0) for i in range(config.layers))
        self.head_in = nn.Conv2d(w, config.head, 1)
        self.head_out = nn.Conv2d(config.head, LEVELS, 1)
        # the earlier channels of the same pixel, added to the head's input for G and B
        self.channel_context = nn.ModuleList(nn.Conv2d(i, config.head, 1) for i in range(1, c))

    @property
    def device(self) -> torch.device:
        return self.head_out.weight.device

    # conditioning -----------------------------------------------------------------------------------
    def class_embedding(self, labels: torch.Tensor) -> torch.Tensor:
        """labels (n,) long -> (n, embed_dim)."""
        if self.embedding is None:
            raise ValueError("this PixelCNN is unconditional")
        return self.embedding(labels)

    def _biases(self, embedding: torch.Tensor | None) -> list[torch.Tensor | None]:
        if embedding is None or self.embedding is None:
            return [None] * len(self.layers)
        return [layer.cond(embedding) for layer in self.layers]

    # the full forward -------------------------------------------------------------------------------
    def features(self, x: torch.Tensor, embedding: torch.Tensor | None) -> torch.Tensor:
        """x (n, c, s, s) in [-1, 1] (``to_unit`` of the values) -> (n, w, s, s); position i
        depends on pixels < i only."""
        v, h = x, x
        for layer, bias in zip(self.layers, self._biases(embedding)):
            pre, v = layer.vertical_step(v, bias)
            h = layer.horizontal_step(h, shift_down(pre), bias)
        return h

    def _head(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Features (n, w, ...) and the pixels in [-1, 1] (n, c, ...) -> logits (n, 256, c, ...)."""
        base = self.head_in(F.relu(h))
        logits = [self.head_out(F.relu(base))]
        for c, context in enumerate(self.channel_context, start=1):
            logits.append(self.head_out(F.relu(base + context(x[:, :c]))))
        return torch.stack(logits, dim=2)

    def logits(self, values: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        """values (n, c, s, s) long -> logits (n, 256, c, s, s) of every value given the ones before it."""
        return self.logits_of_unit(to_unit(values), embedding)

    def logits_of_unit(self, x: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        """The same from x in [-1, 1] (n, c, s, s): differentiable in the input."""
        return self._head(self.features(x, embedding), x)

    def pixel_nll(self, values: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        """Exact negative log-likelihood in nats per pixel (n, s, s), summed over channels."""
        nll = F.cross_entropy(self.logits(values, embedding), values, reduction="none")  # (n, c, s, s)
        return nll.sum(1)

    def bits_per_dim(self, values: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        """(n,) exact -log2 p(x) / (s * s * c)."""
        return self.pixel_nll(values, embedding).flatten(1).sum(1) / (self.config.dim * math.log(2.0))

    # sampling -----------------------------------------------------------------------------------------
    def _row_context(self, values: torch.Tensor, row: int, biases: list) -> list[torch.Tensor]:
        """The shifted vertical pre-activations every layer adds to ``row``: (n, 2w, 1, W) each,
        from only the rows above that reach it."""
        n, _, _, size = values.shape
        if row == 0:
            zeros = torch.zeros(n, 2 * self.config.width, 1, size, device=values.device)
            return [zeros] * len(self.layers)
        top = max(0, row - 1 - self.config.reach)
        v = to_unit(values[:, :, top:row])
        context = []
        for layer, bias in zip(self.layers, biases):
            pre, v = layer.vertical_step(v, bias)
            context.append(pre[:, :, -1:])
        return context

    def _pixel_features(self, values: torch.Tensor, row: int, col: int, context: list[torch.Tensor],
                        biases: list) -> torch.Tensor:
        """Features (n, w, 1, 1) at (row, col) from the columns of this row that reach it."""
        left = max(0, col - self.config.reach)
        h = to_unit(values[:, :, row : row + 1, left : col + 1])
        for layer, above, bias in zip(self.layers, context, biases):
            h = layer.horizontal_step(h, above[..., left : col + 1], bias)
        return h[..., -1:]

    @torch.no_grad()
    def sample(self, n: int, embedding: torch.Tensor | None = None, temperature: float = 1.0,
               generator: torch.Generator | None = None, known: torch.Tensor | None = None,
               known_mask: torch.Tensor | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Sample pixel by pixel in raster order; yields (row, values (n, c, s, s) long) after every
        row. Where ``known_mask`` (n, s, s) bool is set, the pixel keeps its value from ``known``."""
        cfg = self.config
        values = torch.zeros(n, cfg.channels, cfg.size, cfg.size, dtype=torch.long, device=self.device)
        if known is not None:
            values = known.clone().to(self.device)
        keep = known_mask.to(self.device) if known_mask is not None else None
        biases = self._biases(embedding)
        for row in range(cfg.size):
            context = self._row_context(values, row, biases)
            for col in range(cfg.size):
                if keep is not None and bool(keep[:, row, col].all()):
                    continue
                features = self._pixel_features(values, row, col, context, biases)
                drawn = self._draw(features, values[:, :, row : row + 1, col : col + 1], temperature, generator)
                if keep is not None:
                    drawn = torch.where(keep[:, row, col, None], values[:, :, row, col], drawn)
                values[:, :, row, col] = drawn
            yield row, values

    def _draw(self, features: torch.Tensor, pixel: torch.Tensor, temperature: float,
              generator: torch.Generator | None) -> torch.Tensor:
        """One pixel's channels in order, each from its softmax: (n, c) long."""
        pixel = pixel.clone()
        for c in range(self.config.channels):
            logits = self._head(features, to_unit(pixel))[:, :, c, 0, 0]  # (n, 256)
            pixel[:, c, 0, 0] = draw(logits, temperature, generator)
        return pixel[:, :, 0, 0]

    @torch.no_grad()
    def sample_naive(self, n: int, embedding: torch.Tensor | None = None, temperature: float = 1.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """The baseline: one full forward per value (the benchmark's reference)."""
        cfg = self.config
        values = torch.zeros(n, cfg.channels, cfg.size, cfg.size, dtype=torch.long, device=self.device)
        for row in range(cfg.size):
            for col in range(cfg.size):
                for c in range(cfg.channels):
                    logits = self.logits(values, embedding)[:, :, c, row, col]
                    values[:, c, row, col] = draw(logits, temperature, generator)
        return values

    # images <-> tensors ----------------------------------------------------------------------------------
    def from_images(self, images: list[np.ndarray]) -> torch.Tensor:
        """uint8 images -> (n, c, s, s) long values on the model's device."""
        batch = np.stack([prepare(im, self.config) for im in images])
        return torch.from_numpy(batch).permute(0, 3, 1, 2).long().to(self.device)

    @staticmethod
    def to_images(values: torch.Tensor) -> list[np.ndarray]:
        return list(values.clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())

    def bits_per_dim_images(self, images: list[np.ndarray], labels: list[int] | None = None) -> np.ndarray:
        values = self.from_images(images)
        embedding = self.class_embedding(torch.tensor(labels, device=self.device)) if labels is not None else None
        with torch.inference_mode():
            return self.bits_per_dim(values, embedding).cpu().numpy().astype(np.float64)

    def config_dict(self) -> dict:
        return asdict(self.config)


def draw(logits: torch.Tensor, temperature: float, generator: torch.Generator | None) -> torch.Tensor:
    """(n, 256) logits -> (n,) values; temperature 0 takes the most likely value."""
    if temperature <= 0:
        return logits.argmax(1)
    probs = torch.softmax(logits.float() / temperature, dim=1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def to_unit(values: torch.Tensor) -> torch.Tensor:
    return values.float() / 127.5 - 1.0


def prepare(image: np.ndarray, config: PixelCNNConfig) -> np.ndarray:
    """Any uint8 image -> (size, size, channels) uint8 the model works on."""
    from studio.core import media

    image = media.to_gray(image) if config.channels == 1 else media.to_rgb(image)
    return media.fit_square(image, config.size)


def complete_by_resampling(model: PixelCNN, values: torch.Tensor, known_mask: torch.Tensor,
                           embedding: torch.Tensor | None, passes: int, temperature: float,
                           generator: torch.Generator | None,
                           on_pass: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Metropolis-within-Gibbs over the unknown pixels of ``values`` (n, c, s, s): each pass visits
    them in raster order, proposes a new value from p(x_i | x_<i) and accepts it with the ratio of
    the full joint likelihood over the proposal's, so the known pixels after a hole count too."""
    values = values.clone()
    unknown = (~known_mask).nonzero().tolist()  # [(image, row, col), ...]
    with torch.no_grad():
        log_joint = -model.pixel_nll(values, embedding)  # (n, s, s) log p(x_i | x_<i)
        for index in range(passes):
            for image, row, col in unknown:
                single = values[image : image + 1]
                emb = embedding[image : image + 1] if embedding is not None else None
                context = model._row_context(single, row, model._biases(emb))
                features = model._pixel_features(single, row, col, context, model._biases(emb))
                proposal = single.clone()
                proposal[0, :, row, col] = model._draw(features, single[:, :, row : row + 1, col : col + 1],
                                                       temperature, generator)[0]
                new = -model.pixel_nll(proposal, emb)[0]
                old = log_joint[image]
                ratio = (new.sum() - new[row, col]) - (old.sum() - old[row, col])
                uniform = torch.rand((), generator=generator, device=generator.device if generator else None)
                if torch.log(uniform) < ratio:
                    values[image] = proposal[0]
                    log_joint[image] = new
            if on_pass is not None:
                on_pass(index, values)
    return values


def load(path: Path, device: str = "cpu") -> PixelCNN:
    """Loader named in plugin.toml: a checkpoint folder -> a model in eval mode."""
    from studio.core.checkpoints import CheckpointError, load_tensors, open_checkpoint

    ckpt = open_checkpoint(Path(path))
    try:
        config = PixelCNNConfig(**ckpt.config["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: the config does not describe a PixelCNN ({exc})") from None
    model = PixelCNN(config)
    try:
        model.load_state_dict(load_tensors(ckpt.path, framework="torch"))
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: the weights do not fit the config ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval()
