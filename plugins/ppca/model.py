"""Probabilistic PCA (Tipping & Bishop, 1999): x = W z + mean + noise, z ~ N(0, I).

Fitted in closed form from one SVD; exact likelihood through the matrix determinant lemma
and the Woodbury identity, so nothing D x D is ever formed. Pixels live in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass
class PPCAConfig:
    size: int = 28  # images are size x size
    channels: int = 1  # 1 (gray) or 3 (RGB)
    components: int = 32  # latent dimension q

    @property
    def dim(self) -> int:
        return self.size * self.size * self.channels


class PPCA:
    def __init__(self, config: PPCAConfig, mean: np.ndarray, weight: np.ndarray, noise_var: float) -> None:
        self.config = config
        self.mean = mean.astype(np.float64)  # (D,)
        self.weight = weight.astype(np.float64)  # (D, q)
        self.noise_var = float(noise_var)
        q = weight.shape[1]
        self._m = self.weight.T @ self.weight + self.noise_var * np.eye(q)  # (q, q)
        self._m_inv = np.linalg.inv(self._m)
        self._logdet = (self.dim - q) * math.log(self.noise_var) + np.linalg.slogdet(self._m)[1]

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def latent_dim(self) -> int:
        return self.weight.shape[1]

    @classmethod
    def fit(cls, data: np.ndarray, config: PPCAConfig) -> PPCA:
        """``data`` (N, D) in [0, 1]; maximum-likelihood W and sigma^2 from the SVD."""
        n, d = data.shape
        q = min(config.components, n - 1, d - 1)
        mean = data.mean(axis=0)
        _, singular, vt = np.linalg.svd(data - mean, full_matrices=False)
        eig = singular**2 / n  # (min(N, D),) variances along principal axes
        total = float(((data - mean) ** 2).sum() / n)
        noise_var = max((total - eig[:q].sum()) / (d - q), 1e-6)
        scale = np.sqrt(np.maximum(eig[:q] - noise_var, 0.0))
        weight = vt[:q].T * scale  # (D, q)
        return cls(PPCAConfig(config.size, config.channels, q), mean, weight, noise_var)

    def sample(self, n: int, rng: np.random.Generator, temperature: float = 1.0, noise: bool = False) -> tuple:
        z = rng.standard_normal((n, self.latent_dim)) * temperature  # (n, q)
        x = self.decode(z)
        if noise:
            x = x + rng.standard_normal(x.shape) * math.sqrt(self.noise_var) * temperature
        return x, z

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Posterior mean of z given x (n, D) -> (n, q)."""
        return (x - self.mean) @ self.weight @ self._m_inv.T

    def decode(self, z: np.ndarray) -> np.ndarray:
        return z @ self.weight.T + self.mean  # (n, D)

    def log_likelihood(self, x: np.ndarray) -> np.ndarray:
        """log N(x; mean, W W^T + sigma^2 I) for rows of x (n, D)."""
        centred = x - self.mean
        projected = centred @ self.weight  # (n, q)
        quad = (np.einsum("nd,nd->n", centred, centred) - np.einsum("nq,qk,nk->n", projected, self._m_inv, projected))
        quad /= self.noise_var
        return -0.5 * (self.dim * math.log(2 * math.pi) + self._logdet + quad)

    def bits_per_dim(self, pixels: np.ndarray) -> np.ndarray:
        """Discrete bits/dim of uint8 images (n, D), dequantized to the centres of their bins."""
        x = (pixels.astype(np.float64) + 0.5) / 256.0
        log_p = self.log_likelihood(x) - self.dim * math.log(256.0)
        return -log_p / (self.dim * math.log(2.0))

    # pixels <-> vectors ------------------------------------------------------------------
    def to_images(self, x: np.ndarray) -> list[np.ndarray]:
        c, s = self.config.channels, self.config.size
        pixels = np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return [row.reshape(s, s, c) for row in pixels]

    def from_images(self, images: list[np.ndarray]) -> np.ndarray:
        return np.stack([prepare(im, self.config).reshape(-1) for im in images]).astype(np.float64) / 255.0

    # the latent-explorer protocol (studio.core.latent.LatentModel) ---------------------------
    def encode_images(self, images: list[np.ndarray]) -> np.ndarray:
        return self.encode(self.from_images(images)).astype(np.float32)

    def decode_latents(self, latents: np.ndarray) -> list[np.ndarray]:
        return self.to_images(self.decode(np.asarray(latents, dtype=np.float64)))

    def bits_per_dim_images(self, images: list[np.ndarray]) -> np.ndarray:
        pixels = np.stack([prepare(im, self.config).reshape(-1) for im in images])
        return self.bits_per_dim(pixels)

    def tensors(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean.astype(np.float32),
            "weight": self.weight.astype(np.float32),
            "noise_var": np.array([self.noise_var], dtype=np.float32),
        }

    def config_dict(self) -> dict:
        return asdict(self.config)


def prepare(image: np.ndarray, config: PPCAConfig) -> np.ndarray:
    """Any uint8 image -> (size, size, channels) uint8 the model works on."""
    from studio.core import media

    image = media.to_gray(image) if config.channels == 1 else media.to_rgb(image)
    return media.fit_square(image, config.size)


def load(path: Path, device: str = "cpu") -> PPCA:
    """Loader named in plugin.toml: a checkpoint folder -> a model. PPCA runs on the CPU."""
    from studio.core.checkpoints import load_tensors, open_checkpoint

    ckpt = open_checkpoint(Path(path))
    tensors = load_tensors(ckpt.path)
    config = PPCAConfig(**{k: ckpt.config["model"][k] for k in ("size", "channels", "components")})
    return PPCA(config, tensors["mean"], tensors["weight"], float(tensors["noise_var"][0]))
