"""Latent explorer frame time per shipped model, and a 1-second drag: ours vs. decoding on every event.

    python bench/explorer.py [--frames 120] [--points 1000] [--rate 250] [--threads 1]

Part 1, per model: one frame = decode one latent, convert it to a QImage, draw the 480 px
preview (``repaint``, synchronous); plus the whole explorer window repainted (map of
``--points`` points, sliders, labels): an upper bound on what a frame redraws.

Part 2, per model: a pointer drags across the map for one second at ``--rate`` events per
second (a gaming mouse reports 250-1000). The baseline decodes and draws on every event,
as a plain ``mouseMoveEvent -> decode -> setPixmap`` would; ours is the explorer's real path
(events only mark a frame wanted; a 16 ms timer decodes at most one). We count frames drawn and
the worst stall of the UI thread (the longest gap between two event ticks, minus the tick)
and how many of the events the UI thread got to handle.
Each drag runs ``--repeats`` times; the table shows medians. ``--slow`` adds PPCA wrapped with a
fixed extra decode time (sleeping, so it leaves the GIL like torch does), standing in for
heavier decoders than the shipped ones.
Models: every checkpoint in models/ whose loaded model implements the LatentModel protocol.
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
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FRAME_BUDGET_MS = 16.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def explorable_models() -> list[tuple[str, object]]:
    from studio.core.latent import LatentModel
    from studio.core.paths import shipped_models_dir
    from studio.core.registry import Registry

    registry = Registry(model_roots=[(shipped_models_dir(), "shipped")])
    found = []
    for ckpt in sorted(registry.checkpoints(), key=lambda c: c.id):
        try:
            model = registry.loader(ckpt.plugin)(ckpt.path, "cpu")
        except Exception as exc:  # a plugin still being written must not stop the bench
            print(f"skipped {ckpt.id}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
            continue
        if isinstance(model, LatentModel):
            found.append((ckpt.id, model))
    return found


class SlowDecoder:
    """A model whose decode takes ``delay_ms`` longer (the LatentModel protocol, nothing else)."""

    def __init__(self, model, delay_ms: float) -> None:
        self.model, self.delay = model, delay_ms / 1000.0
        self.latent_dim = model.latent_dim

    def encode_images(self, images):
        return self.model.encode_images(images)

    def decode_latents(self, latents):
        time.sleep(self.delay)
        return self.model.decode_latents(latents)


def make_explorer(app, model, model_id: str, points: int):
    from studio.qt.latent_explorer import LatentExplorer

    explorer = LatentExplorer()
    explorer.resize(1500, 950)
    explorer.show()
    explorer.set_model(model, model_id)
    done = []
    explorer.mapReady.connect(lambda: done.append("map"))
    explorer.likelihoodReady.connect(lambda: done.append("likelihood"))
    latents = np.random.default_rng(0).standard_normal((points, model.latent_dim)).astype(np.float32)
    explorer.set_points(latents)
    scores = callable(getattr(model, "bits_per_dim_images", None))
    deadline = time.monotonic() + 300
    while ("likelihood" if scores else "map") not in done and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.002)
    return explorer


def frame_times(app, explorer, frames: int) -> dict[str, list[float]]:
    from studio.qt.canvas_convert import qimage_from_array

    model = explorer.model
    angles = np.linspace(0, 2 * np.pi, frames + 5)
    times: dict[str, list[float]] = {"decode": [], "convert": [], "draw": [], "total": [], "window": []}
    for i, angle in enumerate(angles):
        latent = explorer.projection.to_latent(np.array([np.cos(angle), np.sin(angle)]) * 1.5)
        t0 = time.perf_counter()
        image = model.decode_latents(latent[None])[0]
        t1 = time.perf_counter()
        qimage = qimage_from_array(image)
        t2 = time.perf_counter()
        explorer.preview.set_qimage(qimage)
        explorer.preview.repaint()
        t3 = time.perf_counter()
        explorer._show_frame((latent, image, (t1 - t0) * 1000))
        explorer.repaint()
        t4 = time.perf_counter()
        app.processEvents()
        if i < 5:  # warm-up
            continue
        times["decode"].append((t1 - t0) * 1000)
        times["convert"].append((t2 - t1) * 1000)
        times["draw"].append((t3 - t2) * 1000)
        times["total"].append((t3 - t0) * 1000)
        times["window"].append((t1 - t0 + t4 - t3) * 1000)
    return times


def drag(app, explorer, rate: float, coalesced: bool) -> tuple[int, float, float]:
    """(frames drawn, worst UI stall ms, pointer events handled) over one second of dragging."""
    from PySide6.QtCore import Qt, QTimer

    from studio.qt.latent_explorer import _timed_decode

    explorer.frames_shown = 0
    interval = 1000.0 / rate
    ticks: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(max(1, round(interval)))
    start = time.perf_counter()

    def on_tick() -> None:
        now = time.perf_counter()
        ticks.append(now)
        angle = 2 * np.pi * (now - start)
        x, y = np.cos(angle) * 1.5, np.sin(angle) * 1.5
        if coalesced:
            explorer._on_map_drag(x, y, "move")
        else:
            latent = explorer.projection.to_latent(np.array([x, y]))
            explorer._show_frame(_timed_decode(explorer.model, latent))
            explorer.preview.repaint()

    timer.timeout.connect(on_tick)
    explorer._on_map_drag(1.5, 0.0, "start")
    timer.start()
    while time.perf_counter() - start < 1.0:
        app.processEvents()
    timer.stop()
    while explorer.frame_timer.isActive() or explorer._decode_in_flight:
        app.processEvents()
    gaps = np.diff(ticks) * 1000.0 if len(ticks) > 1 else np.zeros(1)
    return explorer.frames_shown, float(max(gaps.max() - interval, 0.0)), len(ticks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=250.0, help="pointer events per second in the drag test")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slow", default="8,30", help="extra decode ms for simulated heavier models ('' for none)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    frames_rows, drag_rows = [], []
    models = explorable_models()
    ppca = next((m for i, m in models if i == "ppca-mnist"), None)
    if ppca is not None:
        models += [(f"ppca-mnist +{ms} ms (simulated)", SlowDecoder(ppca, float(ms))) for ms in args.slow.split(",") if ms]
    for model_id, model in models:
        explorer = make_explorer(app, model, model_id, args.points)
        times = frame_times(app, explorer, args.frames)
        size = "x".join(str(s) for s in explorer.preview_image.shape[:2])
        cells = " | ".join(f"{statistics.median(times[k]):.2f}" for k in ("decode", "convert", "draw", "total"))
        p95 = percentile(times["total"], 0.95)
        frames_rows.append(
            f"| {model_id} | {size} | {model.latent_dim} | {cells} | {p95:.2f} | "
            f"{'yes' if p95 < FRAME_BUDGET_MS else 'no'} | {statistics.median(times['window']):.2f} |"
        )
        runs = [(drag(app, explorer, args.rate, False), drag(app, explorer, args.rate, True)) for _ in range(args.repeats)]
        naive, ours = (tuple(statistics.median(run[side][k] for run in runs) for k in range(3)) for side in (0, 1))
        drag_rows.append(
            f"| {model_id} | {naive[0]:.0f} | {naive[1]:.1f} | {naive[2]:.0f} | {ours[0]:.0f} | {ours[1]:.1f} | {ours[2]:.0f} |"
        )
        explorer.close()
        explorer.deleteLater()
        app.processEvents()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, {args.frames} frames per model, "
          f"{args.points} map points, offscreen Qt, torch threads {args.threads}")
    print()
    print("| model | image | latent dim | decode ms | convert ms | draw ms | frame ms (median) | frame ms (p95) | "
          "within 16 ms | whole window ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(frames_rows))
    print()
    print(f"Dragging for 1 s at {args.rate:.0f} pointer events/s (median of {args.repeats}):")
    print()
    print("| model | every event: frames | worst stall ms | events handled | ours: frames | worst stall ms | "
          "events handled |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(drag_rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
