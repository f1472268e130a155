"""How musical are a WaveNet's notes? Pitch accuracy and periodicity, side by side.

    python bench/wavenet_quality.py [CHECKPOINT ...] [--temperatures 1.0 0.9] [--data DIR]

For every held-out note of gm-notes-16k (instrument, MIDI pitch), each checkpoint generates the
same note (seed 0, all notes as takes of one batch), and every note is scored on its sustained
part (0.1 s to 0.6 s): its fundamental by autocorrelation, "in tune" when within 50 cents of
the asked pitch, and its periodicity, the normalised autocorrelation at that period (1 = a
perfectly periodic tone, about 0 = noise). The real held-out notes are the ceiling and white
noise the floor, scored the same way.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plugins.wavenet.actions import pitch_from_name  # noqa: E402
from plugins.wavenet.model import load, mu_law_decode  # noqa: E402
from studio.core import media  # noqa: E402

START, STOP = 0.1, 0.6  # seconds: the part of the note that is scored
LOWEST, HIGHEST = 30.0, 2000.0  # Hz searched for the fundamental


def fundamental(audio: np.ndarray, rate: int) -> tuple[float, float]:
    """(f0 in Hz, periodicity in [-1, 1]) of a mono clip: past the autocorrelation's first dip,
    the first peak that comes within 10% of the best in the search range (so not a period of an
    octave below), refined by a parabola through the peak and its neighbours."""
    x = audio - audio.mean()
    n = len(x)
    spectrum = np.fft.rfft(x, 2 * n)
    r = np.fft.irfft(spectrum * np.conj(spectrum))[:n]
    energy = np.cumsum(x[::-1] ** 2)[::-1]  # energy of x[lag:] per lag
    r = r / (np.sqrt(energy[0] * energy) + 1e-12)
    lo, hi = int(rate / HIGHEST), min(int(rate / LOWEST), n // 2)
    while lo + 1 < hi and r[lo + 1] < r[lo]:  # skip the slope of lag 0's peak
        lo += 1
    best = r[lo:hi].max()
    lag = lo + int(np.argmax(r[lo:hi] >= best - 0.1 * abs(best)))
    while lag + 1 < hi and r[lag + 1] > r[lag]:
        lag += 1
    left, mid, right = r[lag - 1], r[lag], r[lag + 1]
    curve = left - 2 * mid + right
    shift = 0.5 * (left - right) / curve if curve < 0 else 0.0
    return rate / (lag + shift), float(mid)


def cents(f: float, pitch: int) -> float:
    return 1200.0 * np.log2(f / (440.0 * 2 ** ((pitch - 69) / 12)))


def score(clips: list[np.ndarray], pitches: list[int], rate: int) -> dict[str, float]:
    start, stop = int(START * rate), int(STOP * rate)
    results = [fundamental(clip[start:stop], rate) for clip in clips]
    off = np.array([abs(cents(f, p)) for (f, _), p in zip(results, pitches)])
    return {"in tune (50 cents)": float(np.mean(off <= 50)), "within a semitone": float(np.mean(off <= 100)),
            "median |error| cents": float(np.median(off)), "periodicity": float(np.mean([q for _, q in results]))}


def held_out(data: Path) -> tuple[list[np.ndarray], list[str], list[int], int]:
    clips, instruments, pitches, rate = [], [], [], 16000
    for path in sorted(data.glob("*/*.wav")):
        audio = media.load_audio(path)
        rate = audio.rate
        clips.append(audio.samples.mean(axis=1) if audio.samples.ndim == 2 else audio.samples)
        instruments.append(path.parent.name)
        pitches.append(pitch_from_name(path))
    return clips, instruments, pitches, rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", type=Path, default=[ROOT / "models" / "wavenet-gm-notes"])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "gm-notes-16k" / "test")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0])
    args = parser.parse_args()
    clips, instruments, pitches, rate = held_out(args.data)
    if not clips:
        print(f"error: no WAV notes in {args.data}/INSTRUMENT/", file=sys.stderr)
        return 2
    rows = [("real held-out notes", "", score(clips, pitches, rate), ""),
            ("white noise", "", score([np.random.default_rng(0).standard_normal(len(c)) for c in clips],
                                      pitches, rate), "")]
    for path in args.checkpoints:
        model = load(path)
        names = [model.instrument_index(name) for name in instruments]
        length = int(STOP * rate)
        for temperature in args.temperatures:
            plan = model.plan(len(clips), length, names, pitches, seed=0, temperature=temperature)
            began = time.perf_counter()
            codes = np.concatenate(list(model.sample(plan)), axis=1)
            seconds = time.perf_counter() - began
            audio = [mu_law_decode(take, model.config.classes) for take in codes]
            rows.append((path.name, f"{temperature:g}", score(audio, pitches, rate), f"{seconds:.0f}"))
    keys = list(rows[0][2])
    print(f"{len(clips)} held-out notes from {args.data}, scored from {START} s to {STOP} s\n")
    print("| notes | temperature | " + " | ".join(keys) + " | generation s |")
    print("|---" * (len(keys) + 3) + "|")
    for name, temperature, values, seconds in rows:
        cells = [f"{values[k]:.0%}" if "tune" in k or "semitone" in k else f"{values[k]:.2f}" for k in keys]
        print(f"| {name} | {temperature} | " + " | ".join(cells) + f" | {seconds} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
