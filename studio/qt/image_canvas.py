"""The image canvas: view, zoom and pan an image, paint a mask, compare, paste, drop and export.

Used by every image family. The main window gives it images (``set_image``) and routes its
``sendToAction`` requests; actions read ``image()`` and ``mask()``. Every edit is one command on
``undo_stack``: a mask stroke, a fill, an invert, a clear, and showing a new image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QMimeData, QObject, QPointF, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
    QUndoCommand,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.media import IMAGE_SUFFIXES, save_image
from studio.qt.canvas_convert import array_from_qimage, as_image_array, qimage_from_array
from studio.qt.canvas_icons import canvas_icon
from studio.qt.canvas_io import BackgroundIO, read_image_file
from studio.qt.canvas_mask import MaskEditCommand, blank_mask
from studio.qt.canvas_pyramid import Pyramid
from studio.qt.canvas_view import ZOOM_STEP, CanvasView

SEND_TARGETS = (
    ("edit", "Edit (image to image)"),
    ("inpaint", "Inpaint the masked area"),
    ("encode", "Encode into the latent explorer"),
)
TOOL_HINTS = {
    "hand": "drag to pan, the wheel zooms",
    "brush": "paint the mask; [ and ] change the size; Space-drag pans; the wheel zooms",
    "eraser": "erase the mask; [ and ] change the size; Space-drag pans; the wheel zooms",
    "select": "drag a rectangle; F fills it into the mask, Delete clears it",
}
ZOOM_PRESETS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
UNDO_LIMIT = 64
KeySpec = QKeySequence.StandardKey | str | tuple[QKeySequence.StandardKey | str, ...]
EXPORT_FILTERS = "PNG with metadata (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp);;TIFF (*.tif *.tiff);;BMP (*.bmp)"


@dataclass
class _Shown:
    """What the canvas shows; one per image in the undo history.

    Only the image on screen keeps its display images; others keep the numpy arrays and rebuild
    them when they come back, so a long history of large images costs arrays, not also QImages.
    """

    image: np.ndarray | None = None
    record_id: int | None = None
    metadata: dict[str, Any] | None = None
    before: np.ndarray | None = None  # the image this one replaced, for compare
    mask: QImage | None = None  # snapshot taken when another image replaces this one
    mask_blank: bool = True  # the mask is known to be empty
    display: Pyramid | None = None
    before_display: Pyramid | None = None

    def size(self) -> QSize | None:
        return None if self.image is None else QSize(self.image.shape[1], self.image.shape[0])


@dataclass(frozen=True)
class _Prepared:
    """An image made ready to show: a read-only array, its display pyramid, an empty mask."""

    image: np.ndarray
    display: Pyramid
    blank: QImage | None = None

    @classmethod
    def make(cls, image: np.ndarray, all_levels: bool = False) -> _Prepared:
        """Off the UI thread (``all_levels``) the zoomed-out levels and the empty mask are made too."""
        array = as_image_array(image)
        display = Pyramid(qimage_from_array(array))
        if not all_levels:
            return cls(array, display)
        return cls(array, display.build(), blank_mask(display.base().size()))


class _SetImageCommand(QUndoCommand):
    def __init__(self, show: Callable[[_Shown], None], old: _Shown, new: _Shown) -> None:
        super().__init__("Set image" if new.image is not None else "Close image")
        self._show, self._old, self._new = show, old, new

    def redo(self) -> None:
        self._show(self._new)

    def undo(self) -> None:
        self._show(self._old)


class ImageCanvas(QWidget):
    """An image with a paintable mask; see the module docstring."""

    imageChanged = Signal()
    maskChanged = Signal()
    sendToAction = Signal(str)  # "edit", "inpaint", "encode": the main window routes it
    fileLoaded = Signal(str, object)  # path ("" for pasted data), its generation metadata or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(UNDO_LIMIT)
        self._shown = _Shown()
        self._blank = QImage()
        self._selection = QRect()
        self._select_origin: QPointF | None = None
        self._stroking = False
        self._erasing = False
        self._io = BackgroundIO(self)
        self._keys: list[tuple[QKeySequence, QAction]] = []
        self._last_export_dir = Path.home()

        self.view = CanvasView(self)
        self.view.placeholder = "Drop an image here or paste one (Ctrl+V)"
        self._mask_layer = self.view.mask_layer
        self._build_actions()
        self._build_toolbar()
        self._build_status_bar()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._toolbar)
        layout.addWidget(self.view, 1)
        layout.addWidget(self._status_bar)

        self.view.toolPressed.connect(self._on_tool_pressed)
        self.view.toolMoved.connect(self._on_tool_moved)
        self.view.toolReleased.connect(self._on_tool_released)
        self.view.hoverMoved.connect(self._show_pixel_info)
        self.view.hoverLeft.connect(self._show_tool_hint)
        self.view.zoomChanged.connect(self._show_zoom)
        self.view.splitDragged.connect(self.set_compare_split)
        self._message_timer = QTimer(self, singleShot=True, interval=4000)
        self._message_timer.timeout.connect(self._show_size)
        self.setAcceptDrops(True)
        self.view.installEventFilter(self)
        self.set_tool("brush")
        self._refresh()
        self._show_size()
        self._show_zoom(self.view.zoom())

    # public API ----------------------------------------------------------------------------
    def set_image(self, image: np.ndarray | None, record_id: int | None = None) -> None:
        """Show ``image`` (uint8 HxWxC, C 1/3/4; None: empty canvas) as one undoable step.

        The mask is kept when the new image has the same size, and cleared otherwise.
        """
        self._show_prepared(_Prepared.make(image) if image is not None else None, record_id)

    def _show_prepared(self, prepared: _Prepared | None, record_id: int | None) -> None:
        self._finish_stroke()  # a stroke under way belongs to the image it started on
        old = self._shown
        old.mask, old.mask_blank = self._mask_layer.qimage(), self._mask_layer.is_blank()
        if prepared is None:
            new = _Shown(None, record_id, before=old.image, before_display=old.display)
        else:
            new = _Shown(prepared.image, record_id, before=old.image, display=prepared.display,
                         before_display=old.display)
            if old.size() == new.size():
                new.mask, new.mask_blank = old.mask, old.mask_blank  # same size: the mask stays
            else:
                if prepared.blank is not None and self._blank.size() != prepared.blank.size():
                    self._blank = prepared.blank
                new.mask = self._blank_mask(new.size())
        self.undo_stack.push(_SetImageCommand(self._show, old, new))

    def image(self) -> np.ndarray | None:
        """The image shown (read-only array), or None."""
        return self._shown.image

    def record_id(self) -> int | None:
        return self._shown.record_id

    def set_metadata(self, metadata: dict[str, Any] | None) -> None:
        """Generation metadata of the image shown, written into exported PNGs."""
        self._shown.metadata = dict(metadata) if metadata else None

    def metadata(self) -> dict[str, Any] | None:
        return self._shown.metadata

    def mask(self) -> np.ndarray | None:
        """uint8 (H, W): 255 where painted (soft brush edges in between), None when nothing is."""
        if self._shown.image is None:
            return None
        alpha = self._mask_layer.alpha()
        return alpha if alpha.any() else None

    def clear_mask(self) -> None:
        self._mask_edit("Clear mask", lambda: self._mask_layer.fill_rect(self._image_rect(), erase=True))

    def invert_mask(self) -> None:
        self._mask_edit("Invert mask", self._mask_layer.invert)

    def fill_selection(self) -> None:
        self._mask_edit("Fill selection", lambda: self._mask_layer.fill_rect(self._selection, erase=False))

    def clear_selection_area(self) -> None:
        self._mask_edit("Clear selection", lambda: self._mask_layer.fill_rect(self._selection, erase=True))

    def paint_stroke(self, points: Iterable[QPointF | tuple[float, float]], erase: bool = False) -> None:
        """Paint (or erase) one stroke through image-pixel points with the current brush."""
        centres = [p if isinstance(p, QPointF) else QPointF(*p) for p in points]
        if not centres:
            return

        def stroke() -> None:
            for centre in centres:
                self._mask_layer.dab_to(centre, self.brush_size(), self.brush_hardness(), erase)

        self._mask_edit("Erase" if erase else "Brush stroke", stroke)

    def selection(self) -> QRect:
        return QRect(self._selection)

    def set_selection(self, rect: QRect | QRectF | None) -> None:
        """Select a rectangle of image pixels (None or empty: select nothing)."""
        if rect is None:
            rect = QRect()
        if isinstance(rect, QRectF):
            rect = QRectF(rect).normalized().toAlignedRect()
        self._selection = rect.normalized() & self._image_rect()
        self.view.selection_item.set_rect(QRectF(self._selection))
        self.view.selection_item.setVisible(not self._selection.isEmpty())
        self._refresh()

    def set_tool(self, tool: str) -> None:
        """"hand", "brush", "eraser" or "select"."""
        self._on_tool_chosen(tool)
        self._tool_actions[tool].setChecked(True)

    def tool(self) -> str:
        return self.view.tool()

    def brush_size(self) -> int:
        return self._size_box.value()

    def set_brush_size(self, pixels: int) -> None:
        self._size_box.setValue(pixels)

    def brush_hardness(self) -> float:
        return self._hardness_box.value() / 100.0

    def set_brush_hardness(self, hardness: float) -> None:
        self._hardness_box.setValue(round(hardness * 100))

    def set_mask_visible(self, visible: bool) -> None:
        self._show_mask_action.setChecked(visible)

    def set_mask_opacity(self, opacity: float) -> None:
        self._opacity_slider.setValue(round(opacity * 100))

    def set_compare(self, enabled: bool) -> None:
        """Show the replaced image left of a split line (only when there is one)."""
        self._compare_action.setChecked(enabled and self._shown.before is not None)

    def set_compare_split(self, fraction: float) -> None:
        self._split_slider.setValue(round(fraction * self._split_slider.maximum()))

    def undo(self) -> None:
        """Undo the last edit (a stroke still being drawn is finished first, then undone)."""
        self._finish_stroke()
        self.undo_stack.undo()

    def redo(self) -> None:
        self._finish_stroke()
        self.undo_stack.redo()

    def zoom(self) -> float:
        return self.view.zoom()

    def fit(self) -> None:
        self.view.fit()

    def actual_size(self) -> None:
        self.view.actual_size()

    def zoom_in(self) -> None:
        self.view.zoom_by(ZOOM_STEP)

    def zoom_out(self) -> None:
        self.view.zoom_by(1 / ZOOM_STEP)

    def send_to(self, target: str) -> None:
        if self._shown.image is not None:
            self.sendToAction.emit(target)

    def paste(self) -> None:
        """Paste an image (or an image file) from the clipboard."""
        if not self.load_mime(QGuiApplication.clipboard().mimeData()):
            self._flash("The clipboard holds no image.")

    def open_file(self, path: Path | str) -> None:
        """Load an image file in the background; a bad file shows a message and changes nothing."""
        path = Path(path)
        self._flash(f"Opening {path.name}…")
        self._io.run(lambda: _read_prepared(path), lambda got: self._on_loaded(got, str(path)), self._on_load_failed)

    def load_mime(self, mime: QMimeData | None) -> bool:
        """Take an image from dropped or pasted data; False when it holds none."""
        if mime is None:
            return False
        files = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
        if files:
            images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
            self.open_file(images[0] if images else files[0])
            return True
        encoded = next((f for f in mime.formats() if f.startswith("image/") and f != "image/x-qt-image"), None)
        if mime.hasImage():
            qimage = QImage(mime.imageData())
            if not qimage.isNull():
                self.set_image(array_from_qimage(qimage))
                return True
        if encoded is not None:
            data = bytes(mime.data(encoded).data())
            self._io.run(lambda: _read_prepared(data), lambda got: self._on_loaded(got, ""), self._on_load_failed)
            return True
        return False

    def export(self, path: Path | str | None = None) -> None:
        """Save the image (with its metadata in PNGs); asks for a file name when none is given."""
        if self._shown.image is None:
            return
        if path is None:
            name = f"record-{self._shown.record_id}.png" if self._shown.record_id is not None else "image.png"
            chosen, _filter = QFileDialog.getSaveFileName(
                self, "Export image", str(self._last_export_dir / name), EXPORT_FILTERS
            )
            if not chosen:
                return
            path = chosen
        path = Path(path)
        self._last_export_dir = path.parent
        image, meta = self._shown.image, self._shown.metadata
        self._flash(f"Exporting {path.name}…")
        self._io.run(lambda: save_image(path, image, meta), self._on_exported, self._on_export_failed)

    def status_text(self) -> str:
        """What the status line says: size, pixel under the cursor, zoom."""
        return f"{self._size_label.text()} | {self._pixel_label.text()} | {self._zoom_button.text()}"

    def busy(self) -> bool:
        """True while a file is being read or written."""
        return self._io.busy()

    # undo plumbing -------------------------------------------------------------------------
    def _show(self, shown: _Shown) -> None:
        left = self._shown
        if left is not shown:
            left.mask, left.mask_blank = self._mask_layer.qimage(), self._mask_layer.is_blank()
            left.display = left.before_display = None
        self._shown = shown
        if shown.image is not None and shown.display is None:
            shown.display = Pyramid(qimage_from_array(shown.image))
        self.view.set_image(shown.display, has_alpha=shown.image is not None and shown.image.shape[2] == 4)
        self._mask_layer.set_qimage(shown.mask if shown.mask is not None else QImage(), blank=shown.mask_blank)
        if shown.before is None or shown.image is None:
            self._compare_action.setChecked(False)
        elif self._compare_action.isChecked():
            self._show_before()
        self.set_selection(self._selection)
        self._refresh()
        self._show_size()
        self.imageChanged.emit()
        self.maskChanged.emit()

    def _show_before(self) -> None:
        shown = self._shown
        if shown.before_display is None:
            shown.before_display = Pyramid(qimage_from_array(shown.before))
        self.view.compare_item.set_images(shown.before_display, shown.before.shape[2] == 4, QRectF(self._image_rect()))

    def _blank_mask(self, size: QSize) -> QImage:
        """An empty mask; one shared (copy-on-write) image per size, so history costs nothing for it."""
        if self._blank.size() != size:
            self._blank = blank_mask(size)
        return self._blank

    def _mask_edit(self, text: str, paint: Callable[[], None]) -> None:
        if self._shown.image is None:
            return
        self._mask_layer.begin_edit()
        paint()
        self._push_mask_edit(text)

    def _push_mask_edit(self, text: str) -> None:
        tiles = self._mask_layer.end_edit()
        if tiles:
            self.undo_stack.push(MaskEditCommand(self._mask_layer, tiles, text, self.maskChanged.emit))

    def _image_rect(self) -> QRect:
        return self._shown.display.base().rect() if self._shown.display is not None else QRect()

    # tools ------------------------------------------------------------------------------
    def _on_tool_chosen(self, tool: str) -> None:
        self.view.set_tool(tool)
        for option in self._brush_options:
            option.setVisible(tool in ("brush", "eraser"))
        for option in self._select_options:
            option.setVisible(tool == "select")
        self._show_tool_hint()

    def _on_tool_pressed(self, point: QPointF) -> None:
        tool = self.tool()
        if tool in ("brush", "eraser") and self._shown.image is not None:
            self._stroking, self._erasing = True, tool == "eraser"
            self._mask_layer.begin_edit()
            self._mask_layer.dab_to(point, self.brush_size(), self.brush_hardness(), self._erasing)
        elif tool == "select":
            self._select_origin = QPointF(round(point.x()), round(point.y()))
            self.set_selection(None)

    def _on_tool_moved(self, point: QPointF) -> None:
        if self._stroking:
            self._mask_layer.dab_to(point, self.brush_size(), self.brush_hardness(), self._erasing)
        elif self._select_origin is not None:
            corner = QPointF(round(point.x()), round(point.y()))
            self.set_selection(QRectF(self._select_origin, corner).normalized().toRect())

    def _on_tool_released(self, point: QPointF) -> None:
        if self._stroking:
            self._on_tool_moved(point)
            self._finish_stroke()
        elif self._select_origin is not None:
            self._on_tool_moved(point)
            self._select_origin = None

    def _finish_stroke(self) -> None:
        if self._stroking:
            self._stroking = False
            self._push_mask_edit("Erase" if self._erasing else "Brush stroke")

    # files -------------------------------------------------------------------------------
    def _on_loaded(self, loaded: tuple[_Prepared, dict[str, Any] | None], path: str) -> None:
        prepared, meta = loaded
        self._show_prepared(prepared, None)
        self.set_metadata(meta)
        self._flash(f"Opened {Path(path).name}" if path else "Image pasted.")
        self.fileLoaded.emit(path, meta)

    def _on_load_failed(self, message: str) -> None:
        self._show_size()
        QMessageBox.warning(self, "Cannot open the image", message)

    def _on_exported(self, path: Path) -> None:
        self._flash(f"Exported to {path}")

    def _on_export_failed(self, message: str) -> None:
        self._show_size()
        QMessageBox.warning(self, "Cannot export the image", message)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage() or any(f.startswith("image/") for f in mime.formats()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        if self.load_mime(event.mimeData()):
            event.acceptProposedAction()

    # widgets -----------------------------------------------------------------------------
    def _action(self, text: str, slot: Callable[[], None], keys: KeySpec | None = None, tip: str = "") -> QAction:
        """An action; its keys work while the view has focus (see ``eventFilter``)."""
        action = QAction(text, self)
        action.triggered.connect(lambda _checked=False: slot())
        sequences = _sequences(keys)
        self._keys.extend((sequence, action) for sequence in sequences)
        hint = tip or text
        if sequences:
            hint += f" ({sequences[0].toString(QKeySequence.SequenceFormat.NativeText)})"
        action.setToolTip(hint)
        return action

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """The canvas's keys win over a window's shortcuts for the same keys while the view has focus.

        Accepting the ShortcutOverride turns the key into a key press for the view instead of an
        ambiguous shortcut (a main window's Ctrl+Z or Ctrl+0 next to the canvas's own).
        """
        if watched is self.view and event.type() in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            pressed = QKeySequence(event.keyCombination())
            for sequence, action in self._keys:
                if action.isEnabled() and sequence.matches(pressed) == QKeySequence.SequenceMatch.ExactMatch:
                    event.accept()
                    if event.type() == QEvent.Type.KeyPress:
                        action.trigger()
                    return True
        return super().eventFilter(watched, event)

    def _build_actions(self) -> None:
        group = QActionGroup(self)
        ink = self.palette().windowText().color()
        self._tool_actions: dict[str, QAction] = {}
        for tool, text, key in (
            ("hand", "Hand", "H"),
            ("brush", "Brush", "B"),
            ("eraser", "Eraser", "E"),
            ("select", "Select", "M"),
        ):
            action = self._action(text, lambda t=tool: self._on_tool_chosen(t), key, f"{text}: {TOOL_HINTS[tool]}")
            action.setIcon(canvas_icon(tool, ink))
            action.setCheckable(True)
            group.addAction(action)
            self._tool_actions[tool] = action

        self.undo_action = self._action("Undo", self.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = self._action("Redo", self.redo, (QKeySequence.StandardKey.Redo, "Ctrl+Shift+Z", "Ctrl+Y"))
        self.undo_action.setIcon(canvas_icon("undo", ink))
        self.redo_action.setIcon(canvas_icon("redo", ink))
        self.undo_stack.canUndoChanged.connect(self.undo_action.setEnabled)
        self.undo_stack.canRedoChanged.connect(self.redo_action.setEnabled)
        self.undo_stack.undoTextChanged.connect(lambda text: self.undo_action.setToolTip(f"Undo {text}".strip()))
        self.undo_stack.redoTextChanged.connect(lambda text: self.redo_action.setToolTip(f"Redo {text}".strip()))
        self.undo_action.setEnabled(False)
        self.redo_action.setEnabled(False)

        self._fill_action = self._action("Fill selection", self.fill_selection, "F", "Fill the selection into the mask")
        self._cut_action = self._action("Clear selection", self.clear_selection_area, "Delete",
                                        "Clear the mask inside the selection")
        self._invert_action = self._action("Invert mask", self.invert_mask, "Ctrl+I")
        self._clear_action = self._action("Clear mask", self.clear_mask, "Ctrl+Shift+Delete")
        self._show_mask_action = self._action("Mask", lambda: None, "V", "Show the mask (the arrow: mask commands)")
        self._show_mask_action.setCheckable(True)
        self._show_mask_action.setChecked(True)
        self._show_mask_action.toggled.connect(self._mask_layer.setVisible)
        self._compare_action = self._action("Compare", lambda: None, "C", "Compare with the image this one replaced")
        self._compare_action.setCheckable(True)
        self._compare_action.toggled.connect(self._on_compare_toggled)
        self._action("Paste", self.paste, QKeySequence.StandardKey.Paste, "Paste an image")
        self._action("Deselect", lambda: self.set_selection(None), "Escape")
        self._action("Smaller brush", lambda: self.set_brush_size(round(self.brush_size() / 1.25)), "[")
        self._action("Larger brush", lambda: self.set_brush_size(max(self.brush_size() + 1,
                                                                     round(self.brush_size() * 1.25))), "]")
        self._fit_action = self._action("Fit", self.fit, "Ctrl+0", "Fit the image in the view")
        self._actual_action = self._action("1:1", self.actual_size, "Ctrl+1", "Actual pixels")
        self._zoom_in_action = self._action("+", self.zoom_in, (QKeySequence.StandardKey.ZoomIn, "Ctrl+="), "Zoom in")
        self._zoom_out_action = self._action("−", self.zoom_out, QKeySequence.StandardKey.ZoomOut, "Zoom out")
        self._export_action = self._action("Export…", self.export, None, "Save the image with its metadata")

    def _build_toolbar(self) -> None:
        bar = QToolBar(self)
        bar.setIconSize(QSize(20, 20))
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)  # actions without an icon show text
        for action in self._tool_actions.values():
            bar.addAction(action)
        bar.addSeparator()

        self._size_box = QSpinBox(bar, minimum=1, maximum=2000, value=40, prefix="Size ", suffix=" px")
        self._size_box.setToolTip("Brush size ([ and ])")
        self._size_box.valueChanged.connect(self.view.set_brush_diameter)
        self._hardness_box = QSpinBox(bar, minimum=0, maximum=100, value=80, prefix="Hardness ", suffix=" %",
                                      singleStep=5)
        self._hardness_box.setToolTip("Brush hardness: 100 % is a hard edge, 0 % a soft falloff")
        # options of the current tool, like an options bar: brush settings or selection commands
        self._brush_options = [bar.addWidget(self._size_box), bar.addWidget(self._hardness_box)]
        self._select_options = [bar.addWidget(_tool_button(a, bar)) for a in (self._fill_action, self._cut_action)]
        bar.addSeparator()

        mask_button = QToolButton(bar)
        mask_button.setDefaultAction(self._show_mask_action)
        mask_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        mask_menu = QMenu(mask_button)
        for action in (self._fill_action, self._cut_action, self._invert_action, self._clear_action):
            mask_menu.addAction(action)
        mask_button.setMenu(mask_menu)
        bar.addWidget(mask_button)
        self._opacity_slider = QSlider(Qt.Orientation.Horizontal, bar, minimum=10, maximum=100, value=50)
        self._opacity_slider.setFixedWidth(64)
        self._opacity_slider.setToolTip("Mask opacity")
        self._opacity_slider.valueChanged.connect(lambda v: self._mask_layer.setOpacity(v / 100.0))
        bar.addWidget(self._opacity_slider)

        spacer = QWidget(bar)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        bar.addAction(self.undo_action)
        bar.addAction(self.redo_action)
        bar.addSeparator()
        self.send_button = QToolButton(bar)
        self.send_button.setText("Send to")
        self.send_button.setToolTip("Use this image in an image action")
        self.send_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.send_menu = QMenu(self.send_button)
        for target, label in SEND_TARGETS:
            action = self.send_menu.addAction(label)
            action.setData(target)
            action.triggered.connect(lambda _checked=False, t=target: self.send_to(t))
        self.send_button.setMenu(self.send_menu)
        bar.addWidget(self.send_button)
        bar.addAction(self._export_action)
        self._toolbar = bar

    def _build_status_bar(self) -> None:
        bar = QWidget(self)
        bar.setObjectName("canvasStatus")
        layout = QHBoxLayout(bar)
        layout.setContentsMargins(8, 2, 4, 2)
        layout.setSpacing(4)
        self._size_label = QLabel(bar)
        self._pixel_label = QLabel(bar)
        self._pixel_label.setMinimumWidth(200)
        self._pixel_label.setStyleSheet("color: palette(mid);")
        layout.addWidget(self._size_label)
        layout.addWidget(self._pixel_label, 1)

        layout.addWidget(_tool_button(self._compare_action, bar))
        self._split_slider = QSlider(Qt.Orientation.Horizontal, bar, minimum=0, maximum=1000, value=500)
        self._split_slider.setFixedWidth(140)
        self._split_slider.setToolTip("Where the before image ends")
        self._split_slider.valueChanged.connect(self._on_split_changed)
        self._split_slider.hide()
        layout.addWidget(self._split_slider)
        layout.addSpacing(12)

        layout.addWidget(_tool_button(self._zoom_out_action, bar))
        self._zoom_button = QToolButton(bar)
        self._zoom_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self._zoom_button.setMinimumWidth(58)
        self._zoom_button.setToolTip("Zoom")
        zoom_menu = QMenu(self._zoom_button)
        zoom_menu.addAction("Fit", self.fit)
        for preset in ZOOM_PRESETS:
            zoom_menu.addAction(f"{preset:.0%}", lambda z=preset: self.view.set_zoom(z))
        self._zoom_button.setMenu(zoom_menu)
        layout.addWidget(self._zoom_button)
        layout.addWidget(_tool_button(self._zoom_in_action, bar))
        layout.addWidget(_tool_button(self._fit_action, bar))
        layout.addWidget(_tool_button(self._actual_action, bar))
        self._status_bar = bar

    # display -----------------------------------------------------------------------------
    def _refresh(self) -> None:
        has_image = self._shown.image is not None
        has_selection = has_image and not self._selection.isEmpty()
        for action in (self._invert_action, self._clear_action, self._export_action, self._fit_action,
                       self._actual_action, self._zoom_in_action, self._zoom_out_action):
            action.setEnabled(has_image)
        self._fill_action.setEnabled(has_selection)
        self._cut_action.setEnabled(has_selection)
        self.send_button.setEnabled(has_image)
        self._compare_action.setEnabled(has_image and self._shown.before is not None)

    def _on_compare_toggled(self, on: bool) -> None:
        if on:
            self._show_before()
        self.view.compare_item.setVisible(on)
        self._split_slider.setVisible(on)
        self.view.viewport().update()

    def _on_split_changed(self, value: int) -> None:
        self.view.compare_item.set_split(value / self._split_slider.maximum())
        self.view.viewport().update()

    def _show_zoom(self, zoom: float) -> None:
        self._zoom_button.setText(f"{zoom:.0%}" if zoom >= 0.1 else f"{zoom:.1%}")

    def _show_size(self) -> None:
        image = self._shown.image
        if image is None:
            self._size_label.setText("No image")
        else:
            kind = {1: "grey", 3: "RGB", 4: "RGBA"}[image.shape[2]]
            self._size_label.setText(f"{image.shape[1]} × {image.shape[0]} {kind}")

    def _show_tool_hint(self) -> None:
        tool = self.view.tool()
        self._pixel_label.setText(f"{tool.capitalize()}: {TOOL_HINTS[tool]}")

    def _flash(self, message: str) -> None:
        self._size_label.setText(message)
        self._message_timer.start()

    def _show_pixel_info(self, point: QPointF) -> None:
        image = self._shown.image
        x, y = int(np.floor(point.x())), int(np.floor(point.y()))
        if image is None or not (0 <= x < image.shape[1] and 0 <= y < image.shape[0]):
            self._show_tool_hint()
            return
        values = " ".join(str(int(v)) for v in image[y, x])
        mask = self._mask_layer.qimage().pixelColor(x, y).alpha()
        self._pixel_label.setText(f"x {x}  y {y}   value {values}   mask {mask}")


def _read_prepared(source: Path | bytes) -> tuple[_Prepared, dict[str, Any] | None]:
    """Runs on a worker thread: decode, and make everything the UI thread needs to show it."""
    image, meta = read_image_file(source)
    return _Prepared.make(image, all_levels=True), meta


def _sequences(keys: KeySpec | None) -> list[QKeySequence]:
    if keys is None:
        return []
    found: list[QKeySequence] = []
    for key in keys if isinstance(keys, tuple) else (keys,):
        bindings = QKeySequence.keyBindings(key) if isinstance(key, QKeySequence.StandardKey) else [QKeySequence(key)]
        found.extend(b for b in bindings if b not in found)
    return found


def _tool_button(action: QAction, parent: QWidget) -> QToolButton:
    button = QToolButton(parent)
    button.setDefaultAction(action)
    button.setAutoRaise(True)
    return button

