"""A convolutional variational autoencoder (Kingma & Welling, 2014) for small images.

Encoder: strided convolutions -> a diagonal Gaussian q(z | x). Decoder: transposed
convolutions -> a per-pixel discretized logistic p(x | z) over the 256 levels of each 8-bit
value (as in PixelCNN++), so the negative ELBO is an upper bound on the discrete bits/dim,
comparable with the flows' exact numbers. Samples and reconstructions show the decoder's
mean image.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class VAEConfig:
    size: int = 32  # images are size x size; divisible by 4 (two resolutions) or 8 (three)
    channels: int = 3  # 1 (gray) or 3 (RGB)
    latent_dim: int = 32
    width: int = 32  # channels after the first convolution; doubled at each downsampling

    def __post_init__(self) -> None:
        if self.size % 4:
            raise ValueError(f"size must be divisible by 4, not {self.size}")

    @property
    def stages(self) -> int:
        return 3 if self.size % 8 == 0 else 2

    @property
    def base(self) -> int:
        return self.size >> self.stages  # side of the smallest feature map

    @property
    def dim(self) -> int:
        return self.size * self.size * self.channels


def discretized_logistic_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log P(x) per value, x in [-1, 1] on the 256-level grid; the end bins take the tails."""
    centred = x - mean
    inv_scale = torch.exp(-log_scale)
    plus = inv_scale * (centred + 1.0 / 255.0)
    minus = inv_scale * (centred - 1.0 / 255.0)
    log_cdf_plus = plus - F.softplus(plus)  # log sigmoid(plus), for the bottom bin
    log_one_minus_cdf_minus = -F.softplus(minus)  # for the top bin
    cdf_delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    mid = inv_scale * centred
    log_pdf_mid = mid - log_scale - 2.0 * F.softplus(mid) - math.log(127.5)  # when the bin mass underflows
    inner = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp_min(1e-12)), log_pdf_mid)
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_minus, inner))


class VAE(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c, w, stages, base = config.channels, config.width, config.stages, config.base
        widths = [w * 2**i for i in range(stages)]  # e.g. 32, 64, 128
        encoder: list[nn.Module] = []
        for n_in, n_out in zip([c, *widths[:-1]], widths):
            encoder += [nn.Conv2d(n_in, n_out, 4, stride=2, padding=1), nn.SiLU()]
        self.encoder = nn.Sequential(*encoder, nn.Flatten())  # (n, widths[-1] * base * base)
        self.to_posterior = nn.Linear(widths[-1] * base * base, 2 * config.latent_dim)
        self.from_latent = nn.Linear(config.latent_dim, widths[-1] * base * base)
        decoder: list[nn.Module] = []
        for n_in, n_out in zip(widths[::-1][:-1], widths[::-1][1:]):
            decoder += [nn.ConvTranspose2d(n_in, n_out, 4, stride=2, padding=1), nn.SiLU()]
        decoder.append(nn.ConvTranspose2d(widths[0], 2 * c, 4, stride=2, padding=1))  # mean, log-scale
        self.decoder = nn.Sequential(*decoder)
        self.latent_dim = config.latent_dim

    @property
    def device(self) -> torch.device:
        return self.to_posterior.weight.device

    # the two halves ------------------------------------------------------------------------------
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (n, c, s, s) in [-1, 1] -> mean and log-variance of q(z | x), each (n, d)."""
        return self.to_posterior(self.encoder(x)).chunk(2, dim=1)

    def likelihood_params(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (n, d) -> mean in [-1, 1] and log-scale of p(x | z), each (n, c, s, s)."""
        cfg = self.config
        widest = cfg.width * 2 ** (cfg.stages - 1)
        h = F.silu(self.from_latent(z)).reshape(-1, widest, cfg.base, cfg.base)
        mean, log_scale = self.decoder(h).chunk(2, dim=1)
        return torch.tanh(mean), log_scale.clamp(min=-7.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]  # (n, d): the posterior mean

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.likelihood_params(z)[0]  # (n, c, s, s) in [-1, 1]

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        device = generator.device if generator is not None else self.device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device) * temperature
        return self.decode(z), z

    # the bound -------------------------------------------------------------------------------------
    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One-sample ELBO terms per image, in nats: log p(x | z) (n,) and KL(q || p) (n,)."""
        mean, log_var = self.posterior(x)
        device = generator.device if generator is not None else mean.device
        noise = torch.randn(mean.shape, generator=generator, device=device)
        z = mean + torch.exp(0.5 * log_var) * noise
        px_mean, px_log_scale = self.likelihood_params(z)
        reconstruction = discretized_logistic_log_prob(x, px_mean, px_log_scale).flatten(1).sum(1)
        kl = 0.5 * (mean**2 + log_var.exp() - 1.0 - log_var).sum(1)
        return reconstruction, kl

    def bits_per_dim(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The negative ELBO in discrete bits/dim (n,): an upper bound on -log2 p(x) / D."""
        reconstruction, kl = self.elbo(x, generator)
        return (kl - reconstruction) / (self.config.dim * math.log(2.0))

    def loss(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean negative ELBO in bits/dim of a batch of 8-bit pixels (n, c, s, s)."""
        return self.bits_per_dim(to_unit(pixels), generator).mean()

    # pixels <-> tensors and the latent-explorer protocol ----------------------------------------
    def from_images(self, images: list[np.ndarray]) -> torch.Tensor:
        """uint8 images -> (n, c, s, s) float32 pixel values 0..255."""
        batch = np.stack([prepare(im, self.config) for im in images]).astype(np.float32)
        return torch.from_numpy(batch).permute(0, 3, 1, 2).to(self.device)

    @staticmethod
    def to_images(x: torch.Tensor) -> list[np.ndarray]:
        pixels = torch.clamp((x + 1.0) * 127.5 + 0.5, 0, 255).to(torch.uint8)
        return list(pixels.permute(0, 2, 3, 1).cpu().numpy())

    def encode_images(self, images: list[np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            return self.encode(to_unit(self.from_images(images))).cpu().numpy().astype(np.float32)

    def decode_latents(self, latents: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            z = torch.as_tensor(np.asarray(latents, dtype=np.float32)).reshape(-1, self.latent_dim)
            return self.to_images(self.decode(z.to(self.device)))

    def reconstruct_images(self, images: list[np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            return self.to_images(self.decode(self.encode(to_unit(self.from_images(images)))))

    def elbo_bits_per_dim_images(self, images: list[np.ndarray], seed: int = 0) -> np.ndarray:
        """The ELBO bound in bits/dim of each image, with a fixed seed for the posterior sample."""
        generator = torch.Generator().manual_seed(seed)
        with torch.inference_mode():
            return self.bits_per_dim(to_unit(self.from_images(images)), generator).cpu().numpy().astype(np.float64)

    def config_dict(self) -> dict:
        return asdict(self.config)


def to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """8-bit pixel values 0..255 -> [-1, 1], the grid the discretized logistic lives on."""
    return pixels.to(torch.float32) / 127.5 - 1.0


def prepare(image: np.ndarray, config: VAEConfig) -> np.ndarray:
    """Any uint8 image -> (size, size, channels) uint8 the model works on."""
    from studio.core import media

    image = media.to_gray(image) if config.channels == 1 else media.to_rgb(image)
    return media.fit_square(image, config.size)


def load(path: Path, device: str = "cpu") -> VAE:
    """Loader named in plugin.toml: a checkpoint folder -> a model in eval mode."""
    from studio.core.checkpoints import CheckpointError, load_tensors, open_checkpoint

    ckpt = open_checkpoint(Path(path))
    try:
        config = VAEConfig(**ckpt.config["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: the config does not describe a VAE ({exc})") from None
    model = VAE(config)
    try:
        model.load_state_dict(load_tensors(ckpt.path, framework="torch"))
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: the weights do not fit the config ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval()
