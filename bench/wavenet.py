"""WaveNet generation speed, side by side on the same weights.

    python bench/wavenet.py [--quick]

Rows: naive generation (a full forward pass over everything so far, per sample), a plain
PyTorch loop with per-layer queues, the incremental generation of the ``wavenet_vocoder``
package (PyPI, r9y9) with our weights copied in, and ours (numba, fused weights), one take on
one thread and several takes on two threads. Two sizes: wavenet_vocoder's layout as asked for
(20 layers, 2 stacks, residual 64, gate 128, skip 64, kernel 2) and the shipped model.
Samples/s are wall-clock; "per CPU-s" divides by the process's CPU time, which is the fairer
number when other jobs share the two cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plugins.wavenet.model import WaveNet, WaveNetConfig, load, silence_code  # noqa: E402

SHIPPED = ROOT / "models" / "wavenet-gm-notes"


def timed(fn) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def vocoder_copy(model: WaveNet):
    """wavenet_vocoder's WaveNet with our weights (weight norm removed, g bias zero)."""
    from wavenet_vocoder import WaveNet as VocoderWaveNet

    cfg = model.config
    theirs = VocoderWaveNet(
        out_channels=cfg.classes, layers=cfg.layers, stacks=cfg.stacks, residual_channels=cfg.residual,
        gate_channels=cfg.gate, skip_out_channels=cfg.skip, kernel_size=cfg.kernel, gin_channels=cfg.embed,
        n_speakers=None, use_speaker_embedding=False, legacy=False, cin_channels=-1,
    )
    theirs.make_generation_fast_()
    theirs.eval()
    with torch.no_grad():
        theirs.first_conv.weight.copy_(model.first.weight)
        theirs.first_conv.bias.copy_(model.first.bias)
        for mine, layer in zip(model.layers, theirs.conv_layers):
            layer.conv.weight.copy_(mine.conv.weight)
            layer.conv.bias.copy_(mine.conv.bias)
            layer.conv1x1g.weight.copy_(mine.cond_global.weight)
            layer.conv1x1g.bias.zero_()
            for ours, its in ((mine.res, layer.conv1x1_out), (mine.skip, layer.conv1x1_skip)):
                its.weight.copy_(ours.weight)
                its.bias.copy_(ours.bias)
        for ours, index in ((model.post1, 1), (model.post2, 3)):
            theirs.last_conv_layers[index].weight.copy_(ours.weight)
            theirs.last_conv_layers[index].bias.copy_(ours.bias)
    return theirs


def vocoder_matches(model: WaveNet, theirs, codes: np.ndarray, g: torch.Tensor) -> float:
    """Max |p_ours - p_theirs| over teacher-forced steps: shows the weights were copied right."""
    n = len(codes)
    inputs = np.concatenate([[silence_code(model.config.classes)], codes[:-1]])
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(inputs), model.config.classes).float().t()[None]
    with torch.no_grad():
        probs = theirs.incremental_forward(g=g[:, :, None], T=n, test_inputs=one_hot, softmax=True, quantize=False)
        ours = torch.softmax(model(torch.from_numpy(inputs)[None], g[:, :, None]), dim=1)
    return float((probs - ours).abs().max())


def bench(model: WaveNet, label: str, lengths: dict[str, int], rows: list[str]) -> None:
    model = model.float().eval()
    g_plan = model.plan(1, 1, 0, 60)
    g = torch.from_numpy(g_plan.vectors[:, 0]).float()  # (1, E)

    def add(method: str, takes: int, threads: int, n: int, wall: float, cpu: float) -> None:
        rate = takes * n / wall
        rows.append(f"| {label} | {method} | {takes} | {threads} | {n} | {rate:,.0f} | {takes * n / cpu:,.0f} "
                    f"| {rate / model.config.rate:.3f} |")
        print(rows[-1], flush=True)

    torch.set_num_threads(1)
    n = lengths["naive"]
    plan = model.plan(1, n, 0, 60, seed=1)
    naive, wall, cpu = timed(lambda: model.sample_naive(plan))
    add("naive: full forward per sample", 1, 1, n, wall, cpu)

    n = lengths["cached"]
    plan = model.plan(1, n, 0, 60, seed=1)
    cached, wall, cpu = timed(lambda: model.sample_cached_torch(plan))
    add("PyTorch loop with cached queues", 1, 1, n, wall, cpu)

    theirs = vocoder_copy(model)
    n = lengths["vocoder"]
    initial = torch.zeros(1, model.config.classes, 1)
    initial[0, silence_code(model.config.classes), 0] = 1.0
    with torch.no_grad():
        _, wall, cpu = timed(lambda: theirs.incremental_forward(initial_input=initial, g=g[:, :, None], T=n))
    extra = " (no pitch-source input)" if model.config.harmonics else ""
    add("wavenet_vocoder incremental_forward" + extra, 1, 1, n, wall, cpu)
    diff = None if model.config.harmonics else vocoder_matches(model, theirs, cached[0, :200], g)

    n = lengths["fast"]
    for takes, threads in ((1, 1), (2, 2), (4, 2), (8, 2)):
        plan = model.plan(takes, n, 0, 60, seed=1)
        warm = model.fast_generator(plan, threads=threads)
        warm.run(64)  # compile (cached on disk after the first run) outside the timing
        generator = model.fast_generator(plan, threads=threads)
        _, wall, cpu = timed(lambda g=generator: g.run(n))
        add("ours: numba, fused float32", takes, threads, n, wall, cpu)
        if takes == 1:
            ours = generator.codes[0]
    same = int(np.argmax(np.append(ours[: len(naive[0])] != naive[0], True)))
    vocoder = "n/a: it has no pitch-source input" if diff is None else f"{diff:.1e}"
    print(f"{label}: ours (float32) equals the naive float32 forward for the first {same} of {len(naive[0])} "
          f"samples; wavenet_vocoder's probabilities differ from ours by at most {vocoder} on the same weights")
    rows.append(f"| {label} | check | | | | ours = naive for {same}/{len(naive[0])} samples | "
                f"vocoder max prob diff {vocoder} | |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    args = parser.parse_args()
    lengths = {"naive": 300, "cached": 2000, "vocoder": 1000, "fast": 48000}
    if args.quick:
        lengths = {"naive": 100, "cached": 300, "vocoder": 200, "fast": 8000}
    rows = ["| model | method | takes | threads | samples per take | samples/s (wall) | samples per CPU-s "
            "| x real time (16 kHz) |", "|---|---|---|---|---|---|---|---|"]
    torch.manual_seed(0)
    vocoder_layout = WaveNetConfig(layers=20, stacks=2, residual=64, gate=128, skip=64, kernel=2, embed=16,
                                   instruments=["a", "b"])
    bench(WaveNet(vocoder_layout), "vocoder layout R64/G128/S64 (random weights)", lengths, rows)
    if SHIPPED.exists():
        shipped, label = load(SHIPPED), "shipped wavenet-gm-notes R32/G64/S64 + pitch source (trained weights)"
    else:
        shipped_layout = WaveNetConfig(layers=20, stacks=2, residual=32, gate=64, skip=64, instruments=["a", "b"])
        shipped, label = WaveNet(shipped_layout), "shipped layout R32/G64/S64 (random weights)"
    bench(shipped, label, lengths, rows)
    print()
    print(f"CPU: {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
