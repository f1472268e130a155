"""Sample quality without a pretrained network: a kernel distance on pooled pixels."""

from __future__ import annotations

import numpy as np
import torch


def kernel_distance(samples: list[np.ndarray], reference: list[np.ndarray], pool: int = 8) -> float:
    """A cheap image-quality proxy: the unbiased kernel inception distance (Binkowski et al., 2018)
    with 8x8 average-pooled pixels in place of Inception features, x1000. 0 = same distribution;
    unbiased, so sets of different sizes compare."""

    def features(images: list[np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return torch.nn.functional.adaptive_avg_pool2d(x, pool).flatten(1).double().numpy()

    a, b = features(samples), features(reference)
    d = a.shape[1]

    def kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x @ y.T / d + 1.0) ** 3

    kaa, kbb, kab = kernel(a, a), kernel(b, b), kernel(a, b)
    m, n = len(a), len(b)
    mmd = ((kaa.sum() - np.trace(kaa)) / (m * (m - 1)) + (kbb.sum() - np.trace(kbb)) / (n * (n - 1))
           - 2.0 * kab.mean())
    return float(mmd * 1000.0)
