"""PixelCNN sampling: naive (one full forward per value) against ours (vertical stack once per row
on the rows that reach it, horizontal stack per pixel on the columns that reach it), side by side.

    python bench/pixelcnn.py [--model models/pixelcnn-mnist] [--counts 1 16] [--threads 1]

Both samplers draw from the same generator and must give identical images; the table says so.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plugins.pixelcnn.model import PixelCNN, PixelCNNConfig, load  # noqa: E402


def timed(fn, *args) -> tuple[float, torch.Tensor]:
    started = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - started, out


def naive(model: PixelCNN, n: int, embedding, seed: int) -> torch.Tensor:
    return model.sample_naive(n, embedding, 1.0, torch.Generator().manual_seed(seed))


def cached(model: PixelCNN, n: int, embedding, seed: int) -> torch.Tensor:
    *_, (_, values) = model.sample(n, embedding, 1.0, torch.Generator().manual_seed(seed))
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "pixelcnn-mnist")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if (args.model / "config.json").exists():
        model, source = load(args.model), args.model.name
    else:
        torch.manual_seed(0)
        model, source = PixelCNN(PixelCNNConfig(width=24, layers=5, kernel=5)).eval(), "random weights"
    cfg = model.config
    print(f"model: {source} ({cfg.size}x{cfg.size}x{cfg.channels}, {cfg.layers} layers, width {cfg.width}, "
          f"kernel {cfg.kernel}), {args.threads} torch thread(s), CPU\n")
    print("| images | naive full forward per value (s) | ours, cached rows + column window (s) | speed-up | identical |")
    print("|---|---|---|---|---|")
    for n in args.counts:
        embedding = model.class_embedding(torch.arange(n) % cfg.classes) if cfg.classes else None
        with torch.no_grad():
            naive_s, baseline = timed(naive, model, n, embedding, n)
            ours_s, ours = timed(cached, model, n, embedding, n)
        same = bool(torch.equal(baseline, ours))
        print(f"| {n} | {naive_s:.2f} | {ours_s:.2f} | {naive_s / ours_s:.1f}x | {same} |",
              flush=True)


if __name__ == "__main__":
    main()
