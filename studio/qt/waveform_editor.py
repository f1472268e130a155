"""The waveform editor: overview + detail tracks, selection, undoable edits, playback, spectrogram.

Edits are ``studio.core.audio_edit`` commands wrapped in a QUndoStack; the document keeps the
audio as ~5 s chunks with min/max summaries, so an edit costs time in proportion to its region
and drawing reads only the visible range at screen resolution: hour-long files open, scroll and
edit smoothly. Loading, exporting and spectrograms run on the thread pool.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoCommand, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QScrollBar,
    QStyle,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from studio.core import audio_edit as edits
from studio.core.audio_edit import AudioDocument
from studio.core.audio_summary import spectrogram
from studio.core.media import MediaError, load_audio, save_audio
from studio.core.plugin import Audio
from studio.qt.waveform_dialogs import ExportDialog, ExportSettings
from studio.qt.waveform_playback import Player
from studio.qt.waveform_tasks import BackgroundTasks
from studio.qt.waveform_views import (
    BACKGROUND,
    ChannelTrack,
    EditorViewBox,
    OverviewPlot,
    Ruler,
    SpectrogramTrack,
    format_time,
)

MIN_VISIBLE_SAMPLES = 20
LONG_EDIT_SAMPLES = 20_000_000  # on files this long an edit (e.g. gain on everything) may take a moment
SNAP_SECONDS = 0.01
SEND_ACTIONS = {"continue": "Continue", "infill": "Infill", "resynthesize": "Resynthesize"}
_CLIPBOARD: list[Audio] = []  # shared by every editor in the process, like a system clipboard


class _EditCommand(QUndoCommand):
    def __init__(self, editor: WaveformEditor, edit: edits.AnyEdit, selection: tuple[int, int] | None, cursor: int):
        super().__init__(edit.label)
        self.editor, self.edit = editor, edit
        self.document = editor.document
        self.before = (editor.selection(), editor.cursor())
        self.after = (selection, cursor)

    def redo(self) -> None:
        self.edit.apply(self.document)
        self.editor._edited(*self.after)

    def undo(self) -> None:
        self.edit.revert(self.document)
        self.editor._edited(*self.before)


class WaveformEditor(QWidget):
    """The audio workspace view.

    ``set_audio(audio, record_id)`` shows a result, ``open_file(path)`` loads one; ``audio()``,
    ``selection()`` (frames, or None) and ``cursor()`` tell the window what to send to a model,
    and ``sendToAction`` names the edit the user asked for ("continue", "infill",
    "resynthesize"). Every edit goes through ``undo_stack``. Shortcuts are scoped to this widget
    (Ctrl+Z/X/C/V, Delete, Space, ...), so a window should not bind the same keys window-wide.
    """

    audioChanged = Signal()
    selectionChanged = Signal()
    sendToAction = Signal(str)
    loadFailed = Signal(str)
    exported = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.record_id: int | None = None
        self.path: Path | None = None
        self.document = AudioDocument(Audio(np.zeros((0, 1), np.float32), 48000))
        self._selection: tuple[int, int] | None = None
        self._cursor = 0
        self._tracks: list[ChannelTrack] = []
        self._spectrogram_generation = 0
        self._tasks = BackgroundTasks(self)
        self.player = Player(self)
        self.player.positionChanged.connect(self._play_position)
        self.player.playingChanged.connect(self._playing_changed)
        self._redraw_timer = QTimer(self, singleShot=True, interval=0)
        self._redraw_timer.timeout.connect(self.redraw)
        self._build()
        self._install(self.document)

    # ---- public API ------------------------------------------------------------------------
    def set_audio(self, audio: Audio, record_id: int | None = None) -> None:
        self.record_id = record_id
        self.path = None
        self._install(AudioDocument(audio))

    def audio(self) -> Audio:
        """The edited audio as one read-only array (after an edit, the chunks are joined once)."""
        return self.document.audio()

    def selection(self) -> tuple[int, int] | None:
        return self._selection

    def cursor(self) -> int:
        return self._cursor

    def set_selection(self, start: int, stop: int, snap: bool | None = None) -> None:
        """Select ``[start, stop)`` (samples, any order); snapping follows the toolbar toggle."""
        n = self.document.length
        start, stop = sorted((int(np.clip(start, 0, n)), int(np.clip(stop, 0, n))))
        if self.actions["snap"].isChecked() if snap is None else snap:
            start, stop = self._snap(start), self._snap(stop)
        self._selection = (start, stop) if stop > start else None
        self._cursor = start
        self._show_selection()

    def clear_selection(self) -> None:
        self._selection = None
        self._show_selection()

    def set_cursor(self, position: int) -> None:
        self._cursor = int(np.clip(position, 0, self.document.length))
        self._selection = None
        self._show_selection()

    def visible_range(self) -> tuple[float, float]:
        """The detail view's range in seconds."""
        start, stop = self._tracks[0].plot.getViewBox().viewRange()[0]
        return float(start), float(stop)

    def set_view(self, start_s: float, stop_s: float) -> None:
        duration = max(self.document.length / self.document.rate, 1e-6)
        width = float(np.clip(stop_s - start_s, min(duration, MIN_VISIBLE_SAMPLES / self.document.rate), duration))
        start = float(np.clip(start_s, 0.0, duration - width))
        self._tracks[0].plot.getViewBox().setXRange(start, start + width, padding=0)

    def zoom(self, factor: float, centre_s: float | None = None) -> None:
        start, stop = self.visible_range()
        if centre_s is None:
            cursor_s = self._cursor / self.document.rate
            centre_s = cursor_s if start <= cursor_s <= stop else (start + stop) / 2
        self.set_view(centre_s - (centre_s - start) / factor, centre_s + (stop - centre_s) / factor)

    def zoom_in(self) -> None:
        self.zoom(2.0)

    def zoom_out(self) -> None:
        self.zoom(0.5)

    def zoom_to_selection(self) -> None:
        if self._selection:
            rate = self.document.rate
            self.set_view(self._selection[0] / rate, self._selection[1] / rate)

    def zoom_fit(self) -> None:
        self.set_view(0.0, self.document.length / self.document.rate)

    def scroll(self, fraction_of_view: float) -> None:
        start, stop = self.visible_range()
        shift = (stop - start) * fraction_of_view
        self.set_view(start + shift, stop + shift)

    # ---- editing -----------------------------------------------------------------------------
    def copy(self) -> None:
        if self._selection:
            _CLIPBOARD[:] = [Audio(self.document.region(*self._selection).copy(), self.document.rate)]
            self._update_actions()

    def cut(self) -> None:
        if self._selection:
            self.copy()
            self._push(edits.delete(*self._selection, label="Cut"), None, self._selection[0])

    def paste(self) -> None:
        if not _CLIPBOARD:
            return
        clip = edits.conform(_CLIPBOARD[0], self.document.rate, self.document.channels)
        start, stop = self._selection or (self._cursor, self._cursor)
        self._push(edits.paste(start, stop, clip), (start, start + len(clip)), start)

    def delete(self) -> None:
        if self._selection:
            self._push(edits.delete(*self._selection), None, self._selection[0])

    def trim(self) -> None:
        if self._selection:
            start, stop = self._selection
            self._push(edits.trim(start, stop, self.document.length), (0, stop - start), 0)

    def silence(self) -> None:
        self._push_in_place(edits.silence)

    def gain(self, db: float | None = None) -> None:
        if db is None:
            db, ok = QInputDialog.getDouble(self, "Gain", "Gain (dB):", 0.0, -60.0, 60.0, 1)
            if not ok:
                return
        self._push_in_place(lambda a, b: edits.gain(a, b, db))

    def normalize(self, peak_db: float | None = None) -> None:
        if peak_db is None:
            peak_db, ok = QInputDialog.getDouble(self, "Normalize", "Peak level (dBFS):", -1.0, -60.0, 0.0, 1)
            if not ok:
                return
        self._push_in_place(lambda a, b: edits.normalize(a, b, peak_db))

    def fade_in(self) -> None:
        self._push_in_place(edits.fade_in)

    def fade_out(self) -> None:
        self._push_in_place(edits.fade_out)

    def reverse(self) -> None:
        self._push_in_place(edits.reverse)

    def _push_in_place(self, make) -> None:
        """Same-length edits act on the selection, or on the whole file when nothing is selected."""
        if self.document.length:
            start, stop = self._selection or (0, self.document.length)
            self._push(make(start, stop), self._selection, self._cursor)

    def _push(self, edit: edits.AnyEdit, selection: tuple[int, int] | None, cursor: int) -> None:
        self.player.stop()
        slow = self.document.length > LONG_EDIT_SAMPLES
        if slow:
            QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self.undo_stack.push(_EditCommand(self, edit, selection, cursor))
        finally:
            if slow:
                QApplication.restoreOverrideCursor()

    def _edited(self, selection: tuple[int, int] | None, cursor: int) -> None:
        self._selection, self._cursor = selection, cursor
        self._document_changed()
        self.audioChanged.emit()

    # ---- files -------------------------------------------------------------------------------
    def open_file(self, path: Path | str | None = None) -> None:
        """Load in the background; a bad file shows one sentence and keeps the current audio."""
        if path is None:
            name, _ = QFileDialog.getOpenFileName(self, "Open audio", "", "Audio (*.wav *.flac *.ogg);;All files (*)")
            if not name:
                return
            path = name
        path = Path(path)
        self._status(f"Opening {path.name}…")

        def load() -> AudioDocument:
            return AudioDocument(load_audio(path), copy=False)

        def loaded(document: AudioDocument) -> None:
            self.record_id, self.path = None, path
            self._install(document)
            self._status(f"Opened {path.name}")

        def failed(exc: Exception) -> None:
            self.loadFailed.emit(self._fail("Cannot open audio", path, exc))

        self._tasks.start(load, loaded, failed)

    def export(self, settings: ExportSettings | None = None) -> None:
        """Write WAV/FLAC in the background (the dialog asks for format, depth and rate)."""
        if settings is None:
            suggested = self.path or Path.home() / "audio.wav"
            dialog = ExportDialog(self.document.rate, suggested, self)
            if not dialog.exec():
                return
            settings = dialog.settings()
        chunks, rate = self.document.snapshot(), self.document.rate
        self._status(f"Exporting {settings.path.name}…")

        def write() -> Path:
            audio = Audio(np.concatenate(chunks), rate)
            return save_audio(settings.path, audio, subtype=settings.subtype, rate=settings.rate)

        def written(path: Path) -> None:
            self._status(f"Exported {path}")
            self.exported.emit(str(path))

        self._tasks.start(write, written, lambda exc: self._fail("Cannot export audio", settings.path, exc))

    def _fail(self, title: str, path: Path, exc: Exception) -> str:
        """One sentence in a message box (and the status line); the audio in the editor stays."""
        message = str(exc) if isinstance(exc, MediaError) else f"{path}: {type(exc).__name__}: {exc}"
        self._status(message)
        QMessageBox.warning(self, title, message)
        return message

    # ---- playback ----------------------------------------------------------------------------
    def play(self) -> None:
        if self.player.unavailable or not self.document.length:
            return
        start, stop = self._selection or (self._cursor, self.document.length)
        if stop <= start:
            start, stop = 0, self.document.length
        doc = self.document
        self.player.play(doc.read, doc.channels, doc.rate, start, stop, self.actions["loop"].isChecked())

    def stop(self) -> None:
        self.player.stop()

    def _toggle_play(self) -> None:
        if self.player.playing:
            self.stop()
        else:
            self.play()

    def _play_position(self, position: int) -> None:
        seconds = position / self.document.rate
        for track in self._tracks:
            track.play_head.setPos(seconds)
        start, stop = self.visible_range()
        if self.player.playing and not start <= seconds <= stop:
            self.set_view(seconds, seconds + stop - start)

    def _playing_changed(self, playing: bool) -> None:
        for track in self._tracks:
            track.play_head.setVisible(playing)
        self.actions["play"].setEnabled(not playing and not self.player.unavailable)
        self.actions["stop"].setEnabled(playing)

    # ---- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.actions: dict[str, QAction] = {}
        style = self.style()
        icon = style.standardIcon
        pix = QStyle.StandardPixmap
        edit_bar = QToolBar("Edit")
        transport = QToolBar("Transport")
        for bar in (edit_bar, transport):
            bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            bar.setMovable(False)
        self._add(edit_bar, "open", "Open…", self.open_file, QKeySequence.StandardKey.Open, icon(pix.SP_DialogOpenButton))
        self._add(edit_bar, "export", "Export…", self.export, "Ctrl+Shift+E", icon(pix.SP_DialogSaveButton))
        edit_bar.addSeparator()
        undo = self.undo_stack.createUndoAction(self, "Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_stack.createRedoAction(self, "Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        for name, action in (("undo", undo), ("redo", redo)):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(action)
            edit_bar.addAction(action)
            self.actions[name] = action
        edit_bar.addSeparator()
        self._add(edit_bar, "cut", "Cut", self.cut, QKeySequence.StandardKey.Cut)
        self._add(edit_bar, "copy", "Copy", self.copy, QKeySequence.StandardKey.Copy)
        self._add(edit_bar, "paste", "Paste", self.paste, QKeySequence.StandardKey.Paste)
        self._add(edit_bar, "delete", "Delete", self.delete, QKeySequence.StandardKey.Delete)
        self._add(edit_bar, "trim", "Trim", self.trim, "Ctrl+T", tip="Keep only the selection")
        self._add(edit_bar, "silence", "Silence", self.silence, "Ctrl+L")
        edit_bar.addSeparator()
        self._add(edit_bar, "gain", "Gain…", self.gain, "Ctrl+G", tip="Amplify or attenuate by a number of dB")
        self._add(edit_bar, "normalize", "Normalize…", self.normalize, "Ctrl+N", tip="Scale to a peak level")
        self._add(edit_bar, "fade_in", "Fade in", self.fade_in, "Ctrl+Shift+I")
        self._add(edit_bar, "fade_out", "Fade out", self.fade_out, "Ctrl+Shift+O")
        self._add(edit_bar, "reverse", "Reverse", self.reverse, "Ctrl+R")
        self._add(transport, "play", "Play", self.play, "Shift+Space", icon(pix.SP_MediaPlay))
        self._add(transport, "stop", "Stop", self.stop, "Escape", icon(pix.SP_MediaStop))
        self._add(transport, "loop", "Loop", None, "Ctrl+Shift+L", icon(pix.SP_BrowserReload), checkable=True)
        self._add(transport, "toggle_play", "Play/Stop", self._toggle_play, "Space", add=False)
        transport.addSeparator()
        self._add(transport, "zoom_in", "Zoom in", self.zoom_in, "Ctrl+1")
        self._add(transport, "zoom_out", "Zoom out", self.zoom_out, "Ctrl+3")
        self._add(transport, "zoom_selection", "Zoom to selection", self.zoom_to_selection, "Ctrl+E")
        self._add(transport, "zoom_fit", "Fit", self.zoom_fit, "Ctrl+F")
        transport.addSeparator()
        self._add(transport, "snap", "Snap to zero", None, None, checkable=True,
                  tip="Move selection edges to the nearest zero crossing")
        self._add(transport, "spectrogram", "Spectrogram", self._toggle_spectrogram, None, checkable=True)
        transport.addSeparator()
        transport.addWidget(QLabel(" Send to model: "))
        for key, label in SEND_ACTIONS.items():
            self._add(transport, f"send_{key}", label, lambda _=False, k=key: self.sendToAction.emit(k), None)
        self.actions["send_continue"].setToolTip("Let the model continue from the cursor")
        self.actions["send_infill"].setToolTip("Let the model regenerate the selection, keeping both sides")
        self.actions["send_resynthesize"].setToolTip("Let the model resynthesize the selection (or the whole file)")
        if self.player.unavailable:
            for name in ("play", "stop", "loop", "toggle_play"):
                self.actions[name].setToolTip(self.player.unavailable)

        self.overview = OverviewPlot(lambda a, b: self.set_view(a, b))
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(BACKGROUND)
        self.graphics.ci.setSpacing(0)
        self.spectrogram_track = SpectrogramTrack()
        self.ruler = Ruler()
        self.scrollbar = QScrollBar(Qt.Orientation.Horizontal)
        self.scrollbar.valueChanged.connect(self._scrolled)

        self.info = QLabel()
        self.selection_start = self._time_box("Selection start")
        self.selection_end = self._time_box("Selection end")
        self.selection_length = self._time_box("Selection length")
        self.cursor_label = QLabel()
        self.status = QLabel()
        self.playback_note = QLabel("Playback off (no audio output)" if self.player.unavailable else "")
        self.playback_note.setToolTip(self.player.unavailable)
        self.playback_note.setStyleSheet("color: #c98a00;")
        bottom = QHBoxLayout()
        bottom.addWidget(self.info)
        bottom.addSpacing(16)
        for text, box in (("Start", self.selection_start), ("End", self.selection_end), ("Length", self.selection_length)):
            bottom.addWidget(QLabel(text))
            bottom.addWidget(box)
        bottom.addWidget(self.cursor_label)
        bottom.addStretch(1)
        bottom.addWidget(self.status)
        bottom.addSpacing(12)
        bottom.addWidget(self.playback_note)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addWidget(edit_bar)
        layout.addWidget(transport)
        layout.addWidget(self.overview)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.scrollbar)
        layout.addLayout(bottom)

    def _add(self, bar, name, text, slot, shortcut, icon=None, tip="", checkable=False, add=True) -> QAction:
        action = QAction(text, self)
        if icon is not None:
            action.setIcon(icon)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.setCheckable(checkable)
        if slot is not None:
            action.triggered.connect(lambda _=False: slot())
        keys = f" ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})" if shortcut else ""
        action.setToolTip((tip or text.rstrip("…")) + keys)
        self.addAction(action)
        if add:
            bar.addAction(action)
        self.actions[name] = action
        return action

    def _time_box(self, tip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setDecimals(3)
        box.setSuffix(" s")
        box.setKeyboardTracking(False)
        box.setToolTip(tip)
        box.setMinimumWidth(110)
        box.valueChanged.connect(lambda _value, b=box: self._time_box_edited(b))
        return box

    # ---- document and views ------------------------------------------------------------------
    def _install(self, document: AudioDocument) -> None:
        self.player.stop()
        self.undo_stack.clear()
        self.document = document
        self._selection, self._cursor = None, 0
        if len(self._tracks) != document.channels:
            self._rebuild_tracks()
        self._document_changed()
        self.zoom_fit()
        self.audioChanged.emit()

    def _rebuild_tracks(self) -> None:
        self.graphics.ci.clear()
        channels = self.document.channels
        labels = ["M"] if channels == 1 else ["L", "R"] if channels == 2 else [str(i + 1) for i in range(channels)]
        self._tracks = []
        self.graphics.ci.addItem(self.ruler.plot, row=0, col=0)
        for row, label in enumerate(labels, start=1):
            box = EditorViewBox(self._drag_select, self._click, self.zoom, self.scroll)
            track = ChannelTrack(box, label)
            self.graphics.ci.addItem(track.plot, row=row, col=0)
            if self._tracks:
                track.plot.setXLink(self._tracks[0].plot)
            track.region.sigRegionChanged.connect(lambda _r, t=track: self._region_dragged(t, False))
            track.region.sigRegionChangeFinished.connect(lambda _r, t=track: self._region_dragged(t, True))
            self._tracks.append(track)
        self.spectrogram_track.plot.setXLink(self._tracks[0].plot)
        self.ruler.plot.setXLink(self._tracks[0].plot)
        if self.actions["spectrogram"].isChecked():
            self.graphics.ci.addItem(self.spectrogram_track.plot, row=channels + 1, col=0)
        self._tracks[0].plot.getViewBox().sigXRangeChanged.connect(self._view_changed)
        self.graphics.ci.setGeometry(self.graphics.range)  # the emptied layout shrank to the ruler's height

    def _document_changed(self) -> None:
        doc = self.document
        duration = doc.length / doc.rate
        kind = {1: "mono", 2: "stereo"}.get(doc.channels, f"{doc.channels} channels")
        self.info.setText(f"{doc.rate} Hz · {kind} · {format_time(duration)}")
        for box in (self.selection_start, self.selection_end, self.selection_length):
            box.blockSignals(True)
            box.setRange(0.0, duration)
            box.blockSignals(False)
        self._draw_overview()
        start, stop = self.visible_range()
        self.set_view(start, stop) if stop - start <= duration else self.zoom_fit()
        self._show_selection()
        self.redraw()

    def _draw_overview(self) -> None:
        doc = self.document
        columns = max(200, self.overview.width())
        env = doc.envelope(0, doc.length, columns)
        self.overview.draw(env, doc.rate, doc.length / doc.rate)

    def _view_changed(self) -> None:
        start, stop = self.visible_range()
        self.overview.show_window(start, stop)
        rate = self.document.rate
        visible = int(round((stop - start) * rate))
        self.scrollbar.blockSignals(True)
        self.scrollbar.setRange(0, max(0, self.document.length - visible))
        self.scrollbar.setPageStep(max(1, visible))
        self.scrollbar.setSingleStep(max(1, visible // 10))
        self.scrollbar.setValue(int(round(start * rate)))
        self.scrollbar.blockSignals(False)
        self._redraw_timer.start()

    def _scrolled(self, value: int) -> None:
        start, stop = self.visible_range()
        self.set_view(value / self.document.rate, value / self.document.rate + stop - start)

    def redraw(self) -> None:
        """Draw the visible range at one column per pixel from the summary (and the spectrogram)."""
        doc = self.document
        start, stop = self.visible_range()
        box = self._tracks[0].plot.getViewBox()
        columns = max(100, int(box.width()))
        env = doc.envelope(start * doc.rate, stop * doc.rate, columns)
        for channel, track in enumerate(self._tracks):
            track.draw(env, channel, doc.rate, columns)
        if self.actions["spectrogram"].isChecked():
            self._compute_spectrogram(start, stop, columns)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.player.stop()
        self._tasks.detach()
        super().closeEvent(event)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._draw_overview()
        self._redraw_timer.start()

    def _toggle_spectrogram(self) -> None:
        if self.actions["spectrogram"].isChecked():
            self.graphics.ci.addItem(self.spectrogram_track.plot, row=len(self._tracks) + 1, col=0)
            self.redraw()
        else:
            self.graphics.ci.removeItem(self.spectrogram_track.plot)

    def _compute_spectrogram(self, start_s: float, stop_s: float, columns: int) -> None:
        self._spectrogram_generation += 1
        generation = self._spectrogram_generation
        doc, rate = self.document, self.document.rate
        a, b = int(start_s * rate), int(np.ceil(stop_s * rate))
        if b - a < 2:
            return

        def show(db: np.ndarray) -> None:
            if generation == self._spectrogram_generation:
                self.spectrogram_track.draw(db, a / rate, b / rate, rate)

        self._tasks.start(
            lambda: spectrogram(doc.read, doc.length, a, b, columns), show, lambda exc: self._status(str(exc))
        )

    # ---- selection and cursor ----------------------------------------------------------------
    def _snap(self, position: int) -> int:
        radius = max(16, int(self.document.rate * SNAP_SECONDS))
        lo = max(0, position - radius)
        window = self.document.read(lo, position + radius + 1)
        return lo + edits.nearest_zero_crossing(window, position - lo, radius)

    def _drag_select(self, start_s: float, stop_s: float, finished: bool) -> None:
        rate = self.document.rate
        self.set_selection(round(start_s * rate), round(stop_s * rate), snap=None if finished else False)

    def _click(self, seconds: float) -> None:
        position = round(seconds * self.document.rate)
        self.set_cursor(self._snap(position) if self.actions["snap"].isChecked() else position)

    def _region_dragged(self, track: ChannelTrack, finished: bool) -> None:
        start, stop = track.region.getRegion()
        rate = self.document.rate
        self.set_selection(round(start * rate), round(stop * rate), snap=None if finished else False)

    def _time_box_edited(self, box: QDoubleSpinBox) -> None:
        rate = self.document.rate
        start = round(self.selection_start.value() * rate)
        stop = round(self.selection_end.value() * rate)
        if box is self.selection_length:
            stop = start + round(self.selection_length.value() * rate)
        elif box is self.selection_start:
            stop = max(stop, start)
        else:
            start = min(start, stop)
        self.set_selection(start, stop)

    def _show_selection(self) -> None:
        rate = self.document.rate
        selection = self._selection
        for region in [t.region for t in self._tracks] + [self.spectrogram_track.region]:
            region.blockSignals(True)
            if selection:
                region.setRegion((selection[0] / rate, selection[1] / rate))
            region.setVisible(selection is not None)
            region.blockSignals(False)
        for track in self._tracks:
            track.cursor.setPos(self._cursor / rate)
        start, stop = selection or (self._cursor, self._cursor)
        for box, value in ((self.selection_start, start), (self.selection_end, stop), (self.selection_length, stop - start)):
            box.blockSignals(True)
            box.setValue(value / rate)
            box.blockSignals(False)
        self.cursor_label.setText(f"  Cursor {format_time(self._cursor / rate)}")
        self._update_actions()
        self.selectionChanged.emit()

    def _update_actions(self) -> None:
        has_audio = self.document.length > 0
        selected = self._selection is not None
        for name in ("cut", "copy", "delete", "trim", "zoom_selection", "send_infill"):
            self.actions[name].setEnabled(selected)
        for name in ("silence", "gain", "normalize", "fade_in", "fade_out", "reverse", "export", "zoom_in",
                     "zoom_out", "zoom_fit", "send_continue", "send_resynthesize"):
            self.actions[name].setEnabled(has_audio)
        self.actions["paste"].setEnabled(bool(_CLIPBOARD))
        playable = has_audio and not self.player.unavailable
        self.actions["play"].setEnabled(playable and not self.player.playing)
        self.actions["toggle_play"].setEnabled(playable)
        self.actions["loop"].setEnabled(playable)
        self.actions["stop"].setEnabled(self.player.playing)

    def _status(self, text: str) -> None:
        self.status.setText(text)
