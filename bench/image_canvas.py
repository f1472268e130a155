"""Image canvas on a 4096 x 4096 RGBA image: frame times while panning/zooming, and brush strokes.

Ours (studio.qt.image_canvas) against the straightforward Qt baseline: a QGraphicsPixmapItem
for the image, and a numpy mask re-uploaded as a whole QImage after every stroke segment.

    QT_QPA_PLATFORM=offscreen python bench/image_canvas.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtCore import QEventLoop, QPointF, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QApplication, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from studio.core.media import save_image
from studio.qt.canvas_convert import qimage_from_array
from studio.qt.image_canvas import ImageCanvas

SIDE = 4096
VIEW = (1280, 800)
FRAMES = 60


def photo_like(side: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    rgb = np.stack([np.sin(40 * x) * 0.5 + 0.5, np.cos(30 * y) * 0.5 + 0.5, (x * y) % 1.0], axis=2)
    noise = rng.random((side, side, 1), dtype=np.float32) * 0.2
    alpha = np.where((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.2, 1.0, 0.6)[..., None]
    return (np.clip(np.concatenate([rgb + noise, alpha], axis=2), 0, 1) * 255).astype(np.uint8)


def frame_ms(view: QGraphicsView, step: tuple[int, int]) -> tuple[float, float]:
    """Median and best time to scroll by ``step`` and repaint the whole viewport."""
    times = []
    for i in range(FRAMES):
        sign = 1 if (i // 10) % 2 == 0 else -1
        start = time.perf_counter()
        view.horizontalScrollBar().setValue(view.horizontalScrollBar().value() + sign * step[0])
        view.verticalScrollBar().setValue(view.verticalScrollBar().value() + sign * step[1])
        view.viewport().repaint()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def baseline_view(image: np.ndarray) -> tuple[QGraphicsView, QGraphicsPixmapItem]:
    """Stock pixmap items: the image, and the mask overlay at half opacity above it."""
    view = QGraphicsView()
    scene = QGraphicsScene(view)
    view.setScene(scene)
    items = [QGraphicsPixmapItem(QPixmap.fromImage(qimage_from_array(image))), QGraphicsPixmapItem()]
    for item in items:
        item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        scene.addItem(item)
    items[1].setOpacity(0.5)
    view.setSceneRect(-SIDE, -SIDE, 3 * SIDE, 3 * SIDE)
    view.resize(*VIEW)
    view.show()
    return view, items[1]


def stroke_points(n: int) -> list[QPointF]:
    return [QPointF(200 + 3500 * i / n, 2000 + 800 * np.sin(i / 9)) for i in range(n)]


def baseline_stroke_ms(points: list[QPointF], diameter: float) -> float:
    """Paint discs into a numpy mask and rebuild the overlay QImage after every segment."""
    mask = np.zeros((SIDE, SIDE), np.uint8)
    yy, xx = np.mgrid[-diameter:diameter + 1, -diameter:diameter + 1]
    disc = (xx**2 + yy**2 <= (diameter / 2) ** 2).astype(np.uint8) * 255
    r = int(diameter)
    start = time.perf_counter()
    for p in points:
        x, y = int(p.x()), int(p.y())
        region = mask[y - r : y + r + 1, x - r : x + r + 1]
        np.maximum(region, disc, out=region)
        overlay = QImage(mask.data, SIDE, SIDE, SIDE, QImage.Format.Format_Alpha8).convertToFormat(
            QImage.Format.Format_ARGB32_Premultiplied
        )
    del overlay
    return (time.perf_counter() - start) * 1000 / len(points)


def ui_thread_ms_to_open(canvas: ImageCanvas, image: np.ndarray) -> float:
    """Time the canvas spends on the UI thread showing a file it decoded on a worker."""
    with tempfile.TemporaryDirectory() as folder:
        path = save_image(Path(folder) / "big.png", image)
        spent: list[float] = []
        show = canvas._show_prepared

        def timed(*args: object) -> None:
            start = time.perf_counter()
            show(*args)
            spent.append((time.perf_counter() - start) * 1000)

        canvas._show_prepared = timed
        loop = QEventLoop()
        canvas.fileLoaded.connect(loop.quit)
        canvas.open_file(path)
        loop.exec()
        canvas._show_prepared = show
        return spent[0]


def main() -> None:
    app = QApplication.instance() or QApplication([])
    image = photo_like(SIDE)

    canvas = ImageCanvas()
    canvas.resize(*VIEW)
    canvas.show()
    app.processEvents()
    start = time.perf_counter()
    canvas.set_image(image)
    set_ms = (time.perf_counter() - start) * 1000
    canvas.set_brush_size(60)
    canvas.paint_stroke(stroke_points(40))
    baseline, baseline_mask = baseline_view(image)
    app.processEvents()

    rows = []
    for mask_label in ("a stroke", "full (inverted)"):
        if mask_label.startswith("full"):
            canvas.invert_mask()
        baseline_mask.setPixmap(QPixmap.fromImage(canvas.view.mask_layer.qimage()))
        for label, zoom, step in (("fit", None, (8, 5)), ("100 %", 1.0, (40, 25)), ("400 %", 4.0, (40, 25))):
            if zoom is None:
                canvas.fit()
                baseline.fitInView(0, 0, SIDE, SIDE, Qt.AspectRatioMode.KeepAspectRatio)
            else:
                canvas.view.set_zoom(zoom)
                baseline.resetTransform()
                baseline.scale(zoom, zoom)
                baseline.centerOn(SIDE / 2, SIDE / 2)
                canvas.view.centerOn(SIDE / 2, SIDE / 2)
            ours = frame_ms(canvas.view, step)
            rows.append((f"pan frame at {label}, mask: {mask_label}", ours, frame_ms(baseline, step)))

    canvas.actual_size()
    points = stroke_points(200)
    canvas.view.mask_layer.begin_edit()
    start = time.perf_counter()
    for p in points:
        canvas.view.mask_layer.dab_to(p, 60, 0.8, erase=False)
    ours_stroke = (time.perf_counter() - start) * 1000 / len(points)
    canvas.view.mask_layer.end_edit()
    baseline_stroke = baseline_stroke_ms(points, 60)
    rows.append(("brush segment, 60 px brush (mean)", (ours_stroke, ours_stroke), (baseline_stroke, baseline_stroke)))

    start = time.perf_counter()
    canvas.mask()
    mask_ms = (time.perf_counter() - start) * 1000
    open_ms = ui_thread_ms_to_open(canvas, image)

    print(f"4096 x 4096 RGBA, view {VIEW[0]} x {VIEW[1]}, offscreen raster; frames: median / best of {FRAMES}\n")
    print("| operation | ours (ms) | baseline (ms) | baseline |")
    print("|---|---:|---:|---|")
    for name, ours, theirs in rows:
        frame = "frame" in name
        what = "two QGraphicsPixmapItems (image, mask)" if frame else "numpy mask + full QImage per segment"
        ours_text = f"{ours[0]:.2f} / {ours[1]:.2f}" if frame else f"{ours[0]:.2f}"
        theirs_text = f"{theirs[0]:.2f} / {theirs[1]:.2f}" if frame else f"{theirs[0]:.2f}"
        print(f"| {name} | {ours_text} | {theirs_text} | {what} |")
    print(f"| set_image (numpy -> display QImage, once) | {set_ms:.1f} | | |")
    print(f"| mask() (QImage -> numpy, on request only) | {mask_ms:.1f} | | |")
    print(f"| open a 4096 x 4096 PNG (UI-thread part; decoding and conversion run on a worker) | {open_ms:.1f} | | |")


if __name__ == "__main__":
    main()
