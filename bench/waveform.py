"""Waveform editor on a one-hour 48 kHz stereo file: open time and redraw time, ours vs naive.

Ours: load + min/max/RMS summaries of ~5 s chunks (numba, once), then every redraw reads the
coarsest summary level that fits the screen. Baselines on the same widget and file: min/max recomputed from the
raw samples on every redraw, and plotting every visible sample. A "frame" is the data step plus
setting the curves plus painting the plot (QWidget.grab, offscreen); medians over the scroll steps.

    QT_QPA_PLATFORM=offscreen python bench/waveform.py [--minutes 60] [--steps 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.core.audio_edit import AudioDocument, delete, gain  # noqa: E402
from studio.core.audio_summary import Envelope, PeakSummary  # noqa: E402
from studio.core.media import load_audio  # noqa: E402

RATE = 48000
SPANS = [("1 s", 1.0), ("10 s", 10.0), ("1 min", 60.0), ("10 min", 600.0), ("1 h", 3600.0)]
PLOT_ALL_LIMIT = 1_000_000  # visible samples per channel beyond which plotting them all is skipped


def write_test_file(path: Path, minutes: float) -> None:
    """A decaying, pitch-wandering tone per channel with noise, written in 10 s chunks (PCM 16)."""
    rng = np.random.default_rng(0)
    total, chunk = int(minutes * 60 * RATE), 10 * RATE
    with sf.SoundFile(str(path), "w", samplerate=RATE, channels=2, subtype="PCM_16") as fh:
        for start in range(0, total, chunk):
            t = np.arange(start, min(total, start + chunk)) / RATE
            envelope = np.exp(-3.0 * (t % 2.0))
            left = 0.7 * envelope * np.sin(2 * np.pi * 220 * t * (1 + 0.01 * np.sin(0.1 * t)))
            right = 0.5 * envelope * np.sin(2 * np.pi * 330 * t)
            noise = 0.01 * rng.standard_normal((len(t), 2))
            fh.write((np.stack([left, right], axis=1) + noise).astype(np.float32))


def numpy_summary(samples: np.ndarray, block: int = 256) -> None:
    """The vectorised-numpy way to build the base level, for comparison with the numba kernel."""
    full = len(samples) // block
    shaped = samples[: full * block].reshape(full, block, samples.shape[1])
    shaped.min(axis=1), shaped.max(axis=1)


def naive_envelope(samples: np.ndarray, start: float, stop: float, columns: int) -> Envelope:
    """Min/max of the raw visible samples, recomputed on every redraw."""
    lo, hi = int(start), min(len(samples), int(np.ceil(stop)))
    data = samples[lo:hi]
    edges = np.unique(np.linspace(0, len(data), columns, endpoint=False).astype(np.int64))
    low = np.minimum.reduceat(data, edges, axis=0)
    high = np.maximum.reduceat(data, edges, axis=0)
    return Envelope((edges + lo).astype(np.float64), low, high, np.zeros_like(low), False, 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--steps", type=int, default=8, help="scroll steps per zoom level")
    parser.add_argument("--file", type=Path, default=Path(tempfile.gettempdir()) / "studio_bench_1h.wav")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    if not args.file.exists() or sf.info(str(args.file)).frames != int(args.minutes * 60 * RATE):
        t0 = time.perf_counter()
        write_test_file(args.file, args.minutes)
        print(f"wrote {args.file} ({args.file.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t0:.1f} s")

    PeakSummary(np.zeros((512, 2), np.float32))  # compile (or load the cached) numba kernel first
    t0 = time.perf_counter()
    audio = load_audio(args.file)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    document = AudioDocument(audio, copy=False)  # as the editor opens files
    summary_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    numpy_summary(audio.samples)
    numpy_summary_s = time.perf_counter() - t0
    samples = document.samples
    duration = len(samples) / RATE
    summary_mb = document.summary_nbytes / 1e6

    from PySide6.QtWidgets import QApplication

    from studio.qt.waveform_editor import WaveformEditor

    app = QApplication.instance() or QApplication([])
    editor = WaveformEditor()
    editor.resize(1600, 600)
    editor.show()
    editor._install(document)
    app.processEvents()
    columns = max(100, int(editor._tracks[0].plot.getViewBox().width()))
    rng = np.random.default_rng(1)

    def frame(make_envelope, start_s: float, stop_s: float) -> tuple[float, float]:
        editor._redraw_timer.stop()
        editor._tracks[0].plot.getViewBox().blockSignals(True)
        editor._tracks[0].plot.getViewBox().setXRange(start_s, stop_s, padding=0)
        editor._tracks[0].plot.getViewBox().blockSignals(False)
        t0 = time.perf_counter()
        env = make_envelope(start_s * RATE, stop_s * RATE)
        t1 = time.perf_counter()
        for channel, track in enumerate(editor._tracks):
            track.draw(env, channel, RATE, columns)
        editor.graphics.grab()
        return t1 - t0, time.perf_counter() - t0

    def plot_all(start: float, stop: float) -> Envelope:
        lo, hi = int(start), int(np.ceil(stop))
        values = samples[lo:hi]
        return Envelope(np.arange(lo, hi, dtype=np.float64), values, values, values, True, 1)

    methods = {
        "ours": lambda a, b: document.envelope(a, b, columns),
        "naive": lambda a, b: naive_envelope(samples, a, b, columns),
        "all": plot_all,
    }
    rows = []
    for label, span in SPANS:
        span = min(span, duration)
        first = rng.uniform(0, max(0.0, duration - span * (args.steps + 1) / 2))
        starts = np.minimum(first + span / 2 * np.arange(args.steps), duration - span)
        result = {}
        for name, make in methods.items():
            if name == "all" and span * RATE > PLOT_ALL_LIMIT:
                result[name] = None
                continue
            steps = starts if name == "ours" or span <= 60 else starts[:3]
            times = np.array([frame(make, s, s + span) for s in steps])
            result[name] = np.median(times, axis=0) * 1000
        rows.append((label, result))

    def median_ms(action, repeats: int = 5) -> float:
        times = []
        for i in range(repeats):
            t0 = time.perf_counter()
            action(len(samples) // 3 + i * 7 * RATE)
            times.append(time.perf_counter() - t0)
        return float(np.median(times)) * 1000

    cuts: list = []

    def cut_at(at: int) -> None:
        cuts.append(delete(at, at + RATE))
        cuts[-1].apply(document)

    gain_ms = median_ms(lambda at: gain(at, at + 10 * RATE, -6.0).apply(document))
    cut_ms = median_ms(cut_at)
    undo_ms = median_ms(lambda at: cuts.pop().revert(document))
    t0 = time.perf_counter()
    document.samples  # noqa: B018 (joins the chunks into one array, as audio() does after an edit)
    join_ms = (time.perf_counter() - t0) * 1000

    print(f"\n### Waveform editor: {args.minutes:g}-minute 48 kHz stereo file ({len(samples):,} frames, {samples.nbytes / 1e9:.2f} GB float32)\n")
    print(f"Command: `QT_QPA_PLATFORM=offscreen python bench/waveform.py --minutes {args.minutes:g} --steps {args.steps}`; "
          f"{columns} columns, 2 channel tracks, {os.cpu_count()} CPU cores (shared).\n")
    print("| open | time |")
    print("|---|---:|")
    print(f"| load WAV (PCM 16 -> float32, `media.load_audio`) | {load_s:.2f} s |")
    print(f"| min/max/RMS summaries, numba, 3 levels ({summary_mb:.1f} MB) | {summary_s:.2f} s |")
    print(f"| (min/max base level with vectorised numpy instead) | {numpy_summary_s:.2f} s |")
    print(f"| **open total (ours)** | **{load_s + summary_s:.2f} s** |")
    print(f"| open total (naive: no summaries) | {load_s:.2f} s |\n")
    print("| visible span | ours: data ms | ours: frame ms | naive min/max: data ms | naive: frame ms | plot all samples: frame ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, result in rows:
        ours, naive, every = result["ours"], result["naive"], result["all"]
        every_text = "skipped (> 1M points)" if every is None else f"{every[1]:.1f}"
        print(f"| {label} | {ours[0]:.2f} | {ours[1]:.1f} | {naive[0]:.2f} | {naive[1]:.1f} | {every_text} |")
    print(f"\nEdits in the middle of the file (core, no drawing; {document.chunk_count} chunks of up to {document.chunk:,} "
          f"frames, each edit rebuilds the chunks it touches; medians of 5): gain on 10 s {gain_ms:.0f} ms; "
          f"cut 1 s {cut_ms:.0f} ms; its undo {undo_ms:.0f} ms. Joining the chunks into one array (what `audio()` does after an edit): "
          f"{join_ms:.0f} ms.")
    editor.close()


if __name__ == "__main__":
    main()
