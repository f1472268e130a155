"""Training throughput: studio's one training loop against a plain hand-written PyTorch loop.

Same model (a small conv autoencoder on 32x32 RGB), same batch, same AdamW, same gradient
clipping, same per-epoch shuffling, the loss read back every 10 steps in both. The two loops
alternate for several rounds in one process; the table reports each loop's median.

    python bench/training.py [--steps 60] [--rounds 5] [--batch 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from studio.core import training

LOG_EVERY = 10


def build_model() -> nn.Module:
    return nn.Sequential(  # (B, 3, 32, 32) -> (B, 3, 32, 32)
        nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.SiLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.SiLU(),
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.SiLU(),
        nn.ConvTranspose2d(32, 3, 4, stride=2, padding=1),
    )


class ConvAutoencoder:
    def build(self) -> nn.Module:
        return build_model()

    def loss(self, model, batch, generator):
        return ((model(batch) - batch) ** 2).mean(), {}

    def sample(self, model, n, generator):
        return []

    def save(self, model, out_dir, info):
        return None


def plain_loop(data: torch.Tensor, steps: int, batch: int, device: str) -> float:
    """What one would write by hand; returns samples/s over ``steps`` after 3 warm-up steps."""
    torch.manual_seed(0)
    model = build_model().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = data.to(device)
    generator = torch.Generator().manual_seed(0)
    order, position, started = torch.randperm(len(data), generator=generator), 0, 0.0
    for step in range(steps + 3):
        if step == 3:
            started = time.perf_counter()
        if position + batch > len(data):
            order, position = torch.randperm(len(data), generator=generator), 0
        x = data[order[position : position + batch].to(device)]
        position += batch
        loss = ((model(x) - x) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % LOG_EVERY == 0:
            loss.item()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - started)


def our_loop(data: torch.Tensor, steps: int, batch: int, device: str) -> float:
    config = training.TrainConfig(steps=steps + 3, batch_size=batch, lr=1e-3, grad_clip=1.0, precision="fp32",
                                  log_every=LOG_EVERY, checkpoint_every=0, sample_every=0)
    with tempfile.TemporaryDirectory() as out:
        loop = training.train(ConvAutoencoder(), data, config, Path(out), device)
        started = 0.0
        try:
            while True:
                progress = next(loop)
                if progress.step == 3 and not started:
                    started = time.perf_counter()
                if progress.step == steps + 3:  # the last step is done; what follows is saving
                    if device == "cuda":
                        torch.cuda.synchronize()
                    elapsed = time.perf_counter() - started
                    loop.close()
                    break
        except StopIteration:
            raise RuntimeError("the loop ended before its last step was timed") from None
    return steps * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = torch.rand(1024, 3, 32, 32) * 2 - 1
    ours, plain = [], []
    for _ in range(args.rounds):
        ours.append(our_loop(data, args.steps, args.batch, args.device))
        plain.append(plain_loop(data, args.steps, args.batch, args.device))
    ours_median, plain_median = statistics.median(ours), statistics.median(plain)
    print(f"{args.rounds} alternating rounds of {args.steps} steps, batch {args.batch}, "
          f"{args.device} with {args.threads} thread(s), torch {torch.__version__}\n")
    print("| loop | samples/s (median) | min | max | vs plain |")
    print("|---|---|---|---|---|")
    for name, runs, median in (("studio.core.training", ours, ours_median), ("plain PyTorch", plain, plain_median)):
        print(f"| {name} | {median:.0f} | {min(runs):.0f} | {max(runs):.0f} | {median / plain_median - 1:+.1%} |")


if __name__ == "__main__":
    main()
