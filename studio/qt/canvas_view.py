"""The graphics view under the image canvas: zoom around the cursor, pan, checkerboard, compare.

Drawing never touches numpy: the image and the "before" image are QImages drawn only inside
the exposed rectangle, smoothly when zoomed out and as crisp pixels when zoomed in.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QPolygonF,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from studio.qt.canvas_mask import MaskLayer
from studio.qt.canvas_pyramid import Pyramid

MIN_ZOOM, MAX_ZOOM = 1 / 64, 64.0
ZOOM_STEP = 1.25
BACKDROP = QColor(38, 40, 44)
PAPER = QColor(250, 250, 250)
CHECKER_CELL = 8
TOOLS = ("hand", "brush", "eraser", "select")


class ImageItem(QGraphicsItem):
    """The current image, drawn from a display-format QImage."""

    def __init__(self) -> None:
        super().__init__()
        self._pyramid = Pyramid()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)

    def set_pyramid(self, pyramid: Pyramid) -> None:
        self.prepareGeometryChange()
        self._pyramid = pyramid
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(self._pyramid.base().rect())

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        self._pyramid.draw(painter, self.boundingRect(), option.exposedRect)


class CompareItem(QGraphicsItem):
    """The "before" image over the left part of the current one, up to a split line."""

    def __init__(self) -> None:
        super().__init__()
        self._before = Pyramid()
        self._before_alpha = False
        self._rect = QRectF()
        self._split = 0.5
        self.underlay: Callable[[QPainter, QRectF, bool], None] | None = None  # paper or checkerboard
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)

    def set_images(self, before: Pyramid, has_alpha: bool, frame: QRectF) -> None:
        self.prepareGeometryChange()
        self._before, self._before_alpha = before, has_alpha
        self._rect = frame
        self.update()

    def set_split(self, fraction: float) -> None:
        self._split = min(1.0, max(0.0, fraction))
        self.update()

    def split_x(self) -> float:
        return self._rect.width() * self._split

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._before.base().isNull() or self._rect.isEmpty():
            return
        shown = QRectF(0, 0, self.split_x(), self._rect.height()) & option.exposedRect
        if not shown.isEmpty():
            if self.underlay is not None:
                self.underlay(painter, shown, self._before_alpha)
            # stretched over the current image when the sizes differ
            self._before.draw(painter, self._rect, shown)
        for colour, offset in ((QColor(0, 0, 0, 110), 1.0), (QColor(255, 255, 255, 235), 0.0)):
            pen = QPen(colour, 1.0)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.save()
            painter.translate(offset / max(painter.worldTransform().m11(), 1e-6), 0)  # one screen pixel
            painter.drawLine(QPointF(self.split_x(), 0), QPointF(self.split_x(), self._rect.height()))
            painter.restore()


class CanvasView(QGraphicsView):
    """Zoom/pan view; left-button tool gestures are reported in scene coordinates."""

    toolPressed = Signal(QPointF)
    toolMoved = Signal(QPointF)
    toolReleased = Signal(QPointF)
    hoverMoved = Signal(QPointF)  # scene point under the cursor
    hoverLeft = Signal()
    zoomChanged = Signal(float)
    splitDragged = Signal(float)  # the compare line dragged to this fraction of the image width

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.image_item = ImageItem()
        self.mask_layer = MaskLayer()
        self.compare_item = CompareItem()
        self.selection_item = OutlineItem(ellipse=False, fill=QColor(80, 160, 255, 36))
        self.brush_cursor = OutlineItem(ellipse=True)
        for z, item in enumerate(
            (self.image_item, self.mask_layer, self.compare_item, self.selection_item, self.brush_cursor)
        ):
            item.setZValue(z)
            self.scene().addItem(item)
        self.compare_item.hide()
        self.compare_item.underlay = self._draw_underlay
        self.selection_item.hide()
        self.brush_cursor.hide()

        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheNone)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)  # the canvas widget takes drops
        self.viewport().setAcceptDrops(False)

        self._tool = "brush"
        self._brush_diameter = 40.0
        self._image_rect = QRectF()
        self._fit_mode = True
        self._space_held = False
        self._pan_from: QPoint | None = None
        self._tool_active = False
        self._dragging_split = False
        self._on_split = False
        self._checker = QPixmap()  # viewport-sized, blitted: faster than a pattern brush
        self._has_alpha = False
        self.placeholder = ""

    # image and scene ---------------------------------------------------------------------
    def set_image(self, pyramid: Pyramid | None, has_alpha: bool = False) -> None:
        """Show the image whose levels ``pyramid`` holds (None: nothing); refit when the size changes."""
        old_size = self._image_rect.size()
        pyramid = pyramid if pyramid is not None else Pyramid()
        image = pyramid.base()
        self.image_item.set_pyramid(pyramid)
        self._has_alpha = has_alpha
        self._image_rect = QRectF(image.rect()) if not image.isNull() else QRectF()
        margin = max(self._image_rect.width(), self._image_rect.height(), 1.0)
        self.setSceneRect(self._image_rect.adjusted(-margin, -margin, margin, margin))
        if self._image_rect.size() != old_size:
            self.fit()
        self.viewport().update()

    def image_rect(self) -> QRectF:
        return QRectF(self._image_rect)

    # zoom --------------------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, zoom: float, anchor: QPoint | None = None) -> None:
        """Scale to ``zoom`` keeping the scene point under ``anchor`` (default: the centre) still."""
        anchor = anchor if anchor is not None else self.viewport().rect().center()
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        scene_point = self.mapToScene(anchor)
        self.setTransform(QTransform.fromScale(zoom, zoom))
        moved = self.mapFromScene(scene_point) - anchor
        self._scroll_by(moved.x(), moved.y())
        self._fit_mode = False
        self._zoom_changed()

    def zoom_by(self, factor: float, anchor: QPoint | None = None) -> None:
        self.set_zoom(self.zoom() * factor, anchor)

    def fit(self) -> None:
        if self._image_rect.isEmpty():
            self.setTransform(QTransform())
        else:
            view = self.viewport().rect().adjusted(12, 12, -12, -12)
            zoom = min(view.width() / self._image_rect.width(), view.height() / self._image_rect.height())
            zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
            self.setTransform(QTransform.fromScale(zoom, zoom))
            self.centerOn(self._image_rect.center())
        self._fit_mode = True
        self._zoom_changed()

    def actual_size(self) -> None:
        centre = self.mapToScene(self.viewport().rect().center())
        self.setTransform(QTransform())
        self.centerOn(centre if self._image_rect.contains(centre) else self._image_rect.center())
        self._fit_mode = False
        self._zoom_changed()

    def _scroll_by(self, dx: float, dy: float) -> None:
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round(dx))
        v.setValue(v.value() + round(dy))

    # tools -------------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown canvas tool {tool!r} (choose from {', '.join(TOOLS)})")
        self._tool = tool
        self._update_cursor()

    def tool(self) -> str:
        return self._tool

    def set_brush_diameter(self, diameter: float) -> None:
        self._brush_diameter = diameter
        self._place_brush_cursor(self.brush_cursor.rect().center())

    def _panning_gesture(self, event: QMouseEvent) -> bool:
        if event.button() == Qt.MouseButton.MiddleButton:
            return True
        return event.button() == Qt.MouseButton.LeftButton and (self._tool == "hand" or self._space_held)

    def _near_split(self, position: QPoint) -> bool:
        """Is ``position`` (viewport) on the compare split line, where a drag moves the line?"""
        if not self.compare_item.isVisible() or self._image_rect.isEmpty():
            return False
        line = self.mapFromScene(QPointF(self.compare_item.split_x(), 0))
        top, bottom = self.mapFromScene(self._image_rect.topLeft()).y(), self.mapFromScene(self._image_rect.bottomLeft()).y()
        return abs(position.x() - line.x()) <= 8 and top <= position.y() <= bottom

    def _update_cursor(self) -> None:
        if self._pan_from is not None:
            shape = Qt.CursorShape.ClosedHandCursor
        elif self._on_split:
            shape = Qt.CursorShape.SplitHCursor
        elif self._tool == "hand" or self._space_held:
            shape = Qt.CursorShape.OpenHandCursor
        elif self._tool == "select":
            shape = Qt.CursorShape.CrossCursor
        else:
            shape = Qt.CursorShape.BlankCursor if self.brush_cursor.isVisible() else Qt.CursorShape.CrossCursor
        self.viewport().setCursor(shape)

    def _place_brush_cursor(self, centre: QPointF) -> None:
        r = self._brush_diameter / 2
        self.brush_cursor.set_rect(QRectF(centre.x() - r, centre.y() - r, 2 * r, 2 * r))

    def _zoom_changed(self) -> None:
        for item in (self.brush_cursor, self.selection_item):
            item.set_zoom(self.zoom())
        self.zoomChanged.emit(self.zoom())

    # events ------------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(ZOOM_STEP**steps, event.position().toPoint())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        if self._panning_gesture(event):
            self._pan_from = event.position().toPoint()
            self._update_cursor()
        elif event.button() == Qt.MouseButton.LeftButton and self._near_split(event.position().toPoint()):
            self._dragging_split = True
        elif event.button() == Qt.MouseButton.LeftButton and not self._image_rect.isEmpty():
            self._tool_active = True
            self.toolPressed.emit(self.mapToScene(event.position().toPoint()))
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        position = event.position().toPoint()
        scene_point = self.mapToScene(position)
        if self._pan_from is not None:
            delta = position - self._pan_from
            self._pan_from = position
            self._scroll_by(-delta.x(), -delta.y())
            self._fit_mode = False
        elif self._dragging_split:
            self.splitDragged.emit(scene_point.x() / self._image_rect.width())
        elif self._tool_active:
            self.toolMoved.emit(scene_point)
        on_split = self._dragging_split or (not self._tool_active and self._near_split(position))
        show_brush = (self._tool in ("brush", "eraser") and not self._space_held and self._pan_from is None
                      and not on_split)
        if show_brush:
            self._place_brush_cursor(scene_point)
        if show_brush != self.brush_cursor.isVisible() or on_split != self._on_split:
            self.brush_cursor.setVisible(show_brush)
            self._on_split = on_split
            self._update_cursor()
        self.hoverMoved.emit(scene_point)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and (
            event.button() == Qt.MouseButton.MiddleButton or event.button() == Qt.MouseButton.LeftButton
        ):
            self._pan_from = None
            self._update_cursor()
        elif self._dragging_split and event.button() == Qt.MouseButton.LeftButton:
            self._dragging_split = False
        elif self._tool_active and event.button() == Qt.MouseButton.LeftButton:
            self._tool_active = False
            self.toolReleased.emit(self.mapToScene(event.position().toPoint()))
        event.accept()

    def leaveEvent(self, event: QEvent) -> None:
        self.brush_cursor.hide()
        self.hoverLeft.emit()
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            self.brush_cursor.hide()
            self._update_cursor()
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            self._update_cursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    # painting ----------------------------------------------------------------------------
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, BACKDROP)
        self._draw_underlay(painter, rect, self._has_alpha)

    def _draw_underlay(self, painter: QPainter, rect: QRectF, checker: bool) -> None:
        """What shows through an image: light paper, or a checkerboard for transparent images."""
        if self._image_rect.isEmpty():
            return
        painter.fillRect(self._image_rect & rect, PAPER)
        if checker:
            self._draw_checker(painter, rect)

    def _draw_checker(self, painter: QPainter, rect: QRectF) -> None:
        device = self.mapFromScene(self._image_rect).boundingRect() & self.mapFromScene(rect).boundingRect()
        device &= self.viewport().rect()
        if device.isEmpty():
            return
        period = 2 * CHECKER_CELL
        if self._checker.width() < device.width() + period or self._checker.height() < device.height() + period:
            self._checker = _checker_pixmap(self.viewport().width() + period, self.viewport().height() + period)
        origin = self.mapFromScene(self._image_rect.topLeft())
        dx, dy = (device.x() - origin.x()) % period, (device.y() - origin.y()) % period
        painter.save()
        painter.resetTransform()  # the checkerboard stays the same size at any zoom
        painter.drawPixmap(device.topLeft(), self._checker, QRect(dx, dy, device.width(), device.height()))
        painter.restore()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        if self._image_rect.isEmpty() and self.placeholder:
            painter.save()
            painter.resetTransform()
            painter.setPen(QColor(170, 174, 182))
            font = QFont(painter.font())
            font.setPointSizeF(font.pointSizeF() * 1.15)
            painter.setFont(font)
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            painter.restore()
        elif self.compare_item.isVisible():
            painter.save()
            painter.resetTransform()
            x = self.mapFromScene(QPointF(self.compare_item.split_x(), 0)).x()
            top = max(8, self.mapFromScene(QPointF(0, 0)).y() + 8)
            for text, right in zip(("Before", "After"), (True, False)):
                _draw_tag(painter, text, QPoint(x, top), align_right=right)
            image_top = self.mapFromScene(self._image_rect.topLeft()).y()
            image_bottom = self.mapFromScene(self._image_rect.bottomLeft()).y()
            middle = (max(0, image_top) + min(self.viewport().height(), image_bottom)) / 2
            _draw_split_handle(painter, QPointF(x + 0.5, middle))
            painter.restore()


def _draw_split_handle(painter: QPainter, centre: QPointF) -> None:
    """A round grip on the compare line, with arrows saying it moves sideways."""
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor(0, 0, 0, 120), 1))
    painter.setBrush(QColor(250, 250, 250, 235))
    painter.drawEllipse(centre, 11, 11)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(40, 40, 44))
    for sign in (-1, 1):
        tip = centre.x() + sign * 7
        painter.drawPolygon(QPolygonF([QPointF(tip, centre.y()), QPointF(tip - sign * 4, centre.y() - 4),
                                       QPointF(tip - sign * 4, centre.y() + 4)]))


def _draw_tag(painter: QPainter, text: str, anchor: QPoint, align_right: bool) -> None:
    metrics = painter.fontMetrics()
    box = QRect(0, 0, metrics.horizontalAdvance(text) + 14, metrics.height() + 6)
    box.moveTop(anchor.y())
    if align_right:
        box.moveRight(anchor.x() - 6)
    else:
        box.moveLeft(anchor.x() + 6)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(20, 20, 24, 190))
    painter.drawRoundedRect(box, 4, 4)
    painter.setPen(QColor(235, 235, 240))
    painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)


def _checker_pixmap(width: int, height: int) -> QPixmap:
    cell = CHECKER_CELL
    tile = QPixmap(2 * cell, 2 * cell)
    tile.fill(QColor(204, 204, 204))
    painter = QPainter(tile)
    painter.fillRect(0, 0, cell, cell, PAPER)
    painter.fillRect(cell, cell, cell, cell, PAPER)
    painter.end()
    board = QPixmap(width, height)
    painter = QPainter(board)
    painter.fillRect(board.rect(), QBrush(tile))
    painter.end()
    return board


class OutlineItem(QGraphicsItem):
    """A rectangle or circle outlined dark-then-light, so it shows on any image at any zoom."""

    def __init__(self, ellipse: bool, fill: QColor | None = None) -> None:
        super().__init__()
        self._ellipse, self._fill = ellipse, fill
        self._rect = QRectF()
        self._pad = 2.0  # scene units covering the cosmetic pens' width

    def rect(self) -> QRectF:
        return QRectF(self._rect)

    def set_rect(self, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self._rect = QRectF(rect)
        self.update()

    def set_zoom(self, zoom: float) -> None:
        self.prepareGeometryChange()
        self._pad = 3.0 / zoom

    def boundingRect(self) -> QRectF:
        return self._rect.adjusted(-self._pad, -self._pad, self._pad, self._pad)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        draw = painter.drawEllipse if self._ellipse else painter.drawRect
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, self._ellipse)
        painter.setBrush(self._fill if self._fill is not None else Qt.BrushStyle.NoBrush)
        dark = QPen(QColor(0, 0, 0, 170), 1.0)
        dark.setCosmetic(True)
        painter.setPen(dark)
        draw(self._rect)
        light = QPen(QColor(255, 255, 255, 235), 1.0, Qt.PenStyle.DashLine)
        light.setCosmetic(True)
        painter.setPen(light)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        draw(self._rect)
