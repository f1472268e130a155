"""The mask overlay: a QImage painted incrementally, with tile backups for undo.

The mask lives in the alpha channel of an ARGB32 premultiplied image tinted with one colour.
Strokes are painted as brush dabs along each mouse segment and only the segment's rectangle is
repainted. Before a tile (TILE x TILE pixels) is first touched in an edit, a copy is kept; at the
end of the edit the touched tiles' before/after copies become one undo command.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QRadialGradient, QUndoCommand
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from studio.qt.canvas_convert import DISPLAY_FORMAT, alpha_from_qimage
from studio.qt.canvas_pyramid import Pyramid

TILE = 256
MASK_COLOR = QColor(255, 48, 96)
TileKey = tuple[int, int]
Tiles = dict[TileKey, tuple[QImage, QImage]]  # key -> (before, after)


def blank_mask(size: QSize) -> QImage:
    image = QImage(size, DISPLAY_FORMAT)
    image.fill(Qt.GlobalColor.transparent)
    return image


class MaskLayer(QGraphicsItem):
    """A scene item showing the mask over the image; it also does the mask's pixel edits."""

    def __init__(self) -> None:
        super().__init__()
        self._image = blank_mask(QSize(1, 1))
        self._pyramid = Pyramid(self._image)  # shares self._image as its base
        self._ink = QRect()  # outside this rectangle the mask is surely empty: nothing to draw
        self._backup: dict[TileKey, QImage] | None = None
        self._last_dab: QPointF | None = None
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.setOpacity(0.5)

    # state ------------------------------------------------------------------------------
    def qimage(self) -> QImage:
        """The mask image (implicitly shared: a later edit detaches, so this is a snapshot)."""
        return QImage(self._image)

    def set_qimage(self, image: QImage, blank: bool = False) -> None:
        """Show ``image`` as the mask; ``blank`` promises it is empty (it is then not drawn)."""
        if image.size() != self._image.size():
            self.prepareGeometryChange()
        self._image = QImage(image)
        self._pyramid.set_base(self._image)
        self._ink = QRect() if blank else self._image.rect()
        self.update()

    def is_blank(self) -> bool:
        """True when surely empty (False may still be empty: after erasing everything)."""
        return self._ink.isEmpty()

    def alpha(self) -> np.ndarray:
        return alpha_from_qimage(self._image)

    def boundingRect(self) -> QRectF:
        return QRectF(self._image.rect())

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        exposed = option.exposedRect & QRectF(self._ink)
        if not exposed.isEmpty():
            self._pyramid.draw(painter, QRectF(self._image.rect()), exposed)

    # edits -------------------------------------------------------------------------------
    def begin_edit(self) -> None:
        self._backup = {}
        self._last_dab = None

    def end_edit(self) -> Tiles:
        """The touched tiles that really changed, as (before, after) pairs."""
        backup, self._backup = self._backup or {}, None
        tiles: Tiles = {}
        for key, before in backup.items():
            after = self._image.copy(self._tile_rect(key))
            if after != before:
                tiles[key] = (before, after)
        return tiles

    def restore(self, tiles: Tiles, use_after: bool) -> None:
        painter = QPainter(self._image)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        for key, pair in tiles.items():
            rect = self._tile_rect(key)
            painter.drawImage(rect.topLeft(), pair[1] if use_after else pair[0])
        painter.end()
        for key in tiles:
            self._changed(self._tile_rect(key))

    def dab_to(self, point: QPointF, diameter: float, hardness: float, erase: bool) -> None:
        """Continue the stroke to ``point``: dabs every few pixels from the last dab on."""
        radius = max(0.5, diameter / 2.0)
        spacing = max(0.5, 0.12 * diameter)
        start = self._last_dab
        if start is None:
            centres = [point]
        else:
            dx, dy = point.x() - start.x(), point.y() - start.y()
            length = math.hypot(dx, dy)
            steps = int(length // spacing)
            centres = [QPointF(start.x() + dx * i * spacing / length, start.y() + dy * i * spacing / length)
                       for i in range(1, steps + 1)]
        if not centres:
            return
        self._last_dab = centres[-1]
        xs, ys = [c.x() for c in centres], [c.y() for c in centres]
        dirty = QRectF(QPointF(min(xs) - radius - 2, min(ys) - radius - 2),
                       QPointF(max(xs) + radius + 2, max(ys) + radius + 2)).toAlignedRect() & self._image.rect()
        if dirty.isEmpty():
            return
        self._touch(dirty)
        painter = self._painter(erase)
        painter.setBrush(_dab_brush(radius, hardness))
        for centre in centres:
            painter.setBrushOrigin(centre)
            painter.drawEllipse(centre, radius, radius)
        painter.end()
        self._changed(dirty)

    def fill_rect(self, rect: QRect, erase: bool) -> None:
        rect = rect & self._image.rect()
        if rect.isEmpty():
            return
        self._touch(rect)
        painter = QPainter(self._image)
        if erase:
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Clear)
        painter.fillRect(rect, MASK_COLOR)
        painter.end()
        self._changed(rect)
        if erase and rect == self._image.rect():
            self._ink = QRect()

    def invert(self) -> None:
        # Xor with an opaque colour: alpha' = 1 - alpha, colour' = colour * (1 - alpha).
        rect = self._image.rect()
        self._touch(rect)
        painter = QPainter(self._image)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Xor)
        painter.fillRect(rect, MASK_COLOR)
        painter.end()
        self._changed(rect)

    def _changed(self, rect: QRect) -> None:
        self._ink |= rect
        self._pyramid.changed(rect)
        self.update(QRectF(rect))

    def _painter(self, erase: bool) -> QPainter:
        painter = QPainter(self._image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        if erase:
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationOut)
        return painter

    def _touch(self, rect: QRect) -> None:
        if self._backup is None:
            raise RuntimeError("mask edits happen between begin_edit() and end_edit()")
        for ty in range(rect.top() // TILE, rect.bottom() // TILE + 1):
            for tx in range(rect.left() // TILE, rect.right() // TILE + 1):
                if (tx, ty) not in self._backup:
                    self._backup[(tx, ty)] = self._image.copy(self._tile_rect((tx, ty)))

    def _tile_rect(self, key: TileKey) -> QRect:
        return QRect(key[0] * TILE, key[1] * TILE, TILE, TILE) & self._image.rect()


def _dab_brush(radius: float, hardness: float) -> QBrush:
    if hardness >= 0.99:
        return QBrush(MASK_COLOR)
    gradient = QRadialGradient(QPointF(0, 0), radius)
    clear = QColor(MASK_COLOR)
    clear.setAlpha(0)
    gradient.setColorAt(0.0, MASK_COLOR)
    gradient.setColorAt(max(0.0, hardness), MASK_COLOR)
    gradient.setColorAt(1.0, clear)
    return QBrush(gradient)


class MaskEditCommand(QUndoCommand):
    """One mask edit (a stroke, a fill, an invert, a clear); the edit is already painted."""

    def __init__(self, layer: MaskLayer, tiles: Tiles, text: str, on_change: Callable[[], None]) -> None:
        super().__init__(text)
        self._layer, self.tiles, self._on_change = layer, tiles, on_change
        self._painted = True

    def redo(self) -> None:
        if self._painted:
            self._painted = False
        else:
            self._layer.restore(self.tiles, use_after=True)
        self._on_change()

    def undo(self) -> None:
        self._layer.restore(self.tiles, use_after=False)
        self._on_change()
