"""The explorer's 2D map: encoded points (dots or thumbnails), the current point, the path.

Left click or drag reports map positions (the explorer decodes them); shift-click adds a path
point; middle-drag pans, right-drag and the wheel zoom.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem

THUMBNAIL_CELLS = 22  # the map is cut into this many cells per side; one thumbnail per cell
POINT_SIZE = 6
PICK_RADIUS_PX = 7


def label_colours(count: int) -> list[QColor]:
    return [pg.intColor(i, hues=max(count, 1), values=1, maxValue=255, minValue=150, sat=200) for i in range(count)]


def value_colours(values: np.ndarray, colormap: str = "viridis") -> tuple[list[QColor], float, float]:
    """Colours for values by the 2nd..98th percentile range, and that range."""
    low, high = np.nanpercentile(values, [2, 98]) if len(values) else (0.0, 1.0)
    scaled = np.clip((values - low) / max(high - low, 1e-9), 0.0, 1.0)
    return list(pg.colormap.get(colormap).map(scaled, mode="qcolor")), float(low), float(high)


def spread_subset(coords: np.ndarray, cells: int = THUMBNAIL_CELLS) -> np.ndarray:
    """Indices of at most one point per grid cell, so thumbnails do not pile up."""
    if len(coords) == 0:
        return np.zeros(0, dtype=int)
    low, high = coords.min(axis=0), coords.max(axis=0)
    cell = np.floor((coords - low) / np.maximum(high - low, 1e-9) * (cells - 1e-6)).astype(int)
    _, first = np.unique(cell[:, 0] * cells + cell[:, 1], return_index=True)
    return np.sort(first)


class PassiveScatter(pg.ScatterPlotItem):
    """Dots that let clicks through to the map (a click near a dot snaps to it there)."""

    def mouseClickEvent(self, ev) -> None:
        ev.ignore()


def marker_item() -> QGraphicsEllipseItem:
    """A white ring with a dot, a constant 20 px on screen wherever the view zooms."""
    ring = QGraphicsEllipseItem(-10, -10, 20, 20)
    ring.setPen(QPen(QColor("white"), 2.5))
    ring.setBrush(Qt.BrushStyle.NoBrush)
    ring.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
    ring.setZValue(10)
    ring.setVisible(False)
    dot = QGraphicsEllipseItem(-2.5, -2.5, 5, 5, ring)
    dot.setPen(Qt.PenStyle.NoPen)
    dot.setBrush(QColor("white"))
    return ring


class PointerViewBox(pg.ViewBox):
    clicked = Signal(float, float, bool)  # x, y, shift held
    dragged = Signal(float, float, str)  # x, y, phase: start, move or finish

    def __init__(self) -> None:
        super().__init__(enableMenu=False, invertY=True)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return super().mouseClickEvent(ev)
        ev.accept()
        position = self.mapSceneToView(ev.scenePos())
        shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        self.clicked.emit(position.x(), position.y(), shift)

    def mouseDragEvent(self, ev, axis=None) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        position = self.mapSceneToView(ev.scenePos())
        phase = "start" if ev.isStart() else "finish" if ev.isFinish() else "move"
        self.dragged.emit(position.x(), position.y(), phase)


class MapView(pg.PlotWidget):
    pointClicked = Signal(float, float, bool)
    pointerDragged = Signal(float, float, str)

    def __init__(self, parent=None) -> None:
        self.box = PointerViewBox()
        super().__init__(parent, viewBox=self.box, background=(24, 24, 28))
        self.setAspectLocked(False)
        self.hideAxis("left")
        self.hideAxis("bottom")
        self.coords = np.zeros((0, 2))
        self.points = PassiveScatter(size=POINT_SIZE, pen=None)
        self.thumbnails: list[pg.ImageItem] = []
        self.path_line = pg.PlotDataItem(pen=pg.mkPen((255, 196, 0, 200), width=2))
        self.path_points = PassiveScatter(size=11, symbol="s", pen=pg.mkPen("w", width=1.5), brush=(255, 196, 0))
        self.marker = marker_item()
        for item in (self.points, self.path_line, self.path_points):
            self.addItem(item)
        self.addItem(self.marker, ignoreBounds=True)
        # Moving the marker must not re-render thousands of dots: they repaint from a pixmap cache.
        self.points.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.path_line.setZValue(5)
        self.path_points.setZValue(6)
        self.box.clicked.connect(self.pointClicked)
        self.box.dragged.connect(self.pointerDragged)

    # content ---------------------------------------------------------------------------------
    def set_points(self, coords: np.ndarray, colours: list[QColor]) -> None:
        self.coords = np.asarray(coords, dtype=np.float64)
        self.points.setData(pos=self.coords, brush=[pg.mkBrush(c) for c in colours])
        self.box.autoRange(padding=0.05)

    def set_colours(self, colours: list[QColor]) -> None:
        self.points.setBrush([pg.mkBrush(c) for c in colours])

    def set_thumbnails(self, indices: np.ndarray, images: list[np.ndarray]) -> None:
        """Images centred on the given points, sized to the thumbnail grid; none clears them."""
        for item in self.thumbnails:
            self.removeItem(item)
        self.thumbnails = []
        if not images:
            return
        extent = self.coords.max(axis=0) - self.coords.min(axis=0)
        side = extent / THUMBNAIL_CELLS
        for index, image in zip(indices, images):
            item = pg.ImageItem(image[..., 0] if image.shape[2] == 1 else image, axisOrder="row-major", levels=(0, 255))
            x, y = self.coords[index]
            item.setRect(QRectF(x - side[0] / 2, y - side[1] / 2, side[0], side[1]))
            self.addItem(item)
            self.thumbnails.append(item)

    def set_marker(self, xy: np.ndarray | None) -> None:
        """Moving an item is cheap; re-setting scatter data every frame is not."""
        self.marker.setVisible(xy is not None)
        if xy is not None:
            self.marker.setPos(float(xy[0]), float(xy[1]))

    def set_path(self, anchors: np.ndarray, line: np.ndarray) -> None:
        self.path_points.setData(pos=np.asarray(anchors).reshape(-1, 2))
        line = np.asarray(line).reshape(-1, 2)
        self.path_line.setData(line[:, 0], line[:, 1]) if len(line) else self.path_line.setData([], [])

    def clear_points(self) -> None:
        self.coords = np.zeros((0, 2))
        self.points.setData(pos=[])
        self.set_thumbnails(np.zeros(0, int), [])

    # geometry --------------------------------------------------------------------------------
    def nearest(self, x: float, y: float, radius_px: float = PICK_RADIUS_PX) -> int | None:
        """The index of the point drawn within ``radius_px`` screen pixels of (x, y), if any."""
        if len(self.coords) == 0:
            return None
        pixel = self.box.viewPixelSize()
        offsets = (self.coords - (x, y)) / np.maximum(np.abs(pixel), 1e-12)
        distances = (offsets**2).sum(axis=1)
        index = int(np.argmin(distances))
        return index if distances[index] <= radius_px**2 else None

    def widget_position(self, xy: np.ndarray) -> QPoint:
        """Where map position ``xy`` is drawn, in this widget's (viewport) pixels."""
        scene = self.box.mapViewToScene(QPointF(float(xy[0]), float(xy[1])))
        return self.mapFromScene(scene)
