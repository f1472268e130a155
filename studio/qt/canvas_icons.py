"""Small line icons for the image canvas tool bar, drawn with QPainter in the text colour."""

from __future__ import annotations

import math
from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QPolygonF

SIZE = 20  # logical pixels; drawn at 2x for high-density screens


def canvas_icon(name: str, color: QColor) -> QIcon:
    pixmap = QPixmap(SIZE * 2, SIZE * 2)
    pixmap.setDevicePixelRatio(2.0)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(color, 1.6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    _DRAW[name](painter, color)
    painter.end()
    icon = QIcon(pixmap)
    faded = QColor(color)
    faded.setAlphaF(0.35)
    if name in ("undo", "redo"):  # disabled undo/redo must look disabled in any style
        dim = QPixmap(SIZE * 2, SIZE * 2)
        dim.setDevicePixelRatio(2.0)
        dim.fill(Qt.GlobalColor.transparent)
        painter = QPainter(dim)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(faded, 1.6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        _DRAW[name](painter, faded)
        painter.end()
        icon.addPixmap(dim, QIcon.Mode.Disabled)
    return icon


def _arrow_head(painter: QPainter, tip: QPointF, angle: float, color: QColor, length: float = 4.0) -> None:
    left = QPointF(tip.x() - length * math.cos(angle - 0.5), tip.y() - length * math.sin(angle - 0.5))
    right = QPointF(tip.x() - length * math.cos(angle + 0.5), tip.y() - length * math.sin(angle + 0.5))
    painter.save()
    painter.setBrush(color)
    painter.drawPolygon(QPolygonF([tip, left, right]))
    painter.restore()


def _hand(painter: QPainter, color: QColor) -> None:
    c = SIZE / 2
    painter.drawLine(QPointF(c, 3), QPointF(c, SIZE - 3))
    painter.drawLine(QPointF(3, c), QPointF(SIZE - 3, c))
    for tip, angle in (((c, 2.5), -math.pi / 2), ((c, SIZE - 2.5), math.pi / 2),
                       ((2.5, c), math.pi), ((SIZE - 2.5, c), 0.0)):
        _arrow_head(painter, QPointF(*tip), angle, color)


def _brush(painter: QPainter, color: QColor) -> None:
    painter.drawLine(QPointF(17, 3), QPointF(10.5, 9.5))
    tip = QPainterPath(QPointF(9, 8))
    tip.cubicTo(QPointF(12, 10), QPointF(12.5, 12), QPointF(10.5, 13.5))
    tip.cubicTo(QPointF(8, 16), QPointF(5, 17), QPointF(3, 17))
    tip.cubicTo(QPointF(4, 14.5), QPointF(4.5, 11.5), QPointF(7, 9.5))
    tip.closeSubpath()
    painter.setBrush(color)
    painter.drawPath(tip)


def _eraser(painter: QPainter, color: QColor) -> None:
    painter.save()
    painter.translate(10, 10)
    painter.rotate(-40)
    body = QRectF(-7.5, -4, 15, 8)
    painter.drawRoundedRect(body, 1.5, 1.5)
    painter.setBrush(color)
    painter.drawRoundedRect(QRectF(-7.5, -4, 6, 8), 1.5, 1.5)
    painter.restore()
    painter.drawLine(QPointF(9, 17.5), QPointF(17, 17.5))


def _select(painter: QPainter, color: QColor) -> None:
    pen = painter.pen()
    pen.setDashPattern([2.0, 1.6])
    pen.setCapStyle(Qt.PenCapStyle.FlatCap)
    painter.setPen(pen)
    painter.drawRect(QRectF(3.5, 4.5, 13, 11))


def _turn(painter: QPainter, color: QColor, mirrored: bool) -> None:
    if mirrored:
        painter.translate(SIZE, 0)
        painter.scale(-1, 1)
    path = QPainterPath(QPointF(5, 8))
    path.lineTo(QPointF(12, 8))
    path.cubicTo(QPointF(19, 8), QPointF(19, 16), QPointF(12, 16))
    path.lineTo(QPointF(8, 16))
    painter.drawPath(path)
    _arrow_head(painter, QPointF(3, 8), math.pi, color, 5.0)


_DRAW: dict[str, Callable[[QPainter, QColor], None]] = {
    "hand": _hand,
    "brush": _brush,
    "eraser": _eraser,
    "select": _select,
    "undo": lambda p, c: _turn(p, c, mirrored=False),
    "redo": lambda p, c: _turn(p, c, mirrored=True),
}
