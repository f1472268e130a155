"""The Gallery dock: every result of the project as lazily loaded thumbnails.

Star and delete go through QUndoCommands on the window's undo stack. Items drag out to other
applications as file URLs. Thumbnails are decoded on a worker pool, never on the UI thread.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QColor,
    QDesktopServices,
    QIcon,
    QImage,
    QKeySequence,
    QPainter,
    QPen,
    QPixmap,
    QUndoCommand,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core import media
from studio.core.store import Project, Record

THUMB = 112
RECORD_ROLE = Qt.ItemDataRole.UserRole
ALL_MODELS = "All models"


def array_to_qimage(image: np.ndarray) -> QImage:
    """A deep-copied QImage of a uint8 (H, W[, C]) array, C in 1/3/4."""
    array = np.ascontiguousarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = np.ascontiguousarray(array[..., 0])
    height, width = array.shape[:2]
    if array.ndim == 2:
        fmt = QImage.Format.Format_Grayscale8
    elif array.shape[2] == 3:
        fmt = QImage.Format.Format_RGB888
    else:
        fmt = QImage.Format.Format_RGBA8888
    return QImage(array.data, width, height, array.strides[0], fmt).copy()


def scaled_thumbnail(image: QImage, size: int = THUMB) -> QImage:
    """Small images (pixel art, 28x28 digits) upscale crisply; large ones smoothly."""
    small = max(image.width(), image.height()) * 2 <= size
    mode = Qt.TransformationMode.FastTransformation if small else Qt.TransformationMode.SmoothTransformation
    return image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, mode)


def waveform_thumbnail(samples: np.ndarray, size: int = THUMB) -> QImage:
    """A min/max envelope of the first channel on a dark tile."""
    image = QImage(size, size, QImage.Format.Format_RGB32)
    image.fill(QColor(32, 36, 44))
    mono = samples[:, 0] if samples.ndim == 2 else samples
    if len(mono) == 0:
        return image
    columns = np.array_split(mono, size)
    painter = QPainter(image)
    painter.setPen(QPen(QColor(90, 170, 255), 1))
    middle = size / 2
    for x, chunk in enumerate(columns):
        if len(chunk):
            low, high = float(chunk.min()), float(chunk.max())
            painter.drawLine(x, int(middle - high * middle * 0.9), x, int(middle - low * middle * 0.9))
    painter.end()
    return image


def load_thumbnail(record: Record) -> QImage:
    if record.kind == "audio":
        return waveform_thumbnail(media.load_audio(record.file).samples)
    return scaled_thumbnail(array_to_qimage(media.load_image(record.file)))


class _ThumbnailSignals(QObject):
    loaded = Signal(int, int, QImage)  # project generation, record id, thumbnail
    failed = Signal(int, int, str)


class _ThumbnailJob(QRunnable):
    def __init__(self, generation: int, record: Record, signals: _ThumbnailSignals) -> None:
        super().__init__()
        self.generation = generation
        self.record = record
        self.signals = signals

    def run(self) -> None:
        try:
            image = load_thumbnail(self.record)
        except (media.MediaError, OSError, ValueError) as exc:
            self.signals.failed.emit(self.generation, self.record.id, str(exc))
            return
        self.signals.loaded.emit(self.generation, self.record.id, image)


class GalleryModel(QAbstractListModel):
    """Records of one project, newest first, filtered by model and star."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.records: list[Record] = []
        self.model_filter: str | None = None
        self.starred_only = False
        self._thumbs: dict[int, QPixmap] = {}
        self._pending: set[int] = set()
        self._broken: dict[int, str] = {}
        self._generation = 0
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self._signals = _ThumbnailSignals(self)
        self._signals.loaded.connect(self._thumbnail_loaded)
        self._signals.failed.connect(self._thumbnail_failed)
        self._placeholder = QPixmap(THUMB, THUMB)
        self._placeholder.fill(QColor(48, 52, 60))

    def set_project(self, project: Project | None) -> None:
        """Thumbnails still loading for the previous project are dropped when they arrive:
        record ids repeat across projects."""
        self.project = project
        self._generation += 1
        self._thumbs.clear()
        self._pending.clear()
        self._broken.clear()
        self.refresh()

    def refresh(self) -> None:
        self.beginResetModel()
        if self.project is None:
            self.records = []
        else:
            self.records = self.project.records(model_id=self.model_filter, starred=self.starred_only)
        self.endResetModel()

    def add(self, ids: list[int]) -> None:
        """New results (newest first at the top) if they pass the filter."""
        if self.project is None:
            return
        known = {r.id for r in self.records}
        fresh = []
        for record_id in sorted(ids, reverse=True):
            try:
                record = self.project.record(record_id)
            except KeyError:
                continue
            if record.id in known or record.deleted or not self._passes(record):
                continue
            fresh.append(record)
        if fresh:
            self.beginInsertRows(QModelIndex(), 0, len(fresh) - 1)
            self.records[0:0] = fresh
            self.endInsertRows()

    def _passes(self, record: Record) -> bool:
        if self.model_filter and record.model_id != self.model_filter:
            return False
        return not (self.starred_only and not record.starred)

    def row_of(self, record_id: int) -> int:
        return next((i for i, r in enumerate(self.records) if r.id == record_id), -1)

    # Qt model -------------------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.records)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.records):
            return None
        record = self.records[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"#{record.id}"
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnail(record)
        if role == Qt.ItemDataRole.ToolTipRole:
            return record_tooltip(record, self._broken.get(record.id, ""))
        if role == RECORD_ROLE:
            return record
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:
        mime = QMimeData()
        files = [self.records[i.row()].file for i in indexes if i.isValid()]
        mime.setUrls([QUrl.fromLocalFile(str(f)) for f in files if f.exists()])
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    # thumbnails -----------------------------------------------------------------------------------
    def thumbnail(self, record: Record) -> QPixmap:
        cached = self._thumbs.get(record.id)
        if cached is not None:
            return cached
        if record.id not in self._pending and record.id not in self._broken:
            self._pending.add(record.id)
            self.pool.start(_ThumbnailJob(self._generation, record, self._signals))
        return self._placeholder

    def _thumbnail_loaded(self, generation: int, record_id: int, image: QImage) -> None:
        if generation != self._generation:
            return
        self._pending.discard(record_id)
        self._thumbs[record_id] = QPixmap.fromImage(image)
        self._row_changed(record_id)

    def _thumbnail_failed(self, generation: int, record_id: int, message: str) -> None:
        if generation != self._generation:
            return
        self._pending.discard(record_id)
        self._broken[record_id] = message
        missing = QPixmap(THUMB, THUMB)
        missing.fill(QColor(70, 40, 40))
        self._thumbs[record_id] = missing
        self._row_changed(record_id)

    def thumbnails_ready(self) -> bool:
        return not self._pending

    def _row_changed(self, record_id: int) -> None:
        row = self.row_of(record_id)
        if row >= 0:
            index = self.index(row)
            self.dataChanged.emit(index, index)


def record_tooltip(record: Record, problem: str = "") -> str:
    when = datetime.datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")
    params = ", ".join(f"{k}={v}" for k, v in record.params.items() if v is not None)
    lines = [
        f"<b>#{record.id}</b> · {record.action} · {record.model_id or record.plugin}",
        f"seed {record.seed} · {record.device} · {record.duration or 0:.2f} s",
        f"{params}" if params else "",
        f"{record.width}x{record.height}" if record.width else "",
        f"<span style='color:#e06c75'>{problem}</span>" if problem else "",
        f"<i>{when}</i>",
    ]
    return "<br>".join(line for line in lines if line)


class GalleryDelegate(QStyledItemDelegate):
    """A thumbnail tile with a caption and a star badge."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tile = QSize(THUMB + 16, THUMB + 30)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return self.tile

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        record: Record | None = index.data(RECORD_ROLE)
        if record is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = option.rect.adjusted(3, 3, -3, -3)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        background = QColor(58, 110, 190) if selected else QColor(54, 58, 66) if hovered else QColor(40, 43, 50)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(background)
        painter.drawRoundedRect(rect, 6, 6)
        pixmap: QPixmap = index.data(Qt.ItemDataRole.DecorationRole)
        box = QRect(rect.left() + 5, rect.top() + 5, THUMB, THUMB)
        target = QRect(0, 0, pixmap.width(), pixmap.height())
        target.moveCenter(box.center())
        painter.drawPixmap(target, pixmap)
        caption = f"#{record.id}  ·  seed {record.seed}" if record.seed is not None else f"#{record.id}"
        painter.setPen(QColor(235, 238, 243) if selected else QColor(170, 176, 186))
        font = painter.font()
        font.setPointSizeF(max(font.pointSizeF() * 0.85, 7))
        painter.setFont(font)
        text_rect = QRect(rect.left() + 4, box.bottom() + 3, rect.width() - 8, rect.bottom() - box.bottom() - 3)
        elided = painter.fontMetrics().elidedText(caption, Qt.TextElideMode.ElideRight, text_rect.width())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, elided)
        if record.starred:
            font.setPointSizeF(font.pointSizeF() * 1.6)
            painter.setFont(font)
            painter.setPen(QColor(255, 196, 61))
            painter.drawText(QRect(box.right() - 22, box.top(), 24, 24), Qt.AlignmentFlag.AlignCenter, "★")
        painter.restore()


# undoable commands ---------------------------------------------------------------------------------
class StarCommand(QUndoCommand):
    def __init__(self, project: Project, ids: list[int], starred: bool) -> None:
        super().__init__(f"{'Star' if starred else 'Unstar'} {_count(ids)}")
        self.project, self.ids, self.starred = project, list(ids), starred
        self.before = {i: project.record(i).starred for i in ids}

    def redo(self) -> None:
        self.project.set_starred(self.ids, self.starred)

    def undo(self) -> None:
        for starred in (True, False):
            ids = [i for i, was in self.before.items() if was == starred]
            if ids:
                self.project.set_starred(ids, starred)


class DeleteCommand(QUndoCommand):
    def __init__(self, project: Project, ids: list[int]) -> None:
        super().__init__(f"Delete {_count(ids)}")
        self.project, self.ids = project, list(ids)

    def redo(self) -> None:
        self.project.set_deleted(self.ids, True)

    def undo(self) -> None:
        self.project.set_deleted(self.ids, False)


def _count(ids: list[int]) -> str:
    return f"result #{ids[0]}" if len(ids) == 1 else f"{len(ids)} results"


# the panel -----------------------------------------------------------------------------------------
class GalleryPanel(QWidget):
    openRequested = Signal(object)  # Record
    reuseRequested = Signal(object)  # Record
    exportRequested = Signal(object)  # Record
    useAsInputRequested = Signal(str, object)  # parameter name, list[Record]

    def __init__(self, undo_stack: QUndoStack, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = undo_stack
        # (parameter name, title) pairs the selection can feed, e.g. a VAE's "with" image set
        self.input_targets: Callable[[], list[tuple[str, str]]] = list
        self.model = GalleryModel(self)
        self.view = QListView()
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)
        self.view.setSpacing(2)
        self.view.setWrapping(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setDragEnabled(True)
        self.view.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.view.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.view.setModel(self.model)
        self.view.setItemDelegate(GalleryDelegate(self.view))
        self.view.setMouseTracking(True)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.doubleClicked.connect(self._double_clicked)
        self.view.setObjectName("gallery")

        self.model_combo = QComboBox()
        self.model_combo.setToolTip("Show the results of one model")
        self.model_combo.setMinimumContentsLength(14)
        self.model_combo.currentIndexChanged.connect(self._filter_changed)
        self.star_toggle = QToolButton()
        self.star_toggle.setText("★ Starred")
        self.star_toggle.setCheckable(True)
        self.star_toggle.setToolTip("Show starred results only")
        self.star_toggle.toggled.connect(self._filter_changed)
        self.count_label = QLabel()
        self.count_label.setObjectName("hint")
        self.count_label.setMinimumWidth(self.count_label.fontMetrics().horizontalAdvance("00000 results") + 8)
        self.count_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.model_combo)
        bar.addWidget(self.star_toggle)
        bar.addStretch(1)
        bar.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(6)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        self.model.modelReset.connect(self._update_count)
        self.model.rowsInserted.connect(self._update_count)

        self.actions_by_name = self._make_actions()

    def _make_actions(self) -> dict[str, QAction]:
        style = self.style()
        specs: list[tuple[str, str, str | QKeySequence.StandardKey, Callable[[], None], QIcon | None]] = [
            ("open", "Open in canvas", "Return", self.open_selected, style.standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton)),
            ("star", "Star / unstar", "S", self.toggle_star, None),
            ("delete", "Delete", QKeySequence.StandardKey.Delete, self.delete_selected, style.standardIcon(QStyle.StandardPixmap.SP_TrashIcon)),
            ("reuse", "Reuse parameters", "R", self.reuse_selected, style.standardIcon(QStyle.StandardPixmap.SP_BrowserReload)),
            ("folder", "Open containing folder", "", self.open_folder, style.standardIcon(QStyle.StandardPixmap.SP_DirIcon)),
            ("export", "Export…", "", self.export_selected, style.standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton)),
        ]
        actions = {}
        for name, text, shortcut, slot, icon in specs:
            action = QAction(text, self.view)
            if icon is not None:
                action.setIcon(icon)
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
                action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(slot)
            self.view.addAction(action)
            actions[name] = action
        return actions

    # project --------------------------------------------------------------------------------------
    def set_project(self, project: Project | None) -> None:
        self.model.set_project(project)
        self.refresh_models()

    def refresh_models(self) -> None:
        current = self.model_combo.currentText()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItem(ALL_MODELS)
        if self.model.project is not None:
            self.model_combo.addItems(self.model.project.model_ids())
        index = self.model_combo.findText(current)
        self.model_combo.setCurrentIndex(max(index, 0))
        self.model_combo.blockSignals(False)
        if index < 0 and current and current != ALL_MODELS:
            self._filter_changed()

    def on_records_changed(self, event: str, ids: list[int]) -> None:
        if event == "added":
            self.model.add(ids)
            if self.model_combo.count() - 1 != len(self.model.project.model_ids() if self.model.project else []):
                self.refresh_models()
        elif event == "changed":
            selected = self.selected_ids()
            self.model.refresh()
            self.select_ids(selected)

    def _filter_changed(self) -> None:
        text = self.model_combo.currentText()
        self.model.model_filter = None if text in ("", ALL_MODELS) else text
        self.model.starred_only = self.star_toggle.isChecked()
        self.model.refresh()

    def _update_count(self) -> None:
        count = len(self.model.records)
        self.count_label.setText(f"{count} result{'s' if count != 1 else ''}")

    # selection ------------------------------------------------------------------------------------
    def selected_records(self) -> list[Record]:
        rows = sorted({i.row() for i in self.view.selectionModel().selectedIndexes()})
        return [self.model.records[r] for r in rows if r < len(self.model.records)]

    def selected_ids(self) -> list[int]:
        return [r.id for r in self.selected_records()]

    def select_ids(self, ids: list[int]) -> None:
        selection = self.view.selectionModel()
        selection.clearSelection()
        for record_id in ids:
            row = self.model.row_of(record_id)
            if row >= 0:
                index = self.model.index(row)
                selection.select(index, selection.SelectionFlag.Select)
                # not view.setCurrentIndex: that reads the keyboard modifiers and may toggle instead
                selection.setCurrentIndex(index, selection.SelectionFlag.NoUpdate)

    def _double_clicked(self, index: QModelIndex) -> None:
        record = index.data(RECORD_ROLE)
        if record is not None:
            self.openRequested.emit(record)

    def _context_menu(self, position) -> None:
        index = self.view.indexAt(position)
        if index.isValid() and not self.view.selectionModel().isSelected(index):
            self.view.setCurrentIndex(index)
        records = self.selected_records()
        if not records:
            return
        menu = QMenu(self)
        single = len(records) == 1
        self.actions_by_name["star"].setText("Unstar" if all(r.starred for r in records) else "Star")
        for name in ("open", "reuse"):
            menu.addAction(self.actions_by_name[name]).setEnabled(single)
        for name, title in self.input_targets():
            menu.addAction(f"Use as {title}", lambda n=name: self.useAsInputRequested.emit(n, records))
        menu.addSeparator()
        menu.addAction(self.actions_by_name["star"])
        menu.addAction(self.actions_by_name["export"]).setEnabled(single)
        menu.addAction(self.actions_by_name["folder"])
        menu.addSeparator()
        menu.addAction(self.actions_by_name["delete"])
        menu.exec(self.view.viewport().mapToGlobal(position))

    # commands -------------------------------------------------------------------------------------
    def open_selected(self) -> None:
        records = self.selected_records()
        if records:
            self.openRequested.emit(records[0])

    def reuse_selected(self) -> None:
        records = self.selected_records()
        if records:
            self.reuseRequested.emit(records[0])

    def export_selected(self) -> None:
        records = self.selected_records()
        if records:
            self.exportRequested.emit(records[0])

    def toggle_star(self) -> None:
        records = self.selected_records()
        if records and self.model.project is not None:
            starred = not all(r.starred for r in records)
            self.undo_stack.push(StarCommand(self.model.project, [r.id for r in records], starred))

    def delete_selected(self) -> None:
        ids = self.selected_ids()
        if ids and self.model.project is not None:
            self.undo_stack.push(DeleteCommand(self.model.project, ids))

    def open_folder(self) -> None:
        records = self.selected_records()
        if records:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(records[0].file).parent)))

