"""Half-size copies of a QImage, built on first use, for drawing it zoomed out.

Drawing a 4096 px image at 20 % straight from full size samples sparse pixels (slow and
aliased); drawing from the nearest level at or above the zoom reads 16x fewer pixels and each
level is a 2x2 average of the one above. Edits to the base image refresh only the changed
rectangle of the levels already built.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QRect, QRectF
from PySide6.QtGui import QImage, QPainter

from studio.qt.canvas_convert import DISPLAY_FORMAT

SMALLEST = 64  # no levels below this many pixels on the longer side


class Pyramid:
    def __init__(self, base: QImage | None = None) -> None:
        self._levels: list[QImage] = [base if base is not None else QImage()]

    def build(self) -> Pyramid:
        """Make every level now (for example on a worker thread, before the image is shown)."""
        self.level(0.0)
        return self

    def base(self) -> QImage:
        return self._levels[0]

    def set_base(self, image: QImage) -> None:
        self._levels = [image]

    def level(self, zoom: float) -> tuple[QImage, float]:
        """The image to draw at ``zoom`` and its scale relative to the base (1, 1/2, 1/4, ...)."""
        wanted = 0 if zoom >= 1.0 else 64 if zoom <= 0.0 else int(math.floor(math.log2(1.0 / zoom)))
        base = self._levels[0]
        while len(self._levels) <= wanted and max(self._levels[-1].width(), self._levels[-1].height()) > SMALLEST:
            self._levels.append(_halve(self._levels[-1], base, len(self._levels)))
        index = min(wanted, len(self._levels) - 1)
        return self._levels[index], 0.5**index

    def changed(self, rect: QRect) -> None:
        """Base pixels inside ``rect`` changed: redo that part of every level built so far."""
        for index in range(1, len(self._levels)):
            scale = 0.5**index
            target = QRectF(rect.x() * scale, rect.y() * scale, rect.width() * scale, rect.height() * scale)
            target = target.toAlignedRect().adjusted(-1, -1, 1, 1) & self._levels[index].rect()
            if target.isEmpty():
                continue
            source = QRectF(target.x() * 2, target.y() * 2, target.width() * 2, target.height() * 2)
            painter = QPainter(self._levels[index])
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(QRectF(target), self._levels[index - 1], source)
            painter.end()

    def draw(self, painter: QPainter, target: QRectF, exposed: QRectF) -> None:
        """Draw the base image stretched over ``target`` (scene units), only inside ``exposed``."""
        base = self._levels[0]
        if base.isNull() or target.isEmpty():
            return
        stretch = target.width() / base.width()  # scene units per base pixel
        zoom = painter.worldTransform().m11() * stretch  # screen pixels per base pixel
        image, scale = self.level(zoom)
        shown = exposed & target
        if shown.isEmpty():
            return
        factor = scale / stretch  # level pixels per scene unit
        # whole level pixels keep the raster engine on its fast scaling path
        source = QRectF((shown.x() - target.x()) * factor, (shown.y() - target.y()) * factor,
                        shown.width() * factor, shown.height() * factor).toAlignedRect() & image.rect()
        drawn = QRectF(target.x() + source.x() / factor, target.y() + source.y() / factor,
                       source.width() / factor, source.height() / factor)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, zoom < 1.0)
        painter.drawImage(drawn, image, QRectF(source))


def _halve(image: QImage, base: QImage, index: int) -> QImage:
    scale = 0.5**index
    level = QImage(max(1, math.ceil(base.width() * scale)), max(1, math.ceil(base.height() * scale)), DISPLAY_FORMAT)
    level.fill(0)
    painter = QPainter(level)
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    painter.drawImage(QRectF(0, 0, base.width() * scale, base.height() * scale), image,
                      QRectF(0, 0, base.width() * scale * 2, base.height() * scale * 2))
    painter.end()
    return level
