"""Diffusion samplers and CPU execution options, side by side on the shipped emoji model.

For each sampler and step count: seconds per image (wall and process CPU time) and a sample-quality
proxy, the kernel distance of the samples to the held-out emoji on 8x8-pooled pixels (x1000, unbiased,
0 = indistinguishable; ``studio.core.sample_quality.kernel_distance``). Every row starts from the same
noise. Then the default sampler under fp32, channels_last, bfloat16 autocast and torch.compile, and the
achieved GFLOP/s of the UNet against a measured matmul peak on this CPU.

    python bench/diffusion.py [--n 256] [--n-ddpm 32] [--threads 1] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from plugins.diffusion.model import (  # noqa: E402
    DEFAULT_SAMPLER,
    DEFAULT_STEPS,
    DiffusionModel,
    drive,
    load,
)
from studio.core import media  # noqa: E402
from studio.core.sample_quality import kernel_distance  # noqa: E402

SAMPLER_ROWS = [("ddpm", 1000), ("ddim", 50), ("ddim", 20), ("dpm++", 20), ("dpm++", 10), ("unipc", 20),
                ("unipc", 10), ("unipc", 5)]


def load_folder(folder: Path) -> list[np.ndarray]:
    return [media.to_rgb(media.load_image(p)) for p in sorted(folder.glob("*.png"))]


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def matmul_peak(dtype: torch.dtype, size: int = 1024, repeats: int = 8) -> float:
    """Best GFLOP/s of a square matmul per CPU second of this process: the practical peak of one core
    (with one thread), unaffected by other processes sharing the machine."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        a @ b
        best = min(best, time.process_time() - start)
    return 2 * size**3 / best / 1e9


def unet_flops(model: DiffusionModel, batch: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(batch, *model.shape)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.unet(x, torch.full((batch,), 500))
    return float(counter.get_total_flops())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="images per row (fast samplers)")
    parser.add_argument("--n-ddpm", type=int, default=32, help="images for the 1000-step DDPM row")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "diffusion-emoji32")
    parser.add_argument("--write", action="store_true", help="append the tables to bench/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load(args.model)
    test = load_folder(ROOT / "data" / "emoji-32" / "test")
    train = load_folder(ROOT / "data" / "emoji-32" / "train")
    n = args.n
    rng = np.random.default_rng(0)
    floors = {}  # real training emoji scored like samples: the best a sampler can do, and the noise of the score
    for size in sorted({n, args.n_ddpm}):
        scores = [kernel_distance([train[i] for i in rng.choice(len(train), size, replace=False)], test)
                  for _ in range(8)]
        floors[size] = (float(np.mean(scores)), float(np.std(scores)))
    noise = torch.randn((n, *model.shape), generator=torch.Generator().manual_seed(0))
    started = time.perf_counter()

    def sample(sampler: str, steps: int, start: torch.Tensor = noise) -> torch.Tensor:
        return drive(model.sample_steps(start.clone(), sampler, steps, generator=torch.Generator().manual_seed(1)))

    rows = []
    for sampler, steps in SAMPLER_ROWS:
        count = args.n_ddpm if steps >= 1000 else n
        x, wall, cpu = timed(lambda s=sampler, k=steps, c=count: sample(s, k, noise[:c]))
        score = kernel_distance(model.to_images(x), test)
        rows.append((sampler, steps, count, wall / count, cpu / count, score))
        print(f"{sampler}-{steps}: {wall / count:.3f} s/image, kernel distance {score:.2f}", flush=True)

    # execution options on the default sampler ------------------------------------------------------
    batch = 16
    small = noise[:batch]
    flops = unet_flops(model, batch)
    reference = None
    variants = []

    def run_variant(name: str, prepare, autocast=contextlib.nullcontext):
        nonlocal reference
        unet = model.unet
        model.unet = prepare(unet)
        try:
            with autocast():
                x, compile_wall, _ = timed(lambda: sample_batch())
                x, wall, cpu = timed(lambda: sample_batch())
        finally:
            model.unet = unet
        if reference is None:
            reference = x
        difference = float((x.float() - reference.float()).abs().max())
        calls = DEFAULT_STEPS
        variants.append((name, wall / batch, cpu / batch, flops * calls / cpu / 1e9, difference, compile_wall - wall))
        print(f"{name}: {cpu / batch:.3f} CPU s/image, {flops * calls / cpu / 1e9:.1f} GFLOP/s", flush=True)

    def sample_batch() -> torch.Tensor:
        return sample(DEFAULT_SAMPLER, DEFAULT_STEPS, small)

    def bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)

    run_variant("fp32 (baseline)", lambda u: u)
    run_variant("channels_last", lambda u: u.to(memory_format=torch.channels_last))
    run_variant("bfloat16 autocast", lambda u: u, bf16)
    run_variant("torch.compile (inductor)", lambda u: torch.compile(u))
    peak32, peak16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    seconds = time.perf_counter() - started

    params = sum(p.numel() for p in model.unet.parameters())
    lines = [
        f"### Diffusion samplers on diffusion-emoji32 ({params / 1e6:.2f} M parameters, 32x32 RGB)", "",
        f"Command: `python bench/diffusion.py --n {n} --n-ddpm {args.n_ddpm} --threads {args.threads}`; every row "
        f"starts from the same noise, {args.threads} torch thread(s), 2 CPU cores shared with other work (wall "
        f"times inflated; CPU times are this process's own); the whole run took {seconds:.0f} s.",
        "Quality: kernel distance (x1000, unbiased; lower is better) of the samples to the 404 held-out "
        "emoji on 8x8-pooled pixels. Real training emoji scored the same way (mean ± std over 8 draws), i.e. the "
        "floor and the noise of the score: "
        + "; ".join(f"{size} images **{mean:.1f} ± {std:.1f}**" for size, (mean, std) in floors.items()) + ".", "",
        "| sampler | steps | images | s/image (wall) | s/image (CPU) | kernel distance |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for sampler, steps, count, wall, cpu, score in rows:
        mark = "**" if (sampler, steps) == (DEFAULT_SAMPLER, DEFAULT_STEPS) else ""
        lines.append(f"| {mark}{sampler}{mark} | {mark}{steps}{mark} | {count} | {wall:.3f} | {cpu:.3f} | {score:.2f} |")
    lines += [
        "", f"Execution options, {DEFAULT_SAMPLER} {DEFAULT_STEPS} steps, batch {batch}; one UNet call on the batch "
        f"is {flops / 1e9:.2f} GFLOP. GFLOP/s are per CPU second of this process (with one thread: of one core), "
        f"so other load on the machine does not distort them. Matmul peak measured the same way: fp32 {peak32:.0f} "
        f"GFLOP/s, bf16 {peak16:.0f} GFLOP/s (1024x1024).", "",
        "| variant | s/image (wall) | s/image (CPU) | achieved GFLOP/s | % of fp32 matmul peak | max abs diff vs fp32 | first-run overhead |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, wall, cpu, gflops, difference, overhead in variants:
        lines.append(f"| {name} | {wall:.4f} | {cpu:.4f} | {gflops:.1f} | {100 * gflops / peak32:.0f}% | "
                     f"{difference:.3f} | {overhead:.1f} s |")
    table = "\n".join(lines)
    print()
    print(table)
    if args.write:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n## Diffusion (bench/diffusion.py)\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
