"""Latent models side by side: decode-to-pixels latency per frame against the 16 ms frame budget,
and held-out bits/dim against the published numbers (PPCA is the baseline).

    python bench/latent.py [--reps 60] [--threads 1] [--limit 1000]

Every shipped checkpoint of the ppca, vae and flow families is loaded from models/; its
held-out set is the ``test`` folder beside the ``train`` folder it was trained on. Flows report
exact bits/dim (uniform dequantization, seed 0), VAEs the negative ELBO (an upper bound, one
posterior sample, seed 0), PPCA its exact Gaussian bits/dim (bin centres).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FRAME_BUDGET_MS = 16.0
PUBLISHED = "RealNVP 1.06, Glow 1.05 (full MNIST)"
PLUGINS = ("studio.ppca", "studio.vae", "studio.flow")


def decode_latency_ms(model, reps: int, seed: int = 0) -> tuple[float, float, float]:
    """Fastest, median and 95th-percentile milliseconds to turn one latent into a uint8 image."""
    latents = np.random.default_rng(seed).standard_normal((reps + 5, model.latent_dim)).astype(np.float32) * 0.7
    times = []
    for i, z in enumerate(latents):
        start = time.perf_counter()
        model.decode_latents(z[None])
        if i >= 5:  # warm-up frames are not counted
            times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    return times[0], statistics.median(times), times[int(0.95 * (len(times) - 1))]


def held_out(ckpt, model, limit: int) -> tuple[str, float | None, int]:
    """(what was measured, mean bits/dim, images) on the test folder beside the training folder."""
    import torch

    from studio.core.datasets import load_image_folder

    training = ckpt.config.get("training", {})
    data = training.get("data", "")
    folder = Path(data.get("folder", "") if isinstance(data, dict) else data)
    test = ROOT / folder.parent / "test"
    if folder.name != "train" or not test.is_dir():
        return "-", None, 0
    prepare = sys.modules[type(model).__module__].prepare
    images = load_image_folder(test, lambda im: prepare(im, model.config), limit=limit).images
    if ckpt.plugin == "studio.ppca":
        return "exact, bin centres", float(model.bits_per_dim_images(list(images)).mean()), len(images)
    pixels = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    generator = torch.Generator().manual_seed(0)
    scores = []
    with torch.inference_mode():
        for start in range(0, len(pixels), 200):
            batch = pixels[start:start + 200]
            if ckpt.plugin == "studio.flow":
                scores.append(model.bits_per_dim(batch, "uniform", generator))
            else:
                scores.append(model.bits_per_dim(batch.float() / 127.5 - 1.0, generator))
    what = "exact, uniform dequantization" if ckpt.plugin == "studio.flow" else "ELBO bound (upper)"
    return what, float(torch.cat(scores).mean()), len(images)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=int, default=1000, help="held-out images per model")
    args = parser.parse_args()
    import torch

    from studio.core.paths import shipped_models_dir
    from studio.core.registry import Registry

    torch.set_num_threads(args.threads)
    registry = Registry(model_roots=[(shipped_models_dir(), "shipped")])
    rows = []
    for ckpt in sorted(registry.checkpoints(), key=lambda c: (PLUGINS.index(c.plugin) if c.plugin in PLUGINS else 9, c.id)):
        if ckpt.plugin not in PLUGINS:
            continue
        model = registry.loader(ckpt.plugin)(ckpt.path, "cpu")
        fastest, median, p95 = decode_latency_ms(model, args.reps)
        what, bpd, count = held_out(ckpt, model, args.limit)
        family = ckpt.config.get("arch", ckpt.family)
        size = ckpt.config.get("model", {}).get("size", "?")
        reference = PUBLISHED if "mnist" in ckpt.id and ckpt.plugin == "studio.flow" else ""
        rows.append(
            f"| {ckpt.id} | {family} | {size}x{size} | {model.latent_dim} | {fastest:.2f} | {median:.2f} | {p95:.2f} | "
            f"{'yes' if p95 < FRAME_BUDGET_MS else 'no'} | {'-' if bpd is None else f'{bpd:.3f}'} ({what}, n={count}) | "
            f"{reference} |"
        )
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.reps} frames per model, "
          f"load average {load:.1f} on {os.cpu_count()} cores")
    print()
    print("| model | family | size | latent dim | decode ms (min) | decode ms (median) | decode ms (p95) | "
          "p95 within 16 ms | held-out bits/dim | published |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
