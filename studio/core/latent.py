"""Latent-space helpers shared by every family and the explorer."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


def lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (1.0 - t) * a + t * b


def slerp(a: np.ndarray, b: np.ndarray, t: float, eps: float = 1e-7) -> np.ndarray:
    """Spherical interpolation over flattened vectors; falls back to lerp when nearly parallel."""
    fa, fb = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    na, nb = np.linalg.norm(fa), np.linalg.norm(fb)
    if na < eps or nb < eps:
        return lerp(a, b, t)
    cos = np.clip(fa @ fb / (na * nb), -1.0, 1.0)
    omega = np.arccos(cos)
    if np.sin(omega) < eps:
        return lerp(a, b, t)
    out = (np.sin((1.0 - t) * omega) * fa + np.sin(t * omega) * fb) / np.sin(omega)
    return out.reshape(a.shape).astype(a.dtype)


def path(points: list[np.ndarray], steps: int, mode: str = "slerp") -> list[np.ndarray]:
    """``steps`` points evenly spaced along a chain of two or more latents, ends included."""
    if len(points) < 2:
        raise ValueError("a path needs at least two points")
    if steps < 2:
        raise ValueError("a path needs at least two steps")
    blend = slerp if mode == "slerp" else lerp
    segments = len(points) - 1
    out = []
    for position in np.linspace(0.0, segments, steps):
        index = min(int(position), segments - 1)
        out.append(blend(points[index], points[index + 1], float(position - index)))
    return out


def pca(points: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, the top-k principal directions (k, d) and the projected points (n, k)."""
    mean = points.mean(axis=0)
    centred = points - mean
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    directions = vt[:k]
    return mean, directions, centred @ directions.T


@runtime_checkable
class LatentModel(Protocol):
    """What a loaded model offers to be explored: any family whose loader returns one of these
    appears in the latent explorer. Images are uint8 (H, W, C); latents are float32 (n, d)."""

    latent_dim: int

    def encode_images(self, images: list[np.ndarray]) -> np.ndarray: ...

    def decode_latents(self, latents: np.ndarray) -> list[np.ndarray]: ...
