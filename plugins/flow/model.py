"""Normalizing flows for images: RealNVP (Dinh et al., 2017) and Glow (Kingma & Dhariwal, 2018).

Both are invertible maps from pixels x to latents z with a tractable Jacobian, so
log p(x) = log N(z; 0, I) + log |det dz/dx| is exact and encoding is exact.

- RealNVP: per level, affine couplings with checkerboard masks, a squeeze, couplings with
  channel masks, then half the channels are factored out; the last level is checkerboard only.
  ActNorm stands in for the paper's batch normalization between couplings.
- Glow: per level, a squeeze, K steps of (actnorm, invertible 1x1 convolution in LU form,
  affine coupling), then half the channels are factored out (not after the last level).

Pixels are dequantized (uniform noise in each 8-bit bin for training, the bin centre for
scoring a single image), scaled to [0, 1] and mapped by a preprocessing layer: ``shift``
(Glow: x - 0.5) or ``logit`` (RealNVP). Bits/dim are reported in discrete 8-bit terms, the
numbers papers report: -log2 p(pixels) / D, with the 256**D volume change included.

Every layer has ``forward(x) -> (y, logdet (n,))`` and ``inverse(y) -> x``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ARCHS = ("realnvp", "glow")
PREPROCESS = ("shift", "logit")


@dataclass
class FlowConfig:
    arch: str = "glow"  # realnvp | glow
    size: int = 28  # images are size x size; must be divisible by 2**levels
    channels: int = 1  # 1 (gray) or 3 (RGB)
    levels: int = 2  # scales; half the channels are factored out between levels
    depth: int = 8  # Glow: flow steps per level; RealNVP: couplings per mask group (paper: 3)
    hidden: int = 64  # channels of each coupling network
    preprocess: str = "shift"  # shift (Glow) | logit (RealNVP)
    logit_alpha: float = 0.05  # logit preprocessing squeezes [0, 1] into [alpha, 1 - alpha]

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {self.arch!r}")
        if self.preprocess not in PREPROCESS:
            raise ValueError(f"preprocess must be one of {', '.join(PREPROCESS)}, not {self.preprocess!r}")
        squeezes = self.levels if self.arch == "glow" else self.levels - 1
        if self.levels < 1 or self.size % (2**squeezes):
            raise ValueError(f"size {self.size} cannot be squeezed {squeezes} times; pick fewer levels")

    @property
    def dim(self) -> int:
        return self.size * self.size * self.channels


# layers ----------------------------------------------------------------------------------------
class Squeeze(nn.Module):
    """(n, c, h, w) -> (n, 4c, h/2, w/2): each 2x2 block becomes four channels."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, h, w = x.shape
        y = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, 4 * c, h // 2, w // 2)
        return y, x.new_zeros(n)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        n, c, h, w = y.shape
        return y.reshape(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c // 4, 2 * h, 2 * w)


class ActNorm(nn.Module):
    """Per-channel affine y = (x + bias) * exp(logs), initialized from the first batch it sees."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.uint8))

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor) -> None:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True) if x.numel() > x.shape[1] else torch.ones_like(mean)
        self.bias.copy_(-mean)
        self.logs.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.initialized:
            self._initialize(x)
        h, w = x.shape[2:]
        logdet = (self.logs.sum() * h * w).expand(x.shape[0])
        return (x + self.bias) * torch.exp(self.logs), logdet

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self.logs) - self.bias


class InvConv1x1(nn.Module):
    """Invertible 1x1 convolution, W = P L (U + diag(sign * exp(log_s))), initialized to a rotation."""

    def __init__(self, channels: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        rotation = torch.linalg.qr(torch.randn(channels, channels, generator=generator))[0]
        p, lower, upper = torch.linalg.lu(rotation)
        diagonal = torch.diagonal(upper)
        self.register_buffer("p", p)
        self.register_buffer("sign_s", torch.sign(diagonal))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(diagonal.abs()))

    def weight(self) -> torch.Tensor:
        eye = torch.eye(self.p.shape[0], device=self.p.device, dtype=self.p.dtype)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.p @ lower @ upper  # (c, c)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = x.shape[2:]
        y = F.conv2d(x, self.weight()[:, :, None, None])
        return y, (self.log_s.sum() * h * w).expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return F.conv2d(y, self._inverse_weight()[:, :, None, None])

    def _inverse_weight(self) -> torch.Tensor:
        """W^-1; without gradients it is kept until a parameter changes (decoding runs many times)."""
        if torch.is_grad_enabled():
            return torch.linalg.inv(self.weight())
        key = (self.lower._version, self.upper._version, self.log_s._version, self.lower.dtype, self.lower.device)
        if getattr(self, "_inverse_key", None) != key:
            self._inverse_cache = torch.linalg.inv(self.weight())
            self._inverse_key = key
        return self._inverse_cache


def checkerboard(height: int, width: int, parity: int) -> torch.Tensor:
    rows = torch.arange(height)[:, None]
    cols = torch.arange(width)[None, :]
    return ((rows + cols + parity) % 2).float()[None, None]  # (1, 1, h, w)


class AffineCoupling(nn.Module):
    """Half the units pass through and parameterize an affine map of the other half.

    ``mask``: ``checkerboard`` (spatial, RealNVP) or ``channel`` (first/second half of the
    channels). ``scale``: ``tanh`` (RealNVP: y = x * exp(s) + t, s = a * tanh(raw)) or
    ``sigmoid`` (Glow: y = (x + t) * sigmoid(raw + 2)). The network's last convolution starts at
    zero, so every coupling starts as the identity.
    """

    def __init__(self, channels: int, height: int, width: int, hidden: int, mask: str, parity: int,
                 scale: str) -> None:
        super().__init__()
        self.mask_kind, self.parity, self.scale_kind = mask, parity, scale
        if mask == "checkerboard":
            self.register_buffer("mask", checkerboard(height, width, parity))
            n_in, n_out = channels, channels
        else:
            self.register_buffer("mask", None)
            n_in, n_out = channels // 2, channels - channels // 2
            if parity:
                n_in, n_out = n_out, n_in
        self.net = nn.Sequential(
            nn.Conv2d(n_in, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
            nn.Conv2d(hidden, 2 * n_out, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.tanh_scale = nn.Parameter(torch.ones(1, n_out, 1, 1)) if scale == "tanh" else None

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = x.shape[1] // 2
        a, b = x[:, :half], x[:, half:]
        return (b, a) if self.parity else (a, b)

    def _join(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([b, a] if self.parity else [a, b], dim=1)

    def _scale_shift(self, conditioner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw, shift = self.net(conditioner).chunk(2, dim=1)
        if self.scale_kind == "tanh":
            return self.tanh_scale * torch.tanh(raw), shift  # log-scale, shift
        return F.logsigmoid(raw + 2.0), shift

    def _transform(self, x: torch.Tensor, log_scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        if self.scale_kind == "tanh":
            return x * torch.exp(log_scale) + shift
        return (x + shift) * torch.exp(log_scale)

    def _undo(self, y: torch.Tensor, log_scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        if self.scale_kind == "tanh":
            return (y - shift) * torch.exp(-log_scale)
        return y * torch.exp(-log_scale) - shift

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mask_kind == "checkerboard":
            keep = 1.0 - self.mask
            fixed = x * self.mask
            log_scale, shift = self._scale_shift(fixed)
            log_scale, shift = log_scale * keep, shift * keep
            y = fixed + keep * self._transform(x, log_scale, shift)
            return y, log_scale.flatten(1).sum(1)
        a, b = self._split(x)
        log_scale, shift = self._scale_shift(a)
        return self._join(a, self._transform(b, log_scale, shift)), log_scale.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        if self.mask_kind == "checkerboard":
            keep = 1.0 - self.mask
            fixed = y * self.mask
            log_scale, shift = self._scale_shift(fixed)
            return fixed + keep * self._undo(y, log_scale * keep, shift * keep)
        a, b = self._split(y)
        log_scale, shift = self._scale_shift(a)
        return self._join(a, self._undo(b, log_scale, shift))


class Preprocess(nn.Module):
    """[0, 1] pixels -> the flow's input space: ``shift`` x - 0.5, or ``logit`` of a squeezed x."""

    def __init__(self, kind: str, alpha: float) -> None:
        super().__init__()
        self.kind, self.alpha = kind, alpha

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "shift":
            return x - 0.5, x.new_zeros(x.shape[0])
        squeezed = self.alpha + (1 - 2 * self.alpha) * x
        y = torch.log(squeezed) - torch.log1p(-squeezed)
        logdet = math.log(1 - 2 * self.alpha) - torch.log(squeezed) - torch.log1p(-squeezed)
        return y, logdet.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        if self.kind == "shift":
            return y + 0.5
        return (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)


# the model ---------------------------------------------------------------------------------------
class Flow(nn.Module):
    def __init__(self, config: FlowConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        generator = torch.Generator().manual_seed(seed)
        self.preprocess = Preprocess(config.preprocess, config.logit_alpha)
        self.levels = nn.ModuleList()
        self.splits: list[bool] = []
        c, h, w = config.channels, config.size, config.size
        for index in range(config.levels):
            last = index == config.levels - 1
            layers = nn.ModuleList()
            if config.arch == "glow":
                layers.append(Squeeze())
                c, h, w = 4 * c, h // 2, w // 2
                for step in range(config.depth):
                    layers.append(ActNorm(c))
                    layers.append(InvConv1x1(c, generator))
                    layers.append(AffineCoupling(c, h, w, config.hidden, "channel", step % 2, "sigmoid"))
            else:
                for step in range(config.depth + (1 if last else 0)):
                    layers.append(AffineCoupling(c, h, w, config.hidden, "checkerboard", step % 2, "tanh"))
                    layers.append(ActNorm(c))
                if not last:
                    layers.append(Squeeze())
                    c, h, w = 4 * c, h // 2, w // 2
                    for step in range(config.depth):
                        layers.append(AffineCoupling(c, h, w, config.hidden, "channel", step % 2, "tanh"))
                        layers.append(ActNorm(c))
            self.levels.append(layers)
            self.splits.append(not last)
            if not last:
                c = c - c // 2
        self.latent_shapes = self._latent_shapes()
        self.latent_dim = sum(math.prod(s) for s in self.latent_shapes)

    def _latent_shapes(self) -> list[tuple[int, int, int]]:
        shapes = []
        c, h, w = self.config.channels, self.config.size, self.config.size
        for layers, split in zip(self.levels, self.splits):
            for layer in layers:
                if isinstance(layer, Squeeze):
                    c, h, w = 4 * c, h // 2, w // 2
            if split:
                shapes.append((c // 2, h, w))
                c = c - c // 2
        shapes.append((c, h, w))
        return shapes

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # the bijection -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x (n, c, h, w) in [0, 1] -> latents [(n, c_i, h_i, w_i), ...] and log|det| (n,)."""
        x, logdet = self.preprocess(x)
        latents = []
        for layers, split in zip(self.levels, self.splits):
            for layer in layers:
                x, ld = layer(x)
                logdet = logdet + ld
            if split:
                half = x.shape[1] // 2
                latents.append(x[:, :half])
                x = x[:, half:]
        latents.append(x)
        return latents, logdet

    def inverse(self, latents: list[torch.Tensor]) -> torch.Tensor:
        x = latents[-1]
        parts = iter(reversed(latents[:-1]))
        for layers, split in zip(reversed(self.levels), reversed(self.splits)):
            if split:
                x = torch.cat([next(parts), x], dim=1)
            for layer in reversed(layers):
                x = layer.inverse(x)
        return self.preprocess.inverse(x)

    def flatten(self, latents: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([z.flatten(1) for z in latents], dim=1)  # (n, D)

    def unflatten(self, flat: torch.Tensor) -> list[torch.Tensor]:
        out, start = [], 0
        for shape in self.latent_shapes:
            size = math.prod(shape)
            out.append(flat[:, start:start + size].reshape(-1, *shape))
            start += size
        return out

    # likelihood ----------------------------------------------------------------------------------
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous log density of x (n, c, h, w) in [0, 1], in nats."""
        latents, logdet = self(x)
        flat = self.flatten(latents)
        prior = -0.5 * (flat**2 + math.log(2 * math.pi)).sum(1)
        return prior + logdet

    def bits_per_dim(self, pixels: torch.Tensor, dequantize: str = "uniform",
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """Discrete bits/dim of 8-bit pixels (n, c, h, w) (any float or int dtype in 0..255).

        ``uniform`` adds U(0, 1) noise in each bin (the unbiased bound papers report);
        ``midpoint`` scores the bin centres (deterministic).
        """
        pixels = pixels.to(self.dtype)
        if dequantize == "uniform":
            device = generator.device if generator is not None else pixels.device
            noise = torch.rand(pixels.shape, generator=generator, device=device).to(self.dtype)
        else:
            noise = torch.full_like(pixels, 0.5)
        x = (pixels + noise) / 256.0
        log_p = self.log_prob(x) - self.config.dim * math.log(256.0)
        return -log_p / (self.config.dim * math.log(2.0))

    def loss(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.bits_per_dim(pixels, "uniform", generator).mean()

    @torch.no_grad()
    def initialize(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Data-dependent ActNorm initialization from one batch of pixels."""
        self.bits_per_dim(pixels, "uniform", generator)

    # sampling and coding ---------------------------------------------------------------------
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """n images in [0, 1] (n, c, h, w) and their flat latents (n, D)."""
        device = generator.device if generator is not None else self.device
        flat = torch.randn(n, self.latent_dim, generator=generator, device=device).to(self.dtype) * temperature
        return self.decode(flat), flat

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, c, h, w) in [0, 1] -> exact flat latents (n, D)."""
        return self.flatten(self(x)[0])

    def decode(self, flat: torch.Tensor) -> torch.Tensor:
        return self.inverse(self.unflatten(flat))

    # pixels <-> tensors and the latent-explorer protocol ---------------------------------------
    def from_images(self, images: list[np.ndarray]) -> torch.Tensor:
        """uint8 images -> pixel values (n, c, h, w) in 0..255, in the model's dtype (not yet dequantized)."""
        batch = np.stack([prepare(im, self.config) for im in images])
        return torch.from_numpy(batch).permute(0, 3, 1, 2).to(self.device, self.dtype)

    @staticmethod
    def to_images(x: torch.Tensor) -> list[np.ndarray]:
        """x in [0, 1] -> uint8 (h, w, c); the bin a value falls in is its pixel."""
        pixels = torch.clamp(torch.floor(x * 256.0), 0, 255).to(torch.uint8)
        return list(pixels.permute(0, 2, 3, 1).cpu().numpy())

    def double_precision(self) -> Flow:
        """A float64 copy of this (trained, frozen) model, made once. A trained flow expands some
        directions strongly, so float32 round trips can miss the input by more than 1e-4."""
        if self.dtype == torch.float64:
            return self
        twin = self.__dict__.get("_double_twin")
        if twin is None:
            twin = copy.deepcopy(self).to(torch.float64)
            object.__setattr__(self, "_double_twin", twin)  # not a submodule: no extra weights saved
        return twin

    def encode_images(self, images: list[np.ndarray], dtype: type = np.float32) -> np.ndarray:
        """Exact latents (n, D) of the bin centres. float64 runs the float64 copy, and a float64
        round trip (``decode_latents`` of these latents) returns the input within 1e-4."""
        flow = self.double_precision() if np.dtype(dtype) == np.float64 else self
        with torch.inference_mode():
            x = (flow.from_images(images) + 0.5) / 256.0
            return flow.encode(x).cpu().numpy().astype(dtype)

    def decode_latents(self, latents: np.ndarray) -> list[np.ndarray]:
        """Latents (n, D) -> uint8 images; float64 latents are decoded by the float64 copy."""
        latents = np.asarray(latents)
        flow = self.double_precision() if latents.dtype == np.float64 else self
        with torch.inference_mode():
            flat = torch.as_tensor(latents).reshape(-1, self.latent_dim)
            return self.to_images(flow.decode(flat.to(flow.device, flow.dtype)))

    def bits_per_dim_images(self, images: list[np.ndarray]) -> np.ndarray:
        """Deterministic discrete bits/dim of each image (bin-centre dequantization)."""
        with torch.inference_mode():
            return self.bits_per_dim(self.from_images(images), "midpoint").cpu().numpy().astype(np.float64)

    def config_dict(self) -> dict:
        return asdict(self.config)


def prepare(image: np.ndarray, config: FlowConfig) -> np.ndarray:
    """Any uint8 image -> (size, size, channels) uint8 the model works on."""
    from studio.core import media

    image = media.to_gray(image) if config.channels == 1 else media.to_rgb(image)
    return media.fit_square(image, config.size)


def load(path: Path, device: str = "cpu") -> Flow:
    """Loader named in plugin.toml: a checkpoint folder -> a model in eval mode."""
    from studio.core.checkpoints import CheckpointError, load_tensors, open_checkpoint

    ckpt = open_checkpoint(Path(path))
    try:
        config = FlowConfig(**ckpt.config["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: the config does not describe a flow ({exc})") from None
    model = Flow(config)
    try:
        model.load_state_dict(load_tensors(ckpt.path, framework="torch"))
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: the weights do not fit the config ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval()
