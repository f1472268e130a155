"""A small DCGAN-style GAN (Radford et al., 2016) with a spectrally normalised discriminator
(Miyato et al., 2018) trained with the hinge loss, for 32x32 or 64x64 RGB images.

Generator: z (latent_dim) -> linear -> 4x4 features -> (nearest upsample, 3x3 conv, BatchNorm,
ReLU) per doubling -> 3x3 conv -> tanh. Discriminator: 3x3 + 4x4/2 convolutions with spectral
norm and LeakyReLU per halving -> linear -> a score. D sees real and fake images through
DiffAugment (Zhao et al., 2020: random colour, translation and cutout, differentiable), so it
cannot memorise a small data set and starve G of gradient. Latent directions are found after training,
GANSpace-style (Haerkoenen et al., 2020): PCA of the generator's first-layer features of sampled
latents, carried back to z by least squares, and stored with the weights. Inversion optimises z
for a pixel loss plus a feature loss on the discriminator's first block.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

BASE = 4  # side of the generator's first feature map


@dataclass
class GANConfig:
    size: int = 32  # 32 or 64 (any power of two from 8)
    channels: int = 3
    latent_dim: int = 64
    width: int = 32  # channels at full resolution; doubled per halving (capped at 8x)
    directions: int = 8  # principal latent directions stored after training

    def __post_init__(self) -> None:
        if self.size < 8 or self.size & (self.size - 1):
            raise ValueError(f"size must be a power of two from 8, not {self.size}")

    @property
    def stages(self) -> int:
        return int(math.log2(self.size // BASE))

    def widths(self) -> list[int]:
        """Channels from the 4x4 map up to full resolution, e.g. [128, 64, 32, 32] for 32 px."""
        return [self.width * min(2 ** (self.stages - i), 8) for i in range(self.stages + 1)]


class Generator(nn.Module):
    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        widths = config.widths()
        self.first = nn.Linear(config.latent_dim, widths[0] * BASE * BASE)  # z (n, d) -> (n, w0*16)
        self.first_norm = nn.BatchNorm2d(widths[0])
        blocks: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            blocks += [nn.Upsample(scale_factor=2), nn.Conv2d(n_in, n_out, 3, padding=1), nn.BatchNorm2d(n_out), nn.ReLU()]
        self.blocks = nn.Sequential(*blocks)  # (n, w0, 4, 4) -> (n, w_last, size, size)
        self.to_rgb = nn.Conv2d(widths[-1], config.channels, 3, padding=1)
        self.width0 = widths[0]

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """z (n, d) -> the first layer's pre-activation features (n, w0*16): GANSpace's PCA space."""
        return self.first(z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.features(z).reshape(-1, self.width0, BASE, BASE)
        h = F.relu(self.first_norm(h))
        return torch.tanh(self.to_rgb(self.blocks(h)))  # (n, c, size, size) in [-1, 1]


class Discriminator(nn.Module):
    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        widths = config.widths()[::-1]  # full resolution first
        self.stem = spectral_norm(nn.Conv2d(config.channels, widths[0], 3, padding=1))
        blocks: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            blocks += [spectral_norm(nn.Conv2d(n_in, n_out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        self.blocks = nn.Sequential(*blocks)  # (n, w, size, size) -> (n, w_last, 4, 4)
        self.head = spectral_norm(nn.Linear(widths[-1] * BASE * BASE, 1))

    def early_features(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, c, s, s) -> (n, w, s, s): the first block, used as a cheap perceptual space."""
        return F.leaky_relu(self.stem(x), 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.early_features(x)).flatten(1)).squeeze(1)  # (n,) scores


def diff_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """x (n, c, s, s) in [-1, 1] -> the same images with a random brightness, saturation and
    contrast, translated by up to s/8 pixels (zero padded) and with an s/2 square cut out, each
    image drawn on its own (DiffAugment's "color,translation,cutout" policy)."""
    n, _, s, _ = x.shape

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=generator.device).to(x.device)

    def offsets(limit: int) -> torch.Tensor:  # (n, 1, 1) integers in [-limit, limit]
        return (uniform(n, 1, 1) * (2 * limit + 1)).long() - limit

    x = x + (uniform(n, 1, 1, 1) - 0.5)
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * (uniform(n, 1, 1, 1) * 2.0) + mean
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * (uniform(n, 1, 1, 1) + 0.5) + mean

    shift = max(s // 8, 1)
    rows = torch.arange(s, device=x.device)[None, :, None]  # (1, s, 1)
    cols = torch.arange(s, device=x.device)[None, None, :]  # (1, 1, s)
    batch = torch.arange(n, device=x.device)[:, None, None]  # (n, 1, 1)
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # (n, s+2, s+2, c), a zero border
    x = padded[batch, (rows + offsets(shift) + 1).clamp(0, s + 1),
               (cols + offsets(shift) + 1).clamp(0, s + 1)].permute(0, 3, 1, 2)

    half = s // 2
    top = (uniform(n, 1, 1) * (s + 1 - half % 2)).long() - half // 2  # the cut's corner; it may hang off the edge
    left = (uniform(n, 1, 1) * (s + 1 - half % 2)).long() - half // 2
    inside = ((rows - top) >= 0) & ((rows - top) < half) & ((cols - left) >= 0) & ((cols - left) < half)
    return x * (~inside)[:, None].to(x.dtype)


class GAN(nn.Module):
    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        k = config.directions
        self.register_buffer("directions", torch.zeros(k, config.latent_dim))  # (k, d) unit rows in z space
        self.register_buffer("direction_scales", torch.ones(k))  # (k,) std of sampled z along each row
        self.direction_names = [f"direction {i + 1}" for i in range(k)]  # set from config.json by ``load``

    @property
    def device(self) -> torch.device:
        return self.generator.first.weight.device

    # training -------------------------------------------------------------------------------------
    def hinge_losses(self, real: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Discriminator and generator hinge losses of one batch, arranged so that one backward
        pass of their sum gives D only the gradient of its loss and G only the gradient of its:
        D sees the fakes detached, and G's loss runs through D with D's parameters frozen."""
        z = torch.randn(real.shape[0], self.latent_dim, generator=generator, device=generator.device)
        fake = self.generator(z)
        scores = self.discriminator(diff_augment(torch.cat([real, fake.detach()]), generator))
        real_scores, fake_scores = scores.chunk(2)
        d_loss = F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()
        self.discriminator.requires_grad_(False)
        try:
            g_loss = -self.discriminator(diff_augment(fake, generator)).mean()
        finally:
            self.discriminator.requires_grad_(True)
        return d_loss, g_loss

    # sampling -------------------------------------------------------------------------------------
    def sample_latents(self, n: int, truncation: float = 1.0, mode: str = "resample",
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, d) prior samples with the truncation trick: ``resample`` redraws components beyond
        4 * truncation standard deviations (BigGAN); ``scale`` shrinks z towards the mean (0)."""
        device = generator.device if generator is not None else self.device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        if truncation >= 1.0:
            return z
        if mode == "scale":
            return z * truncation
        threshold = 4.0 * truncation
        for _ in range(100):
            outside = z.abs() > threshold
            if not outside.any():
                break
            z = torch.where(outside, torch.randn(z.shape, generator=generator, device=device), z)
        return z.clamp(-threshold, threshold)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)  # (n, c, s, s) in [-1, 1]

    # inversion ------------------------------------------------------------------------------------
    def invert(self, target: torch.Tensor, steps: int = 200, perceptual: float = 0.1, candidates: int = 16,
               lr: float = 0.05, generator: torch.Generator | None = None
               ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """Optimise z so that G(z) matches ``target`` (n, c, s, s) in [-1, 1]: a pixel MSE plus
        ``perceptual`` x an MSE on D's first-block features. Starts from the best of ``candidates``
        prior samples per image. Yields (step, z (n, d), per-image pixel MSE (n,)) after every step
        (step 0 = the start)."""
        n = target.shape[0]
        target = target.to(self.device)
        with torch.no_grad():
            pool = self.sample_latents(n * candidates, generator=generator).to(self.device)
            errors = (self.decode(pool) - target.repeat_interleave(candidates, 0)).pow(2).flatten(1).mean(1)
            best = errors.reshape(n, candidates).argmin(1)
            z = pool.reshape(n, candidates, -1)[torch.arange(n), best].clone()
            target_features = self.discriminator.early_features(target) if perceptual else None
        z.requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=lr)
        frozen = [p.requires_grad for p in self.parameters()]
        self.requires_grad_(False)
        try:
            for step in range(steps + 1):
                image = self.decode(z)
                pixel = (image - target).pow(2).flatten(1).mean(1)  # (n,)
                yield step, z.detach(), pixel.detach()
                if step == steps:
                    break
                loss = pixel.sum()
                if target_features is not None:
                    loss = loss + perceptual * (self.discriminator.early_features(image) - target_features
                                                ).pow(2).flatten(1).mean(1).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        finally:
            for p, flag in zip(self.parameters(), frozen):
                p.requires_grad_(flag)

    # latent directions ------------------------------------------------------------------------------
    @torch.no_grad()
    def find_directions(self, samples: int = 4096, seed: int = 0) -> None:
        """GANSpace for a z-input GAN: PCA of the first layer's features of sampled z, then the z
        directions that move the features along each principal axis (least squares z ~ coords V)."""
        generator = torch.Generator(device="cpu").manual_seed(seed)
        z = torch.randn(samples, self.latent_dim, generator=generator).double()
        features = self.generator.features(z.float().to(self.device)).double().cpu()  # (N, F)
        centred = features - features.mean(0)
        _, _, vt = torch.linalg.svd(centred, full_matrices=False)
        k = min(self.config.directions, vt.shape[0], self.latent_dim)
        coords = centred @ vt[:k].T  # (N, k)
        basis = torch.linalg.lstsq(coords, z).solution  # (k, d): coords @ basis ~ z
        basis = basis / basis.norm(dim=1, keepdim=True)
        self.directions.zero_()
        self.directions[:k] = basis.float().to(self.device)
        self.direction_scales.fill_(1.0)
        self.direction_scales[:k] = (z @ basis.T).std(0).float().to(self.device)

    def latent_basis(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Named sliders for the latent explorer: names, mean (d,), unit directions (k, d), scales (k,)."""
        found = int((self.directions.abs().sum(1) > 0).sum())
        return (self.direction_names[:found], np.zeros(self.latent_dim),
                self.directions[:found].cpu().numpy().astype(np.float64),
                self.direction_scales[:found].cpu().numpy().astype(np.float64))

    def move(self, z: torch.Tensor, direction: int, amount: float) -> torch.Tensor:
        """z (n, d) moved ``amount`` standard deviations along direction ``direction`` (0-based)."""
        return z + amount * self.direction_scales[direction] * self.directions[direction]

    # images <-> tensors and the latent-explorer protocol ------------------------------------------
    def from_images(self, images: list[np.ndarray]) -> torch.Tensor:
        """uint8 images -> (n, c, s, s) in [-1, 1] on the model's device."""
        batch = np.stack([prepare(im, self.config) for im in images]).astype(np.float32)
        return (torch.from_numpy(batch).permute(0, 3, 1, 2) / 127.5 - 1.0).to(self.device)

    @staticmethod
    def to_images(x: torch.Tensor) -> list[np.ndarray]:
        pixels = torch.clamp((x.detach() + 1.0) * 127.5 + 0.5, 0, 255).to(torch.uint8)
        return list(pixels.permute(0, 2, 3, 1).cpu().numpy())

    def encode_images(self, images: list[np.ndarray], steps: int = 100, seed: int = 0) -> np.ndarray:
        """Inversion by optimisation (the GAN has no encoder)."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        *_, (_, z, _) = self.invert(self.from_images(images), steps, generator=generator)
        return z.cpu().numpy().astype(np.float32)

    def decode_latents(self, latents: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            z = torch.as_tensor(np.asarray(latents, dtype=np.float32)).reshape(-1, self.latent_dim)
            return self.to_images(self.decode(z.to(self.device)))

    def config_dict(self) -> dict:
        return asdict(self.config)


def prepare(image: np.ndarray, config: GANConfig) -> np.ndarray:
    """Any uint8 image -> (size, size, channels) uint8 the model works on."""
    from studio.core import media

    image = media.to_gray(image) if config.channels == 1 else media.to_rgb(image)
    return media.fit_square(image, config.size)


def load(path: Path, device: str = "cpu") -> GAN:
    """Loader named in plugin.toml: a checkpoint folder -> a model in eval mode."""
    from studio.core.checkpoints import CheckpointError, load_tensors, open_checkpoint

    ckpt = open_checkpoint(Path(path))
    try:
        config = GANConfig(**ckpt.config["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: the config does not describe a GAN ({exc})") from None
    model = GAN(config)
    try:
        model.load_state_dict(load_tensors(ckpt.path, framework="torch"))
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: the weights do not fit the config ({str(exc).splitlines()[0]})") from None
    names = list(ckpt.config.get("names") or [])
    model.direction_names = [names[i] if i < len(names) and names[i] else default
                             for i, default in enumerate(model.direction_names)]
    return model.to(device).eval()
