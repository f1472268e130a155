"""Image views for the latent explorer: a big pixel-exact preview and a clickable image grid."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from studio.qt.canvas_convert import qimage_from_array

BACKDROP = QColor(24, 24, 28)
HIGHLIGHT = QColor(255, 196, 0)


def fit_square(area: QRect, aspect: float) -> QRect:
    """The largest rectangle of ``aspect`` (w / h) centred in ``area``."""
    width = min(area.width(), int(area.height() * aspect))
    height = int(width / aspect) if aspect else 0
    return QRect(area.x() + (area.width() - width) // 2, area.y() + (area.height() - height) // 2, width, height)


class PixelView(QWidget):
    """One image scaled up to fill the widget, pixels kept square and sharp (no smoothing)."""

    def __init__(self, parent: QWidget | None = None, minimum: int = 256) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self.setMinimumSize(minimum, minimum)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:
        return QSize(480, 480)

    def set_image(self, image: np.ndarray) -> None:
        self._image = qimage_from_array(image)
        self.update()

    def set_qimage(self, image: QImage) -> None:
        self._image = image
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKDROP)
        if self._image is not None:
            aspect = self._image.width() / max(self._image.height(), 1)
            painter.drawImage(fit_square(self.rect().adjusted(4, 4, -4, -4), aspect), self._image)
        painter.end()


class ImageGrid(QWidget):
    """Images in cells of a fixed column count; a click picks a cell, one cell may be highlighted."""

    cellClicked = Signal(int)

    def __init__(self, columns: int, parent: QWidget | None = None, minimum_cell: int = 40) -> None:
        super().__init__(parent)
        self.columns = columns
        self.minimum_cell = minimum_cell
        self._images: list[QImage] = []
        self.highlighted = -1
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_images(self, images: list[np.ndarray], columns: int | None = None) -> None:
        if columns:
            self.columns = columns
        self._images = [qimage_from_array(image) for image in images]
        self.setMinimumHeight(self.rows() * self.minimum_cell)
        self.update()

    def count(self) -> int:
        return len(self._images)

    def rows(self) -> int:
        return max(1, -(-len(self._images) // max(self.columns, 1)))

    def set_highlighted(self, index: int) -> None:
        self.highlighted = index
        self.update()

    def cell_rect(self, index: int) -> QRect:
        side = min(self.width() // max(self.columns, 1), self.height() // self.rows())
        left = (self.width() - side * self.columns) // 2
        row, column = divmod(index, self.columns)
        return QRect(left + column * side, row * side, side, side)

    def sizeHint(self) -> QSize:
        return QSize(self.columns * 72, self.rows() * 72)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKDROP)
        for index, image in enumerate(self._images):
            cell = self.cell_rect(index).adjusted(1, 1, -1, -1)
            painter.drawImage(fit_square(cell, image.width() / max(image.height(), 1)), image)
            if index == self.highlighted:
                painter.setPen(QPen(HIGHLIGHT, 2))
                painter.drawRect(cell.adjusted(1, 1, -1, -1))
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        point = event.position().toPoint()
        for index in range(len(self._images)):
            if self.cell_rect(index).contains(point):
                self.cellClicked.emit(index)
                return
        super().mousePressEvent(event)
